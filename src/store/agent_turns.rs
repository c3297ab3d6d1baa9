//! Agent turns: one row per customer question the agent handled.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::runtime::clock::now_ms;

/// A turn as stored. Serialises as the review export's `agent_turns[]`
/// entry (docs/export.md).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentTurnRecord {
    pub id: i64,
    /// Unix ms.
    #[serde(serialize_with = "super::serde_time::ms")]
    pub at: i64,
    #[serde(skip)]
    pub conversation_id: Option<i64>,
    #[serde(skip)]
    pub customer_id: Option<i64>,
    pub question: String,
    /// The draft: the model's answer or the curated answer, if there was one.
    pub answer: Option<String>,
    /// What the customer was sent (the answer, or the holding message).
    pub reply: String,
    /// `ru` | `en`.
    pub language: String,
    pub confidence: Option<f64>,
    /// Knowledge-base hit ids.
    pub sources: Vec<String>,
    /// Escalation reasons as `{"code", "detail"}` objects; empty when answered.
    pub reasons: serde_json::Value,
    pub escalated: bool,
    /// `llm` | `retrieval`.
    pub mode: String,
    pub latency_ms: i64,
}

/// A turn about to be stored.
#[derive(Debug, Clone)]
pub struct NewAgentTurn<'a> {
    pub conversation_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub question: &'a str,
    pub answer: Option<&'a str>,
    pub reply: &'a str,
    pub language: &'a str,
    pub confidence: Option<f64>,
    pub sources: &'a [String],
    pub reasons: serde_json::Value,
    pub escalated: bool,
    pub mode: &'a str,
    pub latency_ms: i64,
}

pub(super) fn turn_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<AgentTurnRecord> {
    let id: i64 = row.get("id");
    let corrupt = |what: &str| StoreError::Corrupt(format!("agent turn {id}: {what}"));
    Ok(AgentTurnRecord {
        id,
        conversation_id: row.get("conversation_id"),
        customer_id: row.get("customer_id"),
        question: row.get("question"),
        answer: row.get("answer"),
        reply: row.get("reply"),
        language: row.get("language"),
        confidence: row.get("confidence"),
        sources: serde_json::from_str(row.get::<&str, _>("sources_json")).map_err(|_| corrupt("sources"))?,
        reasons: serde_json::from_str(row.get::<&str, _>("reasons_json")).map_err(|_| corrupt("reasons"))?,
        escalated: row.get::<i64, _>("escalated") != 0,
        mode: row.get("mode"),
        latency_ms: row.get("latency_ms"),
        at: row.get("at"),
    })
}

impl Store {
    /// Stores one turn; returns its id.
    pub async fn record_agent_turn(&self, t: &NewAgentTurn<'_>) -> StoreResult<i64> {
        let sources = serde_json::to_string(t.sources).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id = sqlx::query(
            "INSERT INTO agent_turns
               (conversation_id, customer_id, question, answer, reply, language, confidence, sources_json,
                reasons_json, escalated, mode, latency_ms, at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.conversation_id)
        .bind(t.customer_id)
        .bind(t.question)
        .bind(t.answer)
        .bind(t.reply)
        .bind(t.language)
        .bind(t.confidence)
        .bind(sources)
        .bind(t.reasons.to_string())
        .bind(t.escalated)
        .bind(t.mode)
        .bind(t.latency_ms)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    /// The latest turn of a conversation (or, without one, of a customer).
    pub async fn last_agent_turn(
        &self,
        conversation_id: Option<i64>,
        customer_id: Option<i64>,
    ) -> StoreResult<Option<AgentTurnRecord>> {
        let row = match (conversation_id, customer_id) {
            (Some(c), _) => {
                sqlx::query("SELECT * FROM agent_turns WHERE conversation_id = ? ORDER BY id DESC LIMIT 1")
                    .bind(c)
                    .fetch_optional(&self.pool)
                    .await?
            }
            (None, Some(u)) => {
                sqlx::query("SELECT * FROM agent_turns WHERE customer_id = ? ORDER BY id DESC LIMIT 1")
                    .bind(u)
                    .fetch_optional(&self.pool)
                    .await?
            }
            (None, None) => None,
        };
        row.as_ref().map(turn_from_row).transpose()
    }

    /// Agent turns for one customer since `since_ms` (the daily budget).
    pub async fn agent_turns_of_customer_since(&self, customer_id: i64, since_ms: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM agent_turns WHERE customer_id = ? AND at >= ?")
            .bind(customer_id)
            .bind(since_ms)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Turns since `since_ms` (unix ms), oldest first (the demo and tests read them).
    #[cfg(feature = "test-support")]
    pub async fn agent_turns_since(&self, since_ms: i64, limit: i64) -> StoreResult<Vec<AgentTurnRecord>> {
        let rows = sqlx::query("SELECT * FROM agent_turns WHERE at >= ? ORDER BY id LIMIT ?")
            .bind(since_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(turn_from_row).collect()
    }
}

impl Store {
    /// Agent turns by outcome, for `/metrics`: (answered, escalated).
    pub async fn agent_turn_counts(&self) -> StoreResult<(i64, i64)> {
        // With the turns the pruner deleted since.
        let (answered, escalated): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT SUM(n * (outcome = 'answered')), SUM(n * (outcome = 'escalated')) FROM (
               SELECT CASE WHEN escalated = 1 THEN 'escalated' ELSE 'answered' END AS outcome, COUNT(*) AS n
               FROM agent_turns WHERE conversation_id IS NOT NULL GROUP BY 1
               UNION ALL SELECT label, n FROM retention_counts WHERE kind = 'pruned' AND what = 'agent_turns')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((answered.unwrap_or(0), escalated.unwrap_or(0)))
    }
}
