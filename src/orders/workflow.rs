//! Drives one order from its stored state to a settled one.
//!
//! Recovery points (each committed before the side effect after it):
//! `received` → `activation_requested` → backend call → `activated` (with
//! the reply's `random_id`) → reply → `replied` → button noted → press →
//! `confirmed`. A restart in any state repeats at most an idempotent step:
//! the backend call carries the same idempotency key; the reply is looked
//! up in the chat before sending again (sent without a look only by the
//! pass that committed its `random_id`); a noted button that is gone counts
//! as pressed only if the chat shows our reply delivered (else a person
//! looks).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, info_span, warn, Instrument};

use super::checkpoint::{Checkpoint, CheckpointHook};
use super::ingest::{ingest, IngestConfig};
use super::outage::OutageReport;
use crate::backend::{ActivationOutcome, ActivationRequest, BackendClient, BackendError};
use crate::domain::{EscalationReason, OrderState};
use crate::runtime::backoff::{self, Jitter};
use crate::runtime::clock::now_ms;
use crate::runtime::shutdown::stopped;
use crate::store::{AccountStatus, Escalation, OrderRecord, Store, StoreError, Transition};
use crate::telegram::send_once::{send_once, Once, OnceError, SendFailure};
use crate::telegram::{history, ChatId, Message, MessageId, Messenger, MessengerError, MessengerResult, RandomId};

#[derive(Debug, Clone)]
pub struct WorkflowConfig {
    pub tribute_chat: ChatId,
    pub moderator_chat: Option<ChatId>,
    /// Texts of the bot's confirmation button (case-insensitive).
    pub send_button_texts: Vec<String>,
    /// How the bot's follow-up begins once Send delivered our reply
    /// (case-insensitive): the only proof of delivery when the button is
    /// gone and the answer to our press was lost.
    pub delivered_texts: Vec<String>,
    /// How long after our reply the Send button may take to appear.
    pub button_timeout: Duration,
    /// Flood waits up to this long are slept through; longer ones park the order.
    pub max_flood_sleep: Duration,
    /// First delay before retrying an activation the backend could not take; doubles per failure.
    pub park_delay: Duration,
    /// The reply to the Tribute notification. Placeholders: {product}, {account_id}, {order_ref}, {price}.
    pub reply_template: String,
    /// On the first start (empty store) only Tribute messages this recent are processed.
    pub first_start_lookback: Duration,
    /// How often the Tribute chat history is re-read in case an update was missed.
    pub resync_interval: Duration,
    /// How far back (by message date) each periodic re-read goes, so a gap
    /// below the newest stored message is read again too.
    pub resync_window: Duration,
    /// The longest wait between retries of a step Telegram could not take.
    pub max_step_backoff: Duration,
    /// An order waiting this long for a failing backend or Telegram is
    /// reported on the outage's card ([`super::outage`]).
    pub outage_after: Duration,
}

pub const DEFAULT_REPLY_TEMPLATE: &str =
    "✅ {product} — активировано для аккаунта {account_id} / activated for account {account_id}.\nНомер платежа / Payment number: {order_ref}";

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Telegram refused a step: {0}")]
    Telegram(MessengerError),
    /// A checkpoint hook stopped the workflow (tests simulating a crash).
    #[error("stopped at checkpoint {0:?}")]
    Interrupted(Checkpoint),
    #[error("shutting down")]
    ShuttingDown,
}

impl SendFailure for WorkflowError {
    fn is_duplicate(&self) -> bool {
        matches!(self, WorkflowError::Telegram(e) if e.is_duplicate())
    }
}

/// Runs orders through the workflow. One processor drives one order at a
/// time, which also serialises the reply→Send exchanges with the bot.
pub struct OrderProcessor {
    store: Store,
    messenger: Arc<dyn Messenger>,
    backend: BackendClient,
    cfg: WorkflowConfig,
    ingest_cfg: IngestConfig,
    shutdown: watch::Receiver<bool>,
    checkpoint: Option<CheckpointHook>,
    /// When on, account problems of orders whose customer we know go to
    /// the customer (`needs_customer`, the contact flow) instead of the moderator.
    customer_contact: bool,
}

