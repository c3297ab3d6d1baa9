//! A read-only look into the daemon's SQLite store, on its own connection:
//! the driver's "has anything moved?" fingerprint, the next due times, new
//! case cards for the simulated moderator, and the checker's facts. Plain
//! SQL over the base schema's columns, so it needs nothing from the store
//! module and never takes a connection from the daemon's pool.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

pub struct Probe {
    pool: SqlitePool,
    /// The outbox has `next_attempt_at`/`parked_at` (migration 0006).
    outbox_due: bool,
}

/// A posted case card, as the moderator sees it.
#[derive(Debug, Clone)]
pub struct PostedCard {
    pub id: i64,
    pub order_id: Option<i64>,
    pub reason: String,
    /// `None` when Telegram said it was sent but it was not found in the
    /// history (nobody can reply to it; `/case` still shows the case).
    pub message_id: Option<i32>,
    pub posted_at: i64,
    /// The Tribute message of the card's order.
    pub order_message_id: Option<i32>,
}

/// One order as the checker needs it.
#[derive(Debug, Clone)]
pub struct OrderFact {
    pub id: i64,
    pub order_ref: String,
    pub message_id: i32,
    pub state: String,
    pub activation_id: Option<String>,
    pub escalation_reason: Option<String>,
    pub updated_at: i64,
    /// The last card of the order: (posted?, case open?).
    pub last_card: Option<(bool, bool)>,
    pub last_event_at: i64,
    /// The Telegram user who paid.
    pub customer_id: Option<i64>,
    /// The account IDs the order holds (JSON array): the one it was
    /// activated for, once activated.
    pub account_candidates: String,
}

/// A case about an order, open from `opened_at` until `closed_at`.
#[derive(Debug, Clone)]
pub struct CaseSpan {
    pub short_id: String,
    pub order_id: i64,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
}

/// One row of an order's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    pub order_id: i64,
    pub at: i64,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: String,
}

/// A card's life: when it was stored and when (if) it reached the chat.
#[derive(Debug, Clone)]
pub struct CardTiming {
    pub id: i64,
    pub order_id: Option<i64>,
    pub reason: String,
    pub created_at: i64,
    pub posted_at: Option<i64>,
    pub parked: bool,
    pub attempts: i64,
}

/// Automatic states: the daemon, not a person, has to move these on.
pub const AUTOMATIC: &str = "('received','activation_requested','activated','replied')";

/// The tables retention keeps whole (see [`Probe::ledger_mib`]).
const LEDGER_TABLES: &str = "'orders', 'order_events', 'tribute_purchases', 'cases', 'case_messages', \
    'conversations', 'conversation_orders', 'moderator_audit'";

