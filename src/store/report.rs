//! Read side of the automation report (`report`): every figure is an
//! aggregate computed by SQLite over a time range, grouped by trend bucket,
//! so memory stays flat however large the store is. Percentiles are
//! nearest-rank over a window function, never over rows loaded here. The
//! definitions the SQL encodes are written down in `report` (its module
//! docs) and in docs/report.md; the two must agree.
//!
//! Also the schedule of the weekly summary (`report_posts`): one row per
//! scheduled time, a work item like every other pending thing.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{Store, StoreResult};

/// What a report covers. Times are unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuery {
    pub since_ms: i64,
    /// Exclusive.
    pub until_ms: i64,
    /// "Now" for the definitions that look at the present: a question
    /// whose resolution window has not ended yet, the age of what is open.
    pub as_of_ms: i64,
    /// An answered question counts as resolved when the customer asked
    /// nothing more and no case was opened this long after it.
    pub resolution_window_ms: i64,
    /// Trend buckets: `(t - origin) / size`; origin at or before `since_ms`.
    pub bucket_origin_ms: i64,
    pub bucket_ms: i64,
}

/// Orders received in one bucket, by where they are now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderBucket {
    pub bucket: i64,
    pub paid: i64,
    pub completed: i64,
    pub completed_automatically: i64,
    pub completed_after_contact: i64,
    pub completed_by_moderator: i64,
    pub refunded: i64,
    pub failed: i64,
    pub open: i64,
    pub open_escalated: i64,
    pub open_needs_customer: i64,
    /// When the oldest still-open order of the bucket was received.
    pub oldest_open_at: Option<i64>,
}

/// Agent turns (customer questions) of one bucket, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuestionBucket {
    pub bucket: i64,
    pub asked: i64,
    pub resolved_by_agent: i64,
    /// Answered, but the customer asked again or a case was opened within the window.
    pub reopened: i64,
    pub escalated: i64,
    /// Answered, and the window has not ended yet.
    pub pending: i64,
    /// Escalated questions a moderator wrote to the customer after.
    pub answered_by_moderator: i64,
}

impl OrderBucket {
    /// Adds `b`'s counts (the whole range is the sum of its buckets).
    pub fn add(&mut self, b: &Self) {
        self.paid += b.paid;
        self.completed += b.completed;
        self.completed_automatically += b.completed_automatically;
        self.completed_after_contact += b.completed_after_contact;
        self.completed_by_moderator += b.completed_by_moderator;
        self.refunded += b.refunded;
        self.failed += b.failed;
        self.open += b.open;
        self.open_escalated += b.open_escalated;
        self.open_needs_customer += b.open_needs_customer;
        self.oldest_open_at = self.oldest_open_at.into_iter().chain(b.oldest_open_at).min();
    }
}

impl QuestionBucket {
    /// Adds `b`'s counts (the whole range is the sum of its buckets).
    pub fn add(&mut self, b: &Self) {
        self.asked += b.asked;
        self.resolved_by_agent += b.resolved_by_agent;
        self.reopened += b.reopened;
        self.escalated += b.escalated;
        self.pending += b.pending;
        self.answered_by_moderator += b.answered_by_moderator;
    }
}

/// Nearest-rank percentiles of durations (ms) in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Spread {
    #[serde(skip)]
    pub bucket: i64,
    pub count: i64,
    pub p50: Option<i64>,
    pub p90: Option<i64>,
    pub max: Option<i64>,
}

/// Cases and moderator actions over the range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFigures {
    pub opened: i64,
    pub closed: i64,
    /// Cases opened in the range no moderator acted on (yet).
    pub without_action: i64,
    /// Open now, by age at `as_of`: under 1 h, 1–24 h, 1–7 days, over 7 days.
    pub open_by_age: [i64; 4],
    /// Messages from people who are not moderators, refused.
    pub refused: i64,
}

/// Customer questions the agent escalated, for the content gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalatedQuestion {
    pub turn_id: i64,
    pub conversation_id: i64,
    pub at: i64,
    pub question: String,
}

/// A question and the team's first answer after it (an approvable pair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredQuestion {
    pub turn_id: i64,
    pub conversation_id: i64,
    pub question: String,
    pub answer: String,
    pub language: String,
}

/// A row of the weekly summary's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPost {
    pub due_at: i64,
    pub random_id: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub posted_at: Option<i64>,
}

