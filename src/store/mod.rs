//! Persistence: one SQLite file through sqlx, schema in `migrations/`.
//!
//! Writes that belong together are one transaction: storing a Tribute
//! message and creating its order; a state transition, its event and the
//! moderator card it causes. WAL with `synchronous = NORMAL`: a power cut
//! can lose the last commits, which the workflow tolerates because every
//! side effect is idempotent (backend) or checked on restart (Telegram).

mod approved_pairs;
mod inbox;
mod messages;
mod orders;
mod outages;
mod outbox;
// ops/webhooks
mod metrics_snapshot;
mod webhooks;

// The LLM agent.
mod agent_turns;
mod customer_orders;
mod customer_outbox;

// Conversation review export.
pub mod export;
// The automation report's aggregates and the weekly summary's schedule.
pub mod report;
// How the row types serialise (as the review export's records).
pub(crate) mod serde_time;
pub use serde_time::rfc3339;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteOperation, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use approved_pairs::{ApprovedPair, NewApprovedPair};
pub use inbox::{InboundFailure, InboundRecord, InboxKind};
pub use messages::{MessageKind, Recorded};
pub use orders::{AccountStatus, DueOrders, NewOrder, OrderEvent, OrderRecord, Transition};
pub use outages::{OutageCause, OutageMember, OutageRecord};
pub use outbox::{AnswerLink, CardBody, CardSubject, Escalation, OutboxCard};
// ops/webhooks
pub use metrics_snapshot::StoreSnapshot;
pub use webhooks::{MatchCandidate, NewWebhookEvent, PurchaseFacts, PurchaseRecord, StoredEvent};

pub use agent_turns::{AgentTurnRecord, NewAgentTurn};
pub use customer_orders::CustomerOrderStatus;
pub use customer_outbox::{NewCustomerMessage, PendingCustomerMessage, Undelivered};

// Customer contact and the moderator chat.
mod audit;
mod case_ref;
mod cases;
mod coalesced_updates;
mod conversations;
mod dialogue_events;
mod handover;
mod learning;
// Retention and erasure (src/retention).
mod erasure;
mod queued_questions;
mod retention;
pub use audit::{AuditEntry, NewAudit};
pub use case_ref::{parse_short_id, short_id};
pub use cases::{CaseRecord, CaseStatus};
pub use coalesced_updates::CoalescedUpdate;
pub use conversations::{ConversationMessage, ConversationOrder, ConversationRecord, NewConversationMessage};
pub use dialogue_events::{DialogueEvent, DialogueEventKind};
pub use erasure::{ErasureCounts, Forgotten, PendingWork};
pub use learning::{LearnPreview, NewLearnPreview};
pub use queued_questions::{BudgetItem, QueueFigures, QueuedQuestion};

