//! Cases: everything handed to a person, with a short id moderators type
//! (`C12`), the message ids of its card and follow-ups in the moderator
//! chat, and how it ended.
//!
//! A case is opened by every moderator card (`outbox::insert_card`), in the
//! same transaction as the escalation that causes it.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::case_ref::short_id;
use super::outbox::{insert_card, insert_update, Escalation};
use super::{Store, StoreError, StoreResult};
use crate::domain::{EscalationReason, OrderRef};
use crate::runtime::clock::now_ms;
use crate::telegram::{ChatId, MessageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Closed,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Closed => "closed",
        }
    }
}

/// A case as stored, with its order's ref. Serialises as the review
/// export's `cases[]` entry (docs/export.md).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseRecord {
    pub id: i64,
    pub short_id: String,
    pub reason: EscalationReason,
    #[serde(skip)]
    pub order_id: Option<i64>,
    /// The ref of `order_id` (not a column: [`SELECT_CASE`] joins it).
    pub order_ref: Option<OrderRef>,
    #[serde(skip)]
    pub conversation_id: Option<i64>,
    pub status: CaseStatus,
    /// How it ended, in words (e.g. "completed: activated for account 123456 by moderator 9001").
    pub outcome: Option<String>,
    /// An account ID a moderator gave that the backend is checking.
    pub pending_account: Option<String>,
    #[serde(serialize_with = "super::serde_time::ms")]
    pub opened_at: i64,
    #[serde(serialize_with = "super::serde_time::opt_ms")]
    pub closed_at: Option<i64>,
}

/// Reads cases (alias `c`) with their order's ref, for [`case_from_row`].
pub(super) const SELECT_CASE: &str = "SELECT c.*, o.order_ref FROM cases c LEFT JOIN orders o ON o.id = c.order_id";

pub(super) fn case_from_row(r: &SqliteRow) -> StoreResult<CaseRecord> {
    let id: i64 = r.get("id");
    let corrupt = |what: String| StoreError::Corrupt(format!("case {id}: {what}"));
    let status = match r.get::<&str, _>("status") {
        "open" => CaseStatus::Open,
        "closed" => CaseStatus::Closed,
        other => return Err(corrupt(format!("status {other:?}"))),
    };
    Ok(CaseRecord {
        id,
        short_id: r.get::<Option<String>, _>("short_id").unwrap_or_else(|| short_id(id)),
        reason: super::required_reason(r, "reason").map_err(corrupt)?,
        order_id: r.get("order_id"),
        order_ref: r.get::<Option<String>, _>("order_ref").map(OrderRef::try_from).transpose().map_err(corrupt)?,
        conversation_id: r.get("conversation_id"),
        status,
        outcome: r.get("outcome"),
        pending_account: r.get("pending_account"),
        opened_at: r.get("opened_at"),
        closed_at: r.get("closed_at"),
    })
}

/// Closes every open case of an order with `outcome`, each with a
/// follow-up saying why, in the caller's transaction.
pub(super) async fn close_order_cases_tx(
    tx: &mut Transaction<'_, Sqlite>,
    order_id: i64,
    outcome: &str,
    follow_up: &str,
    now: i64,
) -> StoreResult<()> {
    let open: Vec<i64> = sqlx::query_scalar("SELECT id FROM cases WHERE order_id = ? AND status = 'open'")
        .bind(order_id)
        .fetch_all(&mut **tx)
        .await?;
    for case_id in open {
        sqlx::query(
            "UPDATE cases SET status = 'closed', outcome = ?, closed_at = ?, pending_account = NULL WHERE id = ?",
        )
        .bind(outcome)
        .bind(now)
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
        insert_update(tx, case_id, &format!("{}: {follow_up}", short_id(case_id)), now).await?;
    }
    Ok(())
}

