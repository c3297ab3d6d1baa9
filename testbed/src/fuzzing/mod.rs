//! Fuzz targets: one per boundary where bytes from outside enter the daemon.
//!
//! Each target is a plain `fn(&[u8])` that must not panic, hang or grow
//! memory without bound for any input, and asserts the properties that must
//! hold for every input at its boundary. They live in the library (not in
//! `fuzz/`) so that one definition runs under two drivers: the AFL++
//! harness in `fuzz/` for long coverage-guided runs, and a short smoke run
//! over `fuzz/corpus/<name>/` inside `cargo test` (tests/it/fuzz_smoke.rs).
//! fuzz/README.md says how to run each.

mod chat;
mod files;
mod http;
mod order;

/// A fuzz target: any bytes in; panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name (the name is also its corpus folder).
pub const TARGETS: &[(&str, Target)] = &[
    ("tribute_order", order::tribute_order),
    ("customer_message", chat::customer_message),
    ("moderator_command", chat::moderator_command),
    ("tribute_webhook", http::tribute_webhook),
    ("backend_signature", http::backend_signature),
    ("backend_answer", http::backend_answer),
    ("knowledge_file", files::knowledge_file),
    ("config", files::config),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Splits at the first `\n`: a header line and the rest (the body), the way
/// the seed files of the HTTP targets are written.
fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Text as a peer could send it: invalid UTF-8 is replaced, as our HTTP and
/// Telegram layers hand us `str`.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}
