//! Erasing one customer's personal data (migration 0017): what `forget`
//! does at once and the pruner does after the customer's last activity.
//!
//! One transaction per customer, begun IMMEDIATE so nothing can become
//! pending between the check and the erasure. A customer with pending
//! work (an order in flight, an open case, a message not yet delivered or
//! handled, a purchase being matched or refunded) is never touched: the
//! work would lose what it needs.
//!
//! What goes: the conversation's messages, agent turns, `/learn` previews,
//! the customer outbox, the inbox copies (the newest row of the chat is
//! kept without its content: it is the re-read's cursor, and without it
//! the customer's old messages would be read and answered again), the
//! daily message counters, the free texts of their cases (card details,
//! follow-ups, the audit's relayed texts and notes), the raw webhook bodies
//! and the Tribute notification texts of their orders; with `forget` also
//! the `/learn`ed pairs of their conversation (and, through
//! `kb_removals`, the index's copy). What stays: each order's money facts
//! (state history, amount, product, payment number, activation id, the
//! account it was activated for, the purchase) with a pseudonym instead of
//! the customer's name, username and Telegram id.

use std::collections::BTreeMap;
use std::fmt;

use sqlx::{Row, Sqlite, Transaction};

use super::retention::bump;
use super::{Store, StoreResult};

/// An order with work left, over alias `o` (see the module comment).
pub(super) const ORDER_OPEN: &str = "(o.state IN ('received', 'activation_requested', 'activated', 'replied')
    OR (o.state = 'needs_customer' AND NOT EXISTS (SELECT 1 FROM conversation_orders l
          WHERE l.order_id = o.id AND l.status IN ('done', 'closed')))
    OR EXISTS (SELECT 1 FROM cases k WHERE k.order_id = o.id AND k.status = 'open')
    OR EXISTS (SELECT 1 FROM tribute_purchases p WHERE p.order_id = o.id
          AND p.refunded_at IS NOT NULL AND p.refund_handled_at IS NULL))";

/// True when customer `c` (an SQL expression: a parameter or a column) has
/// pending work: the one gate of `forget` and of the pruner.
pub(super) fn has_pending_work(c: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = {c} AND {ORDER_OPEN})
       OR EXISTS (SELECT 1 FROM conversations v WHERE v.customer_id = {c} AND (v.state <> 'idle'
            OR EXISTS (SELECT 1 FROM conversation_orders l WHERE l.conversation_id = v.id
                 AND l.status IN ('awaiting', 'validating', 'moderator'))
            OR EXISTS (SELECT 1 FROM cases k WHERE k.conversation_id = v.id AND k.status = 'open')))
       OR EXISTS (SELECT 1 FROM customer_outbox x WHERE x.customer_id = {c} AND x.status = 'pending')
       OR EXISTS (SELECT 1 FROM inbox i WHERE i.chat_id = {c} AND i.handled_at IS NULL)
       OR EXISTS (SELECT 1 FROM tribute_purchases p WHERE p.telegram_user_id = {c}
            AND ((p.order_id IS NULL AND p.paid_at IS NOT NULL AND p.matching_stopped_at IS NULL)
                 OR (p.refunded_at IS NOT NULL AND p.refund_handled_at IS NULL)))
       OR EXISTS (SELECT 1 FROM moderator_outbox m JOIN cases k ON k.id = m.case_id
            WHERE m.posted_at IS NULL AND m.parked_at IS NULL
              AND (k.conversation_id IN (SELECT id FROM conversations WHERE customer_id = {c})
                   OR k.order_id IN (SELECT id FROM orders WHERE customer_id = {c}))))"
    )
}

/// What is still pending for a customer, in words a moderator can act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingWork {
    /// Orders in progress: (payment number, state).
    pub orders: Vec<(String, String)>,
    /// Open cases about the customer (short ids).
    pub cases: Vec<String>,
    /// Anything else: messages to send or to handle, purchases being matched or refunded.
    pub other: Vec<String>,
}

impl fmt::Display for PendingWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.orders.iter().map(|(r, s)| format!("order {r} ({s})")).collect();
        parts.extend(self.cases.iter().map(|c| format!("open case {c}")));
        parts.extend(self.other.iter().cloned());
        if parts.is_empty() {
            parts.push("work in progress".to_owned());
        }
        f.write_str(&parts.join(", "))
    }
}