impl Store {
    /// Opens a case with its card on its own (e.g. a customer's question,
    /// which changes no other state): the case and its card in one
    /// transaction. Returns the case id.
    pub async fn open_case(&self, card: &Escalation) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        let id = insert_card(&mut tx, card, now_ms()).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn case(&self, id: i64) -> StoreResult<Option<CaseRecord>> {
        let row = sqlx::query(&format!("{SELECT_CASE} WHERE c.id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// The case a moderator-chat message (card or follow-up) belongs to.
    pub async fn case_for_message(&self, chat: ChatId, message: MessageId) -> StoreResult<Option<CaseRecord>> {
        let row = sqlx::query(
            "SELECT c.*, o.order_ref FROM case_messages m JOIN cases c ON c.id = m.case_id
               LEFT JOIN orders o ON o.id = c.order_id
             WHERE m.chat_id = ? AND m.message_id = ?",
        )
        .bind(chat)
        .bind(message)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// Open cases, oldest first.
    pub async fn open_cases(&self) -> StoreResult<Vec<CaseRecord>> {
        let rows =
            sqlx::query(&format!("{SELECT_CASE} WHERE c.status = 'open' ORDER BY c.id")).fetch_all(&self.pool).await?;
        rows.iter().map(case_from_row).collect()
    }

    /// Every case, oldest first (tests).
    #[cfg(feature = "test-support")]
    pub async fn all_cases(&self) -> StoreResult<Vec<CaseRecord>> {
        let rows = sqlx::query(&format!("{SELECT_CASE} ORDER BY c.id")).fetch_all(&self.pool).await?;
        rows.iter().map(case_from_row).collect()
    }

    /// The open case of an order, if any (the newest).
    pub async fn open_case_for_order(&self, order_id: i64) -> StoreResult<Option<CaseRecord>> {
        let row = sqlx::query(&format!(
            "{SELECT_CASE} WHERE c.order_id = ? AND c.status = 'open' ORDER BY c.id DESC LIMIT 1"
        ))
        .bind(order_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// The open case of a conversation that is not about one order (a question).
    pub async fn open_question_case(&self, conversation_id: i64) -> StoreResult<Option<CaseRecord>> {
        let row = sqlx::query(&format!(
            "{SELECT_CASE} WHERE c.conversation_id = ? AND c.order_id IS NULL AND c.status = 'open'
             ORDER BY c.id DESC LIMIT 1"
        ))
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// Posts a follow-up to the case's card (through the outbox).
    pub async fn case_update(&self, case_id: i64, text: &str) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        insert_update(&mut tx, case_id, text, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes an open case with its outcome and queues the follow-up that
    /// shows it in the chat. False when it was already closed.
    pub async fn close_case(&self, case_id: i64, outcome: &str, follow_up: &str) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let closed = close_case_tx(&mut tx, case_id, outcome, now).await?;
        if closed {
            insert_update(&mut tx, case_id, follow_up, now).await?;
        }
        tx.commit().await?;
        Ok(closed)
    }

    /// Maps a moderator-chat message (e.g. our `/case` answer) to a case,
    /// so replies to it act on the case too.
    pub async fn map_case_message(&self, chat: ChatId, message: MessageId, case_id: i64) -> StoreResult<()> {
        sqlx::query("INSERT OR IGNORE INTO case_messages (chat_id, message_id, case_id) VALUES (?, ?, ?)")
            .bind(chat)
            .bind(message)
            .bind(case_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remembers (or clears) the account ID a moderator gave for the case's order.
    pub async fn set_case_pending_account(&self, case_id: i64, account: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE cases SET pending_account = ? WHERE id = ?")
            .bind(account)
            .bind(case_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Links a case to a conversation (e.g. an order's case once the order's
    /// conversation is known).
    pub async fn set_case_conversation(&self, case_id: i64, conversation_id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE cases SET conversation_id = ? WHERE id = ? AND conversation_id IS NULL")
            .bind(conversation_id)
            .bind(case_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Closes `case_id` with `outcome` if it is open; false when it was closed already.
pub(super) async fn close_case_tx(
    tx: &mut Transaction<'_, Sqlite>,
    case_id: i64,
    outcome: &str,
    now: i64,
) -> StoreResult<bool> {
    let closed = sqlx::query(
        "UPDATE cases SET status = 'closed', outcome = ?, closed_at = ?, pending_account = NULL
         WHERE id = ? AND status = 'open'",
    )
    .bind(outcome)
    .bind(now)
    .bind(case_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(closed > 0)
}
