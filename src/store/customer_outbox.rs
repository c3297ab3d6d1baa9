//! Messages to customers waiting to be delivered (see the migration
//! `0012_customer_outbox.sql`): stored before the first attempt, retried
//! from the store with their own `random_id`, and turned into a
//! conversation message in the same transaction that marks them sent.

use sqlx::Row;

use super::conversations::insert_conversation_message;
use super::{NewConversationMessage, Store, StoreError, StoreResult};
use crate::domain::{Author, Direction};
use crate::runtime::clock::now_ms;
use crate::telegram::{ChatId, MessageId, RandomId};

/// A message for a customer, as the dialogue decided it.
#[derive(Debug, Clone)]
pub struct NewCustomerMessage {
    pub conversation_id: i64,
    pub customer_id: ChatId,
    pub text: String,
    pub author: Author,
    /// The moderator's user id for `Author::Moderator`.
    pub author_id: Option<i64>,
    pub template: Option<String>,
    pub order_ids: Vec<i64>,
}

/// One waiting message.
#[derive(Debug, Clone)]
pub struct PendingCustomerMessage {
    pub id: i64,
    pub message: NewCustomerMessage,
    pub random_id: RandomId,
    /// The UTC day the message is counted in against the daily cap.
    pub cap_day: String,
    pub created_at: i64,
    pub attempts: u32,
    /// The last attempt may have gone through (its answer was lost).
    pub maybe_sent: bool,
}

/// How a waiting message ended without being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// Telegram refused it for good (privacy, blocked, PEER_FLOOD…).
    Refused,
    /// It never went through before its deadline.
    Expired,
    /// It asked for an account that none of its orders waits for any more.
    Obsolete,
}