/// How many rows of each kind an erasure removed or scrubbed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct ErasureCounts(BTreeMap<&'static str, u64>);

impl ErasureCounts {
    fn add(&mut self, kind: &'static str, n: u64) {
        if n > 0 {
            *self.0.entry(kind).or_default() += n;
        }
    }

    pub fn get(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ErasureCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing stored");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{n} {}", k.replace('_', " "))).collect();
        f.write_str(&parts.join(", "))
    }
}

/// What a `forget` did, or why it did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forgotten {
    /// Erased (possibly nothing: a second `forget` of the same customer).
    Erased { counts: ErasureCounts, pseudonym: String },
    /// The customer has pending work; nothing was touched.
    Pending(PendingWork),
}

/// Why the erasure runs: `forget` also removes the `/learn`ed pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    Forget,
    Retention,
}

/// A pseudonym for an erased customer: random, so nothing leads back to
/// them; their orders share it, so accounting can still group them.
pub(super) fn pseudonym() -> String {
    format!("customer-{:08x}", fastrand::u32(..))
}

impl Store {
    /// Erases customer `customer_id` (a Telegram user id) now, unless they
    /// have pending work, and records the erasure (what kinds, how many
    /// rows, `requested_by`; never whose). Idempotent.
    pub async fn forget_customer(&self, customer_id: i64, requested_by: &str, now: i64) -> StoreResult<Forgotten> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if is_pending(&mut tx, customer_id).await? {
            let work = pending_work(&mut tx, customer_id).await?;
            return Ok(Forgotten::Pending(work));
        }
        let pseudonym = pseudonym();
        let counts = erase_customer_tx(&mut tx, customer_id, now, &pseudonym, Why::Forget).await?;
        sqlx::query("INSERT INTO erasures (at, requested_by, counts_json) VALUES (?, ?, ?)")
            .bind(now)
            .bind(requested_by)
            .bind(serde_json::to_string(&counts).expect("counts serialise"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // The write-ahead log still holds the pages as they were before
        // (with the erased texts) until they are checkpointed over: copy them
        // back and empty the log now, so the erased data leaves the disk.
        let (busy, _, _): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&self.pool).await?;
        if busy != 0 {
            tracing::warn!("a reader kept the write-ahead log from being emptied; the erased texts leave it at the next checkpoint");
        }
        Ok(Forgotten::Erased { counts, pseudonym })
    }

