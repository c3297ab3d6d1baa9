//! Wires the parts and owns the tasks. The store is the only queue:
//!
//! - the event loop reads Telegram and only stores what arrives (Tribute
//!   messages and their orders; customer and moderator messages into the
//!   inbox), then wakes the task that handles it;
//! - the order worker takes due orders from the store, furthest along first;
//! - the desk's card poster posts due moderator cards (never behind order steps);
//! - the contact task takes waiting inbox messages and runs dialogue timers;
//! - the re-read task reads the Tribute chat (a window below the newest
//!   message), the moderator chat and waiting customers' chats again on a
//!   timer, at start and after a disconnect.
//!
//! A lost wake-up, a dropped update or a crash costs a delay, never an
//! item: everything pending is a row with a due time (docs/runtime.md).
//!
//! Shutdown: a `watch` flag. The event loop stops reading; the worker
//! finishes the step in flight (every step ends in a commit or leaves the
//! order in its last committed state) and exits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use crate::backend::BackendClient;
use crate::contact::{Budgeted, Contact, ContactConfig, ModeratorQuestions, QuestionHandler};
use crate::moderator::{Learner, ModeratorConfig, ModeratorDesk};
use crate::orders::{ingest, CheckpointHook, IngestConfig, OrderProcessor, WorkflowConfig, WorkflowError};
use crate::shutdown::stopped;
use crate::store::{now_ms, InboxKind, MessageKind, Recorded, Store, StoreError};
use crate::telegram::{ChatId, Event, Message, Messenger, MessengerError};
use crate::wake::Wake;

/// How many history messages to ask for per call when catching up.
const HISTORY_PAGE: usize = 100;

pub struct Daemon {
    store: Store,
    messenger: Arc<dyn Messenger>,
    workflow: WorkflowConfig,
    ingest: IngestConfig,
    processor: Arc<OrderProcessor>,
    shutdown: watch::Receiver<bool>,
    /// Customer contact and the moderator chat, when enabled.
    contact: Option<ContactSetup>,
}

/// What the daemon needs to talk to customers and moderators.
pub struct ContactSetup {
    pub contact: ContactConfig,
    pub moderator: ModeratorConfig,
    /// What to do with customers' questions: [`ModeratorQuestions`] (the
    /// default, a case for the moderator) until the LLM agent takes over.
    pub questions: Arc<dyn QuestionHandler>,
    /// Where `/learn`ed answers go at once (the knowledge base), if anywhere.
    pub learner: Option<Arc<dyn Learner>>,
}

impl ContactSetup {
    pub fn new(contact: ContactConfig, moderator: ModeratorConfig) -> Self {
        Self { contact, moderator, questions: Arc::new(ModeratorQuestions), learner: None }
    }
}

/// Why `run` returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// The shutdown flag was raised.
    Shutdown,
    /// The Telegram client closed its event stream.
    MessengerClosed,
}

impl Daemon {
    pub fn new(
        store: Store,
        messenger: Arc<dyn Messenger>,
        backend: BackendClient,
        workflow: WorkflowConfig,
        ingest: IngestConfig,
        shutdown: watch::Receiver<bool>,
        checkpoint: Option<CheckpointHook>,
    ) -> Self {
        let processor = Arc::new(OrderProcessor::new(
            store.clone(),
            messenger.clone(),
            backend,
            workflow.clone(),
            ingest.clone(),
            shutdown.clone(),
            checkpoint,
        ));
        Self { store, messenger, workflow, ingest, processor, shutdown, contact: None }
    }

    /// Talks to customers whose order needs their account ID and serves the
    /// moderator chat (instead of sending every account problem straight to
    /// the moderator).
    pub fn with_contact(mut self, setup: ContactSetup) -> Self {
        Arc::get_mut(&mut self.processor).expect("the processor is not shared before run").set_customer_contact(true);
        self.contact = Some(setup);
        self
    }

