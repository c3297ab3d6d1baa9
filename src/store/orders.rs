//! Orders as a persisted state machine with a per-order event log.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::outages::OutageCause;
use super::outbox::{insert_card, Escalation};
use super::{Store, StoreError, StoreResult};
use crate::domain::{AccountId, Currency, EscalationReason, Money, OrderRef, OrderState};
use crate::runtime::clock::now_ms;
use crate::telegram::{ChatId, Message, MessageId};

/// A parsed order about to be stored.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order_ref: OrderRef,
    pub customer_name: String,
    pub customer_id: Option<i64>,
    pub customer_username: Option<String>,
    pub product: String,
    pub price: Money,
    pub details: String,
    /// Distinct account IDs found in the details.
    pub account_candidates: Vec<AccountId>,
}

/// The account ID situation of an order, derived from its candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountStatus {
    Found(AccountId),
    Missing,
    Ambiguous(Vec<AccountId>),
}

impl AccountStatus {
    pub fn from_candidates(mut c: Vec<AccountId>) -> Self {
        match c.len() {
            0 => AccountStatus::Missing,
            1 => AccountStatus::Found(c.remove(0)),
            _ => AccountStatus::Ambiguous(c),
        }
    }

    fn candidates(&self) -> Vec<&AccountId> {
        match self {
            AccountStatus::Found(a) => vec![a],
            AccountStatus::Missing => vec![],
            AccountStatus::Ambiguous(v) => v.iter().collect(),
        }
    }
}

/// An order as stored. Serialises as the review export's `orders[]` entry
/// (docs/export.md), less what the export adds from the order's
/// conversation link ([`super::ConversationOrder`]) and its `history`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderRecord {
    #[serde(skip)]
    pub id: i64,
    pub order_ref: OrderRef,
    pub state: OrderState,
    pub product: String,
    /// Serialised as `amount_minor` and `currency`.
    #[serde(flatten)]
    pub price: Money,
    pub customer_name: String,
    pub customer_username: Option<String>,
    pub details: String,
    pub escalation_reason: Option<EscalationReason>,
    pub activation_id: Option<String>,
    #[serde(serialize_with = "super::serde_time::ms")]
    pub created_at: i64,
    #[serde(serialize_with = "super::serde_time::ms")]
    pub updated_at: i64,
    #[serde(skip)]
    pub chat_id: ChatId,
    #[serde(skip)]
    pub message_id: MessageId,
    #[serde(skip)]
    pub customer_id: Option<i64>,
    /// Not exported: the export's `account` is the one given in the conversation.
    #[serde(skip)]
    pub account: AccountStatus,
    #[serde(skip)]
    pub reply_message_id: Option<MessageId>,
    #[serde(skip)]
    pub button_message_id: Option<MessageId>,
    #[serde(skip)]
    pub activation_failures: i64,
    /// Not due before this (unix ms); `None`: due now if unsettled.
    #[serde(skip)]
    pub next_attempt_at: Option<i64>,
    /// The random_id our reply to Tribute was (or is about to be) sent with.
    #[serde(skip)]
    pub reply_random_id: Option<i64>,
    /// When the order entered `replied`: the Send button's deadline counts from here.
    #[serde(skip)]
    pub replied_at: Option<i64>,
    /// Telegram failures of the current step in a row.
    #[serde(skip)]
    pub step_failures: i64,
}

/// What [`Store::due_orders`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueOrders {
    /// Due now, in the order to take them.
    pub ids: Vec<i64>,
    /// When the next unsettled order falls due after `now` (unix ms), if
    /// one waits; told only when fewer than the limit are due now.
    pub later: Option<i64>,
}

/// One line of an order's history (a row of `order_events`); serialises as
/// the review export's `orders[].history[]` entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderEvent {
    #[serde(skip)]
    pub order_id: i64,
    #[serde(serialize_with = "super::serde_time::ms")]
    pub at: i64,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: String,
}

/// A state change and the facts learned with it, committed atomically.
#[derive(Debug, Clone)]
pub struct Transition {
    pub to: OrderState,
    pub note: String,
    pub activation_id: Option<String>,
    pub reply_message_id: Option<MessageId>,
    pub button_message_id: Option<MessageId>,
    /// The reply's `random_id` (kept if the order has one already).
    pub reply_random_id: Option<i64>,
    /// The case this transition opens (its reason is the order's escalation reason).
    pub escalation: Option<Escalation>,
    /// Not due in its new state before this time (unix ms): a move whose
    /// next step waits for something expected (the bot's Send button after
    /// our reply). Unset: due at once.
    pub not_before: Option<i64>,
}