impl Store {
    /// Whether a message of `template` about `order_id` was written to the
    /// conversation (waiting, sent or given up): a notice is written once.
    pub async fn customer_notice_written(
        &self,
        conversation_id: i64,
        template: &str,
        order_id: i64,
    ) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM customer_outbox WHERE conversation_id = ? AND template = ?
                 AND EXISTS (SELECT 1 FROM json_each(order_ids) WHERE value = ?))",
        )
        .bind(conversation_id)
        .bind(template)
        .bind(order_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Stores a message to be delivered, due now, counted on `cap_day`.
    pub async fn enqueue_customer_message(
        &self,
        m: &NewCustomerMessage,
        cap_day: &str,
    ) -> StoreResult<PendingCustomerMessage> {
        let now = now_ms();
        let random_id = RandomId::fresh();
        let id = sqlx::query(
            "INSERT INTO customer_outbox
               (conversation_id, customer_id, text, author, author_id, template, order_ids, random_id,
                cap_day, created_at, due_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(m.conversation_id)
        .bind(m.customer_id)
        .bind(&m.text)
        .bind(m.author.as_str())
        .bind(m.author_id)
        .bind(&m.template)
        .bind(serde_json::to_string(&m.order_ids).expect("ids serialise"))
        .bind(random_id.0)
        .bind(cap_day)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(PendingCustomerMessage {
            id,
            message: m.clone(),
            random_id,
            cap_day: cap_day.to_owned(),
            created_at: now,
            attempts: 0,
            maybe_sent: false,
        })
    }

    /// Waiting messages due by `now`, oldest first.
    pub async fn due_customer_messages(&self, now: i64, limit: i64) -> StoreResult<Vec<PendingCustomerMessage>> {
        let rows = sqlx::query(
            "SELECT * FROM customer_outbox WHERE status = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pending_from_row).collect()
    }

    /// The message is attempted on a later day: it counts there from now on.
    pub async fn recount_customer_message(&self, id: i64, cap_day: &str) -> StoreResult<()> {
        sqlx::query("UPDATE customer_outbox SET cap_day = ? WHERE id = ?")
            .bind(cap_day)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A failed attempt: try again at `due_at`.
    pub async fn retry_customer_message(&self, id: i64, due_at: i64, error: &str, maybe_sent: bool) -> StoreResult<()> {
        sqlx::query(
            "UPDATE customer_outbox SET attempts = attempts + 1, due_at = ?, last_error = ?,
                 maybe_sent = MAX(maybe_sent, ?)
             WHERE id = ? AND status = 'pending'",
        )
        .bind(due_at)
        .bind(error)
        .bind(maybe_sent)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delivered as Telegram message `telegram_id`: marked sent and stored
    /// in the conversation, together. False when it was no longer pending.
    pub async fn customer_message_sent(
        &self,
        p: &PendingCustomerMessage,
        telegram_id: Option<MessageId>,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE customer_outbox SET status = 'sent', telegram_message_id = ?, done_at = ?,
                 attempts = attempts + 1
             WHERE id = ? AND status = 'pending'",
        )
        .bind(telegram_id)
        .bind(now)
        .bind(p.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if done {
            let m = &p.message;
            let stored = NewConversationMessage {
                conversation_id: m.conversation_id,
                at: now,
                direction: Direction::Out,
                author: m.author,
                author_id: m.author_id,
                text: m.text.clone(),
                template: m.template.clone(),
                telegram: telegram_id.map(|id| (m.customer_id, id)),
                order_ids: m.order_ids.clone(),
            };
            insert_conversation_message(&mut *tx, &stored).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Ends a waiting message undelivered.
    pub async fn customer_message_undelivered(&self, id: i64, how: Undelivered, error: &str) -> StoreResult<()> {
        let status = match how {
            Undelivered::Refused => "refused",
            Undelivered::Expired => "expired",
            Undelivered::Obsolete => "obsolete",
        };
        sqlx::query(
            "UPDATE customer_outbox SET status = ?, last_error = ?, done_at = ?, attempts = attempts + 1
             WHERE id = ? AND status = 'pending'",
        )
        .bind(status)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Messages to this customer still waiting (tests).
    #[cfg(feature = "test-support")]
    pub async fn pending_customer_messages(&self, customer_id: ChatId) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM customer_outbox WHERE customer_id = ? AND status = 'pending'")
            .bind(customer_id)
            .fetch_one(&self.pool)
            .await?)
    }
}

fn pending_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<PendingCustomerMessage> {
    let author: &str = r.get("author");
    let author =
        Author::parse(author).ok_or_else(|| StoreError::Corrupt(format!("customer_outbox author {author:?}")))?;
    let order_ids: Vec<i64> = serde_json::from_str(r.get("order_ids"))
        .map_err(|e| StoreError::Corrupt(format!("customer_outbox order_ids: {e}")))?;
    Ok(PendingCustomerMessage {
        id: r.get("id"),
        message: NewCustomerMessage {
            conversation_id: r.get("conversation_id"),
            customer_id: r.get("customer_id"),
            text: r.get("text"),
            author,
            author_id: r.get("author_id"),
            template: r.get("template"),
            order_ids,
        },
        random_id: RandomId(r.get("random_id")),
        cap_day: r.get("cap_day"),
        created_at: r.get("created_at"),
        attempts: r.get::<i64, _>("attempts") as u32,
        maybe_sent: r.get::<i64, _>("maybe_sent") != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::NewCustomerMessage;
    use crate::domain::{Author, Language};
    use crate::store::Store;

    #[tokio::test]
    async fn a_notice_is_found_by_its_template_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let conv = store.open_conversation(5, "Иван", Language::Ru, 0).await.unwrap();
        assert!(!store.customer_notice_written(conv.id, "already_fulfilled", 12).await.unwrap());
        let m = NewCustomerMessage {
            conversation_id: conv.id,
            customer_id: 5,
            text: "повторная оплата".into(),
            author: Author::Assistant,
            author_id: None,
            template: Some("already_fulfilled".into()),
            order_ids: vec![3, 12],
        };
        store.enqueue_customer_message(&m, "2026-12-07").await.unwrap();
        assert!(store.customer_notice_written(conv.id, "already_fulfilled", 12).await.unwrap());
        assert!(!store.customer_notice_written(conv.id, "already_fulfilled", 1).await.unwrap(), "another order");
        assert!(!store.customer_notice_written(conv.id, "id_rejected_thrice", 12).await.unwrap(), "another notice");
    }
}
