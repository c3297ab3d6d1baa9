//! The daemon's long-running tasks besides the event loop: the order
//! worker, the desk's card poster and the contact task. Each takes its work
//! from the store and sleeps until a hint, its next due time or the sweep.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::contact::Contact;
use crate::moderator::ModeratorDesk;
use crate::orders::{OrderProcessor, WorkflowError};
use crate::report::{weekly, ReportSettings};
use crate::shutdown::stopped;
use crate::store::{now_ms, InboxKind, Store, StoreError};
use crate::telegram::{ChatId, Messenger};
use crate::wake::Wake;

/// Takes due orders from the store, furthest along first, one at a time
/// (serialising the bot exchanges). Wakes on a hint, when the next order
/// is due, or at the sweep interval at the latest. A failing pass (the
/// database busy, an order whose step errs) is logged and retried on the
/// next pass: the work stays in the store, so the worker never gives up on
/// it. Only shutdown and a test's checkpoint stop it. Cards an order step
/// writes are the desk's to post ([`CardPoster`]): they never wait behind
/// a slow backend.
pub(super) async fn worker(
    processor: Arc<OrderProcessor>,
    store: Store,
    wake: Wake,
    cards: Wake,
    shutdown: watch::Receiver<bool>,
) -> Result<(), WorkflowError> {
    let mut failures = 0u32;
    loop {
        let next = match pass(&processor, &store, &cards, &shutdown).await {
            Ok(Pass::Again) => {
                failures = 0;
                continue;
            }
            Ok(Pass::Sleep(next)) => {
                failures = 0;
                next
            }
            Err(WorkflowError::ShuttingDown) => return Ok(()),
            Err(e @ WorkflowError::Interrupted(_)) => return Err(e),
            Err(e) => {
                failures += 1;
                let wait = crate::orders::backoff(i64::from(failures), Duration::from_millis(100), SWEEP * 30);
                warn!(error = %e, retry_in = ?wait, "an order pass failed; the work stays in the store");
                wait
            }
        };
        tokio::select! {
            _ = wake.woken() => {}
            _ = tokio::time::sleep(next) => {}
            _ = stopped(&shutdown) => return Ok(()),
        }
    }
}

/// What a task does after a pass.
enum Pass {
    /// More is due now.
    Again,
    /// Nothing is due before this long (at most the sweep interval).
    Sleep(Duration),
}

async fn pass(
    processor: &OrderProcessor,
    store: &Store,
    cards: &Wake,
    shutdown: &watch::Receiver<bool>,
) -> Result<Pass, WorkflowError> {
    for id in store.due_orders(now_ms(), DUE_BATCH).await? {
        match processor.process(id).await {
            Ok(()) => {}
            Err(WorkflowError::Telegram(e)) => {
                warn!(order = id, error = %e, "Telegram refused a step; the order stays where it is")
            }
            Err(WorkflowError::Store(StoreError::StateChanged { .. })) => {
                // Someone else (a moderator, the contact flow, a refund) moved it first.
            }
            Err(WorkflowError::ShuttingDown) => {
                info!(order = id, "shutdown: the order is parked in its last committed state");
                return Err(WorkflowError::ShuttingDown);
            }
            Err(e @ WorkflowError::Interrupted(_)) => return Err(e),
            Err(e) => warn!(order = id, error = %e, "an order step failed; it is retried on a later pass"),
        }
        // The step may have opened a case.
        cards.wake();
        if *shutdown.borrow() {
            return Err(WorkflowError::ShuttingDown);
        }
    }
    // Orders held up by a failing backend or Telegram: one card per outage.
    if processor.watch_outages().await?.wrote_cards() {
        cards.wake();
    }
    if !store.due_orders(now_ms(), 1).await?.is_empty() {
        return Ok(Pass::Again);
    }
    let next = store.next_order_due().await?;
    Ok(Pass::Sleep(next.map_or(SWEEP, |due| crate::clock::until(due).min(SWEEP))))
}