impl Probe {
    pub async fn open(db: &Path) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(db)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10))
            // Not "sqlx-sqlite-…": the driver watches those threads for the daemon's work.
            .thread_name(|id| format!("sim-probe-{id}"));
        // One connection, no reaper and no health check: on a paused clock
        // the pool's own timers would only fire when the driver jumps.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(100 * 24 * 3600))
            .connect_with(options)
            .await?;
        let cols: Vec<String> = sqlx::query("PRAGMA table_info(moderator_outbox)")
            .fetch_all(&pool)
            .await?
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        let outbox_due = cols.iter().any(|c| c == "next_attempt_at") && cols.iter().any(|c| c == "parked_at");
        Ok(Self { pool, outbox_due })
    }

    /// The ledger's share of the store, MiB: what retention keeps for good
    /// (pseudonymised) and which so grows with every order — the orders and
    /// their state history, their Tribute notifications, purchases, cases
    /// with the conversations they belong to, the moderators' audit — with
    /// their indexes. Notifications share their table with messages that
    /// are pruned: their part is counted by the share of rows.
    pub async fn ledger_mib(&self) -> anyhow::Result<f64> {
        let whole: i64 = sqlx::query_scalar(&format!(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN
               (SELECT name FROM sqlite_schema WHERE tbl_name IN ({LEDGER_TABLES}))"
        ))
        .fetch_one(&self.pool)
        .await?;
        let notifications: f64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(pgsize), 0) * COALESCE((SELECT 1.0 * SUM(kind IN ('order', 'malformed')) / COUNT(*)
                 FROM tribute_messages), 0)
             FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema WHERE tbl_name = 'tribute_messages')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((whole as f64 + notifications) / 1_048_576.0)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// (work due by `now` — orders in an automatic state, cards, messages to
    /// customers, messages waiting in the inbox —, the earliest later due
    /// time of any of them).
    pub async fn due(&self, now: i64) -> anyhow::Result<(i64, Option<i64>)> {
        let r = sqlx::query(&format!(
            "SELECT (SELECT COUNT(*) FROM orders WHERE state IN {AUTOMATIC}
                       AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)),
                    (SELECT MIN(next_attempt_at) FROM orders
                       WHERE state IN {AUTOMATIC} AND next_attempt_at > ?1)"
        ))
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let busy: i64 = r.get(0);
        let next: Option<i64> = r.get(1);
        let (cards_now, cards_next): (i64, Option<i64>) = if self.outbox_due {
            let r = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM moderator_outbox WHERE posted_at IS NULL AND parked_at IS NULL
                           AND next_attempt_at <= ?1),
                        (SELECT MIN(next_attempt_at) FROM moderator_outbox WHERE posted_at IS NULL
                           AND parked_at IS NULL AND next_attempt_at > ?1)",
            )
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
            (r.get(0), r.get(1))
        } else {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM moderator_outbox WHERE posted_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
            (n, None)
        };
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM customer_outbox WHERE status = 'pending' AND due_at <= ?1),
                    (SELECT MIN(due_at) FROM customer_outbox WHERE status = 'pending' AND due_at > ?1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let (messages_now, messages_next): (i64, Option<i64>) = (r.get(0), r.get(1));
        // Messages the contact task has yet to handle (a moderator's command,
        // a customer's account ID) and questions queued behind the budget:
        // real time would keep running while the task works through them
        // (it may wait in memory, e.g. on the send rate limiter), so the
        // driver steps instead of jumping past them.
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE handled_at IS NULL AND not_before <= ?1),
                    (SELECT MIN(not_before) FROM inbox WHERE handled_at IS NULL AND not_before > ?1),
                    (SELECT MIN(due_at) FROM queued_questions WHERE released_at IS NULL)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let (inbox_now, inbox_next, queue_next): (i64, Option<i64>, Option<i64>) = (r.get(0), r.get(1), r.get(2));
        let queue_now = i64::from(queue_next.is_some_and(|due| due <= now));
        let queue_next = queue_next.filter(|due| *due > now);
        let next = [next, cards_next, messages_next, inbox_next, queue_next].into_iter().flatten().min();
        Ok((busy + cards_now + messages_now + inbox_now + queue_now, next))
    }

    /// What changes when the daemon gets work done (an order step, a card
    /// posted, a message handled or sent), cheap to read (indexes only);
    /// unlike the file's version, the re-read's bookkeeping does not move it.
    pub async fn progress(&self) -> anyhow::Result<[i64; 4]> {
        let r = sqlx::query(
            "SELECT (SELECT MAX(id) FROM order_events), (SELECT MAX(posted_at) FROM moderator_outbox),
                    (SELECT COUNT(*) FROM inbox WHERE handled_at IS NULL),
                    (SELECT COUNT(*) FROM customer_outbox WHERE status = 'pending')",
        )
        .fetch_one(&self.pool)
        .await?;
        let get = |i| r.get::<Option<i64>, _>(i).unwrap_or(0);
        Ok([get(0), get(1), get(2), get(3)])
    }

    /// When the next dialogue timer (reminder, hand-over) falls due: the
    /// contact tick's own due times.
    pub async fn next_dialogue_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MIN(due_at) FROM conversations WHERE due_at IS NOT NULL")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Cards posted at or after `since_ms`.
    pub async fn posted_cards_since(&self, since_ms: i64) -> anyhow::Result<Vec<PostedCard>> {
        let rows = sqlx::query(
            "SELECT m.id, m.order_id, m.reason, m.posted_message_id, m.posted_at, o.message_id AS order_message_id
             FROM moderator_outbox m LEFT JOIN orders o ON o.id = m.order_id
             WHERE m.kind = 'card' AND m.posted_at IS NOT NULL AND m.posted_at >= ? ORDER BY m.posted_at, m.id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| PostedCard {
                id: r.get("id"),
                order_id: r.get("order_id"),
                reason: r.get("reason"),
                message_id: r.get::<Option<i64>, _>("posted_message_id").map(|m| m as i32),
                posted_at: r.get("posted_at"),
                order_message_id: r.get::<Option<i64>, _>("order_message_id").map(|m| m as i32),
            })
            .collect())
    }

    /// Orders in an automatic state untouched since before `before_ms`.
    pub async fn quiet_automatic(&self, before_ms: i64) -> anyhow::Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(&format!(
            "SELECT o.order_ref, o.state, (SELECT MAX(at) FROM order_events e WHERE e.order_id = o.id) AS last
             FROM orders o WHERE o.state IN {AUTOMATIC}
               AND (SELECT MAX(at) FROM order_events e WHERE e.order_id = o.id) < ?"
        ))
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    /// Orders not yet at rest: not confirmed, not failed, and not
    /// escalated with their last card posted.
    pub async fn unresolved(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM orders o WHERE o.state NOT IN ('confirmed', 'failed')
               AND NOT (o.state = 'escalated' AND (SELECT m.posted_at FROM moderator_outbox m
                         WHERE m.order_id = o.id AND m.kind = 'card' ORDER BY m.id DESC LIMIT 1) IS NOT NULL)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn orders(&self) -> anyhow::Result<Vec<OrderFact>> {
        let rows = sqlx::query(
            "SELECT o.id, o.order_ref, o.message_id, o.state, o.activation_id, o.escalation_reason, o.updated_at,
                    (SELECT m.posted_at IS NOT NULL FROM moderator_outbox m
                      WHERE m.order_id = o.id AND m.kind = 'card' ORDER BY m.id DESC LIMIT 1) AS card_posted,
                    (SELECT c.status = 'open' FROM moderator_outbox m JOIN cases c ON c.id = m.case_id
                      WHERE m.order_id = o.id AND m.kind = 'card' ORDER BY m.id DESC LIMIT 1) AS case_open,
                    (SELECT MAX(at) FROM order_events e WHERE e.order_id = o.id) AS last_event,
                    o.customer_id, o.account_candidates
             FROM orders o ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let posted: Option<bool> = r.get("card_posted");
                let open: Option<bool> = r.get("case_open");
                OrderFact {
                    id: r.get("id"),
                    order_ref: r.get("order_ref"),
                    message_id: r.get::<i64, _>("message_id") as i32,
                    state: r.get("state"),
                    activation_id: r.get("activation_id"),
                    escalation_reason: r.get("escalation_reason"),
                    updated_at: r.get("updated_at"),
                    last_card: posted.map(|p| (p, open.unwrap_or(false))),
                    last_event_at: r.get::<Option<i64>, _>("last_event").unwrap_or(0),
                    customer_id: r.get("customer_id"),
                    account_candidates: r.get("account_candidates"),
                }
            })
            .collect())
    }

    pub async fn card_timings(&self) -> anyhow::Result<Vec<CardTiming>> {
        let parked = if self.outbox_due { "parked_at IS NOT NULL" } else { "0" };
        let rows = sqlx::query(&format!(
            "SELECT id, order_id, reason, created_at, posted_at, {parked} AS parked,
                    {attempts} AS attempts
             FROM moderator_outbox WHERE kind = 'card' ORDER BY id",
            attempts = if self.outbox_due { "attempts" } else { "0" }
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| CardTiming {
                id: r.get("id"),
                order_id: r.get("order_id"),
                reason: r.get("reason"),
                created_at: r.get("created_at"),
                posted_at: r.get("posted_at"),
                parked: r.get::<i64, _>("parked") != 0,
                attempts: r.get("attempts"),
            })
            .collect())
    }

    /// Where a text containing `needle` was stored: conversation messages,
    /// agent turns (what the LLM would see), moderator outbox (cards).
    pub async fn text_leaks(&self, needle: &str) -> anyhow::Result<Vec<&'static str>> {
        let mut found = Vec::new();
        for (table, sql) in [
            ("conversation_messages", "SELECT COUNT(*) FROM conversation_messages WHERE instr(text, ?) > 0"),
            ("agent_turns", "SELECT COUNT(*) FROM agent_turns WHERE instr(question, ?) > 0"),
            // Cards are rendered when posted (the moderator chat is checked
            // too); what callers store is the typed escalation's detail.
            (
                "moderator_outbox",
                "SELECT COUNT(*) FROM moderator_outbox WHERE instr(text, ?1) > 0 OR instr(detail, ?1) > 0",
            ),
            ("inbox", "SELECT COUNT(*) FROM inbox WHERE instr(message_json, ?) > 0"),
        ] {
            let n: i64 = sqlx::query_scalar(sql).bind(needle).fetch_one(&self.pool).await?;
            if n > 0 {
                found.push(table);
            }
        }
        Ok(found)
    }

    /// Conversations stored (each one person who wrote, pseudonymised or not).
    pub async fn conversations(&self) -> anyhow::Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM conversations").fetch_one(&self.pool).await?;
        Ok(n as usize)
    }

    /// Messages stored in the inbox since `since_ms`, as (chat, message id).
    pub async fn inbox_since(&self, since_ms: i64) -> anyhow::Result<HashSet<(i64, i32)>> {
        let rows = sqlx::query("SELECT chat_id, message_id FROM inbox WHERE received_at >= ?")
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<i64, _>(1) as i32)).collect())
    }

    /// The customer messages in the inbox, as (chat, message id).
    pub async fn customer_inbox(&self) -> anyhow::Result<HashSet<(i64, i64)>> {
        let rows =
            sqlx::query("SELECT chat_id, message_id FROM inbox WHERE kind = 'customer'").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Every case about an order, in the order they were opened.
    pub async fn order_cases(&self) -> anyhow::Result<Vec<CaseSpan>> {
        let rows = sqlx::query(
            "SELECT COALESCE(short_id, 'C' || id), order_id, opened_at, closed_at FROM cases
             WHERE order_id IS NOT NULL ORDER BY opened_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| CaseSpan { short_id: r.get(0), order_id: r.get(1), opened_at: r.get(2), closed_at: r.get(3) })
            .collect())
    }

    /// Messages of `chat` that belong to a case (cards, follow-ups, `/case`
    /// pages): a reply to one acts on the case.
    pub async fn case_messages(&self, chat: i64) -> anyhow::Result<HashMap<i32, i64>> {
        let rows = sqlx::query("SELECT message_id, case_id FROM case_messages WHERE chat_id = ?")
            .bind(chat)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get::<i64, _>(0) as i32, r.get::<i64, _>(1))).collect())
    }

    /// The whole history of every order a customer gave an account ID to in
    /// the chat (the contact flow's note on that step says so), in order.
    pub async fn customer_id_histories(&self) -> anyhow::Result<Vec<OrderEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT order_id, at, from_state, to_state, note FROM order_events WHERE order_id IN
               (SELECT order_id FROM order_events WHERE note LIKE '{CUSTOMER_GAVE_ID}%')
             ORDER BY order_id, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| OrderEvent {
                order_id: r.get(0),
                at: r.get(1),
                from_state: r.get(2),
                to_state: r.get(3),
                note: r.get(4),
            })
            .collect())
    }
}

/// How `contact` notes an account ID a customer sent in the chat, on the
/// order's event (`the customer sent account ID 123456 …`).
pub const CUSTOMER_GAVE_ID: &str = "the customer sent account ID";

/// How the order worker notes a park because the backend was unavailable.
pub const BACKEND_UNAVAILABLE: &str = "backend unavailable";
