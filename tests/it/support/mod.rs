//! Shared test helpers: every wait's bound and how to wait (`wait`), the
//! simulator's orders and client (`sim`), the daemon in a sandbox
//! (`sandbox`), the testbed in process or as a process (`testbed`), scripted
//! OpenAI-compatible servers on loopback, and the real ones CI starts (`llm`).

pub mod app;
pub mod chromium;
pub mod llm;
pub mod openai_chat;
pub mod openai_embeddings;
pub mod sandbox;
pub mod sim;
pub mod testbed;
pub mod wait;

pub use chromium::chromium;

/// The repository's root, where docs/, migrations/, knowledge/, fuzz/ and
/// tests/data/ are. `CARGO_MANIFEST_DIR` is testbed/: these tests are the
/// testbed crate's target, for the binary they run.
pub fn repo() -> &'static std::path::Path {
    std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Whether the tests run on CI, where every machine-dependent test must run
/// (`.ci/run` installs and starts what they need) rather than skip.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Held by the tests that keep both cores busy for a minute or more (the
/// hold-out evaluations with the real embedder, the SIGKILL chaos run of the
/// real binary), so they do not run at the same time: the chaos run's
/// wall-clock deadline is no place for another test's embeddings.
pub async fn cpu_heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

/// An HTTP client for the tests: reqwest needs the crypto provider first.
pub fn http() -> reqwest::Client {
    tribute_assistant::http::tls::client_builder().build().unwrap()
}
