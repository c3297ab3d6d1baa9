//! The LLM agent: answers a customer's follow-up question from the
//! knowledge base, in the customer's language, and hands over to a person
//! whenever it is not sure.
//!
//! Layout:
//!
//! - [`settings`]: the `[agent]` config section and its environment overrides.
//! - [`prompts`]: the system prompt and holding messages, editable at run time.
//! - [`llm`]: the OpenAI-compatible chat client (async-openai) with our retries.
//! - [`tools`]: the three tools the model may call, and nothing else.
//! - [`answer`]: the structured final output (JSON schema) and its parsing.
//! - [`policy`]: the escalation rules that do not trust the model alone.
//! - [`keywords`]: RU+EN word matching that tolerates inflection (hard topics, repeats).
//! - [`guard`]: links, prompt leaks, customer text as data.
//! - [`turn`]: one turn end to end ([`Agent::answer`]), stored in `agent_turns`.
//! - [`memory`]: a small in-memory [`Retriever`] for tests and benchmarks.
//!
//! The agent holds no backend client and no way to write orders: it can
//! read this customer's order statuses and the knowledge base, nothing more.

pub mod answer;
pub mod guard;
pub mod keywords;
pub mod language;
pub mod llm;
pub mod memory;
pub mod outcome;
pub mod policy;
pub mod prompts;
pub mod settings;
pub mod sources;
pub mod tools;
pub mod turn;

pub use language::Lang;
pub use memory::InMemoryRetriever;
pub use outcome::{Mode, TurnOutcome};
pub use policy::{Reason, ReasonCode};
pub use prompts::Prompts;
pub use settings::{AgentSection, AgentSettings, LlmEndpoint};
pub use sources::{CustomerOrder, Hit, OrderStatusSource, Retriever, RetrieverError};
pub use turn::{Agent, HistoryMessage, Speaker, TurnRequest};

use std::path::Path;

use crate::config::FileConfig;

/// The knowledge base the `ask` command (and the daemon) answers from.
///
/// Seam for the knowledge-base module (issue 5): until it is merged there
/// is no index to open, so this says so instead of answering from nothing.
/// At merge, this body opens the knowledge base under `data_dir` and wraps
/// `KnowledgeBase::search` in a [`Retriever`].
pub fn retriever_for(data_dir: &Path, _config: &FileConfig) -> anyhow::Result<Box<dyn Retriever>> {
    anyhow::bail!(
        "knowledge base not built yet: no knowledge index under {} (the knowledge-base module is not part of this \
         build; run `tribute-assistant kb ingest` once it is)",
        data_dir.display()
    )
}
