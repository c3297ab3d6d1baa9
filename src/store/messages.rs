//! Raw Tribute chat messages: stored before anything else happens.

use sqlx::{Row, Sqlite};

use super::orders::{insert_order, NewOrder};
use super::outbox::{insert_card, CardSubject, Escalation};
use super::{Store, StoreError, StoreResult};
use crate::domain::EscalationReason;
use crate::runtime::clock::now_ms;
use crate::telegram::{ChatId, Message, MessageId};
use crate::tribute::RawNotification;

/// What a message in the Tribute chat turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Order,
    Malformed,
    /// A bot message with inline buttons (e.g. the Send follow-up).
    FollowUp,
    Other,
    Outgoing,
}

impl MessageKind {
    fn as_str(self) -> &'static str {
        match self {
            MessageKind::Order => "order",
            MessageKind::Malformed => "malformed",
            MessageKind::FollowUp => "follow_up",
            MessageKind::Other => "other",
            MessageKind::Outgoing => "outgoing",
        }
    }
}

/// The outcome of recording a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Already stored before: a duplicate delivery, nothing to do.
    Duplicate,
    /// A new order was created with this id.
    NewOrder(i64),
    /// Stored; no order (malformed cards are queued in the same transaction).
    Stored,
}

async fn update_current_state<'c>(db: impl sqlx::Executor<'c, Database = Sqlite>, msg: &Message) -> StoreResult<()> {
    sqlx::query("UPDATE tribute_messages SET buttons_json = ?, text = ? WHERE chat_id = ? AND message_id = ? AND kind NOT IN ('order', 'malformed')")
        .bind(serde_json::to_string(&msg.buttons).expect("buttons serialise"))
        .bind(&msg.text)
        .bind(msg.chat_id)
        .bind(msg.id)
        .execute(db)
        .await?;
    Ok(())
}

impl Store {
    /// Stores a Tribute chat message and, in the same transaction, the
    /// order or the moderator card it leads to. The card (`escalate`) is
    /// about the message itself, its detail the parse error. A message seen
    /// before is a no-op, so replays and history re-reads never create a
    /// second order.
    pub async fn record_tribute_message(
        &self,
        msg: &Message,
        kind: MessageKind,
        parse_error: Option<&str>,
        order: Option<&NewOrder>,
        escalate: Option<EscalationReason>,
    ) -> StoreResult<Recorded> {
        let now = now_ms();
        // Only the message (the common case: a follow-up, our own reply):
        // one statement, its own transaction.
        let alone = order.is_none() && escalate.is_none();
        let mut tx = if alone { None } else { Some(self.pool.begin().await?) };
        let insert = sqlx::query(
            "INSERT INTO tribute_messages
               (chat_id, message_id, sender_id, outgoing, date, text, entities_json, reply_to,
                buttons_json, kind, parse_error, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (chat_id, message_id) DO NOTHING",
        )
        .bind(msg.chat_id)
        .bind(msg.id)
        .bind(msg.sender_id)
        .bind(msg.outgoing)
        .bind(msg.date)
        .bind(&msg.text)
        .bind(serde_json::to_string(&msg.entities).expect("entities serialise"))
        .bind(msg.reply_to)
        .bind(serde_json::to_string(&msg.buttons).expect("buttons serialise"))
        .bind(kind.as_str())
        .bind(parse_error)
        .bind(now);
        let inserted = match tx.as_mut() {
            Some(tx) => insert.execute(&mut **tx).await?,
            None => insert.execute(&self.pool).await?,
        }
        .rows_affected();
        if inserted == 0 {
            // Seen before. Keep an order's text as first received, but let other
            // messages show their current state (e.g. a follow-up whose keyboard
            // the bot removed after our press).
            drop(tx); // nothing was written
            if !matches!(kind, MessageKind::Order | MessageKind::Malformed) {
                update_current_state(&self.pool, msg).await?;
            }
            return Ok(Recorded::Duplicate);
        }
        let Some(mut tx) = tx else { return Ok(Recorded::Stored) };
        let mut result = Recorded::Stored;
        if let Some(order) = order {
            result = Recorded::NewOrder(insert_order(&mut tx, msg, order, now).await?);
        }
        if let Some(reason) = escalate {
            let subject = CardSubject::TributeMessage { chat_id: msg.chat_id, message_id: msg.id };
            let card = Escalation { reason, subject, detail: parse_error.unwrap_or_default().to_owned() };
            insert_card(&mut tx, &card, now).await?;
        }
        tx.commit().await?;
        Ok(result)
    }

    /// Updates a stored message after an edit (e.g. the bot removed its keyboard).
    pub async fn update_tribute_message(&self, msg: &Message) -> StoreResult<()> {
        update_current_state(&self.pool, msg).await
    }

    /// The newest message id stored for a chat (0 when none): history is
    /// re-read from here on start.
    pub async fn last_seen_message(&self, chat: ChatId) -> StoreResult<MessageId> {
        let row = sqlx::query("SELECT COALESCE(MAX(message_id), 0) AS m FROM tribute_messages WHERE chat_id = ?")
            .bind(chat)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>("m") as MessageId)
    }

