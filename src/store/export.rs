//! Read side of the review export: one page of conversations at a time
//! (keyset on `conversations.id`), with everything attached to them fetched
//! in one query per table for the whole page. Memory is bounded by the page
//! size, never by the size of the store.

use sqlx::FromRow;

use super::{Store, StoreResult};

/// Which conversations to export; every field narrows the set and is
/// applied in SQL.
#[derive(Debug, Clone, Default)]
pub struct ExportQuery {
    /// Unix ms: conversations active at or after this instant (`updated_at >= since`).
    pub since_ms: Option<i64>,
    /// Unix ms, exclusive: conversations that began before it (`created_at < until`).
    pub until_ms: Option<i64>,
    pub customer_id: Option<i64>,
    pub order_ref: Option<String>,
    pub only: Option<OnlyKind>,
}

/// `--only`: one class of conversation. The same definitions are computed
/// in Rust for the exported `flags`, so a filter and a flag never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnlyKind {
    /// An agent turn escalated, or a case was opened, or an order is escalated.
    Escalated,
    /// The agent answered at least once and nothing was escalated.
    AnsweredByAgent,
    /// A moderator wrote in it or a case exists.
    Moderator,
    /// An order involved ended `failed`.
    Failed,
}

const ESCALATED_SQL: &str = "(EXISTS (SELECT 1 FROM agent_turns t WHERE t.conversation_id = c.id AND t.escalated = 1) \
     OR EXISTS (SELECT 1 FROM cases k WHERE k.conversation_id = c.id) \
     OR EXISTS (SELECT 1 FROM conversation_orders co JOIN orders o ON o.id = co.order_id \
                WHERE co.conversation_id = c.id AND o.state = 'escalated'))";
const ANSWERED_SQL: &str = "EXISTS (SELECT 1 FROM agent_turns t WHERE t.conversation_id = c.id AND t.escalated = 0)";
const MODERATOR_SQL: &str = "(EXISTS (SELECT 1 FROM cases k WHERE k.conversation_id = c.id) \
     OR EXISTS (SELECT 1 FROM conversation_messages m WHERE m.conversation_id = c.id AND m.author = 'moderator'))";
const FAILED_SQL: &str = "EXISTS (SELECT 1 FROM conversation_orders co JOIN orders o ON o.id = co.order_id \
     WHERE co.conversation_id = c.id AND o.state = 'failed')";

