//! The LLM agent: answers a customer's follow-up question from the
//! knowledge base, in the customer's language, and hands over to a person
//! whenever it is not sure.
//!
//! Layout:
//!
//! - [`settings`]: the `[agent]` config section and its environment overrides.
//! - [`prompts`]: the system prompt and holding messages, editable at run time.
//! - [`llm`]: the port to a chat model: the agent's own message, tool and answer types, and [`Llm`].
//! - [`openai`]: the [`Llm`] for OpenAI-compatible endpoints (async-openai) with our retries.
//! - [`tools`]: the three tools the model may call, and nothing else.
//! - [`answer`]: the structured final output (JSON schema) and its parsing.
//! - [`policy`]: the escalation rules that do not trust the model alone.
//! - [`keywords`]: RU+EN word matching that tolerates inflection (hard topics, repeats).
//! - [`guard`]: links, prompt leaks, customer text as data.
//! - [`history`]: how much of the conversation reaches the LLM (message and character caps).
//! - [`probe`]: what `check` asks an endpoint (chat, tools, answer format), and the fix for each failure.
//! - [`turn`]: one turn end to end ([`Agent::answer`]), stored in `agent_turns`.
//! - [`eval`]: `kb eval`'s question sets and figures (recall, MRR, resolved / escalated / wrong).
//! - `in_memory_retriever`: a small in-memory [`Retriever`] for tests and
//!   benchmarks (feature `test-support`).
//!
//! The agent holds no backend client and no way to write orders: it can
//! read this customer's order statuses and the knowledge base, nothing more.

pub mod answer;
pub mod eval;
pub mod guard;
pub mod history;
#[cfg(any(test, feature = "test-support"))]
pub mod in_memory_retriever;
pub mod keywords;
pub mod knowledge_retriever;
pub mod llm;
pub mod openai;
pub mod outcome;
pub mod policy;
pub mod probe;
pub mod prompts;
pub mod questions;
pub mod settings;
pub mod sources;
pub mod tools;
pub mod turn;

/// The customer's language, as everywhere else in the program.
pub use crate::domain::Language as Lang;
#[cfg(any(test, feature = "test-support"))]
pub use in_memory_retriever::InMemoryRetriever;
pub use llm::{Llm, LlmError};
pub use outcome::{Mode, TurnOutcome};
pub use policy::{Reason, ReasonCode};
pub use prompts::Prompts;
pub use settings::{AgentSection, AgentSettings, LlmEndpoint};
pub use sources::{CustomerOrder, Hit, OrderStatusSource, Retriever, RetrieverError};
pub use turn::{Agent, Evaluation, HistoryMessage, Speaker, TurnRequest};
