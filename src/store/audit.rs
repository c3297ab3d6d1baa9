//! The moderator audit log: who asked what, when, about which case, and
//! whether we obeyed (senders who are not configured moderators are refused
//! and logged too).

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{Store, StoreResult};
use crate::telegram::{ChatId, MessageId};

/// One audit line to write.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub at: i64,
    pub moderator_id: i64,
    pub case_id: Option<i64>,
    /// account | relay | done | reject | retry | note | cases | case | refused | unknown
    pub action: String,
    pub detail: String,
    pub allowed: bool,
    pub chat_id: ChatId,
    pub message_id: MessageId,
}

/// One stored audit line. Serialises as the review export's
/// `moderator_actions[]` entry (docs/export.md).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(serialize_with = "super::serde_time::ms")]
    pub at: i64,
    pub moderator_id: i64,
    pub case_id: Option<i64>,
    pub action: String,
    pub detail: String,
    pub allowed: bool,
    #[serde(skip)]
    pub chat_id: ChatId,
    #[serde(skip)]
    pub message_id: i64,
}

pub(super) fn audit_from_row(r: &SqliteRow) -> AuditEntry {
    AuditEntry {
        id: r.get("id"),
        at: r.get("at"),
        moderator_id: r.get("moderator_id"),
        case_id: r.get("case_id"),
        action: r.get("action"),
        detail: r.get("detail"),
        allowed: r.get("allowed"),
        chat_id: r.get("chat_id"),
        message_id: r.get("message_id"),
    }
}

impl Store {
    pub async fn record_audit(&self, a: &NewAudit) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO moderator_audit (at, moderator_id, case_id, action, detail, allowed, chat_id, message_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(a.at)
        .bind(a.moderator_id)
        .bind(a.case_id)
        .bind(&a.action)
        .bind(&a.detail)
        .bind(a.allowed)
        .bind(a.chat_id)
        .bind(a.message_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The audit log, oldest first; only one case's lines when `case_id` is given.
    #[cfg(feature = "test-support")]
    pub async fn audit_log(&self, case_id: Option<i64>) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT * FROM moderator_audit WHERE (?1 IS NULL OR case_id = ?1) ORDER BY id")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(audit_from_row).collect())
    }
}
