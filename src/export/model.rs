//! The export schema (version [`SCHEMA_VERSION`]), documented field by field
//! in docs/export.md. Changing a field's meaning or removing one bumps the
//! version; adding one does not.

use serde::Serialize;

/// Bumped when a field is removed or changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// What replaces a customer's display name or username when redacting.
pub const REDACTED_NAME: &str = "[NAME]";

#[derive(Debug, Clone, Serialize)]
pub struct ConversationExport {
    pub schema_version: u32,
    pub id: i64,
    pub customer: Customer,
    pub language: String,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    pub redacted: bool,
    pub flags: Flags,
    pub outcome: Outcome,
    pub messages: Vec<MessageExport>,
    pub orders: Vec<OrderExport>,
    pub agent_turns: Vec<AgentTurnExport>,
    pub cases: Vec<CaseExport>,
    pub moderator_actions: Vec<ModeratorActionExport>,
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

#[derive(Debug, Clone, Serialize)]
pub struct MessageExport {
    pub id: i64,
    pub at: String,
    /// in | out | internal
    pub direction: String,
    /// customer | assistant | agent | moderator
    pub author: String,
    /// The moderator's Telegram id for moderator messages.
    pub author_id: Option<i64>,
    pub text: String,
    pub template: Option<String>,
    pub order_refs: Vec<String>,
    /// For agent messages: the agent turn that produced it.
    pub agent_turn_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderExport {
    pub order_ref: String,
    pub state: String,
    pub product: String,
    pub amount_minor: i64,
    pub currency: String,
    pub customer_name: String,
    pub customer_username: Option<String>,
    pub details: String,
    pub account: Option<String>,
    /// Where the order stands in this conversation (conversation_orders.status).
    pub link_status: String,
    pub link_reason: String,
    pub account_rejections: i64,
    pub escalation_reason: Option<String>,
    pub activation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub history: Vec<OrderEventExport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderEventExport {
    pub at: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentTurnExport {
    pub id: i64,
    pub at: String,
    pub question: String,
    pub answer: Option<String>,
    pub reply: String,
    pub language: String,
    pub confidence: Option<f64>,
    pub sources: serde_json::Value,
    pub reasons: serde_json::Value,
    pub escalated: bool,
    pub mode: String,
    pub latency_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseExport {
    pub id: i64,
    pub short_id: Option<String>,
    pub reason: String,
    pub order_ref: Option<String>,
    pub status: String,
    pub outcome: Option<String>,
    pub pending_account: Option<String>,
    pub opened_at: String,
    pub closed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeratorActionExport {
    pub id: i64,
    pub at: String,
    pub moderator_id: i64,
    pub case_id: Option<i64>,
    pub action: String,
    pub detail: String,
    pub allowed: bool,
}

/// Unix ms → RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}
