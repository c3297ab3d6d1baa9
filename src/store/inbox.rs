//! Incoming customer and moderator messages as work items (see the
//! migration `0008_inbox.sql`): stored by the event loop or a history
//! re-read, taken by the contact task, marked handled after.

use sqlx::Row;

use super::{CardSubject, Escalation, Store, StoreError, StoreResult};
use crate::domain::EscalationReason;
use crate::runtime::clock::now_ms;
use crate::telegram::{ChatId, Message, MessageId};

/// What became of a message whose handling failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundFailure {
    /// Taken again at `at` (unix ms).
    Retry { attempts: u32, at: i64 },
    /// Given up on: a card opened the moderators' case `case`.
    Quarantined { attempts: u32, case: i64 },
    /// Someone marked it handled meanwhile: nothing to do.
    AlreadyHandled,
}

/// A stored inbox message with its failures.
#[derive(Debug, Clone)]
pub struct InboundRecord {
    pub kind: InboxKind,
    pub message: Message,
    pub attempts: u32,
    pub error: Option<String>,
}

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
    /// is decided per sender, so their messages stay in order. A message
    /// backing off after a failure waits until its time.
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
                 FROM inbox i WHERE i.handled_at IS NULL AND i.not_before <= ?2)
             SELECT kind, message_json FROM waiting
             WHERE lane = (SELECT MIN(lane) FROM waiting)
             ORDER BY turn, received_at, message_id
             LIMIT (CASE WHEN (SELECT MIN(lane) FROM waiting) = 2 THEN MIN(?1, 1) ELSE ?1 END)",
        )
        .bind(limit)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(kind_and_message).collect()
    }

    /// Marks a message handled.
    pub async fn mark_inbound_handled(&self, chat: ChatId, id: MessageId) -> StoreResult<()> {
        sqlx::query("UPDATE inbox SET handled_at = ? WHERE chat_id = ? AND message_id = ?")
            .bind(now_ms())
            .bind(chat)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts a waiting message back until `recheck` from now, unless it was
    /// received more than `grace` ago: how a moderator's reply waits for the
    /// card it answers to be mapped to its case, without a poll and without
    /// counting as a failure. Returns whether it waits.
    pub async fn defer_inbound(
        &self,
        chat: ChatId,
        id: MessageId,
        grace: std::time::Duration,
        recheck: std::time::Duration,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let waits = sqlx::query(
            "UPDATE inbox SET not_before = ?
             WHERE chat_id = ? AND message_id = ? AND handled_at IS NULL AND received_at > ?",
        )
        .bind(now + recheck.as_millis() as i64)
        .bind(chat)
        .bind(id)
        .bind(now - grace.as_millis() as i64)
        .execute(&self.pool)
        .await?;
        Ok(waits.rows_affected() == 1)
    }

    /// Records that handling a message failed (`why`: the error or the
    /// panic). Before `max_attempts` it waits `backoff` and is taken again;
    /// then it is quarantined: marked handled with the reason, and one card
    /// about it opened for the moderators in the same transaction, so the
    /// notice is neither lost nor doubled by a crash.
    pub async fn inbound_failed(
        &self,
        chat: ChatId,
        id: MessageId,
        why: &str,
        max_attempts: u32,
        backoff: impl FnOnce(u32) -> std::time::Duration,
    ) -> StoreResult<InboundFailure> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE inbox SET attempts = attempts + 1, error = ?
             WHERE chat_id = ? AND message_id = ? AND handled_at IS NULL RETURNING attempts",
        )
        .bind(why)
        .bind(chat)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(attempts) = attempts else {
            return Ok(InboundFailure::AlreadyHandled);
        };
        let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
        let outcome = if attempts < max_attempts {
            let at = now.saturating_add(i64::try_from(backoff(attempts).as_millis()).unwrap_or(i64::MAX));
            sqlx::query("UPDATE inbox SET not_before = ? WHERE chat_id = ? AND message_id = ?")
                .bind(at)
                .bind(chat)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            InboundFailure::Retry { attempts, at }
        } else {
            sqlx::query("UPDATE inbox SET handled_at = ?, quarantined_at = ? WHERE chat_id = ? AND message_id = ?")
                .bind(now)
                .bind(now)
                .bind(chat)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let card = Escalation {
                reason: EscalationReason::Unhandled,
                subject: CardSubject::InboxMessage { chat_id: chat, message_id: id },
                detail: why.to_owned(),
            };
            let case = super::outbox::insert_card(&mut tx, &card, now).await?;
            InboundFailure::Quarantined { attempts, case }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// How many messages were set aside after their retries ran out.
    #[cfg(feature = "test-support")]
    pub async fn quarantined_inbound(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE quarantined_at IS NOT NULL")
            .fetch_one(&self.pool)
            .await?)
    }

    /// When the next message backing off is due, if any waits.
    pub async fn next_inbound_due(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MIN(not_before) FROM inbox WHERE handled_at IS NULL")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The stored message and its quarantine reason, for its card.
    pub async fn inbound(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<InboundRecord>> {
        let row =
            sqlx::query("SELECT kind, message_json, attempts, error FROM inbox WHERE chat_id = ? AND message_id = ?")
                .bind(chat)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let (kind, message) = kind_and_message(&r)?;
            Ok(InboundRecord { kind, message, attempts: r.get::<i64, _>("attempts") as u32, error: r.get("error") })
        })
        .transpose()
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

    /// The newest message of `chat` stored before `before_ms` (unix ms):
    /// where a re-read that must not trust later live updates starts.
    pub async fn inbox_cursor_before(&self, chat: ChatId, before_ms: i64) -> StoreResult<Option<MessageId>> {
        let m: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(m) FROM (
                 SELECT MAX(message_id) AS m FROM inbox WHERE chat_id = ?1 AND received_at < ?2
                 UNION ALL
                 SELECT MAX(telegram_message_id) FROM conversation_messages
                  WHERE telegram_chat_id = ?1 AND direction = 'in' AND at < ?2)",
        )
        .bind(chat)
        .bind(before_ms)
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

/// A row's `kind` and `message_json`, read back.
fn kind_and_message(r: &sqlx::sqlite::SqliteRow) -> StoreResult<(InboxKind, Message)> {
    let kind = InboxKind::parse(r.get("kind"))
        .ok_or_else(|| StoreError::Corrupt(format!("inbox kind {:?}", r.get::<&str, _>("kind"))))?;
    let message =
        serde_json::from_str(r.get("message_json")).map_err(|e| StoreError::Corrupt(format!("inbox message: {e}")))?;
    Ok((kind, message))
}
