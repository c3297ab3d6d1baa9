//! Shared test helpers: every wait's bound and how to wait (`wait`), the
//! simulator's orders and client (`sim`), the daemon in a sandbox
//! (`sandbox`), and scripted OpenAI-compatible servers on loopback.

pub mod chromium;
pub mod openai_chat;
pub mod openai_embeddings;
pub mod sandbox;
pub mod sim;
pub mod wait;

pub use chromium::chromium;

/// An HTTP client for the tests: reqwest needs the crypto provider first.
pub fn http() -> reqwest::Client {
    tribute_assistant::http::tls::client_builder().build().unwrap()
}
