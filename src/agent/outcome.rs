//! What one turn produced: what to send, and whether a person must look.

use std::time::Duration;

use super::{Lang, Reason};
use crate::domain::{Decider, Verdict};

/// How the turn was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Through the LLM (with tools and the policy around it).
    Llm,
    /// Retrieval-only: a curated answer or nothing.
    Retrieval,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Llm => "llm",
            Mode::Retrieval => "retrieval",
        }
    }
}

/// The result of [`super::Agent::answer`]. Escalated exactly when some
/// rule fired: the flag is derived from `reasons`, so the two cannot
/// disagree.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    pub conversation_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub question: String,
    /// What to send the customer: the answer, or the honest holding
    /// message in their language when escalated.
    pub reply: String,
    /// Why a person must answer; empty when the answer was sent.
    pub reasons: Vec<Reason>,
    /// The model's confidence (LLM mode) or the best hit's score (retrieval-only).
    pub confidence: Option<f64>,
    /// Knowledge-base ids the draft is based on.
    pub sources: Vec<String>,
    /// Their titles (the heading path), as people know them; the id where
    /// the hit was not at hand.
    pub source_titles: Vec<String>,
    /// The answer the agent would have given (links not from the knowledge base removed), if any.
    pub draft: Option<String>,
    pub language: Lang,
    pub mode: Mode,
    pub latency: Duration,
    /// The `agent_turns` row, when storing it worked.
    pub turn_id: Option<i64>,
}

impl TurnOutcome {
    pub fn escalated(&self) -> bool {
        !self.reasons.is_empty()
    }

    /// What the desk gets when the agent hands the question over: its
    /// reasons in words, the draft it did not send and the FAQ sections the
    /// draft came from, by title (the card puts them into one line).
    pub fn verdict(&self) -> Verdict {
        Verdict {
            by: Decider::Agent,
            reasons: self.reasons.iter().map(|r| r.in_words()).collect(),
            draft: self.draft.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned),
            sources: self.source_titles.clone(),
        }
    }

    /// The `ask --json` object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "answer": self.reply,
            "escalate": self.escalated(),
            "confidence": self.confidence,
            "sources": self.sources,
            "reasons": self.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
            "details": self.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "draft": self.draft,
            "language": self.language,
            "mode": self.mode,
            "latency_ms": self.latency.as_millis() as u64,
        })
    }
}
