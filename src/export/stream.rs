//! Streams conversations out of the store into one of the formats.

use std::io::Write;

use anyhow::Context;
use tracing::info_span;

use super::formats::{writer, Format};
use super::reader::{ConversationStream, Pii};
use crate::store::export::ExportQuery;
use crate::store::Store;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub conversations: u64,
    pub messages: u64,
}

/// Streams every matching conversation into `out`; the library entry point
/// (the benchmark uses it directly).
pub async fn export_to(
    store: &Store,
    query: ExportQuery,
    pii: Pii,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<Summary> {
    let mut w = writer(format);
    let mut summary = Summary::default();
    w.begin(out).context("Failed to write the export")?;
    let mut stream = ConversationStream::new(store, query, pii);
    while let Some(c) = stream.next().await.context("Failed to read conversations from the store")? {
        let _span = info_span!("export_conversation", conversation = c.id).entered();
        w.conversation(out, &c).with_context(|| format!("Failed to write conversation {}", c.id))?;
        summary.conversations += 1;
        summary.messages += c.messages.len() as u64;
    }
    w.finish(out).context("Failed to write the export")?;
    Ok(summary)
}
