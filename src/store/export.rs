//! Read side of the review export: one page of conversations at a time
//! (keyset on `conversations.id`), with everything attached to them fetched
//! in one query per table for the whole page. Memory is bounded by the page
//! size, never by the size of the store.

use sqlx::sqlite::SqliteRow;
use sqlx::SqlitePool;

use super::agent_turns::turn_from_row;
use super::audit::audit_from_row;
use super::cases::{case_from_row, SELECT_CASE};
use super::conversations::{conversation_from_row, link_from_row, message_from_row};
use super::orders::{event_from_row, order_from_row};
use super::{
    AgentTurnRecord, AuditEntry, CaseRecord, ConversationMessage, ConversationOrder, ConversationRecord, OrderEvent,
    OrderRecord, Store, StoreResult,
};

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

/// One page: the conversations and all their rows, each list ordered by
/// conversation id and then by time of insertion. The rows are the store's
/// own row types, which serialise as the export's records.
#[derive(Debug, Default)]
pub struct ExportPage {
    pub conversations: Vec<ConversationRecord>,
    pub messages: Vec<ConversationMessage>,
    /// The page's orders; each has its link (one per order) in `links`.
    pub orders: Vec<OrderRecord>,
    pub links: Vec<ConversationOrder>,
    /// The history of the page's orders, in order per order.
    pub order_events: Vec<OrderEvent>,
    pub agent_turns: Vec<AgentTurnRecord>,
    pub cases: Vec<CaseRecord>,
    /// The moderator audit of the page's cases.
    pub audit: Vec<AuditEntry>,
}

impl Store {
    /// The next `limit` conversations with id > `after_id` that match `q`,
    /// with their messages, orders (+ events), agent turns, cases and
    /// moderator actions. An empty page means the end.
    pub async fn export_page(&self, q: &ExportQuery, after_id: i64, limit: i64) -> StoreResult<ExportPage> {
        let only = q.only.map(|o| format!(" AND {}", o.sql())).unwrap_or_default();
        let sql = format!(
            "SELECT c.* FROM conversations c \
             WHERE c.id > ?1 AND (?2 IS NULL OR c.updated_at >= ?2) AND (?3 IS NULL OR c.created_at < ?3) \
               AND (?4 IS NULL OR c.customer_id = ?4) \
               AND (?5 IS NULL OR EXISTS (SELECT 1 FROM conversation_orders co JOIN orders o ON o.id = co.order_id \
                                          WHERE co.conversation_id = c.id AND o.order_ref = ?5)){only} \
             ORDER BY c.id LIMIT ?6"
        );
        let conversations = sqlx::query(&sql)
            .bind(after_id)
            .bind(q.since_ms)
            .bind(q.until_ms)
            .bind(q.customer_id)
            .bind(q.order_ref.as_deref())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(conversation_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if conversations.is_empty() {
            return Ok(ExportPage::default());
        }
        let ids = serde_json::to_string(&conversations.iter().map(|c| c.id).collect::<Vec<_>>())
            .expect("a list of integers serialises");
        const IN_PAGE: &str = "IN (SELECT value FROM json_each(?1))";
        let pool = &self.pool;
        let messages = page_rows(
            pool,
            &format!(
                "SELECT * FROM conversation_messages WHERE conversation_id {IN_PAGE} ORDER BY conversation_id, at, id"
            ),
            &ids,
            message_from_row,
        )
        .await?;
        let orders = page_rows(
            pool,
            &format!(
                "SELECT o.* FROM conversation_orders co JOIN orders o ON o.id = co.order_id \
                 WHERE co.conversation_id {IN_PAGE} ORDER BY co.conversation_id, o.id"
            ),
            &ids,
            order_from_row,
        )
        .await?;
        let links = page_rows(
            pool,
            &format!(
                "SELECT * FROM conversation_orders WHERE conversation_id {IN_PAGE} ORDER BY conversation_id, order_id"
            ),
            &ids,
            link_from_row,
        )
        .await?;
        let order_events = page_rows(
            pool,
            &format!(
                "SELECT e.* FROM order_events e JOIN conversation_orders co ON co.order_id = e.order_id \
                 WHERE co.conversation_id {IN_PAGE} ORDER BY co.conversation_id, e.order_id, e.id"
            ),
            &ids,
            |r| Ok(event_from_row(r)),
        )
        .await?;
        let agent_turns = page_rows(
            pool,
            &format!("SELECT * FROM agent_turns WHERE conversation_id {IN_PAGE} ORDER BY conversation_id, id"),
            &ids,
            turn_from_row,
        )
        .await?;
        let cases = page_rows(
            pool,
            &format!("{SELECT_CASE} WHERE c.conversation_id {IN_PAGE} ORDER BY c.conversation_id, c.id"),
            &ids,
            case_from_row,
        )
        .await?;
        let audit = page_rows(
            pool,
            &format!(
                "SELECT a.* FROM moderator_audit a JOIN cases k ON k.id = a.case_id \
                 WHERE k.conversation_id {IN_PAGE} ORDER BY k.conversation_id, a.id"
            ),
            &ids,
            |r| Ok(audit_from_row(r)),
        )
        .await?;
        Ok(ExportPage { conversations, messages, orders, links, order_events, agent_turns, cases, audit })
    }
}

/// One table's rows for a page (`sql` binds the page's ids, a JSON array, as `?1`).
async fn page_rows<T>(
    pool: &SqlitePool,
    sql: &str,
    ids: &str,
    from_row: impl Fn(&SqliteRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    sqlx::query(sql).bind(ids).fetch_all(pool).await?.iter().map(from_row).collect()
}