impl Transition {
    pub fn to(to: OrderState, note: impl Into<String>) -> Self {
        Self {
            to,
            note: note.into(),
            activation_id: None,
            reply_message_id: None,
            button_message_id: None,
            reply_random_id: None,
            escalation: None,
            not_before: None,
        }
    }

    /// What the compare-and-set writes besides the state.
    fn changes(&self) -> OrderChanges<'_> {
        OrderChanges {
            activation_id: self.activation_id.as_deref(),
            reply_message_id: self.reply_message_id,
            button_message_id: self.button_message_id,
            escalation_reason: self.escalation.as_ref().map(|c| c.reason),
            reply_random_id: self.reply_random_id,
            not_before: self.not_before,
            reset_step_failures: true,
            ..OrderChanges::default()
        }
    }
}

pub(super) async fn insert_order(
    tx: &mut Transaction<'_, Sqlite>,
    msg: &Message,
    order: &NewOrder,
    now: i64,
) -> StoreResult<i64> {
    let candidates: Vec<&str> = order.account_candidates.iter().map(AccountId::as_str).collect();
    let id = sqlx::query(
        "INSERT INTO orders
           (order_ref, chat_id, message_id, customer_name, customer_id, customer_username, product,
            amount_minor, currency, details, account_candidates, state, created_at, updated_at, last_note)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'order received and parsed')",
    )
    .bind(order.order_ref.as_str())
    .bind(msg.chat_id)
    .bind(msg.id)
    .bind(&order.customer_name)
    .bind(order.customer_id)
    .bind(&order.customer_username)
    .bind(&order.product)
    .bind(order.price.amount_minor())
    .bind(order.price.currency().code())
    .bind(&order.details)
    .bind(serde_json::to_string(&candidates).expect("strings serialise"))
    .bind(OrderState::Received.as_str())
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .last_insert_rowid();
    Ok(id)
}

/// What an order transition writes besides the state. Every transition
/// sets `updated_at`, sets `next_attempt_at` (due now in its new state,
/// unless `not_before`) and ends a wait for a failing dependency (`waiting_on`,
/// see [`Store::park`]); the rest is written only when set here.
#[derive(Debug, Default)]
pub(super) struct OrderChanges<'a> {
    pub activation_id: Option<&'a str>,
    pub reply_message_id: Option<MessageId>,
    pub button_message_id: Option<MessageId>,
    pub escalation_reason: Option<EscalationReason>,
    /// The reply's `random_id`, kept if one is already set: committed with
    /// the move to `activated`, before the reply can be sent.
    pub reply_random_id: Option<i64>,
    /// The order's account IDs, replaced (a JSON array).
    pub account_candidates: Option<&'a str>,
    pub reset_activation_failures: bool,
    pub reset_step_failures: bool,
    /// Applies only to an order that was never activated (`activation_id IS NULL`).
    pub unless_activated: bool,
    /// `next_attempt_at` in the new state (`None`: due at once).
    pub not_before: Option<i64>,
}

/// The compare-and-set's statement; `?1`..`?15` as [`cas_order_state`]
/// binds them. Setting `last_note` logs the move (migration 0021's
/// trigger). `for_dialogue`: the move wrote a dialogue event (the same
/// tests as the triggers that write them), or it changed the dialogue of
/// the order's customer (0012's trigger marks it; a dialogue validating
/// the customer's ID learns so that the order completed).
const CAS_SQL: &str = "UPDATE orders SET state = ?1, updated_at = ?2, next_attempt_at = ?15,
        activation_id = COALESCE(?3, activation_id),
        reply_message_id = COALESCE(?4, reply_message_id),
        button_message_id = COALESCE(?5, button_message_id),
        escalation_reason = COALESCE(?6, escalation_reason),
        account_candidates = COALESCE(?7, account_candidates),
        activation_failures = CASE WHEN ?8 THEN 0 ELSE activation_failures END,
        step_failures = CASE WHEN ?9 THEN 0 ELSE step_failures END,
        replied_at = CASE WHEN ?1 = 'replied' THEN ?2 ELSE replied_at END,
        reply_random_id = COALESCE(reply_random_id, ?13),
        waiting_since = NULL, waiting_on = NULL, last_note = ?14
     WHERE id = ?10 AND state = ?11 AND (NOT ?12 OR activation_id IS NULL)
     RETURNING *, CASE state
        WHEN 'needs_customer' THEN customer_id IS NOT NULL
        WHEN 'confirmed' THEN EXISTS (SELECT 1 FROM cases c WHERE c.order_id = orders.id AND c.status = 'open')
        ELSE 0 END
        OR EXISTS (SELECT 1 FROM conversation_orders l WHERE l.order_id = orders.id) AS for_dialogue";

