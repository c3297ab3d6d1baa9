//! Customer conversations: one per customer, its messages in and out, the
//! orders it is about, and the per-customer daily message counter.
//!
//! What the agent and the moderator desk read: [`Store::conversation`],
//! [`Store::conversation_messages`], [`Store::conversation_orders`].

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::required_reason;
use super::{Store, StoreError, StoreResult};
use crate::domain::{Author, DialogueState, Direction, EscalationReason, Language, LinkStatus};
use crate::telegram::{ChatId, MessageId};

/// A conversation as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConversationRecord {
    pub id: i64,
    pub customer_id: i64,
    pub customer_name: String,
    pub language: Language,
    pub state: DialogueState,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A message to be stored in a conversation.
#[derive(Debug, Clone)]
pub struct NewConversationMessage {
    pub conversation_id: i64,
    pub at: i64,
    pub direction: Direction,
    pub author: Author,
    /// The moderator's user id for `Author::Moderator`.
    pub author_id: Option<i64>,
    pub text: String,
    /// The template's name for our own messages.
    pub template: Option<String>,
    pub telegram: Option<(ChatId, MessageId)>,
    pub order_ids: Vec<i64>,
}

/// One stored conversation message. Serialises as the review export's
/// `messages[]` entry (docs/export.md), less the `order_refs` and
/// `agent_turn_id` the export works out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConversationMessage {
    pub id: i64,
    #[serde(skip)]
    pub conversation_id: i64,
    #[serde(serialize_with = "super::serde_time::ms")]
    pub at: i64,
    pub direction: Direction,
    pub author: Author,
    pub author_id: Option<i64>,
    pub text: String,
    pub template: Option<String>,
    #[serde(skip)]
    pub telegram_chat_id: Option<i64>,
    #[serde(skip)]
    pub telegram_message_id: Option<i64>,
    #[serde(skip)]
    pub order_ids: Vec<i64>,
}

/// One order inside a conversation (a row of `conversation_orders`).
/// Serialises as the link's fields of the review export's `orders[]` entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConversationOrder {
    #[serde(skip)]
    pub conversation_id: i64,
    #[serde(skip)]
    pub order_id: i64,
    /// The account ID the customer gave last.
    pub account: Option<String>,
    #[serde(rename = "link_status")]
    pub status: LinkStatus,
    /// Why the customer was asked.
    #[serde(rename = "link_reason")]
    pub reason: EscalationReason,
    /// Account IDs from the customer the backend refused for this order.
    #[serde(rename = "account_rejections")]
    pub rejections: i64,
    #[serde(skip)]
    pub linked_at: i64,
    #[serde(skip)]
    pub updated_at: i64,
}

pub(super) fn conversation_from_row(r: &SqliteRow) -> StoreResult<ConversationRecord> {
    let id: i64 = r.get("id");
    let corrupt = |what: &str| StoreError::Corrupt(format!("conversation {id}: {what}"));
    Ok(ConversationRecord {
        id,
        customer_id: r.get("customer_id"),
        customer_name: r.get("customer_name"),
        language: Language::parse(r.get("language")).ok_or_else(|| corrupt("language"))?,
        state: serde_json::from_str(r.get("state_json")).map_err(|_| corrupt("state"))?,
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    })
}

pub(super) fn message_from_row(r: &SqliteRow) -> StoreResult<ConversationMessage> {
    let id: i64 = r.get("id");
    let corrupt = |what: &str| StoreError::Corrupt(format!("conversation message {id}: {what}"));
    Ok(ConversationMessage {
        id,
        conversation_id: r.get("conversation_id"),
        at: r.get("at"),
        direction: Direction::parse(r.get("direction")).ok_or_else(|| corrupt("direction"))?,
        author: Author::parse(r.get("author")).ok_or_else(|| corrupt("author"))?,
        author_id: r.get("author_id"),
        text: r.get("text"),
        template: r.get("template"),
        telegram_chat_id: r.get("telegram_chat_id"),
        telegram_message_id: r.get("telegram_message_id"),
        order_ids: serde_json::from_str(r.get("order_ids")).map_err(|_| corrupt("order ids"))?,
    })
}

pub(super) fn link_from_row(r: &SqliteRow) -> StoreResult<ConversationOrder> {
    let order_id: i64 = r.get("order_id");
    Ok(ConversationOrder {
        conversation_id: r.get("conversation_id"),
        order_id,
        status: LinkStatus::parse(r.get("status"))
            .ok_or_else(|| StoreError::Corrupt(format!("order {order_id}: conversation link status")))?,
        reason: required_reason(r, "reason")
            .map_err(|what| StoreError::Corrupt(format!("order {order_id}: conversation link {what}")))?,
        account: r.get("account"),
        rejections: r.get("rejections"),
        linked_at: r.get("linked_at"),
        updated_at: r.get("updated_at"),
    })
}

