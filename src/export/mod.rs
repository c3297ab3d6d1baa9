//! Conversation review export (`tribute-assistant export`): everything a
//! reviewer needs about each conversation, streamed out of the store in
//! JSONL, CSV or a self-contained HTML page, with PII redacted by default.

pub mod formats;
pub mod html;
pub mod model;
pub mod output;
pub mod reader;
mod stream;

pub use stream::{export_to, Summary};
