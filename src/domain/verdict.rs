//! Why a customer's question goes to a person, as whoever decided it says
//! it: the agent (its reasons, the draft it did not send, the FAQ sections
//! the draft came from) or the assistant without it (no agent, a failure, a
//! budget). Stored typed with the question's case and put into words only
//! on the card, by the desk.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub by: Decider,
    /// Each reason, in words a moderator reads.
    pub reasons: Vec<String>,
    /// The agent's answer that was not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<String>,
    /// Titles of the FAQ sections the draft came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    /// The agent read the question and did not answer it.
    Agent,
    /// The question never reached the agent, or its answer could not be sent.
    Assistant,
}

impl Verdict {
    /// The assistant's one reason, without the agent.
    pub fn because(reason: impl Into<String>) -> Self {
        Self { by: Decider::Assistant, reasons: vec![reason.into()], draft: None, sources: vec![] }
    }

    /// No reason recorded (a case stored before its reasons were).
    pub fn unstated() -> Self {
        Self { by: Decider::Assistant, reasons: vec![], draft: None, sources: vec![] }
    }

    /// How it is stored with the case (the escalation's detail).
    pub fn to_detail(&self) -> String {
        serde_json::to_string(self).expect("a verdict serialises")
    }

    /// The stored verdict; a case stored before verdicts were typed holds
    /// its reason as text, which is then the one reason.
    pub fn from_detail(detail: &str) -> Self {
        serde_json::from_str(detail).unwrap_or_else(|_| Self::because(detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_survives_the_store_and_old_prose_reads_as_one_reason() {
        let v = Verdict {
            by: Decider::Agent,
            reasons: vec!["the model was not sure (0.35 < 0.70)".into()],
            draft: Some("Probably within a day?".into()),
            sources: vec!["Delivery times".into()],
        };
        assert_eq!(Verdict::from_detail(&v.to_detail()), v);
        let old = Verdict::from_detail("no agent is configured; a person answers questions");
        assert_eq!(old, Verdict::because("no agent is configured; a person answers questions"));
    }
}
