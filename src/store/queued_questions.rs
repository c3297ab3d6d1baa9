//! Questions waiting for the account-wide budget (`queued_questions`,
//! `migrations/0016_crowds.sql`), and the counts that budget is measured
//! with.
//!
//! A question beyond the budget is not dropped and not answered later from
//! memory: it is a row with a due time, released oldest first by the
//! contact task, so a restart resumes the queue where it was. The budget
//! itself is counted from what the store already records (agent turns,
//! question cases), so a restart does not reset it either.

use sqlx::Row;

use super::cases::{case_from_row, CaseRecord, SELECT_CASE};
use super::{Store, StoreResult};

/// A question waiting in the queue, with the customer's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedQuestion {
    pub id: i64,
    pub conversation_id: i64,
    /// The stored `conversation_messages` row of the question.
    pub message_id: i64,
    /// `None` when the message is no longer stored (pruned): nothing to ask.
    pub text: Option<String>,
    /// Tell the customer their question was passed on if a case is opened for it.
    pub acknowledge: bool,
    pub queued_at: i64,
    /// Failed attempts to hand it over so far.
    pub attempts: i64,
}

/// What a burst card shows: the questions queued since the burst began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueFigures {
    /// Different customers with a question queued.
    pub senders: i64,
    pub questions: i64,
    /// Still waiting (not handed to the question handler yet).
    pub waiting: i64,
    /// When the first and the newest of them were queued (unix ms).
    pub first_at: Option<i64>,
    pub last_at: Option<i64>,
}

/// What the account-wide budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetItem {
    /// Agent turns about customers' questions (`agent_turns`, not `ask` on the command line).
    AgentTurn,
    /// Question cases opened for the moderators.
    QuestionCase,
}

impl Store {
    /// Queues the question stored as conversation message `message_id`
    /// (false when it is queued already), due at once.
    pub async fn queue_question(
        &self,
        conversation_id: i64,
        message_id: i64,
        acknowledge: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let res = sqlx::query(
            "INSERT INTO queued_questions (conversation_id, message_id, acknowledge, queued_at, due_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(conversation_id)
        .bind(message_id)
        .bind(acknowledge)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    /// How many questions wait in the queue.
    pub async fn questions_waiting(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM queued_questions WHERE released_at IS NULL")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The oldest waiting question that is due at `now`.
    pub async fn next_queued_question(&self, now: i64) -> StoreResult<Option<QueuedQuestion>> {
        let row = sqlx::query(
            "SELECT q.*, m.text FROM queued_questions q LEFT JOIN conversation_messages m ON m.id = q.message_id
             WHERE q.released_at IS NULL AND q.due_at <= ? ORDER BY q.id LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| QueuedQuestion {
            id: r.get("id"),
            conversation_id: r.get("conversation_id"),
            message_id: r.get("message_id"),
            text: r.get("text"),
            acknowledge: r.get("acknowledge"),
            queued_at: r.get("queued_at"),
            attempts: r.get("attempts"),
        }))
    }

    /// No waiting question is due before `until` (the budget has no room before then).
    pub async fn defer_queued_questions(&self, until: i64) -> StoreResult<()> {
        sqlx::query("UPDATE queued_questions SET due_at = MAX(due_at, ?) WHERE released_at IS NULL")
            .bind(until)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The question went to the question handler (with the error if it
    /// could not: it is not retried).
    pub async fn release_queued_question(&self, id: i64, now: i64, error: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE queued_questions SET released_at = ?, error = ? WHERE id = ?")
            .bind(now)
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Handing the question over failed: it is tried again at `retry_at`
    /// (the questions behind it go on meanwhile).
    pub async fn retry_queued_question(&self, id: i64, error: &str, retry_at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE queued_questions SET attempts = attempts + 1, error = ?, due_at = ? WHERE id = ?")
            .bind(error)
            .bind(retry_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The questions queued since `since` (unix ms): a burst card's figures.
    pub async fn queue_figures(&self, since: i64) -> StoreResult<QueueFigures> {
        let r = sqlx::query(
            "SELECT COUNT(DISTINCT conversation_id) AS senders, COUNT(*) AS questions,
                    COALESCE(SUM(released_at IS NULL), 0) AS waiting,
                    MIN(queued_at) AS first_at, MAX(queued_at) AS last_at
             FROM queued_questions WHERE queued_at >= ?",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueFigures {
            senders: r.get("senders"),
            questions: r.get("questions"),
            waiting: r.get("waiting"),
            first_at: r.get("first_at"),
            last_at: r.get("last_at"),
        })
    }

    /// The open case of the question queue (the current burst's card), if any.
    pub async fn open_queue_case(&self) -> StoreResult<Option<CaseRecord>> {
        let row = sqlx::query(&format!(
            "{SELECT_CASE} WHERE c.reason = 'questions_queued' AND c.status = 'open' ORDER BY c.id DESC LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// When the `limit`-th newest `item` since `since` (unix ms) happened,
    /// or `None` when there were fewer: a window of the budget is full
    /// until that one leaves it.
    pub async fn budget_full_since(&self, item: BudgetItem, since: i64, limit: u32) -> StoreResult<Option<i64>> {
        let sql = match item {
            BudgetItem::AgentTurn => {
                "SELECT at FROM agent_turns WHERE at >= ? AND conversation_id IS NOT NULL
                 ORDER BY at DESC LIMIT 1 OFFSET ?"
            }
            BudgetItem::QuestionCase => {
                "SELECT opened_at FROM cases WHERE opened_at >= ? AND reason = 'customer_question'
                 ORDER BY opened_at DESC LIMIT 1 OFFSET ?"
            }
        };
        Ok(sqlx::query_scalar(sql).bind(since).bind(i64::from(limit.max(1)) - 1).fetch_optional(&self.pool).await?)
    }
}
