//! The customer dialogue's types: the dialogue state, persisted as JSON so
//! a restart resumes exactly where the dialogue was.

use super::AccountId;

/// Where the dialogue with one customer is. Times are unix ms on the
/// contact clock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DialogueState {
    /// Nothing is needed from the customer; what they write is a question.
    Idle,
    /// We asked for the account ID at `asked_at`; `reminded` once the
    /// reminder went out. The moderator gets it after the second timeout.
    AwaitingAccount { asked_at: i64, reminded: bool },
    /// The customer gave `account`; the backend is checking it.
    Validating { account: AccountId, since: i64 },
    /// A moderator has the case; the customer's messages are relayed there.
    WithModerator { case_id: i64, since: i64 },
}

impl DialogueState {
    pub fn name(&self) -> &'static str {
        match self {
            DialogueState::Idle => "idle",
            DialogueState::AwaitingAccount { .. } => "awaiting_account",
            DialogueState::Validating { .. } => "validating",
            DialogueState::WithModerator { .. } => "with_moderator",
        }
    }
}

/// Where one order stands inside a dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// We need the account ID from the customer.
    Awaiting,
    /// The customer's account ID is with the backend.
    Validating,
    /// Completed and the customer thanked.
    Done,
    /// A moderator case has the order.
    Moderator,
    /// Nothing more to do in the dialogue (failed or closed by hand).
    Closed,
}

impl LinkStatus {
    pub const ALL: [LinkStatus; 5] =
        [LinkStatus::Awaiting, LinkStatus::Validating, LinkStatus::Done, LinkStatus::Moderator, LinkStatus::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Awaiting => "awaiting",
            LinkStatus::Validating => "validating",
            LinkStatus::Done => "done",
            LinkStatus::Moderator => "moderator",
            LinkStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Who wrote a conversation message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Customer,
    /// Our templates.
    Assistant,
    /// The LLM agent.
    Agent,
    Moderator,
}

impl Author {
    pub fn as_str(self) -> &'static str {
        match self {
            Author::Customer => "customer",
            Author::Assistant => "assistant",
            Author::Agent => "agent",
            Author::Moderator => "moderator",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Author::Customer, Author::Assistant, Author::Agent, Author::Moderator].into_iter().find(|a| a.as_str() == s)
    }
}

/// Which way a conversation message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
    /// A moderator's internal note: stored with the conversation, never sent.
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Direction::In, Direction::Out, Direction::Internal].into_iter().find(|d| d.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialogue_state_round_trips_through_json() {
        let s = DialogueState::AwaitingAccount { asked_at: 5, reminded: true };
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<DialogueState>(&j).unwrap(), s);
        assert!(j.contains("awaiting_account"), "{j}");
    }
}
