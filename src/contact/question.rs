//! The seam the LLM agent takes over: what to do with a customer message
//! that is not an account ID for one of their open orders.
//!
//! The contact flow has already stored the message in the conversation
//! (so the handler can read the whole history with
//! `Store::conversation_messages(conversation_id)`) and does the sending
//! itself, counting it against the daily cap: the handler only decides.

use crate::domain::{Language, Verdict};

/// A customer's message that is a question (or a complaint, or chatter).
#[derive(Debug, Clone)]
pub struct Question {
    pub conversation_id: i64,
    /// The customer's Telegram user id.
    pub customer_id: i64,
    pub text: String,
    /// The language we write to this customer in.
    pub language: Language,
    /// The stored `conversation_messages` row of this message.
    pub message_id: i64,
}

/// What to do with a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionOutcome {
    /// Send this text to the customer (stored with author `agent`).
    Answer(String),
    /// Hand it to a person: a question case for the moderator (one open
    /// case per conversation; later messages are added to it), with the
    /// verdict the card puts into words.
    Escalate(Verdict),
    /// Keep it in the conversation only: no answer, no case update (e.g. a
    /// customer over the per-minute limit). `why` goes to the log.
    Defer { why: String },
}

/// Decides what happens with a customer's question.
#[async_trait::async_trait]
pub trait QuestionHandler: Send + Sync + 'static {
    async fn on_question(&self, question: &Question) -> anyhow::Result<QuestionOutcome>;
}

/// Until the agent exists: every question goes to the moderator.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModeratorQuestions;

#[async_trait::async_trait]
impl QuestionHandler for ModeratorQuestions {
    async fn on_question(&self, _question: &Question) -> anyhow::Result<QuestionOutcome> {
        Ok(QuestionOutcome::Escalate(Verdict::because("no agent is configured; a person answers questions")))
    }
}