/// Orders taken per pass before the worker looks at the store again.
const DUE_BATCH: i64 = 50;
/// The longest a task sleeps without looking at the store.
const SWEEP: Duration = Duration::from_secs(1);

/// The moderator desk's poster: posts due cards and case follow-ups from the
/// outbox in its own task, each with its own retries
/// ([`crate::moderator::outbox_worker`]), so an escalation reaches the
/// moderator chat however slowly the backend or the order steps go; and
/// the weekly report summary when it is due ([`crate::report::weekly`]).
pub(super) struct CardPoster {
    pub(super) store: Store,
    pub(super) messenger: Arc<dyn Messenger>,
    pub(super) chat: ChatId,
    pub(super) report: ReportSettings,
}

impl CardPoster {
    pub(super) async fn run(self, wake: Wake, shutdown: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            let next = match self.pass().await {
                Ok(next) => {
                    failures = 0;
                    next
                }
                Err(e) => {
                    failures += 1;
                    let wait = crate::orders::backoff(i64::from(failures), Duration::from_millis(100), SWEEP * 30);
                    warn!(error = %e, retry_in = ?wait, "posting cards failed; they stay in the outbox");
                    wait
                }
            };
            tokio::select! {
                _ = wake.woken() => {}
                _ = tokio::time::sleep(next) => {}
                _ = stopped(&shutdown) => return,
            }
        }
    }

    /// Posts what is due; returns how long until the next card is due.
    async fn pass(&self) -> Result<Duration, StoreError> {
        crate::moderator::outbox_worker::post_due(&self.store, self.messenger.as_ref(), self.chat).await?;
        // After the cards: a case matters more than the summary.
        weekly::post_due(&self.store, self.messenger.as_ref(), self.chat, &self.report, now_ms()).await?;
        let next = self.store.next_outbox_due().await?;
        Ok(next.map_or(SWEEP, |due| crate::clock::until(due).min(SWEEP)))
    }
}

/// The contact task: waiting customer and moderator messages from the
/// store (the moderator chat first, customers round-robin) and the
/// dialogue timers, one at a time. Each message is marked handled after
/// its step, with the error if it failed, so one bad message never blocks
/// the rest; a restart resumes what was not handled.
pub(super) async fn contact_loop(
    contact: Arc<Contact>,
    desk: ModeratorDesk,
    wake: Wake,
    shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = contact.resume().await {
        warn!(error = %e, "resuming the customer dialogues failed; the next tick retries");
    }
    let store = contact.store().clone();
    let tick_every = contact.config().tick;
    let mut next_tick = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_tick {
            if let Err(e) = contact.tick().await {
                warn!(error = %e, "a contact step failed; it is retried from the store on the next tick");
            }
            if let Err(e) = desk.index_due_pairs().await {
                warn!(error = %e, "retrying approved pairs failed; the next tick retries");
            }
            next_tick = tokio::time::Instant::now() + tick_every;
        }
        let batch = match store.waiting_inbound(INBOX_BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                warn!(error = %e, "could not read the waiting messages; retrying");
                Vec::new()
            }
        };
        for (kind, m) in &batch {
            let res = match kind {
                InboxKind::Customer => contact.on_customer_message(m).await,
                InboxKind::Moderator => desk.on_message(m).await,
            };
            let error = res.err().map(|e| {
                warn!(error = %e, chat = m.chat_id, message = m.id, "handling a message failed; it is not retried");
                e.to_string()
            });
            if let Err(e) = store.mark_inbound_handled(m.chat_id, m.id, error.as_deref()).await {
                warn!(error = %e, "could not mark a message handled; it may be handled again");
            }
            if *shutdown.borrow() {
                return;
            }
        }
        if !batch.is_empty() {
            continue;
        }
        tokio::select! {
            _ = wake.woken() => {}
            _ = tokio::time::sleep_until(next_tick) => {}
            _ = stopped(&shutdown) => return,
        }
    }
}

/// Waiting messages taken per pass before the timers are looked at again.
const INBOX_BATCH: i64 = 32;
