//! Shared test helpers: scripted OpenAI-compatible servers on loopback.

pub mod openai_chat;
pub mod openai_embeddings;
pub mod sim;
