//! One AFL++ persistent-mode binary for every target:
//! `fuzz-target <name>` fuzzes `tribute_testbed::fuzzing::target(<name>)`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = tribute_testbed::fuzzing::target(&name) else {
        let names: Vec<&str> = tribute_testbed::fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: fuzz-target <target>; targets: {}", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
