//! Incoming customer and moderator messages as work items (see the
//! migration `0008_inbox.sql`): stored by the event loop or a history
//! re-read, taken by the contact task, marked handled after.

use sqlx::Row;

use super::{now_ms, Store, StoreError, StoreResult};
use crate::telegram::{ChatId, Message, MessageId};

/// Who a waiting message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxKind {
    /// A private message from a customer.
    Customer,
    /// A message in the moderator chat.
    Moderator,
}

impl InboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxKind::Customer => "customer",
            InboxKind::Moderator => "moderator",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(InboxKind::Customer),
            "moderator" => Some(InboxKind::Moderator),
            _ => None,
        }
    }
}

impl Store {
    /// Stores an incoming message to be handled (or, with `handled`, only
    /// records it as seen: old moderator-chat history on the first read).
    /// False when it was there already.
    pub async fn enqueue_inbound(&self, kind: InboxKind, m: &Message, handled: bool) -> StoreResult<bool> {
        let now = now_ms();
        let res = sqlx::query(
            "INSERT INTO inbox (chat_id, message_id, kind, sender_id, message_json, received_at, handled_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (chat_id, message_id) DO NOTHING",
        )
        .bind(m.chat_id)
        .bind(m.id)
        .bind(kind.as_str())
        .bind(m.sender_id)
        .bind(serde_json::to_string(m).expect("messages serialise"))
        .bind(now)
        .bind(handled.then_some(now))
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Waiting messages in the order they should be handled, by lane: the
    /// moderator chat first; then customers an order waits for (their
    /// account ID finishes a paid order: an order of theirs needs them or
    /// is with a moderator, or their dialogue asked them for an account
    /// ID); then everyone else's questions. Only the highest lane present
    /// is returned, so a batch never holds order-moving work behind
    /// stranger questions; and of the questions lane only one message,
    /// because a question can be an LLM turn of up to a minute: the caller
    /// comes back here (and to its timers) after each one. Within a lane,
    /// senders round-robin (each sender's first waiting message, then each
    /// one's second, …), so one customer writing a hundred messages delays
    /// nobody else in the lane by more than one turn each. A sender's lane
    /// is decided per sender, so their messages stay in order.
    pub async fn waiting_inbound(&self, limit: i64) -> StoreResult<Vec<(InboxKind, Message)>> {
        let rows = sqlx::query(
            "WITH waiting AS (
                 SELECT i.kind, i.message_json, i.received_at, i.message_id,
                        ROW_NUMBER() OVER (PARTITION BY i.chat_id, i.sender_id ORDER BY i.message_id) AS turn,
                        CASE
                            WHEN i.kind = 'moderator' THEN 0
                            WHEN EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = i.sender_id
                                            AND o.state IN ('needs_customer', 'escalated'))
                              OR EXISTS (SELECT 1 FROM conversations c WHERE c.customer_id = i.sender_id
                                            AND c.state = 'awaiting_account') THEN 1
                            ELSE 2
                        END AS lane
                 FROM inbox i WHERE i.handled_at IS NULL)
             SELECT kind, message_json FROM waiting
             WHERE lane = (SELECT MIN(lane) FROM waiting)
             ORDER BY turn, received_at, message_id
             LIMIT (CASE WHEN (SELECT MIN(lane) FROM waiting) = 2 THEN MIN(?1, 1) ELSE ?1 END)",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let kind = InboxKind::parse(r.get("kind"))
                    .ok_or_else(|| StoreError::Corrupt(format!("inbox kind {:?}", r.get::<&str, _>("kind"))))?;
                let m: Message = serde_json::from_str(r.get("message_json"))
                    .map_err(|e| StoreError::Corrupt(format!("inbox message: {e}")))?;
                Ok((kind, m))
            })
            .collect()
    }

    /// Marks a message handled (with the error when handling failed: it is
    /// not retried, so one bad message cannot block the ones behind it).
    pub async fn mark_inbound_handled(&self, chat: ChatId, id: MessageId, error: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE inbox SET handled_at = ?, error = ? WHERE chat_id = ? AND message_id = ?")
            .bind(now_ms())
            .bind(error)
            .bind(chat)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest message of `chat` already seen (in the inbox, or stored
    /// in a conversation before the inbox existed), if any: a re-read
    /// starts after it.
    pub async fn inbox_cursor(&self, chat: ChatId) -> StoreResult<Option<MessageId>> {
        let m: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(m) FROM (
                 SELECT MAX(message_id) AS m FROM inbox WHERE chat_id = ?
                 UNION ALL
                 SELECT MAX(telegram_message_id) FROM conversation_messages
                  WHERE telegram_chat_id = ? AND direction = 'in')",
        )
        .bind(chat)
        .bind(chat)
        .fetch_one(&self.pool)
        .await?;
        Ok(m.map(|v| v as MessageId))
    }

    /// Customers whose chat must not miss a message: a dialogue waits for
    /// them or a moderator has their case.
    pub async fn customers_to_reread(&self) -> StoreResult<Vec<ChatId>> {
        Ok(sqlx::query_scalar("SELECT customer_id FROM conversations WHERE state != 'idle' ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }
}
