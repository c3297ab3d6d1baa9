//! Moderator-approved question/answer pairs, the knowledge base's second
//! source next to the publisher's documents.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::runtime::clock::now_ms;

/// A pair to approve. The moderator desk stores it redacted, exactly as
/// the moderator saw it in the `/learn` preview they confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApprovedPair {
    pub conversation_id: i64,
    /// The customer's question (redacted by the desk).
    pub question: String,
    /// The team's answer that the moderator approved (redacted by the desk).
    pub answer: String,
    /// "ru", "en", …; `None` = detected at indexing.
    pub language: Option<String>,
    /// The moderator's Telegram user id.
    pub approved_by: i64,
}

/// Serialisable: the `kb` commands send a database's pairs to the running
/// daemon's index (`knowledge::live`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApprovedPair {
    pub id: i64,
    pub conversation_id: i64,
    pub question: String,
    pub answer: String,
    pub language: Option<String>,
    pub approved_by: i64,
    /// Unix ms.
    pub approved_at: i64,
}

impl Store {
    /// Stores a pair; approving the same question and answer of a
    /// conversation again returns the existing row.
    pub async fn add_approved_pair(&self, pair: &NewApprovedPair) -> StoreResult<ApprovedPair> {
        if pair.question.trim().is_empty() || pair.answer.trim().is_empty() {
            return Err(StoreError::Corrupt("an approved pair needs a question and an answer".into()));
        }
        sqlx::query(
            "INSERT INTO approved_pairs (conversation_id, question, answer, language, approved_by, approved_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (conversation_id, question, answer) DO NOTHING",
        )
        .bind(pair.conversation_id)
        .bind(&pair.question)
        .bind(&pair.answer)
        .bind(&pair.language)
        .bind(pair.approved_by)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT id, conversation_id, question, answer, language, approved_by, approved_at
             FROM approved_pairs WHERE conversation_id = ? AND question = ? AND answer = ?",
        )
        .bind(pair.conversation_id)
        .bind(&pair.question)
        .bind(&pair.answer)
        .fetch_one(&self.pool)
        .await?;
        Ok(pair_from_row(&row))
    }

    /// Pairs the knowledge base does not have yet whose retry is due, oldest first.
    pub async fn pairs_to_index(&self, now: i64, limit: i64) -> StoreResult<Vec<(ApprovedPair, i64)>> {
        let rows = sqlx::query(
            "SELECT id, conversation_id, question, answer, language, approved_by, approved_at, index_attempts
             FROM approved_pairs
             WHERE indexed_at IS NULL AND (next_index_at IS NULL OR next_index_at <= ?)
             ORDER BY id LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (pair_from_row(r), r.get::<i64, _>("index_attempts"))).collect())
    }

    /// The knowledge base has the pair now.
    pub async fn mark_pair_indexed(&self, id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE approved_pairs SET indexed_at = ?, next_index_at = NULL WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Indexing failed; try again at `at` (unix ms).
    pub async fn retry_pair_later(&self, id: i64, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE approved_pairs SET index_attempts = index_attempts + 1, next_index_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every approved pair, oldest first.
    pub async fn approved_pairs(&self) -> StoreResult<Vec<ApprovedPair>> {
        let rows = sqlx::query(
            "SELECT id, conversation_id, question, answer, language, approved_by, approved_at
             FROM approved_pairs ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(pair_from_row).collect())
    }
}

fn pair_from_row(row: &sqlx::sqlite::SqliteRow) -> ApprovedPair {
    ApprovedPair {
        id: row.get("id"),
        conversation_id: row.get("conversation_id"),
        question: row.get("question"),
        answer: row.get("answer"),
        language: row.get("language"),
        approved_by: row.get("approved_by"),
        approved_at: row.get("approved_at"),
    }
}