/// The compare-and-set every order state change goes through: moves the
/// order from `from` to `to` (a step the state machine allows,
/// [`OrderState::transition`]) with `changes`, and logs the step with
/// `note` in `order_events`, only if the order is still in `from` (and
/// never activated, with `unless_activated`); a move that concerns the
/// customer dialogue writes its event too. One statement (the log line and
/// the dialogue's event are triggers): on its own it is its own
/// transaction, or part of the caller's. Returns the order as it now is
/// (`RETURNING`: the order worker goes on with the next step without
/// reading the row back); `None`: it did not apply, and nothing was written.
pub(super) async fn cas_order_state<'c>(
    db: impl sqlx::Executor<'c, Database = Sqlite>,
    order_id: i64,
    from: OrderState,
    to: OrderState,
    changes: &OrderChanges<'_>,
    note: &str,
    now: i64,
) -> StoreResult<Option<Moved>> {
    from.transition(to)?;
    let row = sqlx::query(CAS_SQL)
        .bind(to.as_str())
        .bind(now)
        .bind(changes.activation_id)
        .bind(changes.reply_message_id)
        .bind(changes.button_message_id)
        .bind(changes.escalation_reason.map(EscalationReason::as_str))
        .bind(changes.account_candidates)
        .bind(changes.reset_activation_failures)
        .bind(changes.reset_step_failures)
        .bind(order_id)
        .bind(from.as_str())
        .bind(changes.unless_activated)
        .bind(changes.reply_random_id)
        .bind(note)
        .bind(changes.not_before)
        .fetch_optional(db)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Moved { order: order_from_row(&row)?, for_dialogue: row.get("for_dialogue") }))
}

/// What an applied compare-and-set did.
pub(super) struct Moved {
    pub(super) order: OrderRecord,
    /// It wrote an event for the customer dialogue or changed a dialogue:
    /// once committed, hint the contact task ([`Store::hint_dialogue`]).
    pub(super) for_dialogue: bool,
}

/// Marks an order waiting on a dependency, binding the cause, now, now
/// and the cause: since now, unless it already waited on the same one.
const WAITING_ON: &str =
    "waiting_since = CASE WHEN waiting_on = ? THEN COALESCE(waiting_since, ?) ELSE ? END, waiting_on = ?";

