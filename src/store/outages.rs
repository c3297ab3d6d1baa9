//! Outages: a failing backend or Telegram holding orders up, as the
//! moderator chat is told about them (`orders::outage` decides; this file
//! only reads and writes the rows of `migrations/0018_outages.sql`).
//!
//! An order that waits on a dependency carries `orders.waiting_on` and
//! `waiting_since` (set by `Store::park`/`park_step`, cleared by every
//! state change). An outage row lists the orders it held up
//! (`outage_orders`); at most one is open per dependency, and it is opened
//! together with its case and card in one transaction, so a restart finds
//! the outage and never opens a second card for it.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::case_ref::short_id;
use super::outbox::{insert_card, insert_update, CardSubject, Escalation};
use super::{Store, StoreError, StoreResult};
use crate::domain::{EscalationReason, OrderRef, OrderState};

/// What an order can wait on when its step keeps failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutageCause {
    /// The backend did not answer the activation (network, timeout, 5xx).
    Backend,
    /// Telegram did not take a step (timeouts, disconnects, flood waits).
    Telegram,
}

impl OutageCause {
    pub const ALL: [OutageCause; 2] = [OutageCause::Backend, OutageCause::Telegram];

    pub fn as_str(self) -> &'static str {
        match self {
            OutageCause::Backend => "backend",
            OutageCause::Telegram => "telegram",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// What is wrong, as a moderator reads it.
    pub fn trouble(self) -> &'static str {
        match self {
            OutageCause::Backend => "the backend is unreachable",
            OutageCause::Telegram => "Telegram keeps failing",
        }
    }

    /// The dependency's name in a sentence ("the backend answers again").
    pub fn name(self) -> &'static str {
        match self {
            OutageCause::Backend => "the backend",
            OutageCause::Telegram => "Telegram",
        }
    }
}

/// An outage as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutageRecord {
    pub id: i64,
    pub cause: OutageCause,
    /// When the first order it lists started waiting (unix ms).
    pub since: i64,
    /// When it was reported (unix ms).
    pub opened_at: i64,
    /// The case whose card lists the orders.
    pub case_id: i64,
    /// When the last follow-up naming orders that joined was queued.
    pub last_update_at: Option<i64>,
    pub recovered_at: Option<i64>,
}

impl OutageRecord {
    /// The short id of its case (`C12`).
    pub fn case(&self) -> String {
        short_id(self.case_id)
    }
}

/// An order an outage held up, with where it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutageMember {
    pub order_id: i64,
    pub order_ref: OrderRef,
    pub product: String,
    pub customer_name: String,
    pub state: OrderState,
    /// Listed on the outage's card.
    pub in_card: bool,
    /// Named in the chat (on the card, or by a follow-up since).
    pub announced: bool,
    /// When it was first seen no longer waiting.
    pub left_at: Option<i64>,
    /// Since when it waits on the outage's cause; `None` once it does not.
    pub waiting_since: Option<i64>,
    /// The backend activated it.
    pub activated: bool,
    /// The newest line of its history (why it waits, or what it did last).
    pub last_note: String,
}

impl OutageMember {
    pub fn waiting(&self) -> bool {
        self.waiting_since.is_some()
    }
}

fn outage_from_row(r: &SqliteRow) -> StoreResult<OutageRecord> {
    let id: i64 = r.get("id");
    let corrupt = |what: &str| StoreError::Corrupt(format!("outage {id}: {what}"));
    let cause: String = r.get("cause");
    Ok(OutageRecord {
        id,
        cause: OutageCause::parse(&cause).ok_or_else(|| corrupt(&format!("cause {cause:?}")))?,
        since: r.get("since"),
        opened_at: r.get("opened_at"),
        case_id: r.get::<Option<i64>, _>("case_id").ok_or_else(|| corrupt("no case"))?,
        last_update_at: r.get("last_update_at"),
        recovered_at: r.get("recovered_at"),
    })
}

fn member_from_row(r: &SqliteRow) -> StoreResult<OutageMember> {
    let id: i64 = r.get("order_id");
    let corrupt = |what: &str| StoreError::Corrupt(format!("order {id} of an outage: {what}"));
    Ok(OutageMember {
        order_id: id,
        order_ref: r.get::<String, _>("order_ref").try_into().map_err(|_| corrupt("order_ref"))?,
        product: r.get("product"),
        customer_name: r.get("customer_name"),
        state: OrderState::parse(r.get("state")).ok_or_else(|| corrupt("state"))?,
        in_card: r.get("in_card"),
        announced: r.get("announced"),
        left_at: r.get("left_at"),
        waiting_since: r.get("waiting_since"),
        activated: r.get::<Option<String>, _>("activation_id").is_some(),
        last_note: r.get::<Option<String>, _>("last_note").unwrap_or_default(),
    })
}

