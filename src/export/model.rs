//! The export schema (version [`SCHEMA_VERSION`]), documented field by field
//! in docs/export.md. Changing a field's meaning or removing one bumps the
//! version; adding one does not.

use serde::Serialize;

use crate::domain::Language;
pub use crate::store::rfc3339;
use crate::store::{
    AgentTurnRecord, AuditEntry, CaseRecord, ConversationMessage, ConversationOrder, OrderEvent, OrderRecord,
};

/// Bumped when a field is removed or changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// What replaces a customer's display name or username when redacting.
pub const REDACTED_NAME: &str = "[NAME]";

/// One conversation's record: the conversation and everything attached to
/// it. The tables' rows are the store's row types, which serialise as the
/// schema's entries; only the links between them are worked out here.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationExport {
    pub schema_version: u32,
    pub id: i64,
    pub customer: Customer,
    pub language: Language,
    /// The dialogue state's name.
    pub state: &'static str,
    #[serde(serialize_with = "crate::store::serde_time::ms")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::store::serde_time::ms")]
    pub updated_at: i64,
    pub redacted: bool,
    pub flags: Flags,
    pub outcome: Outcome,
    pub messages: Vec<MessageExport>,
    pub orders: Vec<OrderExport>,
    pub agent_turns: Vec<AgentTurnRecord>,
    pub cases: Vec<CaseRecord>,
    pub moderator_actions: Vec<AuditEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    /// The Telegram user id: pseudonymous, kept so a reviewer can follow a customer.
    pub telegram_id: i64,
    pub name: String,
}

/// The `--only` classes; see `store::export::OnlyKind` for the definitions.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Flags {
    pub escalated: bool,
    pub answered_by_agent: bool,
    pub moderator: bool,
    pub failed: bool,
}

/// How the conversation stands, the first that applies, in this order.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An order involved failed.
    Failed,
    /// A case is still open.
    WithModerator,
    /// Every case is closed (a person finished it).
    ClosedByModerator,
    /// The agent escalated but no case exists (yet).
    Escalated,
    /// Orders exist and all reached `replied` or `confirmed`.
    Completed,
    /// The agent answered and nothing was escalated.
    AnsweredByAgent,
    /// None of the above: still in progress.
    Open,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::WithModerator => "with_moderator",
            Self::ClosedByModerator => "closed_by_moderator",
            Self::Escalated => "escalated",
            Self::Completed => "completed",
            Self::AnsweredByAgent => "answered_by_agent",
            Self::Open => "open",
        }
    }
}

/// A message with what it is linked to: the refs of its orders and, for
/// an agent message, the turn that produced it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageExport {
    #[serde(flatten)]
    pub message: ConversationMessage,
    pub order_refs: Vec<String>,
    pub agent_turn_id: Option<i64>,
}

/// An order in the conversation: the order, its conversation link and its history.
#[derive(Debug, Clone, Serialize)]
pub struct OrderExport {
    #[serde(flatten)]
    pub order: OrderRecord,
    #[serde(flatten)]
    pub link: ConversationOrder,
    pub history: Vec<OrderEvent>,
}