    /// Runs until shutdown, the messenger closes, or a checkpoint hook stops it
    /// (returned as an error, like a crash).
    ///
    /// The store is the queue: the event loop only stores what arrives and
    /// wakes the task that handles it; the order worker takes due orders
    /// and the contact task takes waiting messages from the store (so a
    /// lost hint costs a delay, never an order); the re-read task reads
    /// the chats' history again on a timer in its own task, so a slow
    /// history call never stops the event loop from draining Telegram's
    /// update buffer.
    pub async fn run(self) -> anyhow::Result<Exit> {
        let orders_wake = Wake::new();
        let inbox_wake = Wake::new();
        let cards_wake = Wake::new();
        let resync = Resync {
            store: self.store.clone(),
            messenger: self.messenger.clone(),
            workflow: self.workflow.clone(),
            ingest: self.ingest.clone(),
            orders_wake: orders_wake.clone(),
            inbox_wake: inbox_wake.clone(),
            cards_wake: cards_wake.clone(),
            contact: self.contact.is_some(),
            started_secs: crate::clock::now_secs(),
            now: Arc::new(Notify::new()),
        };
        if let Err(e) = resync.catch_up().await {
            // Telegram may be unreachable right now; the re-read task retries on its timer.
            warn!(error = %format!("{e:#}"), "could not catch up on the Tribute chat history yet; retrying");
            resync.now.notify_one();
        }
        resync.catch_up_inbox().await;
        let contact_task = self.contact.as_ref().map(|setup| {
            let contact = Arc::new(Contact::new(
                self.store.clone(),
                self.messenger.clone(),
                setup.contact.clone(),
                self.ingest.parser.account_pattern.clone(),
                Arc::new(Budgeted::new(setup.questions.clone(), self.store.clone(), setup.contact.question_limits)),
                orders_wake.clone(),
                cards_wake.clone(),
                self.workflow.moderator_chat,
            ));
            let desk = ModeratorDesk::new(
                contact.clone(),
                self.messenger.clone(),
                setup.moderator.clone(),
                setup.learner.clone(),
            );
            tokio::spawn(contact_loop(contact, desk, inbox_wake.clone(), self.shutdown.clone()))
        });
        let desk_task = self.workflow.moderator_chat.map(|chat| {
            let poster = CardPoster { store: self.store.clone(), messenger: self.messenger.clone(), chat };
            tokio::spawn(poster.run(cards_wake.clone(), self.shutdown.clone()))
        });
        let mut worker = tokio::spawn(worker(
            self.processor.clone(),
            self.store.clone(),
            orders_wake,
            cards_wake.clone(),
            self.shutdown.clone(),
        ));
        let resync_task = tokio::spawn(resync.clone().periodically(self.shutdown.clone()));
        let mut backoff = Duration::from_millis(100);
        let exit = loop {
            // Decide inside `select!`, act after it: the shutdown branch holds a
            // non-Send watch guard that must not live across our awaits.
            let next = tokio::select! {
                ev = self.messenger.next_event() => Some(ev),
                res = &mut worker => {
                    resync_task.abort();
                    return match res.context("the order worker panicked")? {
                        Ok(()) => Ok(Exit::Shutdown),
                        Err(e) => Err(e.into()),
                    };
                }
                _ = stopped(&self.shutdown) => None,
            };
            match next {
                None => break Exit::Shutdown,
                Some(Ok(ev)) => {
                    backoff = Duration::from_millis(100);
                    if let Err(e) = self.handle(ev, &resync).await {
                        // The update is still in Telegram's history: the next re-read stores it.
                        warn!(error = %format!("{e:#}"), "could not store an update; the history re-read recovers it");
                    }
                }
                Some(Err(MessengerError::Closed)) => break Exit::MessengerClosed,
                Some(Err(e)) => {
                    warn!(error = %e, retry_in = ?backoff, "Telegram updates interrupted");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    if e == MessengerError::Disconnected {
                        // Updates may have been missed while disconnected: the re-read task looks now.
                        resync.now.notify_one();
                    }
                }
            }
        };
        resync_task.abort();
        info!("waiting for the step in flight to finish");
        for task in [contact_task, desk_task].into_iter().flatten() {
            let _ = task.await;
        }
        match worker.await.context("the order worker panicked")? {
            Ok(()) | Err(WorkflowError::ShuttingDown) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(exit)
    }

    /// Stores one update where its handler will find it. Never waits on
    /// anything slower than a SQLite write.
    async fn handle(&self, ev: Event, resync: &Resync) -> anyhow::Result<()> {
        match ev {
            Event::NewMessage(m) if m.chat_id == self.workflow.tribute_chat => resync.ingest_one(&m).await,
            Event::NewMessage(m) => match resync.route(&m) {
                Some(kind) => resync.enqueue(kind, &m, false).await,
                None => Ok(()),
            },
            Event::MessageEdited(m) if m.chat_id == self.workflow.tribute_chat => {
                self.store.update_tribute_message(&m).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Telegram's own account (login codes, security notices).
pub const TELEGRAM_SERVICE_USER: i64 = 777000;

/// Reads the chats' history into the store: once at start, then on a
/// timer and after a disconnect, in its own task.
#[derive(Clone)]
struct Resync {
    store: Store,
    messenger: Arc<dyn Messenger>,
    workflow: WorkflowConfig,
    ingest: IngestConfig,
    orders_wake: Wake,
    inbox_wake: Wake,
    cards_wake: Wake,
    /// Customer contact and the moderator chat are served.
    contact: bool,
    /// When this run started (unix s): moderator-chat history older than
    /// that is never replayed on the first read.
    started_secs: i64,
    /// Asks for a re-read at once (after a disconnect).
    now: Arc<Notify>,
}

impl Resync {
    async fn ingest_one(&self, m: &Message) -> anyhow::Result<()> {
        match ingest(&self.store, &self.ingest, m).await.context("Failed to store a Tribute message")? {
            // A new order, a follow-up that made its order due, or a malformed order's card.
            Recorded::NewOrder(_) | Recorded::Stored => {
                self.orders_wake.wake();
                self.cards_wake.wake();
            }
            Recorded::Duplicate => {}
        }
        Ok(())
    }

    /// Who handles a message outside the Tribute chat: the moderator desk,
    /// customer contact, or nobody (Telegram's service account, groups and
    /// channels we do not serve, our own messages).
    fn route(&self, m: &Message) -> Option<InboxKind> {
        if !self.contact || m.outgoing {
            return None;
        }
        if m.sender_id == Some(TELEGRAM_SERVICE_USER) || m.chat_id == TELEGRAM_SERVICE_USER {
            // Login codes and security notices: never a customer, never stored or answered.
            debug!(chat = m.chat_id, "ignored a message from Telegram's service account");
            return None;
        }
        if Some(m.chat_id) == self.workflow.moderator_chat {
            return Some(InboxKind::Moderator);
        }
        if m.chat_id > 0 && m.sender_id == Some(m.chat_id) && !m.sender_is_bot {
            return Some(InboxKind::Customer);
        }
        debug!(chat = m.chat_id, "ignored a message outside the Tribute, moderator and customer chats");
        None
    }

    async fn enqueue(&self, kind: InboxKind, m: &Message, handled: bool) -> anyhow::Result<()> {
        if self.store.enqueue_inbound(kind, m, handled).await.context("Failed to store an incoming message")?
            && !handled
        {
            self.inbox_wake.wake();
        }
        Ok(())
    }

    async fn periodically(self, shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.workflow.resync_interval) => {}
                _ = self.now.notified() => {}
                _ = stopped(&shutdown) => return,
            }
            if let Err(err) = self.catch_up().await {
                warn!(error = %format!("{err:#}"), "history re-read failed; the next one retries");
            }
            self.catch_up_inbox().await;
        }
    }

    /// Reads the Tribute chat from a window before the last complete pass
    /// on (every page, each stored as it comes, so a failing later page
    /// does not waste the earlier ones), storing what is not stored yet: an
    /// update lost in transit — even one below the newest stored message,
    /// even while re-reads kept failing for longer than the window — is
    /// found. On the very first start (empty store) only messages younger
    /// than the configured look-back are processed: older orders were
    /// answered by a person before the assistant existed and must not be
    /// activated again.
    async fn catch_up(&self) -> anyhow::Result<()> {
        let chat = self.workflow.tribute_chat;
        let now_secs = crate::clock::now_secs();
        let first_start = self.store.last_seen_message(chat).await? == 0;
        let window = self.workflow.resync_window.as_secs() as i64;
        let since = match self.store.history_read_through(chat).await? {
            Some(read_through) => read_through.min(now_secs) - window,
            None => now_secs - window,
        };
        let mut after = self.store.last_message_before(chat, since).await?;
        let cutoff = now_secs - self.workflow.first_start_lookback.as_secs() as i64;
        let (mut seen, mut skipped) = (0, 0);
        loop {
            let page = self.messenger.history_since(chat, after, HISTORY_PAGE).await?;
            let (Some(first), Some(last)) = (page.first(), page.last()) else { break };
            after = last.id;
            let known = self.store.stored_message_ids(chat, first.id, last.id).await?;
            for m in page.iter().filter(|m| !known.contains(&m.id)) {
                seen += 1;
                if first_start && m.date < cutoff {
                    let why = "older than the first start's look-back; not processed";
                    self.store.record_tribute_message(m, MessageKind::Other, Some(why), None, None).await?;
                    skipped += 1;
                } else {
                    self.ingest_one(m).await?;
                }
            }
        }
        self.store.set_history_read_through(chat, now_secs).await?;
        if seen > 0 {
            info!(new_messages = seen, skipped_as_too_old = skipped, "the Tribute chat history had messages we missed");
        }
        Ok(())
    }

    /// Reads the moderator chat and the chats of customers a dialogue waits
    /// for since the last message seen in each, so what arrived while the
    /// daemon was down (or was lost in transit) is handled. On the very
    /// first read of the moderator chat, its older history is recorded as
    /// seen, never replayed.
    async fn catch_up_inbox(&self) {
        if !self.contact {
            return;
        }
        let mut chats: Vec<(ChatId, InboxKind)> = Vec::new();
        if let Some(chat) = self.workflow.moderator_chat {
            chats.push((chat, InboxKind::Moderator));
        }
        match self.store.customers_to_reread().await {
            Ok(customers) => chats.extend(customers.into_iter().map(|c| (c, InboxKind::Customer))),
            Err(e) => warn!(error = %e, "could not list the customers' chats to re-read"),
        }
        for (chat, kind) in chats {
            if let Err(e) = self.reread_chat(chat, kind).await {
                warn!(chat, error = %format!("{e:#}"), "re-reading a chat failed; the next pass retries");
            }
        }
    }

    async fn reread_chat(&self, chat: ChatId, kind: InboxKind) -> anyhow::Result<()> {
        let cursor = self.store.inbox_cursor(chat).await?;
        let first_read = cursor.is_none() && kind == InboxKind::Moderator;
        let mut after = cursor.unwrap_or(0);
        loop {
            let page = self.messenger.history_since(chat, after, HISTORY_PAGE).await?;
            let Some(last) = page.last() else { return Ok(()) };
            after = last.id;
            for m in page.iter().filter(|m| self.route(m) == Some(kind)) {
                self.enqueue(kind, m, first_read && m.date < self.started_secs).await?;
            }
        }
    }
}

/// Takes due orders from the store, furthest along first, one at a time
/// (serialising the bot exchanges). Wakes on a hint, when the next order
/// is due, or at the sweep interval at the latest. A failing pass (the
/// database busy, an order whose step errs) is logged and retried on the
/// next pass: the work stays in the store, so the worker never gives up on
/// it. Only shutdown and a test's checkpoint stop it. Cards an order step
/// writes are the desk's to post ([`CardPoster`]): they never wait behind
/// a slow backend.
async fn worker(
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
/// moderator chat however slowly the backend or the order steps go.
struct CardPoster {
    store: Store,
    messenger: Arc<dyn Messenger>,
    chat: ChatId,
}

impl CardPoster {
    async fn run(self, wake: Wake, shutdown: watch::Receiver<bool>) {
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
        let next = self.store.next_outbox_due().await?;
        Ok(next.map_or(SWEEP, |due| crate::clock::until(due).min(SWEEP)))
    }
}

/// The contact task: waiting customer and moderator messages from the
/// store (the moderator chat first, customers round-robin) and the
/// dialogue timers, one at a time. Each message is marked handled after
/// its step, with the error if it failed, so one bad message never blocks
/// the rest; a restart resumes what was not handled.
async fn contact_loop(contact: Arc<Contact>, desk: ModeratorDesk, wake: Wake, shutdown: watch::Receiver<bool>) {
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