/// Adds orders to an outage (no-op for those it lists already).
async fn insert_members(
    tx: &mut Transaction<'_, Sqlite>,
    outage_id: i64,
    order_ids: &[i64],
    in_card: bool,
    now: i64,
) -> StoreResult<()> {
    for id in order_ids {
        sqlx::query(
            "INSERT OR IGNORE INTO outage_orders (outage_id, order_id, joined_at, in_card, announced)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(outage_id)
        .bind(id)
        .bind(now)
        .bind(in_card)
        .bind(in_card)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Unsettled orders waiting on `cause` since `since` or earlier (unix
    /// ms), oldest first: their ids and since when they wait.
    pub async fn orders_waiting_on(&self, cause: OutageCause, since: i64) -> StoreResult<Vec<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT id, waiting_since FROM orders
             WHERE waiting_on = ? AND waiting_since <= ?
               AND state IN ('received', 'activation_requested', 'activated', 'replied')
             ORDER BY id",
        )
        .bind(cause.as_str())
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether an outage watch has anything to look at: an unsettled order
    /// waiting on a dependency since `since` (unix ms) or earlier, or an open
    /// outage. One indexed read instead of the watch's four when, as almost
    /// always, neither is there.
    pub async fn outage_watch_needed(&self, since: i64) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM orders
                             WHERE waiting_since <= ?
                               AND state IN ('received', 'activation_requested', 'activated', 'replied'))
                 OR EXISTS (SELECT 1 FROM outages WHERE recovered_at IS NULL)",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The open outage of `cause`, if any.
    pub async fn open_outage(&self, cause: OutageCause) -> StoreResult<Option<OutageRecord>> {
        let row = sqlx::query("SELECT * FROM outages WHERE cause = ? AND recovered_at IS NULL")
            .bind(cause.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(outage_from_row).transpose()
    }

    pub async fn outage(&self, id: i64) -> StoreResult<Option<OutageRecord>> {
        let row = sqlx::query("SELECT * FROM outages WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(outage_from_row).transpose()
    }

    /// Opens an outage of `cause` that started `since` (unix ms), listing
    /// `order_ids` on its card: the outage, its case and its card in one
    /// transaction. Fails (the unique index) if one is open already.
    pub async fn start_outage(
        &self,
        cause: OutageCause,
        since: i64,
        order_ids: &[i64],
        now: i64,
    ) -> StoreResult<OutageRecord> {
        let mut tx = self.pool.begin().await?;
        let id = sqlx::query("INSERT INTO outages (cause, since, opened_at) VALUES (?, ?, ?)")
            .bind(cause.as_str())
            .bind(since)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
        insert_members(&mut tx, id, order_ids, true, now).await?;
        let card = Escalation {
            reason: EscalationReason::Outage,
            subject: CardSubject::Outage(id),
            detail: cause.trouble().to_owned(),
        };
        let case_id = insert_card(&mut tx, &card, now).await?;
        sqlx::query("UPDATE outages SET case_id = ? WHERE id = ?").bind(case_id).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(OutageRecord { id, cause, since, opened_at: now, case_id, last_update_at: None, recovered_at: None })
    }

    /// Orders that started waiting too long after the outage was opened:
    /// listed, to be named in a follow-up ([`Self::announce_outage_members`]).
    pub async fn join_outage(&self, outage_id: i64, order_ids: &[i64], now: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_members(&mut tx, outage_id, order_ids, false, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every order the outage held up, oldest first, with where it is now.
    pub async fn outage_members(&self, outage_id: i64) -> StoreResult<Vec<OutageMember>> {
        let rows = sqlx::query(
            "SELECT m.order_id, m.in_card, m.announced, m.left_at,
                    o.order_ref, o.product, o.customer_name, o.state, o.activation_id,
                    CASE WHEN o.waiting_on = u.cause THEN o.waiting_since END AS waiting_since, o.last_note
             FROM outage_orders m JOIN outages u ON u.id = m.outage_id JOIN orders o ON o.id = m.order_id
             WHERE m.outage_id = ? ORDER BY m.order_id",
        )
        .bind(outage_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(member_from_row).collect()
    }

    /// Queues `text` (naming `order_ids`) as a follow-up to the outage's
    /// card and marks them named, in one transaction.
    pub async fn announce_outage_members(
        &self,
        outage: &OutageRecord,
        order_ids: &[i64],
        text: &str,
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for id in order_ids {
            sqlx::query("UPDATE outage_orders SET announced = 1 WHERE outage_id = ? AND order_id = ?")
                .bind(outage.id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE outages SET last_update_at = ? WHERE id = ?")
            .bind(now)
            .bind(outage.id)
            .execute(&mut *tx)
            .await?;
        insert_update(&mut tx, outage.case_id, text, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that `order_ids` no longer wait; with `wake`, every order
    /// still waiting on the outage's cause is made due now (the dependency
    /// answered one of them, so it is worth trying the rest at once rather
    /// than after their backoff). Returns how many were woken.
    pub async fn outage_members_left(
        &self,
        outage: &OutageRecord,
        order_ids: &[i64],
        wake: bool,
        now: i64,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        for id in order_ids {
            sqlx::query(
                "UPDATE outage_orders SET left_at = ? WHERE outage_id = ? AND order_id = ? AND left_at IS NULL",
            )
            .bind(now)
            .bind(outage.id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let mut woken = 0;
        if wake {
            woken = sqlx::query(
                "UPDATE orders SET next_attempt_at = NULL
                 WHERE waiting_on = ? AND next_attempt_at > ?
                   AND state IN ('received', 'activation_requested', 'activated', 'replied')",
            )
            .bind(outage.cause.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(woken)
    }

    /// Ends the outage: marks it recovered, closes its case with `outcome`
    /// (unless a moderator closed it already) and queues `text` as the
    /// follow-up saying so, in one transaction. False if it had ended.
    pub async fn end_outage(&self, outage: &OutageRecord, outcome: &str, text: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query("UPDATE outages SET recovered_at = ? WHERE id = ? AND recovered_at IS NULL")
            .bind(now)
            .bind(outage.id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if ended {
            sqlx::query(
                "UPDATE cases SET status = 'closed', outcome = ?, closed_at = ? WHERE id = ? AND status = 'open'",
            )
            .bind(outcome)
            .bind(now)
            .bind(outage.case_id)
            .execute(&mut *tx)
            .await?;
            insert_update(&mut tx, outage.case_id, text, now).await?;
        }
        tx.commit().await?;
        Ok(ended)
    }
}
