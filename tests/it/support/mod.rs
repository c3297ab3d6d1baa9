//! Shared test helpers: scripted OpenAI-compatible servers on loopback.

pub mod openai_chat;
pub mod openai_embeddings;
pub mod sim;

/// An HTTP client for the tests: reqwest needs the crypto provider first.
pub fn http() -> reqwest::Client {
    tribute_assistant::tls::client_builder().build().unwrap()
}