/// What one pass of a step decided.
enum Step {
    /// State changed: go on from the order as the step committed it.
    Continue(Box<OrderRecord>),
    /// Nothing more to do now (settled, or parked until later).
    Stop,
}

impl OrderProcessor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        messenger: Arc<dyn Messenger>,
        backend: BackendClient,
        cfg: WorkflowConfig,
        ingest_cfg: IngestConfig,
        shutdown: watch::Receiver<bool>,
        checkpoint: Option<CheckpointHook>,
    ) -> Self {
        Self { store, messenger, backend, cfg, ingest_cfg, shutdown, checkpoint, customer_contact: false }
    }

    /// Sends account problems (missing, ambiguous, refused by the backend)
    /// to the customer contact flow when the customer is known.
    pub fn set_customer_contact(&mut self, on: bool) {
        self.customer_contact = on;
    }

    /// The account ID must come from someone: the customer when we can
    /// write to them (the contact flow picks `needs_customer` orders up),
    /// else the moderator. For `already_fulfilled` the contact flow only
    /// tells the customer what happened and hands the order to a person.
    async fn ask_for_account(
        &self,
        order: &OrderRecord,
        reason: EscalationReason,
        detail: &str,
    ) -> Result<Step, WorkflowError> {
        if !self.customer_contact || order.customer_id.is_none() {
            return self.escalate(order, reason, detail).await;
        }
        let detail = if detail.is_empty() { String::new() } else { format!(" ({detail})") };
        let next = if reason == EscalationReason::AlreadyFulfilled { "telling" } else { "asking" };
        let note = format!("{}{detail}; {next} the customer", reason.explain());
        self.store.hand_to_customer(order.id, order.state, reason, &note).await?;
        info!(%reason, "the order goes to the customer dialogue");
        Ok(Step::Stop)
    }

    /// Moves the order as far as it can go now. A Telegram failure of a
    /// step is settled here: a transient one makes the order due again
    /// after a backoff (or the flood wait); a permanent one escalates the
    /// order with a card saying what Telegram refused.
    pub async fn process(&self, order_id: i64) -> Result<(), WorkflowError> {
        let order = self.store.order(order_id).await?;
        let span = info_span!("order", order_ref = %order.order_ref, customer = %order.customer_name);
        async move {
            let mut order = order;
            if order.next_attempt_at.is_some_and(|t| t > now_ms()) {
                return Ok(());
            }
            // The reply's random_id, when this pass committed it with the
            // activation: nothing can have been sent with it yet.
            let mut fresh_reply_id = None;
            let mut replied_now = false;
            loop {
                let step = match order.state {
                    OrderState::Received => self.start(&order).await,
                    OrderState::ActivationRequested => {
                        let id = RandomId::fresh();
                        fresh_reply_id = Some(id);
                        self.activate(&order, id).await
                    }
                    OrderState::Activated => self.reply(&order, fresh_reply_id.take()).await,
                    OrderState::Replied => self.confirm(&order, replied_now).await,
                    _ => Ok(Step::Stop),
                };
                let step = match step {
                    Err(WorkflowError::Telegram(e)) => self.telegram_failed(&order, e).await?,
                    other => other?,
                };
                match step {
                    Step::Continue(next) => {
                        replied_now = order.state == OrderState::Activated && next.state == OrderState::Replied;
                        order = *next;
                    }
                    Step::Stop => return Ok(()),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// A step's Telegram call failed (after the in-place retries).
    async fn telegram_failed(&self, order: &OrderRecord, e: MessengerError) -> Result<Step, WorkflowError> {
        if e.is_transient() {
            let backoff =
                backoff::delay(order.step_failures, self.cfg.park_delay, self.cfg.max_step_backoff, Jitter::Spread);
            let wait = match &e {
                MessengerError::FloodWait(d) => (*d).max(backoff),
                _ => backoff,
            };
            warn!(error = %e, retry_in = ?wait, "Telegram could not take the step now; the order waits");
            let note = format!("Telegram: {e}; trying again in {}s", wait.as_secs());
            self.store.park_step(order.id, order.state, now_ms() + wait.as_millis() as i64, &note).await?;
            return Ok(Step::Stop);
        }
        if !order.state.can_go_to(OrderState::Escalated) {
            return Err(WorkflowError::Telegram(e));
        }
        warn!(error = %e, "Telegram refused a step for good; escalating");
        self.escalate(order, EscalationReason::TelegramRefused, &e.to_string()).await
    }

    fn check(&self, point: Checkpoint, order: &OrderRecord) -> Result<(), WorkflowError> {
        match &self.checkpoint {
            Some(hook) if hook(point, &order.order_ref) => Err(WorkflowError::Interrupted(point)),
            _ => Ok(()),
        }
    }

    async fn start(&self, order: &OrderRecord) -> Result<Step, WorkflowError> {
        let (reason, detail) = match &order.account {
            AccountStatus::Found(account) => {
                let note = format!("account ID {account} found; asking the backend to activate");
                info!(%account, "account ID found");
                let next = self
                    .store
                    .advance(order.id, order.state, Transition::to(OrderState::ActivationRequested, note))
                    .await?;
                return Ok(Step::Continue(Box::new(next)));
            }
            AccountStatus::Missing => (EscalationReason::MissingAccount, String::new()),
            AccountStatus::Ambiguous(v) => {
                (EscalationReason::AmbiguousAccount, v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "))
            }
        };
        self.ask_for_account(order, reason, &detail).await
    }

    /// Calls the backend; the move to `activated` commits `reply_id` for
    /// the reply that follows, so the reply needs no write of its own.
    async fn activate(&self, order: &OrderRecord, reply_id: RandomId) -> Result<Step, WorkflowError> {
        let AccountStatus::Found(account) = &order.account else {
            return Err(
                StoreError::Corrupt(format!("{} requested activation without an account", order.order_ref)).into()
            );
        };
        self.check(Checkpoint::BeforeActivate, order)?;
        let request = ActivationRequest {
            order_ref: order.order_ref.clone(),
            account_id: account.clone(),
            product: order.product.clone(),
            price: order.price,
            customer_telegram_id: order.customer_id,
            customer_name: order.customer_name.clone(),
            received_at: chrono::DateTime::from_timestamp_millis(order.created_at).unwrap_or_default(),
        };
        let started = std::time::Instant::now();
        let outcome = self.backend.activate(&request).await;
        let took = started.elapsed();
        let (activation_id, note) = match outcome {
            Ok(ActivationOutcome::Activated { activation_id }) => {
                info!(%activation_id, ?took, "backend activated the product");
                (activation_id.clone(), format!("backend activated it (activation {activation_id})"))
            }
            Ok(ActivationOutcome::AlreadyActivated { activation_id }) => {
                info!(%activation_id, "backend had already activated this order");
                (activation_id.clone(), format!("backend had already activated it (activation {activation_id})"))
            }
            Ok(ActivationOutcome::NoPendingOrder) => {
                return self.ask_for_account(order, EscalationReason::NoPendingOrder, account.as_str()).await
            }
            Ok(ActivationOutcome::UnknownAccount) => {
                return self.ask_for_account(order, EscalationReason::UnknownAccount, account.as_str()).await
            }
            Ok(ActivationOutcome::AlreadyFulfilled) => {
                // The contact flow tells the customer and hands it over; it never asks for an ID again.
                warn!(%account, "the backend says this account already received this product: a second payment?");
                return self.ask_for_account(order, EscalationReason::AlreadyFulfilled, account.as_str()).await;
            }
            Err(BackendError::Rejected { status: 401, body }) => {
                // Not a replay (the client re-signs those): a rotated secret or
                // clocks apart. A person must fix it; the order must not be lost.
                let delay = backoff::delay(order.activation_failures, self.cfg.park_delay, PARKED_MAX, Jitter::Spread);
                let detail = format!("HTTP 401: {}", truncate(&body, 300));
                warn!(%detail, retry_in = ?delay, "backend refused our signature; order parked, moderator alerted");
                let card = Escalation::order(order.id, EscalationReason::BackendUnauthorized, &detail);
                let note = format!("backend refused our signature ({detail}); retrying in {}s", delay.as_secs());
                let until = now_ms() + delay.as_millis() as i64;
                self.store.park_with_alert(order.id, order.state, until, &note, &card).await?;
                return Ok(Step::Stop);
            }
            Err(BackendError::Rejected { status, body }) => {
                let detail = format!("HTTP {status}: {}", truncate(&body, 300));
                warn!(%detail, "backend rejected the activation request");
                let card = Escalation::order(order.id, EscalationReason::BackendRejected, &detail);
                let mut t = Transition::to(OrderState::Failed, format!("backend rejected the request ({detail})"));
                t.escalation = Some(card);
                self.store.transition(order.id, order.state, t).await?;
                return Ok(Step::Stop);
            }
            Err(err) => {
                let delay = backoff::delay(order.activation_failures, self.cfg.park_delay, PARKED_MAX, Jitter::Spread);
                warn!(error = %err, retry_in = ?delay, "backend unavailable; order parked, will retry with the same key");
                let note = format!("backend unavailable ({err}); retrying in {}s", delay.as_secs());
                self.store.park(order.id, order.state, now_ms() + delay.as_millis() as i64, &note, true).await?;
                return Ok(Step::Stop);
            }
        };
        self.check(Checkpoint::AfterActivate, order)?;
        let mut t = Transition::to(OrderState::Activated, note);
        t.activation_id = Some(activation_id);
        t.reply_random_id = Some(reply_id.0);
        Ok(Step::Continue(Box::new(self.store.advance(order.id, order.state, t).await?)))
    }

    /// `fresh`: the random_id this pass committed with the activation.
    async fn reply(&self, order: &OrderRecord, fresh: Option<RandomId>) -> Result<Step, WorkflowError> {
        let chat = order.chat_id;
        // An earlier attempt (a crash, a lost answer) may have been delivered: it is looked up before sending again.
        let (random_id, maybe_sent) = match order.reply_random_id {
            Some(id) => (RandomId(id), fresh != Some(RandomId(id))),
            // Activated before the random_id came with the move (an older store, a moderator's resume).
            None => {
                let id = RandomId::fresh();
                self.store.set_reply_random_id(order.id, id.0).await?;
                (id, false)
            }
        };
        let account = order.account_candidates().first().map(|a| a.as_str()).unwrap_or_default();
        let price = order.price.to_string();
        let text = crate::template::fill(
            &self.cfg.reply_template,
            &[
                ("product", &order.product),
                ("account_id", account),
                ("order_ref", order.order_ref.as_str()),
                ("price", &price),
            ],
        );
        let send = || async {
            self.check(Checkpoint::BeforeReply, order)?;
            self.telegram(|| self.messenger.send_message(chat, &text, Some(order.message_id), random_id)).await
        };
        match send_once(maybe_sent, send, || self.find_our_reply(order)).await.map_err(OnceError::into_inner)? {
            Once::Sent(reply_id) => {
                self.check(Checkpoint::AfterReply, order)?;
                self.replied(order, reply_id, "replied to the Tribute message").await
            }
            Once::Earlier(earlier) => self.replied(order, earlier, "found our earlier reply").await,
            // Telegram says this very send was delivered before.
            Once::Duplicate(Some(earlier)) => self.replied(order, earlier, "Telegram had our reply already").await,
            Once::Duplicate(None) => Err(WorkflowError::Telegram(MessengerError::Timeout)),
        }
    }

    async fn replied(&self, order: &OrderRecord, reply_id: MessageId, what: &str) -> Result<Step, WorkflowError> {
        let mut t = Transition::to(OrderState::Replied, format!("{what} (message {reply_id})"));
        t.reply_message_id = Some(reply_id);
        // The bot's follow-up with the Send button is still to come: the
        // order waits for it from this commit on (storing the follow-up
        // ends the wait), and [`Self::confirm`] looks once.
        let now = now_ms();
        t.not_before = Some(Self::button_wait(self.button_deadline(now), now));
        let next = self.store.advance(order.id, order.state, t).await?;
        info!(reply_id, "{what}");
        Ok(Step::Continue(Box::new(next)))
    }

    /// Our reply to the order's notification in the chat history, if any.
    /// Reads every page after the notification (a busy chat has more than
    /// one page between the order and our reply).
    async fn find_our_reply(&self, order: &OrderRecord) -> Result<Option<MessageId>, WorkflowError> {
        let mut found = None;
        self.each_history_page(order.chat_id, order.message_id, |page| {
            found = page.iter().find(|m| m.outgoing && m.reply_to == Some(order.message_id)).map(|m| m.id);
            found.is_none()
        })
        .await?;
        Ok(found)
    }

    /// Calls `visit` with every history page of `chat` after `after`
    /// ([`history::Pages`], each request tried in place like every
    /// Telegram call of a step), until it returns false or the history ends.
    async fn each_history_page(
        &self,
        chat: ChatId,
        after: MessageId,
        mut visit: impl FnMut(&[Message]) -> bool,
    ) -> Result<(), WorkflowError> {
        let mut pages = history::Pages::new(chat, after);
        let read = |chat, after, limit| self.telegram(move || self.messenger.history_since(chat, after, limit));
        while let Some(page) = pages.next_with(read).await? {
            if !visit(&page) {
                break;
            }
        }
        Ok(())
    }

    /// When the bot's Send button is overdue for an order replied at `replied_at`.
    fn button_deadline(&self, replied_at: i64) -> i64 {
        replied_at + self.cfg.button_timeout.as_millis() as i64
    }

    /// Until when an order waits, at `now`, for the bot's Send button before
    /// it looks again: the next re-check, or the `deadline` if that comes first.
    fn button_wait(deadline: i64, now: i64) -> i64 {
        deadline.min(now + BUTTON_RECHECK.as_millis() as i64)
    }

    /// `replied_now`: this pass sent the reply a moment ago, so the bot's
    /// follow-up is most likely still to come: the move to `replied` set
    /// the order's wait, and one look follows it (not a look before it
    /// that would find nothing).
    async fn confirm(&self, order: &OrderRecord, replied_now: bool) -> Result<Step, WorkflowError> {
        let chat = order.chat_id;
        let Some(reply_id) = order.reply_message_id else {
            return Err(StoreError::Corrupt(format!("{} is replied without a reply id", order.order_ref)).into());
        };
        if let Some(noted) = order.button_message_id {
            // We had found the button before a restart (or a press that
            // failed) and may have pressed it.
            let ids = [noted];
            let now = self.telegram(|| self.messenger.get_messages(chat, &ids)).await?;
            return match now.first() {
                Some(m) => match self.send_button(m) {
                    Some(data) => self.press(order, reply_id, noted, &data).await,
                    None => self.button_gone(order, reply_id, noted, "gone when we looked again").await,
                },
                None => self.button_gone(order, reply_id, noted, "its message is gone").await,
            };
        }
        let texts = &self.cfg.send_button_texts;
        let mut found =
            if replied_now { None } else { self.store.find_follow_up_button(chat, reply_id, texts).await? };
        let deadline = self.button_deadline(order.replied_at.unwrap_or(order.updated_at));
        if found.is_none() {
            let now = now_ms();
            if now < deadline {
                // Storing the follow-up makes the order due at once; this is the deadline check.
                if !replied_now {
                    self.store.wait_until(order.id, Self::button_wait(deadline, now)).await?;
                }
                // It may have been stored before the wait was set: look (once more).
                found = self.store.find_follow_up_button(chat, reply_id, texts).await?;
                if found.is_none() {
                    return Ok(Step::Stop);
                }
            } else {
                // The follow-up may have come while its update was lost.
                self.catch_up(chat, reply_id).await?;
                found = self.store.find_follow_up_button(chat, reply_id, texts).await?;
            }
        }
        let Some((button_msg, data)) = found else {
            let detail = format!("waited {}s after our reply", self.cfg.button_timeout.as_secs());
            return self.escalate(order, EscalationReason::ButtonNeverCame, &detail).await;
        };
        self.store
            .note(
                order.id,
                order.state,
                &format!("Send button found on message {button_msg}; pressing it"),
                Some(button_msg),
            )
            .await?;
        self.press(order, reply_id, button_msg, &data).await
    }

    async fn press(
        &self,
        order: &OrderRecord,
        reply_id: MessageId,
        button_msg: MessageId,
        data: &[u8],
    ) -> Result<Step, WorkflowError> {
        self.check(Checkpoint::BeforePress, order)?;
        let chat = order.chat_id;
        let answer = match self.telegram(|| self.messenger.press_button(chat, button_msg, data)).await {
            Ok(answer) => answer.text.unwrap_or_default(),
            // Gone between our look and the press: our own press whose
            // answer was lost, or the bot took it away. Only the chat can tell.
            Err(WorkflowError::Telegram(
                e @ (MessengerError::ButtonNotFound(_) | MessengerError::MessageNotFound(..)),
            )) => return self.button_gone(order, reply_id, button_msg, &e.to_string()).await,
            Err(e) => return Err(e),
        };
        self.check(Checkpoint::AfterPress, order)?;
        let note = format!("pressed Send; the bot answered {answer:?}");
        self.store.transition(order.id, order.state, Transition::to(OrderState::Confirmed, note)).await?;
        info!("order confirmed");
        Ok(Step::Stop)
    }

    /// The Send button on `button_msg` is gone (`what`: how we found out).
    /// The order counts as confirmed only if the Tribute chat shows our
    /// reply delivered; otherwise nobody knows the customer got it, and a
    /// person must look.
    async fn button_gone(
        &self,
        order: &OrderRecord,
        reply_id: MessageId,
        button_msg: MessageId,
        what: &str,
    ) -> Result<Step, WorkflowError> {
        match self.delivery_shown(order.chat_id, reply_id).await? {
            Some(shown) => {
                let note = format!(
                    "the Send button on message {button_msg} is gone ({what}); the bot's message {shown} shows \
                     our reply delivered"
                );
                self.store.transition(order.id, order.state, Transition::to(OrderState::Confirmed, note)).await?;
                info!(button_msg, shown, "order confirmed: the chat shows the delivery");
                Ok(Step::Stop)
            }
            None => {
                warn!(button_msg, what, "the Send button is gone and the chat shows no delivery");
                let detail = format!("Send button on message {button_msg}: {what}");
                self.escalate(order, EscalationReason::SendUnconfirmed, &detail).await
            }
        }
    }

    /// The bot's message, after our reply `reply_id`, that says our reply
    /// was delivered: a follow-up to our reply without the Send button that
    /// begins with one of the delivered texts. Reads every page of the
    /// chat's history after our reply.
    async fn delivery_shown(&self, chat: ChatId, reply_id: MessageId) -> Result<Option<MessageId>, WorkflowError> {
        let mut found = None;
        self.each_history_page(chat, reply_id, |page| {
            found = page.iter().find(|m| self.shows_delivery(m, reply_id)).map(|m| m.id);
            found.is_none()
        })
        .await?;
        Ok(found)
    }

    fn shows_delivery(&self, m: &Message, reply_id: MessageId) -> bool {
        let text = m.text.trim_start().to_lowercase();
        !m.outgoing
            && m.reply_to == Some(reply_id)
            && self.send_button(m).is_none()
            && self.cfg.delivered_texts.iter().any(|t| {
                let t = t.trim().to_lowercase();
                !t.is_empty() && text.starts_with(&t)
            })
    }

    fn send_button(&self, m: &Message) -> Option<Vec<u8>> {
        m.all_buttons()
            .find(|b| {
                let text = b.text.trim().to_lowercase();
                self.cfg.send_button_texts.iter().any(|t| t.trim().to_lowercase() == text)
            })
            .map(|b| b.data.clone())
    }

    /// Stores any Tribute chat messages after `after` that we have not seen
    /// (every page; a new order found here is due at once in the store).
    async fn catch_up(&self, chat: ChatId, after: i32) -> Result<(), WorkflowError> {
        let mut pages = Vec::new();
        self.each_history_page(chat, after, |page| {
            pages.extend_from_slice(page);
            true
        })
        .await?;
        for m in &pages {
            ingest(&self.store, &self.ingest_cfg, m).await?;
        }
        Ok(())
    }

    /// Reports orders that wait too long for a failing backend or
    /// Telegram, once per outage ([`super::outage::watch`]); the order
    /// worker calls it on every pass.
    pub async fn watch_outages(&self) -> Result<OutageReport, WorkflowError> {
        Ok(super::outage::watch(&self.store, self.cfg.outage_after, now_ms()).await?)
    }

    async fn escalate(
        &self,
        order: &OrderRecord,
        reason: EscalationReason,
        detail: &str,
    ) -> Result<Step, WorkflowError> {
        let mut t = Transition::to(OrderState::Escalated, format!("escalated to the moderator: {}", reason.explain()));
        t.escalation = Some(Escalation::order(order.id, reason, detail));
        self.store.transition(order.id, order.state, t).await?;
        warn!(%reason, "order escalated to the moderator");
        Ok(Step::Stop)
    }

    /// Runs a Telegram call, sleeping through short flood waits and
    /// retrying a dropped connection a few times in place; past that the
    /// error goes back to [`Self::process`], which makes the order due
    /// again later (the worker is not held by one order).
    async fn telegram<T, F, Fut>(&self, mut call: F) -> Result<T, WorkflowError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = MessengerResult<T>>,
    {
        for attempt in 1.. {
            // Quadrupled per attempt: two doublings.
            let backoff = backoff::delay(2 * (attempt - 1), IN_PLACE_FIRST, Duration::MAX, Jitter::None);
            let wait = match call().await {
                Ok(v) => return Ok(v),
                Err(MessengerError::FloodWait(d)) if d <= self.cfg.max_flood_sleep && attempt < IN_PLACE_ATTEMPTS => {
                    warn!(wait = ?d, "Telegram flood wait; sleeping");
                    d
                }
                Err(e @ (MessengerError::Disconnected | MessengerError::Timeout)) if attempt < IN_PLACE_ATTEMPTS => {
                    warn!(error = %e, retry_in = ?backoff, "Telegram unavailable; retrying");
                    backoff
                }
                Err(e) => return Err(WorkflowError::Telegram(e)),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(&self.shutdown) => return Err(WorkflowError::ShuttingDown),
            }
        }
        unreachable!("the loop returns")
    }
}

/// Telegram calls of one step tried in place before the order waits in the store.
const IN_PLACE_ATTEMPTS: u32 = 3;
/// The wait before the second of them (the third waits four times as long).
const IN_PLACE_FIRST: Duration = Duration::from_millis(50);
/// The longest an order waits for a failing backend between attempts.
const PARKED_MAX: Duration = Duration::from_secs(3600);
/// How often an order waiting for its Send button checks its deadline
/// when no follow-up wakes it.
const BUTTON_RECHECK: Duration = Duration::from_secs(30);

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