use crate::domain::{OrderState, TransitionError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Someone else moved the order first; the caller reloads it.
    #[error("order {order_id} is no longer in state {expected}")]
    StateChanged { order_id: i64, expected: OrderState },
    /// The order's product is already activated (activation `activation_id`):
    /// its account can no longer change; it resumes at the Tribute side.
    #[error("order {order_id} is already activated (activation {activation_id}); its account cannot change")]
    AlreadyActivated { order_id: i64, activation_id: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// Hints the contact task: a committed order move wrote a dialogue event.
    dialogue: crate::runtime::wake::Wake,
    /// Set when any connection inserts a moderator outbox row
    /// ([`Store::take_card_hint`]).
    card_written: Arc<AtomicBool>,
}

impl Store {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // A deleted or overwritten row is zeroed in the file, not only
            // unlinked: erased personal data must not linger in free pages.
            .pragma("secure_delete", "ON")
            // After a checkpoint the write-ahead log is cut back to 1 MiB: one
            // burst of writes (a pruning pass, an import) must not leave it
            // at its high-water mark for good.
            .pragma("journal_size_limit", "1048576")
            .busy_timeout(Duration::from_secs(10));
        let card_written = Arc::new(AtomicBool::new(false));
        let flag = card_written.clone();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _| {
                let flag = flag.clone();
                Box::pin(async move {
                    conn.lock_handle().await?.set_update_hook(move |row| {
                        if row.operation == SqliteOperation::Insert && row.table == "moderator_outbox" {
                            flag.store(true, Ordering::Release);
                        }
                    });
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, dialogue: crate::runtime::wake::Wake::new(), card_written })
    }

    /// Whether a card or case follow-up was written since the last call:
    /// the order worker wakes the desk's poster only then, not after every
    /// step. Set when the row is inserted, so a caller that asks after its
    /// own commit sees its own cards; another task's card whose commit is
    /// still in flight may be seen early and missed by the poster's look,
    /// which costs that card at most the poster's one-second sweep.
    pub fn take_card_hint(&self) -> bool {
        self.card_written.swap(false, Ordering::AcqRel)
    }

    /// Closes the pool, waiting for in-flight statements.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Reads the schema through the pool: proves a connection is free and
    /// the database file is readable. Read-only on purpose: `/healthz` is
    /// polled by monitors and must not turn every probe into a commit (WAL
    /// growth, fsyncs, and a writer lock taken away from the daemon).
    pub async fn probe(&self) -> StoreResult<()> {
        sqlx::query("SELECT count(*) FROM sqlite_master").fetch_one(&self.pool).await?;
        Ok(())
    }
}

/// An `EscalationReason` column read back as the type it was written
/// from (None: NULL); an unknown name is a corrupt row (`Err` names it).
fn reason_column(r: &sqlx::sqlite::SqliteRow, column: &str) -> Result<Option<crate::domain::EscalationReason>, String> {
    use sqlx::Row;
    let Some(name) = r.get::<Option<&str>, _>(column) else { return Ok(None) };
    crate::domain::EscalationReason::parse(name).map(Some).ok_or_else(|| format!("{column} {name:?}"))
}

/// [`reason_column`] of a column that is never NULL.
fn required_reason(r: &sqlx::sqlite::SqliteRow, column: &str) -> Result<crate::domain::EscalationReason, String> {
    reason_column(r, column)?.ok_or_else(|| format!("{column} missing"))
}

/// Orders for the library's own unit tests, stored the way the daemon
/// stores them (from a Tribute message).
#[cfg(test)]
pub(crate) mod test_orders {
    use super::{MessageKind, NewOrder, Recorded, Store};
    use crate::domain::{AccountId, Currency, Money, OrderRef};
    use crate::telegram::Message;

    /// The Tribute bot's message `msg` in its chat, answering `reply_to`.
    pub(crate) fn bot_message(msg: i32, reply_to: Option<i32>, text: &str) -> Message {
        Message {
            chat_id: 93372553,
            id: msg,
            sender_id: Some(93372553),
            outgoing: false,
            sender_is_bot: true,
            date: 1_700_000_000,
            text: text.into(),
            entities: vec![],
            reply_to,
            buttons: vec![],
        }
    }

    /// The order of Tribute message `msg` from `customer`, with `account` in its details.
    pub(crate) async fn record(store: &Store, msg: i32, customer: Option<i64>, account: Option<&str>) -> i64 {
        let message = bot_message(msg, None, "🆕 Custom Product Order ...");
        let new = NewOrder {
            order_ref: OrderRef::for_message(93372553, msg),
            customer_name: "Иван".into(),
            customer_id: customer,
            customer_username: None,
            product: "100 Diamonds".into(),
            price: Money::new(500, Currency::Eur).unwrap(),
            details: account.map(|a| format!("ID {a}")).unwrap_or_default(),
            account_candidates: account.map(|a| AccountId::parse(a).unwrap()).into_iter().collect(),
        };
        match store.record_tribute_message(&message, MessageKind::Order, None, Some(&new), None).await.unwrap() {
            Recorded::NewOrder(id) => id,
            other => panic!("a new order, not {other:?}"),
        }
    }
}