impl Store {
    /// The customer's conversation, creating it (idle, in `language`) if needed.
    pub async fn open_conversation(
        &self,
        customer_id: i64,
        customer_name: &str,
        language: Language,
        now: i64,
    ) -> StoreResult<ConversationRecord> {
        sqlx::query(
            "INSERT INTO conversations (customer_id, customer_name, language, state, state_json, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id) DO NOTHING",
        )
        .bind(customer_id)
        .bind(customer_name)
        .bind(language.as_str())
        .bind(DialogueState::Idle.name())
        .bind(serde_json::to_string(&DialogueState::Idle).expect("state serialises"))
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.conversation_for_customer(customer_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("conversation of {customer_id} vanished")))
    }

    pub async fn conversation_for_customer(&self, customer_id: i64) -> StoreResult<Option<ConversationRecord>> {
        let row = sqlx::query("SELECT * FROM conversations WHERE customer_id = ?")
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    pub async fn conversation(&self, id: i64) -> StoreResult<ConversationRecord> {
        let row = sqlx::query("SELECT * FROM conversations WHERE id = ?").bind(id).fetch_one(&self.pool).await?;
        conversation_from_row(&row)
    }

    /// Dialogues the contact task must look at: their timer is due, or one
    /// of their orders, links or cases changed since the task last looked
    /// (the triggers of `0012_customer_outbox.sql`), with the change
    /// counter seen now, to hand back to [`Store::looked_at`].
    pub async fn conversations_to_look_at(&self, now: i64) -> StoreResult<Vec<(ConversationRecord, i64)>> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE due_at <= ?
             UNION
             SELECT * FROM conversations WHERE version > looked_version
             ORDER BY id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((conversation_from_row(r)?, r.get("version")))).collect()
    }

    /// The tick has looked at a dialogue as of change `version`; its next
    /// timer is `due_at` (None: none runs, only a change brings it back).
    pub async fn looked_at(&self, id: i64, version: i64, due_at: Option<i64>) -> StoreResult<()> {
        sqlx::query("UPDATE conversations SET looked_version = ?, due_at = ? WHERE id = ?")
            .bind(version)
            .bind(due_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest Telegram message id stored for a conversation in the
    /// customer's chat (0 if none): where a look for a message we may have
    /// sent starts.
    pub async fn last_conversation_message_id(&self, conversation_id: i64, chat: ChatId) -> StoreResult<MessageId> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(telegram_message_id) FROM conversation_messages WHERE conversation_id = ? AND telegram_chat_id = ?",
        )
        .bind(conversation_id)
        .bind(chat)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.unwrap_or(0) as MessageId)
    }

    /// The customer's name from their newest order, if any.
    pub async fn customer_name(&self, customer_id: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT customer_name FROM orders WHERE customer_id = ? ORDER BY id DESC LIMIT 1")
            .bind(customer_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Completed orders by how they were finished: (after the customer gave
    /// the account in the chat, with no case; by a moderator's account ID or /retry).
    #[cfg(feature = "test-support")]
    pub async fn completion_counts(&self) -> StoreResult<(i64, i64)> {
        let after_contact: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM orders o JOIN conversation_orders l ON l.order_id = o.id
             WHERE o.state = 'confirmed' AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.order_id = o.id)",
        )
        .fetch_one(&self.pool)
        .await?;
        let by_moderator: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT o.id) FROM orders o
               JOIN cases c ON c.order_id = o.id
               JOIN moderator_audit a ON a.case_id = c.id AND a.allowed = 1 AND a.action IN ('account', 'retry')
             WHERE o.state = 'confirmed'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((after_contact, by_moderator))
    }

    /// Sets the dialogue state. Not a compare-and-set: only the contact
    /// task writes dialogue states, one step at a time (`contact`).
    pub async fn set_dialogue_state(&self, id: i64, state: &DialogueState, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE conversations SET state = ?, state_json = ?, updated_at = ?, version = version + 1 WHERE id = ?",
        )
        .bind(state.name())
        .bind(serde_json::to_string(state).expect("state serialises"))
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_conversation_language(&self, id: i64, language: Language) -> StoreResult<()> {
        sqlx::query("UPDATE conversations SET language = ? WHERE id = ?")
            .bind(language.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a message; `None` when this incoming Telegram message was already stored.
    pub async fn record_conversation_message(&self, m: &NewConversationMessage) -> StoreResult<Option<i64>> {
        insert_conversation_message(&self.pool, m).await
    }

    /// A conversation's messages, oldest first.
    pub async fn conversation_messages(&self, conversation_id: i64) -> StoreResult<Vec<ConversationMessage>> {
        let rows = sqlx::query("SELECT * FROM conversation_messages WHERE conversation_id = ? ORDER BY id")
            .bind(conversation_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(message_from_row).collect()
    }

    /// Links an order to a conversation (or re-opens its link) as `awaiting`.
    pub async fn link_order(
        &self,
        conversation_id: i64,
        order_id: i64,
        reason: EscalationReason,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO conversation_orders (conversation_id, order_id, status, reason, linked_at, updated_at)
             VALUES (?, ?, 'awaiting', ?, ?, ?)
             ON CONFLICT (order_id) DO UPDATE SET status = 'awaiting', reason = excluded.reason,
                 updated_at = excluded.updated_at",
        )
        .bind(conversation_id)
        .bind(order_id)
        .bind(reason.as_str())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The orders of a conversation, oldest link first.
    pub async fn conversation_orders(&self, conversation_id: i64) -> StoreResult<Vec<ConversationOrder>> {
        let rows =
            sqlx::query("SELECT * FROM conversation_orders WHERE conversation_id = ? ORDER BY linked_at, order_id")
                .bind(conversation_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(link_from_row).collect()
    }

    pub async fn order_link(&self, order_id: i64) -> StoreResult<Option<ConversationOrder>> {
        let row = sqlx::query("SELECT * FROM conversation_orders WHERE order_id = ?")
            .bind(order_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(link_from_row).transpose()
    }

    /// Sets an order's link status (and counts a refused ID when `rejected`).
    pub async fn set_link_status(
        &self,
        order_id: i64,
        status: LinkStatus,
        rejected: bool,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE conversation_orders SET status = ?, rejections = rejections + ?, updated_at = ? WHERE order_id = ?",
        )
        .bind(status.as_str())
        .bind(i64::from(rejected))
        .bind(now)
        .bind(order_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts one more message to `customer_id` on `day` (`YYYY-MM-DD`)
    /// if fewer than `max` were sent; false when the cap is reached.
    pub async fn take_daily_message(&self, customer_id: i64, day: &str, max: u32) -> StoreResult<bool> {
        let res = sqlx::query(
            "INSERT INTO customer_daily_messages (customer_id, day, count) VALUES (?, ?, 1)
             ON CONFLICT (customer_id, day) DO UPDATE SET count = count + 1 WHERE count < ?",
        )
        .bind(customer_id)
        .bind(day)
        .bind(i64::from(max))
        .execute(&self.pool)
        .await?;
        Ok(max > 0 && res.rows_affected() > 0)
    }

    /// Messages sent to `customer_id` on `day`.
    #[cfg(feature = "test-support")]
    pub async fn daily_messages(&self, customer_id: i64, day: &str) -> StoreResult<i64> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT count FROM customer_daily_messages WHERE customer_id = ? AND day = ?")
                .bind(customer_id)
                .bind(day)
                .fetch_optional(&self.pool)
                .await?;
        Ok(n.unwrap_or(0))
    }
}

impl Store {
    /// Messages exchanged with customers, for `/metrics`: (in, out),
    /// counting those the pruner deleted since.
    pub async fn customer_message_counts(&self) -> StoreResult<(i64, i64)> {
        let (incoming, outgoing): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT SUM(n * (direction = 'in')), SUM(n * (direction = 'out')) FROM (
               SELECT direction, COUNT(*) AS n FROM conversation_messages GROUP BY direction
               UNION ALL SELECT label, n FROM retention_counts WHERE kind = 'pruned' AND what = 'conversation_messages')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((incoming.unwrap_or(0), outgoing.unwrap_or(0)))
    }
}

/// Stores a conversation message through `db` (the pool, or a transaction
/// that commits it with something else); `None` when this incoming
/// Telegram message was already stored.
pub(super) async fn insert_conversation_message<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    m: &NewConversationMessage,
) -> StoreResult<Option<i64>> {
    let res = sqlx::query(
        "INSERT INTO conversation_messages
           (conversation_id, at, direction, author, author_id, text, template, telegram_chat_id,
            telegram_message_id, order_ids)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING",
    )
    .bind(m.conversation_id)
    .bind(m.at)
    .bind(m.direction.as_str())
    .bind(m.author.as_str())
    .bind(m.author_id)
    .bind(&m.text)
    .bind(&m.template)
    .bind(m.telegram.map(|(c, _)| c))
    .bind(m.telegram.map(|(_, id)| id))
    .bind(serde_json::to_string(&m.order_ids).expect("ids serialise"))
    .execute(db)
    .await?;
    Ok((res.rows_affected() > 0).then(|| res.last_insert_rowid()))
}
