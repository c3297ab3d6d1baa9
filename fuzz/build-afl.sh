#!/usr/bin/env bash
# Builds fuzz/target/release/fuzz-target (the targets in testbed/src/fuzzing/
# and the daemon's library under them) instrumented for AFL++: the flags
# `cargo afl build` sets, linked against Debian's afl++ runtime (package
# `afl++`), so no AFL++ has to be compiled from source. fuzz/ is its own
# workspace (the root one excludes it).
set -euo pipefail
cd "$(dirname "$0")"
runtime=${AFL_RUNTIME:-/usr/lib/afl/afl-compiler-rt.o}
[ -f "$runtime" ] || { echo "no $runtime: apt-get install afl++" >&2; exit 1; }
export RUSTFLAGS="-C opt-level=3 -C target-cpu=native \
 -C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=3 \
 -C llvm-args=-sanitizer-coverage-trace-pc-guard -C llvm-args=-sanitizer-coverage-prune-blocks=0 \
 -C llvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -C link-arg=$runtime"
exec cargo build --release "$@"
