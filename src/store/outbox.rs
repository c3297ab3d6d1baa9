//! Moderator cards waiting to be posted (a transactional outbox).
//!
//! Every card opens a case (see `cases.rs`) in the same transaction; a
//! case's follow-ups (`kind = 'update'`) go through the same outbox and are
//! posted as replies to the case's card.

use sqlx::{Row, Sqlite, Transaction};

use super::{now_ms, Store, StoreResult};
use crate::telegram::{ChatId, MessageId};

/// Replaced by the case's short id (e.g. `C12`) when the card is stored.
pub const CASE_PLACEHOLDER: &str = "{case}";

/// A card to post to the moderator chat.
#[derive(Debug, Clone)]
pub struct NewCard {
    pub source_chat_id: ChatId,
    pub source_message_id: MessageId,
    pub reason: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct OutboxCard {
    pub id: i64,
    pub order_id: Option<i64>,
    pub reason: String,
    pub text: String,
    pub posted_message_id: Option<MessageId>,
    /// The case this message belongs to.
    pub case_id: Option<i64>,
    /// For a follow-up: the case's card in `reply_chat`, so it is posted as a reply.
    pub reply_to: Option<(ChatId, MessageId)>,
}

/// Stores a card and opens its case; returns the case id.
pub(super) async fn insert_card(
    tx: &mut Transaction<'_, Sqlite>,
    order_id: Option<i64>,
    card: &NewCard,
    now: i64,
) -> StoreResult<i64> {
    let conversation_id: Option<i64> = match order_id {
        Some(o) => {
            sqlx::query_scalar("SELECT conversation_id FROM conversation_orders WHERE order_id = ?")
                .bind(o)
                .fetch_optional(&mut **tx)
                .await?
        }
        None => None,
    };
    let case_id = super::cases::open_case_tx(tx, &card.reason, order_id, conversation_id, now).await?;
    let text = card.text.replacen(CASE_PLACEHOLDER, &super::cases::short_id(case_id), 1);
    sqlx::query(
        "INSERT INTO moderator_outbox
           (order_id, source_chat_id, source_message_id, reason, text, created_at, case_id, kind)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'card')",
    )
    .bind(order_id)
    .bind(card.source_chat_id)
    .bind(card.source_message_id)
    .bind(&card.reason)
    .bind(&text)
    .bind(now)
    .bind(case_id)
    .execute(&mut **tx)
    .await?;
    Ok(case_id)
}

/// Queues a follow-up message for a case (posted as a reply to its card).
pub(super) async fn insert_update(
    tx: &mut Transaction<'_, Sqlite>,
    case_id: i64,
    text: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO moderator_outbox
           (order_id, source_chat_id, source_message_id, reason, text, created_at, case_id, kind)
         SELECT order_id, 0, 0, reason, ?, ?, id, 'update' FROM cases WHERE id = ?",
    )
    .bind(text)
    .bind(now)
    .bind(case_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Cards not yet posted, oldest first.
    pub async fn pending_cards(&self) -> StoreResult<Vec<OutboxCard>> {
        self.cards("WHERE o.posted_at IS NULL").await
    }

    /// Every card (the first message of each case, not its follow-ups), oldest first.
    pub async fn all_cards(&self) -> StoreResult<Vec<OutboxCard>> {
        self.cards("WHERE o.kind = 'card'").await
    }

    async fn cards(&self, filter: &str) -> StoreResult<Vec<OutboxCard>> {
        let rows = sqlx::query(&format!(
            "SELECT o.id, o.order_id, o.reason, o.text, o.posted_message_id, o.case_id, o.kind,
                    (SELECT c.posted_chat_id FROM moderator_outbox c
                      WHERE c.case_id = o.case_id AND c.kind = 'card' AND c.posted_at IS NOT NULL) AS card_chat,
                    (SELECT c.posted_message_id FROM moderator_outbox c
                      WHERE c.case_id = o.case_id AND c.kind = 'card' AND c.posted_at IS NOT NULL) AS card_msg
             FROM moderator_outbox o {filter} ORDER BY o.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let kind: String = r.get("kind");
                let reply_to =
                    match (kind.as_str(), r.get::<Option<i64>, _>("card_chat"), r.get::<Option<i64>, _>("card_msg")) {
                        ("update", Some(chat), Some(msg)) => Some((chat, msg as MessageId)),
                        _ => None,
                    };
                OutboxCard {
                    id: r.get("id"),
                    order_id: r.get("order_id"),
                    reason: r.get("reason"),
                    text: r.get("text"),
                    posted_message_id: r.get::<Option<i64>, _>("posted_message_id").map(|v| v as MessageId),
                    case_id: r.get("case_id"),
                    reply_to,
                }
            })
            .collect())
    }

    /// Marks a card posted and maps its message to its case, so a
    /// moderator's reply to it finds the case.
    pub async fn mark_card_posted(&self, id: i64, chat: ChatId, message: MessageId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE moderator_outbox SET posted_chat_id = ?, posted_message_id = ?, posted_at = ? WHERE id = ?",
        )
        .bind(chat)
        .bind(message)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT OR IGNORE INTO case_messages (chat_id, message_id, case_id)
             SELECT ?, ?, case_id FROM moderator_outbox WHERE id = ? AND case_id IS NOT NULL",
        )
        .bind(chat)
        .bind(message)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
