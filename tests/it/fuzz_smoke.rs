//! A few seconds of every fuzz target inside `cargo test`: its seed corpus
//! (fuzz/corpus/<target>/) as is, then seeded random mutations of it. Not
//! coverage-guided (that is the AFL++ harness in fuzz/, for long runs), but
//! it keeps every target building and catches a regression on the inputs
//! the long runs found. Deterministic: the same seed always gives the same
//! inputs, only how many of them fit the time budget varies.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tribute_testbed::fuzzing::{self, TARGETS};

/// Per target; the eight run in parallel with the other tests.
const BUDGET: Duration = Duration::from_millis(1500);
/// Mutated inputs stay small, as AFL++'s do.
const MAX_LEN: usize = 16 * 1024;
/// Bytes the parsers branch on, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\0",
    b":",
    b"**",
    b"Order Details:",
    b"Price: ",
    b"Customer: @",
    b"Product: ",
    b"\xe2\x82\xac",
    b"\xe2\x82\xbd",
    b"1,500.00",
    b"123456",
    b"acc-",
    b"/case ",
    b"{",
    b"}",
    b"\"",
    b"[",
    b"]",
    b"=",
    b"#",
    b"```",
    b"t=",
    b",v1=",
    b"\xf0\x9f\x86\x95",
];

fn corpus_dir(target: &str) -> PathBuf {
    crate::support::repo().join("fuzz/corpus").join(target)
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "{} has no seeds", dir.display());
    seeds
}

/// One to four stacked edits: flips, random bytes, tokens, cuts, copies and
/// splices with another seed.
fn mutate(rng: &mut fastrand::Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.usize(..seeds.len())].clone();
    for _ in 0..rng.usize(1..=4) {
        let at = rng.usize(..=data.len());
        match rng.u8(..7) {
            0 if !data.is_empty() => {
                let i = rng.usize(..data.len());
                data[i] ^= 1 << rng.u8(..8);
            }
            1 if !data.is_empty() => {
                let i = rng.usize(..data.len());
                data[i] = rng.u8(..);
            }
            2 => data.splice(at..at, TOKENS[rng.usize(..TOKENS.len())].iter().copied()).for_each(drop),
            3 => {
                let end = rng.usize(at..=data.len().min(at + 64));
                data.drain(at..end);
            }
            4 => {
                let end = rng.usize(at..=data.len().min(at + 64));
                let copy = data[at..end].to_vec();
                let to = rng.usize(..=data.len());
                data.splice(to..to, copy);
            }
            5 => {
                let other = &seeds[rng.usize(..seeds.len())];
                let from = rng.usize(..=other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => data.insert(at, rng.u8(..)),
        }
    }
    data.truncate(MAX_LEN);
    data
}

fn smoke(name: &str) {
    let target = fuzzing::target(name).unwrap();
    let seeds = seeds(name);
    let run = |input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            panic!(
                "fuzz target {name} panicked on b\"{}\" (add it to fuzz/corpus/{name}/ once fixed)",
                input.escape_ascii()
            );
        }
    };
    seeds.iter().for_each(|s| run(s));
    let mut rng = fastrand::Rng::with_seed(0x7269_6275_7465);
    let start = Instant::now();
    let mut runs = 0;
    while start.elapsed() < BUDGET {
        run(&mutate(&mut rng, &seeds));
        runs += 1;
    }
    eprintln!("{name}: {} seeds, {runs} mutations", seeds.len());
}

/// One `#[test]` per target, so they run in parallel.
macro_rules! smoke_tests {
    ($($name:ident),* $(,)?) => {
        const SMOKED: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                smoke(stringify!($name));
            }
        )*
    };
}

smoke_tests!(
    tribute_order,
    customer_message,
    moderator_command,
    tribute_webhook,
    backend_signature,
    backend_answer,
    knowledge_file,
    config,
);

#[test]
fn every_target_has_a_seed_corpus_and_a_smoke_test() {
    let mut names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    names.sort();
    let mut smoked = SMOKED.to_vec();
    smoked.sort();
    assert_eq!(smoked, names);
    let dir = crate::support::repo().join("fuzz/corpus");
    let mut dirs: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    dirs.sort();
    assert_eq!(dirs, names);
}