/// Orders received in the range with how each ended: `how` is NULL unless
/// confirmed; `moderator` when a moderator gave an account ID or `/retry`
/// on one of its cases; else `contact` when the customer was asked for it
/// (the order has a conversation link); else `auto`.
const ORDERS: &str = "WITH o AS (
  SELECT o.state, o.created_at, (o.created_at - ?3) / ?4 AS b,
    CASE WHEN o.state <> 'confirmed' THEN NULL
         WHEN EXISTS (SELECT 1 FROM cases c JOIN moderator_audit a ON a.case_id = c.id
                      WHERE c.order_id = o.id AND a.allowed = 1 AND a.action IN ('account', 'retry')) THEN 'moderator'
         WHEN EXISTS (SELECT 1 FROM conversation_orders l WHERE l.order_id = o.id) THEN 'contact'
         ELSE 'auto' END AS how
  FROM orders o WHERE o.created_at >= ?1 AND o.created_at < ?2)";

/// Agent turns with a conversation (not `ask` on the command line) in the
/// range, each with its outcome (see [`QuestionBucket`]).
const QUESTIONS: &str = "WITH t AS (
  SELECT t.id, t.conversation_id, t.at, t.escalated, t.latency_ms, (t.at - ?3) / ?4 AS b,
    (SELECT MIN(n.at) FROM agent_turns n WHERE n.conversation_id = t.conversation_id
      AND (n.at > t.at OR (n.at = t.at AND n.id > t.id))) AS next_at,
    (SELECT MIN(k.opened_at) FROM cases k WHERE k.conversation_id = t.conversation_id
      AND k.reason = 'customer_question' AND k.opened_at >= t.at) AS case_at
  FROM agent_turns t WHERE t.conversation_id IS NOT NULL AND t.at >= ?1 AND t.at < ?2),
q AS (SELECT t.*, CASE
    WHEN escalated = 1 THEN 'escalated'
    WHEN next_at < at + ?5 OR case_at < at + ?5 THEN 'reopened'
    WHEN at + ?5 > ?6 THEN 'pending'
    ELSE 'resolved' END AS outcome FROM t)";

/// Nearest-rank p50/p90 and the max of `d` per bucket `b` over `source`
/// (which selects `b` and `d`; rows with a NULL `d` are left out). SQLite
/// sorts for the window function with its own bounded memory.
fn spread_sql(source: &str) -> String {
    format!(
        "WITH s AS ({source}), r AS (
           SELECT b, d, ROW_NUMBER() OVER (PARTITION BY b ORDER BY d) AS rn, COUNT(*) OVER (PARTITION BY b) AS n
           FROM s WHERE d IS NOT NULL)
         SELECT b, MAX(n), MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN d END),
                MAX(CASE WHEN rn = (n * 90 + 99) / 100 THEN d END), MAX(d)
         FROM r GROUP BY b ORDER BY b"
    )
}

fn spread_from_row(r: &SqliteRow) -> Spread {
    Spread { bucket: r.get(0), count: r.get(1), p50: r.get(2), p90: r.get(3), max: r.get(4) }
}

impl ReportQuery {
    /// The same query with one bucket for the whole range.
    pub fn whole(self) -> Self {
        Self { bucket_origin_ms: i64::MIN / 2, bucket_ms: i64::MAX, ..self }
    }
}

