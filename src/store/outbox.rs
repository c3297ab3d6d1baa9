//! Moderator cards waiting to be posted (a transactional outbox).

use sqlx::{Row, Sqlite, Transaction};

use super::{now_ms, Store, StoreResult};
use crate::telegram::{ChatId, MessageId};

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
}

pub(super) async fn insert_card(
    tx: &mut Transaction<'_, Sqlite>,
    order_id: Option<i64>,
    card: &NewCard,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO moderator_outbox (order_id, source_chat_id, source_message_id, reason, text, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(order_id)
    .bind(card.source_chat_id)
    .bind(card.source_message_id)
    .bind(&card.reason)
    .bind(&card.text)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Cards not yet posted, oldest first.
    pub async fn pending_cards(&self) -> StoreResult<Vec<OutboxCard>> {
        self.cards("WHERE posted_at IS NULL").await
    }

    /// Every card, oldest first.
    pub async fn all_cards(&self) -> StoreResult<Vec<OutboxCard>> {
        self.cards("").await
    }

    async fn cards(&self, filter: &str) -> StoreResult<Vec<OutboxCard>> {
        let rows = sqlx::query(&format!(
            "SELECT id, order_id, reason, text, posted_message_id FROM moderator_outbox {filter} ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| OutboxCard {
                id: r.get("id"),
                order_id: r.get("order_id"),
                reason: r.get("reason"),
                text: r.get("text"),
                posted_message_id: r.get::<Option<i64>, _>("posted_message_id").map(|v| v as MessageId),
            })
            .collect())
    }

    pub async fn mark_card_posted(&self, id: i64, chat: ChatId, message: MessageId) -> StoreResult<()> {
        sqlx::query(
            "UPDATE moderator_outbox SET posted_chat_id = ?, posted_message_id = ?, posted_at = ? WHERE id = ?",
        )
        .bind(chat)
        .bind(message)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
