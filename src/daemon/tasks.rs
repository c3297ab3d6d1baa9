//! The daemon's long-running tasks besides the event loop: the order
//! worker, the desk's card poster and the contact task. Each takes its work
//! from the store and sleeps until a hint, its next due time or the sweep.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::contact::Contact;
use crate::domain::EscalationReason;
use crate::moderator::{Handled, ModeratorDesk};
use crate::orders::{OrderProcessor, WorkflowError};
use crate::report::{weekly, ReportSettings};
use crate::runtime::backoff::{self, Jitter};
use crate::runtime::clock::now_ms;
use crate::runtime::isolate::{panic_message, run_isolated, ItemFailure};
use crate::runtime::shutdown::stopped;
use crate::runtime::wake::Wake;
use crate::runtime::TaskHandle;
use crate::store::{Escalation, InboundFailure, InboxKind, Store, StoreError};
use crate::telegram::{ChatId, Message, Messenger};

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
    task: TaskHandle,
) -> Result<(), WorkflowError> {
    let mut failures = 0u32;
    let mut outages_watched_at = i64::MIN;
    loop {
        task.beat();
        let next = match pass(&processor, &store, &cards, &shutdown, &task, &mut outages_watched_at).await {
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
                let wait = backoff::delay(failures, Duration::from_millis(100), SWEEP * 30, Jitter::Spread);
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
    processor: &Arc<OrderProcessor>,
    store: &Store,
    cards: &Wake,
    shutdown: &watch::Receiver<bool>,
    task: &TaskHandle,
    outages_watched_at: &mut i64,
) -> Result<Pass, WorkflowError> {
    let due = store.due_orders(now_ms(), DUE_BATCH).await?;
    for &id in &due.ids {
        let step = {
            let processor = processor.clone();
            tokio::spawn(async move { processor.process(id).await }).await
        };
        let step = match step {
            Ok(step) => step,
            Err(e) => {
                // A bug met by this order's data: set it aside for a person
                // (one card) and go on with the others. Every step is a
                // commit, so trying it again later is safe.
                let why = match e.try_into_panic() {
                    Ok(payload) => format!("a step panicked: {}", panic_message(payload)),
                    Err(e) => format!("a step was cancelled: {e}"),
                };
                task.item_panicked();
                error!(order = id, reason = %why, "an order step failed unexpectedly; a moderator is told, retried later");
                set_order_aside(store, id, &why).await;
                cards.wake();
                continue;
            }
        };
        task.beat();
        match step {
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
        // The step opened a case or wrote a follow-up: the poster looks now.
        if store.take_card_hint() {
            cards.wake();
        }
        if *shutdown.borrow() {
            return Err(WorkflowError::ShuttingDown);
        }
    }
    // Orders held up by a failing backend or Telegram: one card per
    // outage. Once a sweep at most: an outage is minutes long, while a
    // busy worker passes many times a second.
    let now = now_ms();
    if now.saturating_sub(*outages_watched_at) >= SWEEP.as_millis() as i64 {
        *outages_watched_at = now;
        if processor.watch_outages().await?.wrote_cards() {
            cards.wake();
        }
    }
    // Steps taken: look again at once (a step may have made its order due
    // again, more may have come in meanwhile). Nothing was due: sleep until
    // the next one is, as the same look said.
    if !due.ids.is_empty() {
        return Ok(Pass::Again);
    }
    Ok(Pass::Sleep(due.later.map_or(SWEEP, |at| crate::runtime::clock::until(at).min(SWEEP))))
}

/// Parks an order whose step panicked until [`PANICKED_ORDER_RETRY`] from
/// now, with one card (not one per retry) saying why.
async fn set_order_aside(store: &Store, id: i64, why: &str) {
    let parked = async {
        let order = store.order(id).await?;
        let until = now_ms() + PANICKED_ORDER_RETRY.as_millis() as i64;
        let card = Escalation::order(id, EscalationReason::Unhandled, why);
        store.park_with_alert(id, order.state, until, why, &card).await
    };
    if let Err(e) = parked.await {
        warn!(order = id, error = %e, "could not set a failing order aside; it is retried");
    }
}

/// How long an order whose step panicked waits before it is tried again.
const PANICKED_ORDER_RETRY: Duration = Duration::from_secs(600);
/// Orders taken per pass before the worker looks at the store again.
const DUE_BATCH: i64 = 50;
/// The longest a task sleeps without looking at the store.
const SWEEP: Duration = Duration::from_secs(1);

/// The moderator desk's poster: posts due cards and case follow-ups from the
/// outbox in its own task, each with its own retries
/// ([`crate::moderator::outbox_worker`]), so an escalation reaches the
/// moderator chat however slowly the backend or the order steps go; and
/// the weekly report summary when it is due ([`crate::report::weekly`]).
#[derive(Clone)]
pub struct CardPoster {
    store: Store,
    messenger: Arc<dyn Messenger>,
    chat: ChatId,
    report: ReportSettings,
}

impl CardPoster {
    pub fn new(store: Store, messenger: Arc<dyn Messenger>, chat: ChatId, report: ReportSettings) -> Self {
        Self { store, messenger, chat, report }
    }

    pub(super) async fn run(
        self,
        wake: Wake,
        shutdown: watch::Receiver<bool>,
        task: TaskHandle,
    ) -> Result<(), std::convert::Infallible> {
        let mut failures = 0u32;
        loop {
            task.beat();
            let next = match self.pass().await {
                Ok(next) => {
                    failures = 0;
                    next
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff::delay(failures, Duration::from_millis(100), SWEEP * 30, Jitter::Spread);
                    warn!(error = %e, retry_in = ?wait, "posting cards failed; they stay in the outbox");
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

    /// Posts what is due; returns how long until the next card is due.
    async fn pass(&self) -> Result<Duration, StoreError> {
        crate::moderator::outbox_worker::post_due(&self.store, self.messenger.as_ref(), self.chat).await?;
        // After the cards: a case matters more than the summary.
        weekly::post_due(&self.store, self.messenger.as_ref(), self.chat, &self.report, now_ms()).await?;
        let next = self.store.next_outbox_due().await?;
        Ok(next.map_or(SWEEP, |due| crate::runtime::clock::until(due).min(SWEEP)))
    }
}

/// Runs just before one inbox message is handled, inside its isolation:
/// a test injects a panic into one message's handling with it.
#[derive(Clone)]
pub struct ItemHook(pub Arc<dyn Fn(&Message) + Send + Sync>);

impl std::fmt::Debug for ItemHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ItemHook")
    }
}

/// The contact task: waiting customer and moderator messages from the
/// store, by lane (`Store::waiting_inbound`: the moderator chat, then
/// customers an order waits for, then questions, one per batch) and the
/// contact flow's due work ([`Contact::run_due`]: order events, dialogue
/// timers, messages to customers, queued questions), one at a time. It
/// sleeps until the store says something is due
/// ([`Contact::next_due`]), a hint (a message in the inbox, a committed
/// order move for the dialogue), or the slow re-check ([`ContactConfig::recheck`],
/// for writes from another process). Each message is handled in isolation
/// ([`run_isolated`]): on success it is marked handled; an error or a
/// panic is recorded on its row and it is taken again after a backoff, at
/// most [`ITEM_ATTEMPTS`] times, then quarantined with one card for the
/// moderators. So no message can stop the task or block the ones behind
/// it, and a restart resumes what was not handled.
pub(super) async fn contact_loop(
    contact: Arc<Contact>,
    desk: Arc<ModeratorDesk>,
    wakes: ContactWakes,
    shutdown: watch::Receiver<bool>,
    task: TaskHandle,
    hook: Option<ItemHook>,
) -> Result<(), std::convert::Infallible> {
    let store = contact.store().clone();
    let dialogue = store.dialogue_hint();
    let recheck = contact.config().recheck;
    let mut due = Due::now();
    let mut housekeeping_at = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        if now >= due.at {
            // One item's panic is caught here and the pass is tried again
            // later; messages are still handled meanwhile.
            let pass = run_isolated({
                let contact = contact.clone();
                async move { Ok(contact.run_due().await?) }
            })
            .await;
            due = match pass {
                Ok(()) => due.after_pass(contact.next_due().await, recheck),
                Err(e) => {
                    error!(error = %e, "the contact flow's due work failed; it is retried from the store");
                    if matches!(e, ItemFailure::Panicked(_)) {
                        task.item_panicked();
                    }
                    Due::after_failure()
                }
            };
        }
        if now >= housekeeping_at {
            if let Err(e) = desk.index_due_pairs().await {
                warn!(error = %e, "retrying approved pairs failed; retried at the next re-check");
            }
            housekeeping_at = now + recheck;
        }
        task.beat();
        let batch = match store.waiting_inbound(INBOX_BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                warn!(error = %e, "could not read the waiting messages; retrying");
                Vec::new()
            }
        };
        for (kind, m) in &batch {
            let kind = *kind;
            let (contact, desk, message, hook) = (contact.clone(), desk.clone(), m.clone(), hook.clone());
            let work = async move {
                if let Some(hook) = hook {
                    (hook.0)(&message);
                }
                Ok(match kind {
                    InboxKind::Customer => {
                        contact.on_customer_message(&message).await?;
                        Handled::Done
                    }
                    InboxKind::Moderator => desk.on_message(&message).await?,
                })
            };
            match run_isolated(work).await {
                // Deferred in the store: the row is due again shortly.
                Ok(Handled::Later) => {}
                Ok(Handled::Done) => {
                    if let Err(e) = store.mark_inbound_handled(m.chat_id, m.id).await {
                        warn!(error = %e, "could not mark a message handled; it may be handled again");
                    }
                }
                Err(failure) => on_item_failure(&store, &task, &wakes, kind, m, &failure).await,
            }
            task.beat();
            if *shutdown.borrow() {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            // What the messages did (an ID given, a case closed) may be due now.
            due = due.sooner(contact.next_due().await);
            continue;
        }
        let retry_at = match store.next_inbound_due().await {
            Ok(Some(at)) => {
                tokio::time::Instant::now() + crate::runtime::clock::until(at).max(Duration::from_millis(10))
            }
            _ => housekeeping_at,
        };
        tokio::select! {
            _ = wakes.inbox.woken() => {}
            _ = dialogue.woken() => due = Due::now(),
            _ = tokio::time::sleep_until(due.at.min(retry_at).min(housekeeping_at)) => {}
            _ = stopped(&shutdown) => return Ok(()),
        }
    }
}

/// When the contact task next runs [`Contact::run_due`].
struct Due {
    at: tokio::time::Instant,
    /// Passes in a row that left work due at once: a spin, after a few,
    /// slows to one pass a second (a row that cannot move must not burn
    /// a phone's battery), while a burst of events still runs back to back.
    busy: u32,
}

impl Due {
    /// Passes in a row that may follow each other at once.
    const BURST: u32 = 8;
    /// The pace of a spin past [`Self::BURST`] and after a failed pass.
    const SLOW: Duration = Duration::from_secs(1);

    fn now() -> Self {
        Self { at: tokio::time::Instant::now(), busy: 0 }
    }

    fn after_failure() -> Self {
        Self { at: tokio::time::Instant::now() + Self::SLOW, busy: 0 }
    }

    /// After a pass: at the store's next due time (never later than the
    /// re-check), the re-check when nothing is due, a second later when
    /// the store could not say.
    fn after_pass<E: std::fmt::Display>(&self, next: Result<Option<i64>, E>, recheck: Duration) -> Self {
        let now = tokio::time::Instant::now();
        match next {
            Ok(Some(at)) => {
                let wait = crate::runtime::clock::until(at);
                let busy = if wait.is_zero() { self.busy + 1 } else { 0 };
                let floor = if busy > Self::BURST { Self::SLOW } else { Duration::ZERO };
                Self { at: now + wait.max(floor).min(recheck), busy }
            }
            Ok(None) => Self { at: now + recheck, busy: 0 },
            Err(e) => {
                warn!(error = %e, "could not read when the contact flow is next due; looking again shortly");
                Self::after_failure()
            }
        }
    }

    /// Brought forward to the store's next due time, if sooner.
    fn sooner<E>(self, next: Result<Option<i64>, E>) -> Self {
        match next {
            Ok(Some(at)) => {
                let at = tokio::time::Instant::now() + crate::runtime::clock::until(at);
                Self { at: self.at.min(at), busy: self.busy }
            }
            _ => self,
        }
    }
}

/// The hints the contact task gives and takes.
#[derive(Clone)]
pub(super) struct ContactWakes {
    pub(super) inbox: Wake,
    /// A quarantined message opened a card.
    pub(super) cards: Wake,
}

/// Records a failed message on its row: retried later, or quarantined
/// with one card once its attempts are used up.
async fn on_item_failure(
    store: &Store,
    task: &TaskHandle,
    wakes: &ContactWakes,
    kind: InboxKind,
    m: &Message,
    failure: &ItemFailure,
) {
    if matches!(failure, ItemFailure::Panicked(_)) {
        task.item_panicked();
    }
    let why = failure.to_string();
    let backoff =
        |attempts: u32| backoff::delay(i64::from(attempts) - 1, ITEM_RETRY_FIRST, ITEM_RETRY_LAST, Jitter::Spread);
    match store.inbound_failed(m.chat_id, m.id, &why, ITEM_ATTEMPTS, backoff).await {
        Ok(InboundFailure::Retry { attempts, at }) => warn!(
            kind = kind.as_str(), chat = m.chat_id, message = m.id, attempts, error = %why,
            retry_in = ?crate::runtime::clock::until(at), "handling a message failed; it is retried later"
        ),
        Ok(InboundFailure::Quarantined { attempts, case }) => {
            error!(
                kind = kind.as_str(), chat = m.chat_id, message = m.id, attempts, case, error = %why,
                "a message failed every time it was handled; set aside for the moderators"
            );
            task.item_quarantined();
            wakes.cards.wake();
        }
        Ok(InboundFailure::AlreadyHandled) => {}
        Err(e) => {
            // Recording the failure failed too: set the message aside rather
            // than take it again at once, forever. Its row keeps it.
            error!(error = %e, chat = m.chat_id, message = m.id, reason = %why,
                "could not record a failed message; it is set aside without a card (it stays in the inbox table)");
            if let Err(e) = store.mark_inbound_handled(m.chat_id, m.id).await {
                warn!(error = %e, "could not set the message aside either; it is taken again");
            }
        }
    }
}

/// Waiting messages taken per pass before the timers are looked at again.
const INBOX_BATCH: i64 = 32;
/// How often one message is tried before it is set aside for a person.
pub const ITEM_ATTEMPTS: u32 = 3;
const ITEM_RETRY_FIRST: Duration = Duration::from_secs(5);
const ITEM_RETRY_LAST: Duration = Duration::from_secs(300);