impl Store {
    fn bind_report<'q>(
        sql: &'q str,
        q: &ReportQuery,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
        sqlx::query(sql)
            .bind(q.since_ms)
            .bind(q.until_ms)
            .bind(q.bucket_origin_ms)
            .bind(q.bucket_ms)
            .bind(q.resolution_window_ms)
            .bind(q.as_of_ms)
    }

    /// Orders received in the range, per bucket (only buckets with orders).
    pub async fn report_orders(&self, q: &ReportQuery) -> StoreResult<Vec<OrderBucket>> {
        let sql = format!(
            "{ORDERS} SELECT b, COUNT(*),
               IFNULL(SUM(state = 'confirmed'), 0), IFNULL(SUM(how = 'auto'), 0), IFNULL(SUM(how = 'contact'), 0),
               IFNULL(SUM(how = 'moderator'), 0), IFNULL(SUM(state = 'refunded'), 0), IFNULL(SUM(state = 'failed'), 0),
               IFNULL(SUM(state NOT IN ('confirmed', 'refunded', 'failed')), 0),
               IFNULL(SUM(state = 'escalated'), 0), IFNULL(SUM(state = 'needs_customer'), 0),
               MIN(CASE WHEN state NOT IN ('confirmed', 'refunded', 'failed') THEN created_at END)
             FROM o GROUP BY b ORDER BY b"
        );
        let rows = Self::bind_report(&sql, q).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| OrderBucket {
                bucket: r.get(0),
                paid: r.get(1),
                completed: r.get(2),
                completed_automatically: r.get(3),
                completed_after_contact: r.get(4),
                completed_by_moderator: r.get(5),
                refunded: r.get(6),
                failed: r.get(7),
                open: r.get(8),
                open_escalated: r.get(9),
                open_needs_customer: r.get(10),
                oldest_open_at: r.get(11),
            })
            .collect())
    }

    /// From payment (the Tribute notification stored) to the Send press
    /// (the order's `confirmed` event), for orders received in the range.
    pub async fn report_payment_to_send(&self, q: &ReportQuery) -> StoreResult<Vec<Spread>> {
        let sql = spread_sql(
            "SELECT (o.created_at - ?3) / ?4 AS b,
               (SELECT MIN(e.at) FROM order_events e WHERE e.order_id = o.id AND e.to_state = 'confirmed') - o.created_at AS d
             FROM orders o WHERE o.state = 'confirmed' AND o.created_at >= ?1 AND o.created_at < ?2",
        );
        let rows = Self::bind_report(&sql, q).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(spread_from_row).collect())
    }

    /// Questions asked in the range, per bucket, by outcome.
    pub async fn report_questions(&self, q: &ReportQuery) -> StoreResult<Vec<QuestionBucket>> {
        let sql = format!(
            "{QUESTIONS} SELECT b, COUNT(*), IFNULL(SUM(outcome = 'resolved'), 0), IFNULL(SUM(outcome = 'reopened'), 0),
               IFNULL(SUM(outcome = 'escalated'), 0), IFNULL(SUM(outcome = 'pending'), 0),
               IFNULL(SUM(outcome = 'escalated' AND EXISTS (SELECT 1 FROM conversation_messages m
                   WHERE m.conversation_id = q.conversation_id AND m.direction = 'out' AND m.author = 'moderator'
                     AND m.at >= q.at)), 0)
             FROM q GROUP BY b ORDER BY b"
        );
        let rows = Self::bind_report(&sql, q).fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| QuestionBucket {
                bucket: r.get(0),
                asked: r.get(1),
                resolved_by_agent: r.get(2),
                reopened: r.get(3),
                escalated: r.get(4),
                pending: r.get(5),
                answered_by_moderator: r.get(6),
            })
            .collect())
    }

    /// Escalated questions in the range by the agent's reason code (a
    /// question with several reasons counts under each).
    pub async fn report_escalation_reasons(&self, q: &ReportQuery) -> StoreResult<Vec<(String, i64)>> {
        let rows = Self::bind_report(
            "SELECT IFNULL(json_extract(r.value, '$.code'), 'unspecified') AS code, COUNT(*) AS n
             FROM agent_turns t, json_each(t.reasons_json) r
             WHERE t.conversation_id IS NOT NULL AND t.escalated = 1 AND t.at >= ?1 AND t.at < ?2
             GROUP BY code ORDER BY n DESC, code",
            q,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// From a question (the agent's turn began: `at - latency_ms`) to its
    /// first answer: the agent's message for an answered question, a
    /// moderator's for an escalated one. Unanswered questions are left out.
    pub async fn report_first_answer(&self, q: &ReportQuery) -> StoreResult<Vec<Spread>> {
        let sql = spread_sql(
            "SELECT (t.at - ?3) / ?4 AS b,
               (SELECT MIN(m.at) FROM conversation_messages m
                 WHERE m.conversation_id = t.conversation_id AND m.direction = 'out'
                   AND ((t.escalated = 0 AND m.author = 'agent' AND m.at >= t.at - t.latency_ms)
                     OR (t.escalated = 1 AND m.author = 'moderator' AND m.at >= t.at)))
               - (t.at - t.latency_ms) AS d
             FROM agent_turns t WHERE t.conversation_id IS NOT NULL AND t.at >= ?1 AND t.at < ?2",
        );
        let rows = Self::bind_report(&sql, q).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(spread_from_row).collect())
    }

    /// Conversations whose questions in the range were all resolved by the
    /// agent (at least one; still-pending ones do not count against), and
    /// how many messages (in and out, not internal notes) they had in it.
    pub async fn report_resolved_conversations(&self, q: &ReportQuery) -> StoreResult<(i64, i64)> {
        let sql = format!(
            "{QUESTIONS}, c AS (SELECT conversation_id FROM q GROUP BY conversation_id
               HAVING SUM(outcome = 'resolved') > 0 AND SUM(outcome IN ('escalated', 'reopened')) = 0)
             SELECT (SELECT COUNT(*) FROM c),
                    (SELECT COUNT(*) FROM conversation_messages m JOIN c ON c.conversation_id = m.conversation_id
                      WHERE m.direction <> 'internal' AND m.at >= ?1 AND m.at < ?2)"
        );
        let row = Self::bind_report(&sql, q).fetch_one(&self.pool).await?;
        Ok((row.get(0), row.get(1)))
    }

    /// Cases opened in the range, per bucket.
    pub async fn report_cases_opened(&self, q: &ReportQuery) -> StoreResult<Vec<(i64, i64)>> {
        let rows = Self::bind_report(
            "SELECT (opened_at - ?3) / ?4 AS b, COUNT(*) FROM cases
             WHERE opened_at >= ?1 AND opened_at < ?2 GROUP BY b ORDER BY b",
            q,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Cases opened in the range by reason, most first.
    pub async fn report_case_reasons(&self, q: &ReportQuery) -> StoreResult<Vec<(String, i64)>> {
        let rows = Self::bind_report(
            "SELECT reason, COUNT(*) AS n FROM cases WHERE opened_at >= ?1 AND opened_at < ?2
             GROUP BY reason ORDER BY n DESC, reason",
            q,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// From a case opened in the range to the first thing a moderator did
    /// on it (looking at it with `/case` does not count).
    pub async fn report_first_action(&self, q: &ReportQuery) -> StoreResult<Spread> {
        let sql = spread_sql(
            "SELECT 0 AS b,
               (SELECT MIN(a.at) FROM moderator_audit a WHERE a.case_id = k.id AND a.allowed = 1
                  AND a.action NOT IN ('case', 'cases', 'unknown', 'refused')) - k.opened_at AS d
             FROM cases k WHERE k.opened_at >= ?1 AND k.opened_at < ?2",
        );
        let rows = Self::bind_report(&sql, q).fetch_all(&self.pool).await?;
        Ok(rows.first().map(spread_from_row).unwrap_or_default())
    }

    /// Cases opened and closed in the range, the open ones by age now, and
    /// refused messages from non-moderators.
    pub async fn report_cases(&self, q: &ReportQuery) -> StoreResult<CaseFigures> {
        const HOUR: i64 = 3_600_000;
        let row = Self::bind_report(
            "SELECT
               (SELECT COUNT(*) FROM cases WHERE opened_at >= ?1 AND opened_at < ?2),
               (SELECT COUNT(*) FROM cases WHERE closed_at >= ?1 AND closed_at < ?2),
               (SELECT COUNT(*) FROM cases k WHERE k.opened_at >= ?1 AND k.opened_at < ?2
                  AND NOT EXISTS (SELECT 1 FROM moderator_audit a WHERE a.case_id = k.id AND a.allowed = 1
                                    AND a.action NOT IN ('case', 'cases', 'unknown', 'refused'))),
               (SELECT COUNT(*) FROM moderator_audit WHERE allowed = 0 AND at >= ?1 AND at < ?2),
               IFNULL(SUM(?6 - opened_at < ?7), 0),
               IFNULL(SUM(?6 - opened_at >= ?7 AND ?6 - opened_at < ?8), 0),
               IFNULL(SUM(?6 - opened_at >= ?8 AND ?6 - opened_at < ?9), 0),
               IFNULL(SUM(?6 - opened_at >= ?9), 0)
             FROM cases WHERE status = 'open'",
            q,
        )
        .bind(HOUR)
        .bind(24 * HOUR)
        .bind(7 * 24 * HOUR)
        .fetch_one(&self.pool)
        .await?;
        Ok(CaseFigures {
            opened: row.get(0),
            closed: row.get(1),
            without_action: row.get(2),
            refused: row.get(3),
            open_by_age: [row.get(4), row.get(5), row.get(6), row.get(7)],
        })
    }

    /// Obeyed moderator commands and replies in the range: (moderator,
    /// action, count), by moderator then action.
    pub async fn report_moderator_actions(&self, q: &ReportQuery) -> StoreResult<Vec<(i64, String, i64)>> {
        let rows = Self::bind_report(
            "SELECT moderator_id, action, COUNT(*) FROM moderator_audit
             WHERE allowed = 1 AND at >= ?1 AND at < ?2 GROUP BY moderator_id, action ORDER BY moderator_id, action",
            q,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    /// The next `limit` escalated questions of the range with a turn id
    /// above `after`, in id order (keyset paging: memory is one page).
    pub async fn report_escalated_questions(
        &self,
        q: &ReportQuery,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<EscalatedQuestion>> {
        let rows = Self::bind_report(
            "SELECT id, conversation_id, at, question FROM agent_turns
             WHERE conversation_id IS NOT NULL AND escalated = 1 AND at >= ?1 AND at < ?2 AND id > ?7
             ORDER BY id LIMIT ?8",
            q,
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| EscalatedQuestion {
                turn_id: r.get(0),
                conversation_id: r.get(1),
                at: r.get(2),
                question: r.get(3),
            })
            .collect())
    }

    /// For each of the given agent turns that a moderator answered, the
    /// question and the first answer a moderator sent the customer after it.
    pub async fn answered_questions(&self, turn_ids: &[i64]) -> StoreResult<Vec<AnsweredQuestion>> {
        let ids = serde_json::to_string(turn_ids).expect("a list of integers serialises");
        let rows = sqlx::query(
            "SELECT t.id, t.conversation_id, t.question, t.language,
               (SELECT m.text FROM conversation_messages m WHERE m.conversation_id = t.conversation_id
                  AND m.direction = 'out' AND m.author = 'moderator' AND m.at >= t.at ORDER BY m.at, m.id LIMIT 1) AS answer
             FROM agent_turns t WHERE t.id IN (SELECT value FROM json_each(?1)) AND t.conversation_id IS NOT NULL
             ORDER BY t.id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(AnsweredQuestion {
                    turn_id: r.get(0),
                    conversation_id: r.get(1),
                    question: r.get(2),
                    language: r.get(3),
                    answer: r.get::<Option<String>, _>(4)?,
                })
            })
            .collect())
    }

    // ---- the weekly summary's schedule ---------------------------------------

    /// The oldest scheduled summary not posted yet.
    pub async fn report_post_waiting(&self) -> StoreResult<Option<ReportPost>> {
        let row = sqlx::query(
            "SELECT due_at, random_id, attempts, next_attempt_at, posted_at FROM report_posts
             WHERE posted_at IS NULL ORDER BY due_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| ReportPost {
            due_at: r.get(0),
            random_id: r.get(1),
            attempts: r.get(2),
            next_attempt_at: r.get(3),
            posted_at: r.get(4),
        }))
    }

    /// The scheduled time of the newest summary row, posted or not.
    pub async fn report_post_last(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MAX(due_at) FROM report_posts").fetch_one(&self.pool).await?)
    }

    /// Schedules the summary for `due_at` (no-op when it already is).
    pub async fn schedule_report_post(&self, due_at: i64, random_id: i64) -> StoreResult<()> {
        sqlx::query("INSERT OR IGNORE INTO report_posts (due_at, random_id, next_attempt_at) VALUES (?, ?, ?)")
            .bind(due_at)
            .bind(random_id)
            .bind(due_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops a waiting summary (its schedule was changed in the config).
    pub async fn unschedule_report_post(&self, due_at: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM report_posts WHERE due_at = ? AND posted_at IS NULL")
            .bind(due_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The summary is in the chat (`message_id` unknown when Telegram said
    /// it was already sent).
    pub async fn report_post_sent(&self, due_at: i64, message_id: Option<i64>, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE report_posts SET posted_at = ?, message_id = ?, last_error = NULL WHERE due_at = ?")
            .bind(now)
            .bind(message_id)
            .bind(due_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An attempt failed; the next one is due at `next_attempt_at`.
    pub async fn report_post_failed(&self, due_at: i64, error: &str, next_attempt_at: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE report_posts SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE due_at = ?",
        )
        .bind(error)
        .bind(next_attempt_at)
        .bind(due_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