    /// The erasure log, oldest first: (at, requested_by, counts as JSON).
    pub async fn erasures(&self) -> StoreResult<Vec<(i64, String, String)>> {
        let rows =
            sqlx::query("SELECT at, requested_by, counts_json FROM erasures ORDER BY id").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    /// Conversations whose `/learn`ed pairs the index may still hold, due
    /// at `now`, with the attempts so far.
    pub async fn kb_removals_due(&self, now: i64, limit: i64) -> StoreResult<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT conversation_id, attempts FROM kb_removals WHERE next_attempt_at <= ?
             ORDER BY next_attempt_at, conversation_id LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The index no longer holds conversation `conversation_id`'s pairs.
    pub async fn kb_removal_done(&self, conversation_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM kb_removals WHERE conversation_id = ?")
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removing conversation `conversation_id`'s pairs from the index failed; try again at `at`.
    pub async fn retry_kb_removal_later(&self, conversation_id: i64, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE kb_removals SET attempts = attempts + 1, next_attempt_at = ? WHERE conversation_id = ?")
            .bind(at)
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Whether `customer` has pending work ([`has_pending_work`]), read in the
/// caller's (IMMEDIATE) transaction, so it still holds when it erases.
pub(super) async fn is_pending(tx: &mut Transaction<'_, Sqlite>, customer: i64) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(&format!("SELECT {}", has_pending_work("?1"))).bind(customer).fetch_one(&mut **tx).await?)
}

/// The pending work of a customer, listed (see [`has_pending_work`], the gate).
async fn pending_work(tx: &mut Transaction<'_, Sqlite>, customer: i64) -> StoreResult<PendingWork> {
    let orders = sqlx::query(&format!(
        "SELECT o.order_ref, o.state FROM orders o WHERE o.customer_id = ? AND {ORDER_OPEN} ORDER BY o.id"
    ))
    .bind(customer)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let cases = sqlx::query_scalar(
        "SELECT k.short_id FROM cases k WHERE k.status = 'open'
           AND (k.conversation_id IN (SELECT id FROM conversations WHERE customer_id = ?1)
                OR k.order_id IN (SELECT id FROM orders WHERE customer_id = ?1))
         ORDER BY k.id",
    )
    .bind(customer)
    .fetch_all(&mut **tx)
    .await?;
    let row = sqlx::query(
        "SELECT
           (SELECT COUNT(*) FROM conversations v WHERE v.customer_id = ?1 AND (v.state <> 'idle'
              OR EXISTS (SELECT 1 FROM conversation_orders l WHERE l.conversation_id = v.id
                           AND l.status IN ('awaiting', 'validating', 'moderator')))),
           (SELECT COUNT(*) FROM customer_outbox WHERE customer_id = ?1 AND status = 'pending'),
           (SELECT COUNT(*) FROM inbox WHERE chat_id = ?1 AND handled_at IS NULL),
           (SELECT COUNT(*) FROM tribute_purchases p WHERE p.telegram_user_id = ?1
              AND ((p.order_id IS NULL AND p.paid_at IS NOT NULL AND p.matching_stopped_at IS NULL)
                   OR (p.refunded_at IS NOT NULL AND p.refund_handled_at IS NULL))),
           (SELECT COUNT(*) FROM moderator_outbox m JOIN cases k ON k.id = m.case_id
              WHERE m.posted_at IS NULL AND m.parked_at IS NULL
                AND (k.conversation_id IN (SELECT id FROM conversations WHERE customer_id = ?1)
                     OR k.order_id IN (SELECT id FROM orders WHERE customer_id = ?1)))",
    )
    .bind(customer)
    .fetch_one(&mut **tx)
    .await?;
    let mut other = Vec::new();
    let n = |i: usize| row.get::<i64, _>(i);
    if n(0) > 0 {
        other.push("a dialogue with them in progress".to_owned());
    }
    if n(1) > 0 {
        other.push(format!("{} message(s) to them not delivered yet", n(1)));
    }
    if n(2) > 0 {
        other.push(format!("{} message(s) from them not handled yet", n(2)));
    }
    if n(3) > 0 {
        other.push(format!("{} Tribute purchase(s) being matched or refunded", n(3)));
    }
    if n(4) > 0 {
        other.push(format!("{} message(s) about their cases not posted to the moderator chat yet", n(4)));
    }
    Ok(PendingWork { orders, cases, other })
}

/// Ids as a JSON array, for `IN (SELECT value FROM json_each(?))`.
pub(super) fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("a list of integers serialises")
}

/// Erases customer `customer` in the caller's transaction (which has
/// checked they have no pending work); see the module comment.
pub(super) async fn erase_customer_tx(
    tx: &mut Transaction<'_, Sqlite>,
    customer: i64,
    now: i64,
    pseudonym: &str,
    why: Why,
) -> StoreResult<ErasureCounts> {
    let mut counts = ErasureCounts::default();
    let conversation: Option<i64> = sqlx::query_scalar("SELECT id FROM conversations WHERE customer_id = ?")
        .bind(customer)
        .fetch_optional(&mut **tx)
        .await?;
    let orders: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM orders WHERE customer_id = ?").bind(customer).fetch_all(&mut **tx).await?;
    let orders = json_ids(&orders);

    if let Some(conversation) = conversation {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM conversation_messages WHERE conversation_id = ?")
            .bind(conversation)
            .fetch_all(&mut **tx)
            .await?;
        counts.add("conversation_messages", delete_message_ids(tx, &json_ids(&ids)).await?);
    }

    // The inbox: the chat's newest row stays as the re-read's cursor, without its content.
    let inbox = sqlx::query(
        "DELETE FROM inbox WHERE chat_id = ?1 AND kind = 'customer'
           AND message_id < (SELECT MAX(message_id) FROM inbox WHERE chat_id = ?1)",
    )
    .bind(customer)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE inbox SET message_json = '{}', error = NULL WHERE chat_id = ? AND kind = 'customer'")
        .bind(customer)
        .execute(&mut **tx)
        .await?;
    counts.add("inbox_messages", inbox);
    bump(tx, "pruned", "inbox", "", inbox).await?;

    // Agent turns, and what points at them.
    let turns: Vec<i64> = sqlx::query_scalar("SELECT id FROM agent_turns WHERE customer_id = ? OR conversation_id = ?")
        .bind(customer)
        .bind(conversation)
        .fetch_all(&mut **tx)
        .await?;
    counts.add("agent_turns", delete_turns(tx, &json_ids(&turns)).await?);

    let previews = sqlx::query("DELETE FROM learn_previews WHERE conversation_id = ?")
        .bind(conversation)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    counts.add("learn_previews", previews);
    bump(tx, "pruned", "learn_previews", "", previews).await?;
    if why == Why::Forget {
        let pairs = sqlx::query("DELETE FROM approved_pairs WHERE conversation_id = ?")
            .bind(conversation)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        counts.add("approved_answers", pairs);
        if let (Some(conversation), true) = (conversation, pairs > 0) {
            sqlx::query("INSERT OR IGNORE INTO kb_removals (conversation_id, requested_at) VALUES (?, ?)")
                .bind(conversation)
                .bind(now)
                .execute(&mut **tx)
                .await?;
        }
    }

    let outbox = sqlx::query("DELETE FROM customer_outbox WHERE customer_id = ? OR conversation_id = ?")
        .bind(customer)
        .bind(conversation)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    counts.add("messages_to_customer", outbox);
    bump(tx, "pruned", "customer_outbox", "", outbox).await?;
    let daily = sqlx::query("DELETE FROM customer_daily_messages WHERE customer_id = ?")
        .bind(customer)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    counts.add("daily_counters", daily);

    counts.add("case_texts", scrub_case_texts(tx, conversation, &orders).await?);
    let (notifications, pseudonymised) = pseudonymise_orders(tx, &orders, Some(pseudonym), now).await?;
    counts.add("order_notifications", notifications);
    counts.add("orders_pseudonymised", pseudonymised);

    let bodies = sqlx::query(
        "UPDATE tribute_webhook_events SET raw_body = ''
         WHERE purchase_id IN (SELECT purchase_id FROM tribute_purchases WHERE telegram_user_id = ?)
           AND raw_body <> ''",
    )
    .bind(customer)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    counts.add("webhook_bodies", bodies);
    let purchases = sqlx::query("UPDATE tribute_purchases SET telegram_user_id = 0 WHERE telegram_user_id = ?")
        .bind(customer)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    counts.add("purchases_pseudonymised", purchases);

    if let Some(conversation) = conversation {
        sqlx::query(
            "UPDATE conversations SET customer_id = -id, customer_name = ?, erased_at = ?, due_at = NULL WHERE id = ?",
        )
        .bind(pseudonym)
        .bind(now)
        .bind(conversation)
        .execute(&mut **tx)
        .await?;
        counts.add("conversations", 1);
    }
    if !counts.is_empty() {
        let what = match why {
            Why::Forget => "customers_forgotten",
            Why::Retention => "customers",
        };
        bump(tx, "scrubbed", what, "", 1).await?;
    }
    Ok(counts)
}

/// Blanks the free texts of the cases about `conversation` or the orders
/// in `orders` (a JSON array): card details, follow-ups, and the audit's
/// free texts. The cases themselves (reason, times, outcome) are what a
/// person did and stay.
pub(super) async fn scrub_case_texts(
    tx: &mut Transaction<'_, Sqlite>,
    conversation: Option<i64>,
    orders: &str,
) -> StoreResult<u64> {
    let cases = "SELECT id FROM cases WHERE conversation_id = ?1 OR order_id IN (SELECT value FROM json_each(?2))";
    let cards = sqlx::query(&format!(
        "UPDATE moderator_outbox SET text = CASE WHEN text IS NULL THEN NULL ELSE '' END, detail = '', rendered = NULL
         WHERE case_id IN ({cases}) AND (text <> '' OR detail <> '' OR rendered IS NOT NULL)"
    ))
    .bind(conversation)
    .bind(orders)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let audit = sqlx::query(&format!(
        "UPDATE moderator_audit SET detail = ''
         WHERE case_id IN ({cases}) AND action IN ({AUDIT_FREE_TEXT}) AND detail <> ''"
    ))
    .bind(conversation)
    .bind(orders)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(cards + audit)
}

/// Replaces the customer on the orders in `orders` (a JSON array) by
/// `pseudonym` (a random one per order when `None`: their customer is not
/// known), and blanks their details and Tribute notification texts; the
/// money facts stay. Returns (notifications scrubbed, orders pseudonymised).
pub(super) async fn pseudonymise_orders(
    tx: &mut Transaction<'_, Sqlite>,
    orders: &str,
    pseudonym: Option<&str>,
    now: i64,
) -> StoreResult<(u64, u64)> {
    let notifications = sqlx::query(
        "UPDATE tribute_messages SET text = '', entities_json = '[]'
         WHERE (chat_id, message_id) IN (SELECT chat_id, message_id FROM orders
                                         WHERE id IN (SELECT value FROM json_each(?)))
           AND text <> ''",
    )
    .bind(orders)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let pseudonymised = sqlx::query(
        "UPDATE orders SET customer_name = COALESCE(?1, 'customer-' || lower(hex(randomblob(4)))),
            customer_username = NULL, customer_id = NULL, details = '', erased_at = ?2
         WHERE id IN (SELECT value FROM json_each(?3))",
    )
    .bind(pseudonym)
    .bind(now)
    .bind(orders)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok((notifications, pseudonymised))
}

/// Audit actions whose detail is free text about the customer (a relayed
/// answer, a note, a reason, a refused message); the others (an account ID
/// given, a command) are the record of what was done.
pub(super) const AUDIT_FREE_TEXT: &str = "'relay', 'note', 'reject', 'refused', 'unknown'";

/// Deletes the conversation messages in `ids` (a JSON array). The newest
/// incoming one of each chat stays known to the inbox (a row without
/// content): it is where the chat's history re-read starts, and without it
/// the customer's old messages would be read and answered again.
pub(super) async fn delete_message_ids(tx: &mut Transaction<'_, Sqlite>, ids: &str) -> StoreResult<u64> {
    const IDS: &str = "SELECT value FROM json_each(?)";
    sqlx::query(&format!(
        "INSERT OR IGNORE INTO inbox (chat_id, message_id, kind, message_json, received_at, handled_at)
         SELECT telegram_chat_id, MAX(telegram_message_id), 'customer', '{{}}', MAX(at), MAX(at)
         FROM conversation_messages
         WHERE id IN ({IDS}) AND direction = 'in' AND telegram_chat_id IS NOT NULL
         GROUP BY telegram_chat_id"
    ))
    .bind(ids)
    .execute(&mut **tx)
    .await?;
    sqlx::query(&format!("UPDATE cases SET question_message_id = NULL WHERE question_message_id IN ({IDS})"))
        .bind(ids)
        .execute(&mut **tx)
        .await?;
    let by_direction =
        sqlx::query(&format!("SELECT direction, COUNT(*) FROM conversation_messages WHERE id IN ({IDS}) GROUP BY 1"))
            .bind(ids)
            .fetch_all(&mut **tx)
            .await?;
    for r in &by_direction {
        bump(tx, "pruned", "conversation_messages", r.get::<&str, _>(0), r.get::<i64, _>(1) as u64).await?;
    }
    Ok(sqlx::query(&format!("DELETE FROM conversation_messages WHERE id IN ({IDS})"))
        .bind(ids)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Deletes the agent turns in `ids` (a JSON array) and what points at
/// them; counts them by outcome so the agent-answer counters stay whole.
pub(super) async fn delete_turns(tx: &mut Transaction<'_, Sqlite>, ids: &str) -> StoreResult<u64> {
    const IDS: &str = "SELECT value FROM json_each(?)";
    sqlx::query(&format!("DELETE FROM listed_gaps WHERE turn_id IN ({IDS})")).bind(ids).execute(&mut **tx).await?;
    sqlx::query(&format!("DELETE FROM learn_previews WHERE gap_turn_id IN ({IDS})"))
        .bind(ids)
        .execute(&mut **tx)
        .await?;
    let by_outcome = sqlx::query(&format!(
        "SELECT CASE WHEN conversation_id IS NULL THEN 'command_line' WHEN escalated = 1 THEN 'escalated'
                ELSE 'answered' END, COUNT(*)
         FROM agent_turns WHERE id IN ({IDS}) GROUP BY 1"
    ))
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    for r in &by_outcome {
        bump(tx, "pruned", "agent_turns", r.get::<&str, _>(0), r.get::<i64, _>(1) as u64).await?;
    }
    Ok(sqlx::query(&format!("DELETE FROM agent_turns WHERE id IN ({IDS})"))
        .bind(ids)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}