pub(super) fn order_from_row(row: &SqliteRow) -> StoreResult<OrderRecord> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("order {}: {what}", row.get::<i64, _>("id")));
    let currency: Currency = row.get::<&str, _>("currency").parse().map_err(|_| corrupt("currency"))?;
    let price = Money::new(row.get("amount_minor"), currency).map_err(|_| corrupt("amount"))?;
    let candidates: Vec<AccountId> =
        serde_json::from_str(row.get::<&str, _>("account_candidates")).map_err(|_| corrupt("account IDs"))?;
    Ok(OrderRecord {
        id: row.get("id"),
        order_ref: row.get::<String, _>("order_ref").try_into().map_err(|_| corrupt("order_ref"))?,
        chat_id: row.get("chat_id"),
        message_id: row.get::<i64, _>("message_id") as MessageId,
        customer_name: row.get("customer_name"),
        customer_id: row.get("customer_id"),
        customer_username: row.get("customer_username"),
        product: row.get("product"),
        price,
        details: row.get("details"),
        account: AccountStatus::from_candidates(candidates),
        state: OrderState::parse(row.get("state")).ok_or_else(|| corrupt("state"))?,
        activation_id: row.get("activation_id"),
        reply_message_id: row.get::<Option<i64>, _>("reply_message_id").map(|v| v as MessageId),
        button_message_id: row.get::<Option<i64>, _>("button_message_id").map(|v| v as MessageId),
        escalation_reason: super::reason_column(row, "escalation_reason").map_err(|e| corrupt(&e))?,
        activation_failures: row.get("activation_failures"),
        next_attempt_at: row.get("next_attempt_at"),
        reply_random_id: row.get("reply_random_id"),
        replied_at: row.get("replied_at"),
        step_failures: row.get("step_failures"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

pub(super) fn event_from_row(r: &SqliteRow) -> OrderEvent {
    OrderEvent {
        order_id: r.get("order_id"),
        at: r.get("at"),
        from_state: r.get("from_state"),
        to_state: r.get("to_state"),
        note: r.get("note"),
    }
}

impl OrderRecord {
    /// All account IDs found in the details (for display).
    pub fn account_candidates(&self) -> Vec<&AccountId> {
        self.account.candidates()
    }
}

impl Store {
    pub async fn order(&self, id: i64) -> StoreResult<OrderRecord> {
        let row = sqlx::query("SELECT * FROM orders WHERE id = ?").bind(id).fetch_one(&self.pool).await?;
        order_from_row(&row)
    }

    pub async fn order_by_ref(&self, order_ref: &OrderRef) -> StoreResult<Option<OrderRecord>> {
        let row = sqlx::query("SELECT * FROM orders WHERE order_ref = ?")
            .bind(order_ref.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// Orders, newest first, optionally only in one state.
    pub async fn list_orders(&self, state: Option<OrderState>, limit: i64) -> StoreResult<Vec<OrderRecord>> {
        let rows = sqlx::query("SELECT * FROM orders WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2")
            .bind(state.map(OrderState::as_str))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Order counts per state.
    #[cfg(feature = "test-support")]
    pub async fn count_by_state(&self) -> StoreResult<Vec<(OrderState, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM orders GROUP BY state").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let s: &str = r.get("state");
                OrderState::parse(s)
                    .map(|st| (st, r.get::<i64, _>("n")))
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown state {s:?}")))
            })
            .collect()
    }

    pub async fn order_events(&self, order_id: i64) -> StoreResult<Vec<OrderEvent>> {
        let rows = sqlx::query("SELECT * FROM order_events WHERE order_id = ? ORDER BY id")
            .bind(order_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(event_from_row).collect())
    }

    /// Commits a state transition, its event and any moderator card in one
    /// transaction, only if the order is still in `from` (so two workers
    /// can never both take the same step).
    pub async fn transition(&self, order_id: i64, from: OrderState, t: Transition) -> StoreResult<()> {
        self.advance(order_id, from, t).await.map(|_| ())
    }

    /// [`Self::transition`], returning the order as the commit left it:
    /// the order worker's next step starts from it instead of reading the
    /// row again.
    pub async fn advance(&self, order_id: i64, from: OrderState, t: Transition) -> StoreResult<OrderRecord> {
        let now = now_ms();
        let moved = match &t.escalation {
            // One statement, its own transaction: the common step.
            None => cas_order_state(&self.pool, order_id, from, t.to, &t.changes(), &t.note, now).await?,
            Some(card) => {
                let mut tx = self.pool.begin().await?;
                let moved = cas_order_state(&mut *tx, order_id, from, t.to, &t.changes(), &t.note, now).await?;
                if moved.is_some() {
                    insert_card(&mut tx, card, now).await?;
                    tx.commit().await?;
                }
                moved
            }
        };
        let Some(moved) = moved else { return Err(StoreError::StateChanged { order_id, expected: from }) };
        self.hint_dialogue(moved.for_dialogue);
        Ok(moved.order)
    }

    /// Records a fact that is not a state change (e.g. the Send button was
    /// found and is about to be pressed), if the order is still in `state`
    /// (like every note below: a note about a step another hand has moved
    /// the order past is not written).
    pub async fn note(
        &self,
        order_id: i64,
        state: OrderState,
        note: &str,
        button_message_id: Option<MessageId>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE orders SET updated_at = ?, last_note = ?, button_message_id = COALESCE(?, button_message_id)
             WHERE id = ? AND state = ?",
        )
        .bind(now_ms())
        .bind(note)
        .bind(button_message_id)
        .bind(order_id)
        .bind(state.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Parks an order until `until` (unix ms) without changing its state,
    /// while the backend is unavailable (`failure` counts one more failed
    /// activation). The order is marked waiting on the backend since the
    /// first park of the streak: the outage watch (`orders::outage`)
    /// reports orders that wait too long.
    pub async fn park(
        &self,
        order_id: i64,
        state: OrderState,
        until: i64,
        note: &str,
        failure: bool,
    ) -> StoreResult<()> {
        let now = now_ms();
        sqlx::query(&format!(
            "UPDATE orders SET activation_failures = activation_failures + ?, next_attempt_at = ?, updated_at = ?,
               last_note = ?, {WAITING_ON}
             WHERE id = ? AND state = ?"
        ))
        .bind(i64::from(failure))
        .bind(until)
        .bind(now)
        .bind(note)
        .bind(OutageCause::Backend.as_str())
        .bind(now)
        .bind(now)
        .bind(OutageCause::Backend.as_str())
        .bind(order_id)
        .bind(state.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An escalated order whose product is already activated goes back to
    /// where it stopped: waiting for the Send button when our reply is in
    /// the chat, else replying. Its account stays the activated one.
    pub async fn resume_activated(&self, order_id: i64, note: &str) -> StoreResult<OrderState> {
        let order = self.order(order_id).await?;
        if order.activation_id.is_none() {
            return Err(StoreError::Corrupt(format!("{} has no activation to resume", order.order_ref)));
        }
        let to = if order.reply_message_id.is_some() { OrderState::Replied } else { OrderState::Activated };
        self.transition(order_id, order.state, Transition::to(to, note)).await?;
        Ok(to)
    }

    /// Parks an order like [`Self::park`] and opens a case saying why,
    /// unless the order already has an open case for the same reason (a
    /// retried order must not flood the moderator chat).
    pub async fn park_with_alert(
        &self,
        order_id: i64,
        state: OrderState,
        until: i64,
        note: &str,
        card: &Escalation,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let parked = sqlx::query(
            "UPDATE orders SET activation_failures = activation_failures + 1, next_attempt_at = ?, updated_at = ?,
               last_note = ?
             WHERE id = ? AND state = ?",
        )
        .bind(until)
        .bind(now)
        .bind(note)
        .bind(order_id)
        .bind(state.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if parked == 0 {
            return Ok(());
        }
        let open: Option<i64> =
            sqlx::query_scalar("SELECT id FROM cases WHERE order_id = ? AND reason = ? AND status = 'open' LIMIT 1")
                .bind(order_id)
                .bind(card.reason.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if open.is_none() {
            insert_card(&mut tx, card, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Unsettled orders that are due at `now`, oldest first, at most
    /// `limit`: the order worker's queue. Orders furthest along come first,
    /// so a Send press never waits behind a burst of new orders' backend
    /// calls. With them, in the same statement, when the next unsettled
    /// order falls due after `now`: a pass that finds nothing due knows how
    /// long to sleep without a second look.
    pub async fn due_orders(&self, now: i64, limit: i64) -> StoreResult<DueOrders> {
        let rows = sqlx::query(
            "SELECT id, later FROM (
                 SELECT id, NULL AS later,
                        CASE state WHEN 'replied' THEN 0 WHEN 'activated' THEN 1 ELSE 2 END AS rank
                 FROM orders
                 WHERE state IN ('received', 'activation_requested', 'activated', 'replied')
                   AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
                 UNION ALL
                 SELECT NULL, MIN(next_attempt_at), 3 FROM orders
                 WHERE state IN ('received', 'activation_requested', 'activated', 'replied')
                   AND next_attempt_at > ?1)
             ORDER BY rank, id
             LIMIT ?2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut due = DueOrders { ids: Vec::with_capacity(rows.len()), later: None };
        for row in &rows {
            match row.get::<Option<i64>, _>("id") {
                Some(id) => due.ids.push(id),
                None => due.later = row.get("later"),
            }
        }
        Ok(due)
    }

    /// Commits the random_id of the order's reply before the first send.
    pub async fn set_reply_random_id(&self, order_id: i64, random_id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE orders SET reply_random_id = ? WHERE id = ? AND reply_random_id IS NULL")
            .bind(random_id)
            .bind(order_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Not due before `until` (unix ms), without an event: the order waits
    /// for something that is expected (the Send button).
    pub async fn wait_until(&self, order_id: i64, until: i64) -> StoreResult<()> {
        sqlx::query("UPDATE orders SET next_attempt_at = ? WHERE id = ?")
            .bind(until)
            .bind(order_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A Telegram step failed for a transient reason: due again at `until`,
    /// one more failure in a row counted, the reason in the history, and
    /// the order marked waiting on Telegram (see [`Self::park`]).
    pub async fn park_step(&self, order_id: i64, state: OrderState, until: i64, note: &str) -> StoreResult<()> {
        let now = now_ms();
        sqlx::query(&format!(
            "UPDATE orders SET step_failures = step_failures + 1, next_attempt_at = ?, updated_at = ?, last_note = ?,
               {WAITING_ON}
             WHERE id = ? AND state = ?"
        ))
        .bind(until)
        .bind(now)
        .bind(note)
        .bind(OutageCause::Telegram.as_str())
        .bind(now)
        .bind(now)
        .bind(OutageCause::Telegram.as_str())
        .bind(order_id)
        .bind(state.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