    /// The bot's follow-up to our reply `reply_to` in `chat`: a message that
    /// answers exactly that reply and carries a button whose text is one of
    /// `texts`. A follow-up without `reply_to` is never taken: it could be
    /// another order's, and pressing its Send would deliver the wrong answer.
    /// The newest such follow-up wins (the bot disables older ones).
    /// Returns (message id, button callback data).
    pub async fn find_follow_up_button(
        &self,
        chat: ChatId,
        reply_to: MessageId,
        texts: &[String],
    ) -> StoreResult<Option<(MessageId, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT message_id, buttons_json FROM tribute_messages
             WHERE chat_id = ? AND reply_to = ? AND outgoing = 0 AND buttons_json != '[]'
             ORDER BY message_id DESC LIMIT 20",
        )
        .bind(chat)
        .bind(reply_to)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let buttons: Vec<Vec<crate::telegram::InlineButton>> =
                serde_json::from_str(row.get::<&str, _>("buttons_json")).unwrap_or_default();
            if let Some(b) = buttons
                .iter()
                .flatten()
                .find(|b| texts.iter().any(|t| b.text.trim().to_lowercase() == t.trim().to_lowercase()))
            {
                return Ok(Some((row.get::<i64, _>("message_id") as MessageId, b.data.clone())));
            }
        }
        Ok(None)
    }

    /// The newest stored message of `chat` dated before `date` (unix
    /// seconds), 0 when there is none: where a history re-read starts so
    /// that it covers the recent window, gaps below the newest message included.
    pub async fn last_message_before(&self, chat: ChatId, date: i64) -> StoreResult<MessageId> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(message_id), 0) AS m FROM tribute_messages WHERE chat_id = ? AND date < ?",
        )
        .bind(chat)
        .bind(date)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<i64, _>("m") as MessageId)
    }

    /// Which of the messages `from..=to` of `chat` are stored already (a
    /// re-read skips them with one query instead of a write each).
    pub async fn stored_message_ids(
        &self,
        chat: ChatId,
        from: MessageId,
        to: MessageId,
    ) -> StoreResult<std::collections::HashSet<MessageId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT message_id FROM tribute_messages WHERE chat_id = ? AND message_id BETWEEN ? AND ?",
        )
        .bind(chat)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(|id| id as MessageId).collect())
    }

    /// The start (unix s) of the last complete re-read of `chat`, if any.
    pub async fn history_read_through(&self, chat: ChatId) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT read_through FROM history_marks WHERE chat_id = ?")
            .bind(chat)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Records that `chat`'s history was read completely by a pass that started at `at` (unix s).
    pub async fn set_history_read_through(&self, chat: ChatId, at: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO history_marks (chat_id, read_through) VALUES (?, ?)
             ON CONFLICT (chat_id) DO UPDATE SET read_through = MAX(read_through, excluded.read_through)",
        )
        .bind(chat)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The raw text of a stored message.
    pub async fn raw_text(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT text FROM tribute_messages WHERE chat_id = ? AND message_id = ?")
            .bind(chat)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("text")))
    }

    /// A stored Tribute message as the parser saw it (text and entities):
    /// a card shows it so it can be replayed through `order parse`.
    pub async fn raw_notification(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<RawNotification>> {
        let row = sqlx::query("SELECT text, entities_json FROM tribute_messages WHERE chat_id = ? AND message_id = ?")
            .bind(chat)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let entities = serde_json::from_str(row.get("entities_json"))
            .map_err(|e| StoreError::Corrupt(format!("Tribute message {chat}/{id}: entities: {e}")))?;
        Ok(Some(RawNotification { text: row.get("text"), entities }))
    }

    /// How many Tribute messages were malformed orders.
    #[cfg(feature = "test-support")]
    pub async fn count_malformed(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tribute_messages WHERE kind = 'malformed'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get("n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderState;
    use crate::store::Transition;

    /// The order that waits for the bot's Send button is due the moment the
    /// follow-up is stored, by the insert itself (migration 0021).
    #[tokio::test]
    async fn a_stored_follow_up_makes_the_order_waiting_for_it_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let id = crate::store::test_orders::record(&store, 1, Some(7), Some("12345")).await;
        let mut order = store.order(id).await.unwrap();
        for (to, reply) in
            [(OrderState::ActivationRequested, None), (OrderState::Activated, None), (OrderState::Replied, Some(2))]
        {
            let mut t = Transition::to(to, "step");
            t.reply_message_id = reply;
            order = store.advance(id, order.state, t).await.unwrap();
        }
        store.wait_until(id, i64::MAX).await.unwrap();
        let follow_up = |reply_to, msg| crate::store::test_orders::bot_message(msg, Some(reply_to), "Send?");
        store.record_tribute_message(&follow_up(99, 3), MessageKind::FollowUp, None, None, None).await.unwrap();
        assert_eq!(store.order(id).await.unwrap().next_attempt_at, Some(i64::MAX), "another reply's follow-up");
        store.record_tribute_message(&follow_up(2, 4), MessageKind::FollowUp, None, None, None).await.unwrap();
        assert_eq!(store.order(id).await.unwrap().next_attempt_at, None);
    }
}
