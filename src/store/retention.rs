//! The pruner's queries (migration 0017; the windows and the loop are
//! `retention`'s). Each takes the cutoff (unix ms: older than this is past
//! its window) and a batch size, touches at most that many rows in one
//! IMMEDIATE transaction, and returns how many it touched: a pass that hit
//! the batch size has more to do.
//!
//! Never touched: anything pending. Unhandled inbox rows, undelivered
//! outbox rows, open cases and their cards, conversations with a dialogue
//! or a case in progress, customers with pending work (see
//! [`super::erasure`]). Kept for good: orders with their history, cases,
//! Tribute purchases and webhook event rows (without their bodies): the
//! money facts, pseudonymised once the customer is erased.

use sqlx::{Row, Sqlite, Transaction};

use super::erasure::{
    delete_message_ids, delete_turns, erase_customer_tx, has_pending_work, is_pending, json_ids, pseudonym,
    pseudonymise_orders, scrub_case_texts, Why, AUDIT_FREE_TEXT, ORDER_OPEN,
};
use super::outbox::{insert_card, CardSubject, Escalation};
use super::{Store, StoreResult};
use crate::domain::EscalationReason;

/// Adds `n` to a retention counter (see `retention_counts` in the migration).
pub(super) async fn bump(
    tx: &mut Transaction<'_, Sqlite>,
    kind: &str,
    what: &str,
    label: &str,
    n: u64,
) -> StoreResult<()> {
    if n > 0 {
        sqlx::query(
            "INSERT INTO retention_counts (kind, what, label, n) VALUES (?, ?, ?, ?)
             ON CONFLICT (kind, what, label) DO UPDATE SET n = n + excluded.n",
        )
        .bind(kind)
        .bind(what)
        .bind(label)
        .bind(n as i64)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The row ids `select` chooses (it binds ?1 = cutoff, ?2 = batch), as a
/// JSON array for `IN (SELECT value FROM json_each(?))`.
async fn chosen(tx: &mut Transaction<'_, Sqlite>, select: &str, cutoff: i64, batch: i64) -> StoreResult<String> {
    let ids: Vec<i64> = sqlx::query_scalar(select).bind(cutoff).bind(batch).fetch_all(&mut **tx).await?;
    Ok(json_ids(&ids))
}

const IDS: &str = "SELECT value FROM json_each(?)";

/// A conversation (alias `v`) with nothing in progress: the dialogue is
/// idle, no order link or case is open, nothing waits to be sent or handled.
const CONVERSATION_CLOSED: &str = "v.state = 'idle'
    AND NOT EXISTS (SELECT 1 FROM conversation_orders l WHERE l.conversation_id = v.id
                      AND l.status IN ('awaiting', 'validating', 'moderator'))
    AND NOT EXISTS (SELECT 1 FROM cases k WHERE k.conversation_id = v.id AND k.status = 'open')
    AND NOT EXISTS (SELECT 1 FROM customer_outbox x WHERE x.conversation_id = v.id AND x.status = 'pending')
    AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.chat_id = v.customer_id AND i.handled_at IS NULL)";

impl Store {
    /// Deletes handled inbox rows handled before `cutoff`, except each
    /// chat's newest row (the history re-read's cursor: without it the
    /// chat would be read from the start and old messages handled again),
    /// whose content is blanked instead. Unhandled rows are never touched.
    pub async fn prune_handled_inbox(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids = chosen(
            &mut tx,
            "SELECT rowid FROM inbox i WHERE i.handled_at < ?1
               AND i.message_id < (SELECT MAX(message_id) FROM inbox j WHERE j.chat_id = i.chat_id)
             ORDER BY i.handled_at LIMIT ?2",
            cutoff,
            batch,
        )
        .await?;
        let deleted = sqlx::query(&format!("DELETE FROM inbox WHERE rowid IN ({IDS})"))
            .bind(&ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let cursors = sqlx::query(
            "UPDATE inbox SET message_json = '{}' WHERE rowid IN (
               SELECT rowid FROM inbox i WHERE i.handled_at < ?1 AND i.message_json <> '{}'
                 AND i.message_id = (SELECT MAX(message_id) FROM inbox j WHERE j.chat_id = i.chat_id)
               LIMIT ?2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        bump(&mut tx, "pruned", "inbox", "", deleted).await?;
        bump(&mut tx, "scrubbed", "inbox_cursors", "", cursors).await?;
        tx.commit().await?;
        Ok(deleted + cursors)
    }

    /// Blanks the raw bodies of webhook events received before `cutoff`
    /// (the event rows stay: they make Tribute's retries no-ops and count
    /// the events). The body of an unreadable webhook stays while its case
    /// is open: its card shows it.
    pub async fn scrub_webhook_bodies(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        self.batch_statement(
            "scrubbed",
            "webhook_bodies",
            "UPDATE tribute_webhook_events SET raw_body = '' WHERE id IN (
               SELECT e.id FROM tribute_webhook_events e WHERE e.received_at < ?1 AND e.raw_body <> ''
                 AND NOT (e.name = 'invalid' AND EXISTS (
                   SELECT 1 FROM moderator_outbox o JOIN cases k ON k.id = o.case_id
                   WHERE o.subject = 'webhook_body' AND o.subject_key = e.purchase_key AND k.status = 'open'))
               ORDER BY e.id LIMIT ?2)",
            cutoff,
            batch,
        )
        .await
    }

    /// Deletes agent turns from before `cutoff` (with the report's listing
    /// of them as content gaps and the `/learn G<n>` previews of them).
    pub async fn prune_agent_turns(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids =
            chosen(&mut tx, "SELECT id FROM agent_turns WHERE at < ?1 ORDER BY at LIMIT ?2", cutoff, batch).await?;
        let n = delete_turns(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Deletes queued questions released before `cutoff` (the question
    /// itself is in its conversation; the row only said when it was let
    /// through). Waiting ones are never touched.
    pub async fn prune_released_questions(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        self.prune_oldest("queued_questions", "released_at < ?1", "id", cutoff, batch).await
    }

    /// Deletes `/learn` previews made before `cutoff` (a preview is a
    /// question to a moderator; what was approved is in `approved_pairs`).
    pub async fn prune_learn_previews(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        self.prune_oldest("learn_previews", "created_at < ?1", "id", cutoff, batch).await
    }

    /// Deletes messages to customers that went out, or never will, before
    /// `cutoff` (a delivered one is in the conversation). Pending ones are
    /// never touched.
    pub async fn prune_customer_outbox(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        self.prune_oldest("customer_outbox", "status <> 'pending' AND done_at < ?1", "done_at", cutoff, batch).await
    }

    /// Deletes our replies in the Tribute chat and the bot's follow-ups to
    /// them, received before `cutoff`, once their order is settled
    /// (confirmed, refunded or failed) or when they belong to no order: the
    /// order keeps what they carried (reply and button message ids, the
    /// payment number, its history). The order notifications themselves
    /// stay (a card replays them), and so does the newest message of each
    /// chat (re-reads start from the stored messages).
    pub async fn prune_tribute_copies(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        self.batch_statement(
            "pruned",
            "tribute_messages",
            "DELETE FROM tribute_messages WHERE rowid IN (
               SELECT t.rowid FROM tribute_messages t
               WHERE t.kind IN ('outgoing', 'follow_up') AND t.received_at < ?1
                 AND t.message_id < (SELECT MAX(n.message_id) FROM tribute_messages n WHERE n.chat_id = t.chat_id)
                 AND NOT EXISTS (SELECT 1 FROM orders o
                   WHERE o.chat_id = t.chat_id AND o.state NOT IN ('confirmed', 'refunded', 'failed')
                     AND (o.message_id = t.reply_to OR o.reply_message_id IN (t.message_id, t.reply_to)
                          OR o.button_message_id = t.message_id))
               ORDER BY t.received_at LIMIT ?2)",
            cutoff,
            batch,
        )
        .await
    }

    /// Runs one retention statement over at most `batch` rows (`?1` =
    /// `cutoff`, `?2` = `batch`) in a short write transaction, and counts
    /// what it changed under (`kind`, `what`) for `/metrics`.
    async fn batch_statement(
        &self,
        kind: &'static str,
        what: &'static str,
        sql: &str,
        cutoff: i64,
        batch: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query(sql).bind(cutoff).bind(batch).execute(&mut *tx).await?.rows_affected();
        bump(&mut tx, kind, what, "", n).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Deletes at most `batch` rows of `table` matching `older` (a condition
    /// on `?1` = `cutoff`), `order` first, and counts them as pruned.
    async fn prune_oldest(
        &self,
        table: &'static str,
        older: &'static str,
        order: &'static str,
        cutoff: i64,
        batch: i64,
    ) -> StoreResult<u64> {
        self.batch_statement(
            "pruned",
            table,
            &format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {older} ORDER BY {order} LIMIT ?2)"
            ),
            cutoff,
            batch,
        )
        .await
    }

    /// Deletes the follow-ups of closed cases and the desk's answers posted
    /// (or refused for good) before `cutoff`. A case's card stays as long
    /// as the case: it is what `/case` shows and what replies to it are
    /// mapped by (a posted answer's mapping stays in `case_messages`).
    pub async fn prune_case_follow_ups(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids = chosen(
            &mut tx,
            "SELECT o.id FROM moderator_outbox o WHERE COALESCE(o.posted_at, o.parked_at) < ?1
               AND (o.kind = 'answer' OR (o.kind = 'update'
                    AND NOT EXISTS (SELECT 1 FROM cases k WHERE k.id = o.case_id AND k.status = 'open')))
             ORDER BY o.id LIMIT ?2",
            cutoff,
            batch,
        )
        .await?;
        let by_reason =
            sqlx::query(&format!("SELECT reason, COUNT(*) FROM moderator_outbox WHERE id IN ({IDS}) GROUP BY 1"))
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
        for r in &by_reason {
            bump(&mut tx, "pruned", "moderator_outbox", r.get::<&str, _>(0), r.get::<i64, _>(1) as u64).await?;
        }
        let n = sqlx::query(&format!("DELETE FROM moderator_outbox WHERE id IN ({IDS})"))
            .bind(&ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Deletes conversation messages from before `cutoff` in conversations
    /// with nothing in progress (each chat's position stays in the inbox,
    /// see `erasure::delete_message_ids`).
    pub async fn prune_closed_conversation_messages(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids = chosen(
            &mut tx,
            &format!(
                "SELECT m.id FROM conversation_messages m JOIN conversations v ON v.id = m.conversation_id
                 WHERE m.at < ?1 AND {CONVERSATION_CLOSED} ORDER BY m.id LIMIT ?2"
            ),
            cutoff,
            batch,
        )
        .await?;
        let n = delete_message_ids(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Erases up to `batch` customers whose last activity (a message,
    /// order, case, payment, dialogue change) was before `cutoff`, who have
    /// no pending work and whose messages are already pruned: their
    /// personal data goes, their orders' money facts stay under a
    /// pseudonym (see [`super::erasure`]). Returns how many were erased.
    pub async fn scrub_inactive_customers(&self, cutoff: i64, batch: i64, now: i64) -> StoreResult<u64> {
        let candidates: Vec<i64> = sqlx::query_scalar(&format!(
            "WITH c(id) AS (
               SELECT customer_id FROM conversations WHERE erased_at IS NULL AND customer_id > 0 AND updated_at < ?1
               UNION SELECT customer_id FROM orders WHERE customer_id IS NOT NULL AND updated_at < ?1)
             SELECT c.id FROM c WHERE
                   NOT EXISTS (SELECT 1 FROM conversations v WHERE v.customer_id = c.id AND (v.updated_at >= ?1
                     OR EXISTS (SELECT 1 FROM conversation_messages m WHERE m.conversation_id = v.id)))
               AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.updated_at >= ?1)
               AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.chat_id = c.id AND i.received_at >= ?1)
               AND NOT EXISTS (SELECT 1 FROM tribute_purchases p WHERE p.telegram_user_id = c.id AND p.updated_at >= ?1)
               AND NOT EXISTS (SELECT 1 FROM cases k
                     WHERE (k.conversation_id IN (SELECT id FROM conversations WHERE customer_id = c.id)
                            OR k.order_id IN (SELECT id FROM orders WHERE customer_id = c.id))
                       AND COALESCE(k.closed_at, k.opened_at) >= ?1)
               AND NOT {}
             ORDER BY c.id LIMIT ?2",
            has_pending_work("c.id")
        ))
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        let mut erased = 0;
        for customer in candidates {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            // Checked again inside the transaction: something may have arrived since.
            if is_pending(&mut tx, customer).await? {
                continue;
            }
            erase_customer_tx(&mut tx, customer, now, &pseudonym(), Why::Retention).await?;
            tx.commit().await?;
            erased += 1;
        }
        Ok(erased)
    }

    /// Pseudonymises settled orders whose customer is not known by id (the
    /// notification did not link them), last changed before `cutoff`.
    pub async fn scrub_anonymous_orders(&self, cutoff: i64, batch: i64, now: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids = chosen(
            &mut tx,
            &format!(
                "SELECT o.id FROM orders o WHERE o.customer_id IS NULL AND o.erased_at IS NULL AND o.updated_at < ?1
                   AND NOT {ORDER_OPEN} ORDER BY o.id LIMIT ?2"
            ),
            cutoff,
            batch,
        )
        .await?;
        scrub_case_texts(&mut tx, None, &ids).await?;
        let (_, orders) = pseudonymise_orders(&mut tx, &ids, None, now).await?;
        bump(&mut tx, "scrubbed", "anonymous_orders", "", orders).await?;
        tx.commit().await?;
        Ok(orders)
    }

    /// Blanks the texts of Tribute chat messages that are not orders
    /// (donations, unrecognised or malformed messages: they carry names),
    /// received before `cutoff` and with no open case about them.
    pub async fn scrub_tribute_messages(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        self.batch_statement(
            "scrubbed",
            "tribute_messages",
            "UPDATE tribute_messages SET text = '', entities_json = '[]' WHERE rowid IN (
               SELECT t.rowid FROM tribute_messages t
               WHERE t.kind IN ('malformed', 'other') AND t.received_at < ?1 AND t.text <> ''
                 AND NOT EXISTS (SELECT 1 FROM moderator_outbox o JOIN cases k ON k.id = o.case_id
                   WHERE o.subject = 'tribute_message' AND o.source_chat_id = t.chat_id
                     AND o.source_message_id = t.message_id AND k.status = 'open')
               LIMIT ?2)",
            cutoff,
            batch,
        )
        .await
    }

    /// Blanks the free texts of audit lines (relayed answers, notes,
    /// reasons, refused messages) written before `cutoff`; who did what
    /// when stays.
    pub async fn scrub_audit_texts(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        self.batch_statement(
            "scrubbed",
            "audit_texts",
            &format!(
                "UPDATE moderator_audit SET detail = '' WHERE id IN (
               SELECT id FROM moderator_audit WHERE at < ?1 AND action IN ({AUDIT_FREE_TEXT}) AND detail <> ''
               ORDER BY id LIMIT ?2)"
            ),
            cutoff,
            batch,
        )
        .await
    }

    /// Deletes the per-customer daily message counters of days before
    /// `cutoff_day` (`YYYY-MM-DD`): only today's cap is ever read.
    pub async fn prune_daily_counters(&self, cutoff_day: &str, batch: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query(
            "DELETE FROM customer_daily_messages WHERE rowid IN (
               SELECT rowid FROM customer_daily_messages WHERE day < ?1 LIMIT ?2)",
        )
        .bind(cutoff_day)
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        bump(&mut tx, "pruned", "customer_daily_messages", "", n).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Paid purchases no Telegram order matched, paid before `cutoff`:
    /// each stops being matched automatically and goes to a moderator as
    /// one card (`detail` says how long we looked), in one transaction.
    pub async fn stop_matching_purchases(&self, cutoff: i64, batch: i64, detail: &str, now: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT purchase_id FROM tribute_purchases
             WHERE order_id IS NULL AND paid_at < ?1 AND matching_stopped_at IS NULL ORDER BY paid_at LIMIT ?2",
        )
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        for purchase_id in &ids {
            sqlx::query("UPDATE tribute_purchases SET matching_stopped_at = ?, updated_at = ? WHERE purchase_id = ?")
                .bind(now)
                .bind(now)
                .bind(purchase_id)
                .execute(&mut *tx)
                .await?;
            let card = Escalation {
                reason: EscalationReason::WebhookMatchingStopped,
                subject: CardSubject::Purchase { purchase_id: purchase_id.clone(), order_id: None },
                detail: detail.to_owned(),
            };
            insert_card(&mut tx, &card, now).await?;
        }
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    /// Notes that a pass finished at `at` (`more`: some table had more than one batch due).
    pub async fn record_retention_pass(&self, at: i64, more: bool) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO retention_passes (id, at, more) VALUES (1, ?, ?)
             ON CONFLICT (id) DO UPDATE SET at = excluded.at, more = excluded.more",
        )
        .bind(at)
        .bind(more)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
