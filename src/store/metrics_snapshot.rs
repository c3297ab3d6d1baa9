//! The counts `/metrics` shows from the database, taken in one snapshot.
//! Every figure comes from the tables, so it survives restarts and agrees
//! with `orders list`.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::domain::OrderState;

/// Counts taken in one read transaction, so they agree with each other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSnapshot {
    pub orders_by_state: Vec<(OrderState, i64)>,
    /// Orders the backend activated (an activation id was recorded).
    pub activations: i64,
    /// Moderator cards written, by reason (escalations, malformed messages, webhook flags).
    pub cards_by_reason: Vec<(String, i64)>,
    /// Moderator cards not yet posted (and still being tried).
    pub cards_pending: i64,
    /// Moderator cards Telegram refused for good (`moderator_outbox.parked_at`).
    pub cards_parked: i64,
    /// Orders with automatic work left.
    pub orders_unfinished: i64,
    /// Orders parked until a later retry.
    pub orders_parked: i64,
    /// Webhook events stored, by name.
    pub webhook_events: Vec<(String, i64)>,
    /// Paid Tribute purchases not matched to a Telegram order.
    pub purchases_unmatched: i64,
    /// Refunds not acted on yet.
    pub refunds_open: i64,
    /// Backend deactivations, by outcome.
    pub deactivations: Vec<(String, i64)>,
    /// Customer and moderator messages waiting for the contact task.
    pub inbox_waiting: i64,
    /// `/learn`ed answers the knowledge base does not have yet.
    pub pairs_unindexed: i64,
    /// Questions waiting behind the account-wide budget.
    pub questions_queued: i64,
    /// How long the longest-waiting due item of each queue has waited (ms;
    /// 0 when nothing is due): inbox, orders, moderator outbox.
    pub lag_ms: [(&'static str, i64); 3],
    /// What retention and `forget` did so far: (pruned | scrubbed, table or what, rows).
    pub retention: Vec<(String, String, i64)>,
    /// When the pruner last finished a pass (unix ms).
    pub retention_last_pass_at: Option<i64>,
}

impl Store {
    /// Everything `/metrics` shows from the database.
    pub async fn snapshot(&self) -> StoreResult<StoreSnapshot> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM orders GROUP BY state").fetch_all(&mut *tx).await?;
        let mut orders_by_state = Vec::with_capacity(rows.len());
        for r in &rows {
            let s: &str = r.get("state");
            let state = OrderState::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown state {s:?}")))?;
            orders_by_state.push((state, r.get::<i64, _>("n")));
        }
        let pairs = |rows: Vec<sqlx::sqlite::SqliteRow>| -> Vec<(String, i64)> {
            rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).collect()
        };
        let cards_by_reason = pairs(
            // With the rows the pruner deleted since: a counter never goes down.
            sqlx::query(
                "SELECT reason, SUM(n) FROM (
                   SELECT reason, COUNT(*) AS n FROM moderator_outbox WHERE kind <> 'answer' GROUP BY reason
                   UNION ALL SELECT label, n FROM retention_counts
                    WHERE kind = 'pruned' AND what = 'moderator_outbox' AND label <> 'answer')
                 GROUP BY reason ORDER BY reason",
            )
            .fetch_all(&mut *tx)
            .await?,
        );
        let webhook_events = pairs(
            sqlx::query("SELECT name, COUNT(*) FROM tribute_webhook_events GROUP BY name ORDER BY name")
                .fetch_all(&mut *tx)
                .await?,
        );
        let deactivations = pairs(
            sqlx::query(
                "SELECT deactivation, COUNT(*) FROM tribute_purchases WHERE deactivation IS NOT NULL
                 GROUP BY deactivation ORDER BY deactivation",
            )
            .fetch_all(&mut *tx)
            .await?,
        );
        let now = crate::runtime::clock::now_ms();
        let lag: (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT
               (SELECT MIN(MAX(received_at, not_before)) FROM inbox WHERE handled_at IS NULL AND not_before <= ?1),
               (SELECT MIN(COALESCE(next_attempt_at, updated_at)) FROM orders
                 WHERE state IN ('received', 'activation_requested', 'activated', 'replied')
                   AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)),
               (SELECT MIN(MAX(created_at, next_attempt_at)) FROM moderator_outbox
                 WHERE posted_at IS NULL AND parked_at IS NULL AND next_attempt_at <= ?1)",
        )
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let waited = |since: Option<i64>| since.map_or(0, |t| (now - t).max(0));
        let row = sqlx::query(
            "SELECT
               (SELECT COUNT(activation_id) FROM orders),
               (SELECT COUNT(*) FROM moderator_outbox WHERE posted_at IS NULL AND parked_at IS NULL),
               (SELECT COUNT(*) FROM orders WHERE state IN ('received', 'activation_requested', 'activated', 'replied')),
               (SELECT COUNT(*) FROM orders WHERE next_attempt_at IS NOT NULL),
               (SELECT COUNT(*) FROM tribute_purchases
                  WHERE order_id IS NULL AND paid_at IS NOT NULL AND matching_stopped_at IS NULL),
               (SELECT COUNT(*) FROM tribute_purchases WHERE refunded_at IS NOT NULL AND refund_handled_at IS NULL),
               (SELECT COUNT(*) FROM moderator_outbox WHERE posted_at IS NULL AND parked_at IS NOT NULL),
               (SELECT COUNT(*) FROM inbox WHERE handled_at IS NULL),
               (SELECT COUNT(*) FROM approved_pairs WHERE indexed_at IS NULL),
               (SELECT COUNT(*) FROM queued_questions WHERE released_at IS NULL)",
        )
        .fetch_one(&mut *tx)
        .await?;
        let retention =
            sqlx::query("SELECT kind, what, SUM(n) FROM retention_counts GROUP BY kind, what ORDER BY 1, 2")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
        let retention_last_pass_at =
            sqlx::query_scalar("SELECT at FROM retention_passes WHERE id = 1").fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(StoreSnapshot {
            orders_by_state,
            activations: row.get(0),
            cards_by_reason,
            cards_pending: row.get(1),
            cards_parked: row.get(6),
            orders_unfinished: row.get(2),
            orders_parked: row.get(3),
            webhook_events,
            purchases_unmatched: row.get(4),
            refunds_open: row.get(5),
            deactivations,
            inbox_waiting: row.get(7),
            pairs_unindexed: row.get(8),
            questions_queued: row.get(9),
            lag_ms: [("inbox", waited(lag.0)), ("orders", waited(lag.1)), ("moderator_outbox", waited(lag.2))],
            retention,
            retention_last_pass_at,
        })
    }
}