impl OnlyKind {
    fn sql(self) -> String {
        match self {
            Self::Escalated => ESCALATED_SQL.to_owned(),
            Self::AnsweredByAgent => format!("({ANSWERED_SQL} AND NOT {ESCALATED_SQL})"),
            Self::Moderator => MODERATOR_SQL.to_owned(),
            Self::Failed => FAILED_SQL.to_owned(),
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct ConversationRow {
    pub id: i64,
    pub customer_id: i64,
    pub customer_name: String,
    pub language: String,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub conversation_id: i64,
    pub at: i64,
    pub direction: String,
    pub author: String,
    pub author_id: Option<i64>,
    pub text: String,
    pub template: Option<String>,
    pub order_ids: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub conversation_id: i64,
    pub link_status: String,
    pub link_reason: String,
    pub account: Option<String>,
    pub rejections: i64,
    pub id: i64,
    pub order_ref: String,
    pub state: String,
    pub product: String,
    pub amount_minor: i64,
    pub currency: String,
    pub customer_name: String,
    pub customer_username: Option<String>,
    pub details: String,
    pub escalation_reason: Option<String>,
    pub activation_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct OrderEventRow {
    pub conversation_id: i64,
    pub order_id: i64,
    pub at: i64,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct AgentTurnRow {
    pub id: i64,
    pub conversation_id: i64,
    pub question: String,
    pub answer: Option<String>,
    pub reply: String,
    pub language: String,
    pub confidence: Option<f64>,
    pub sources_json: String,
    pub reasons_json: String,
    pub escalated: bool,
    pub mode: String,
    pub latency_ms: i64,
    pub at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct CaseRow {
    pub id: i64,
    pub conversation_id: i64,
    pub short_id: Option<String>,
    pub reason: String,
    pub order_ref: Option<String>,
    pub status: String,
    pub outcome: Option<String>,
    pub pending_account: Option<String>,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub conversation_id: i64,
    pub at: i64,
    pub moderator_id: i64,
    pub case_id: Option<i64>,
    pub action: String,
    pub detail: String,
    pub allowed: bool,
}

/// One page: the conversations and all their rows, each list ordered by
/// conversation id and then by time of insertion.
#[derive(Debug, Default)]
pub struct ExportPage {
    pub conversations: Vec<ConversationRow>,
    pub messages: Vec<MessageRow>,
    pub orders: Vec<OrderRow>,
    pub order_events: Vec<OrderEventRow>,
    pub agent_turns: Vec<AgentTurnRow>,
    pub cases: Vec<CaseRow>,
    pub audit: Vec<AuditRow>,
}

impl Store {
    /// The next `limit` conversations with id > `after_id` that match `q`,
    /// with their messages, orders (+ events), agent turns, cases and
    /// moderator actions. An empty page means the end.
    pub async fn export_page(&self, q: &ExportQuery, after_id: i64, limit: i64) -> StoreResult<ExportPage> {
        let only = q.only.map(|o| format!(" AND {}", o.sql())).unwrap_or_default();
        let sql = format!(
            "SELECT c.id, c.customer_id, c.customer_name, c.language, c.state, c.created_at, c.updated_at \
             FROM conversations c \
             WHERE c.id > ?1 AND (?2 IS NULL OR c.updated_at >= ?2) AND (?3 IS NULL OR c.created_at < ?3) \
               AND (?4 IS NULL OR c.customer_id = ?4) \
               AND (?5 IS NULL OR EXISTS (SELECT 1 FROM conversation_orders co JOIN orders o ON o.id = co.order_id \
                                          WHERE co.conversation_id = c.id AND o.order_ref = ?5)){only} \
             ORDER BY c.id LIMIT ?6"
        );
        let conversations: Vec<ConversationRow> = sqlx::query_as(&sql)
            .bind(after_id)
            .bind(q.since_ms)
            .bind(q.until_ms)
            .bind(q.customer_id)
            .bind(q.order_ref.as_deref())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        if conversations.is_empty() {
            return Ok(ExportPage::default());
        }
        let ids = serde_json::to_string(&conversations.iter().map(|c| c.id).collect::<Vec<_>>())
            .expect("a list of integers serialises");
        const IN_PAGE: &str = "IN (SELECT value FROM json_each(?1))";
        let messages = sqlx::query_as(&format!(
            "SELECT id, conversation_id, at, direction, author, author_id, text, template, order_ids \
             FROM conversation_messages WHERE conversation_id {IN_PAGE} ORDER BY conversation_id, at, id"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let orders = sqlx::query_as(&format!(
            "SELECT co.conversation_id, co.status AS link_status, co.reason AS link_reason, co.account, co.rejections, \
                    o.id, o.order_ref, o.state, o.product, o.amount_minor, o.currency, o.customer_name, \
                    o.customer_username, o.details, o.escalation_reason, o.activation_id, o.created_at, o.updated_at \
             FROM conversation_orders co JOIN orders o ON o.id = co.order_id \
             WHERE co.conversation_id {IN_PAGE} ORDER BY co.conversation_id, o.id"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let order_events = sqlx::query_as(&format!(
            "SELECT co.conversation_id, e.order_id, e.at, e.from_state, e.to_state, e.note \
             FROM order_events e JOIN conversation_orders co ON co.order_id = e.order_id \
             WHERE co.conversation_id {IN_PAGE} ORDER BY co.conversation_id, e.order_id, e.id"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let agent_turns = sqlx::query_as(&format!(
            "SELECT id, conversation_id, question, answer, reply, language, confidence, sources_json, reasons_json, \
                    escalated, mode, latency_ms, at \
             FROM agent_turns WHERE conversation_id {IN_PAGE} ORDER BY conversation_id, id"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let cases = sqlx::query_as(&format!(
            "SELECT k.id, k.conversation_id, k.short_id, k.reason, o.order_ref, k.status, k.outcome, \
                    k.pending_account, k.opened_at, k.closed_at \
             FROM cases k LEFT JOIN orders o ON o.id = k.order_id \
             WHERE k.conversation_id {IN_PAGE} ORDER BY k.conversation_id, k.id"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let audit = sqlx::query_as(&format!(
            "SELECT a.id, k.conversation_id, a.at, a.moderator_id, a.case_id, a.action, a.detail, a.allowed \
             FROM moderator_audit a JOIN cases k ON k.id = a.case_id \
             WHERE k.conversation_id {IN_PAGE} ORDER BY k.conversation_id, a.id"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(ExportPage { conversations, messages, orders, order_events, agent_turns, cases, audit })
    }
}
