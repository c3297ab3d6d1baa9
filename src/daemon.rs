//! Wires the parts and owns the tasks: one event loop reading Telegram,
//! one worker driving orders. On start it re-reads the Tribute chat
//! history since the last stored message and resumes every unfinished
//! order, so nothing that happened while it was down is lost.
//!
//! Shutdown: a `watch` flag. The event loop stops reading; the worker
//! finishes the step in flight (every step ends in a commit or leaves the
//! order in its last committed state) and exits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch, Notify};
use tracing::{debug, info, warn};

use crate::backend::BackendClient;
use crate::contact::{Budgeted, Contact, ContactConfig, ModeratorQuestions, QuestionHandler};
use crate::moderator::{Learner, ModeratorConfig, ModeratorDesk};
use crate::orders::{ingest, CheckpointHook, IngestConfig, OrderProcessor, WorkflowConfig, WorkflowError};
use crate::store::{now_ms, MessageKind, Recorded, Store, StoreError};
use crate::telegram::{Event, Message, Messenger, MessengerError};

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

/// Work for the contact task, in arrival order.
enum ContactJob {
    /// A private message from a customer.
    Customer(Message),
    /// A message in the moderator chat.
    Moderator(Message),
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
    /// sends a wake-up hint; the order worker takes due orders from the
    /// store (so a lost hint costs a delay, never an order); the re-read
    /// task reads the Tribute chat history again on a timer in its own
    /// task, so a slow history call never stops the event loop from
    /// draining Telegram's update buffer.
    pub async fn run(self) -> anyhow::Result<Exit> {
        let (hint_tx, hint_rx) = mpsc::unbounded_channel::<i64>();
        let resync = Resync {
            store: self.store.clone(),
            messenger: self.messenger.clone(),
            workflow: self.workflow.clone(),
            ingest: self.ingest.clone(),
            hints: hint_tx.clone(),
            now: Arc::new(Notify::new()),
        };
        resync.catch_up().await.context("Failed to catch up on the Tribute chat history")?;
        let contact_tx = match &self.contact {
            Some(setup) => {
                let contact = Arc::new(Contact::new(
                    self.store.clone(),
                    self.messenger.clone(),
                    setup.contact.clone(),
                    self.ingest.parser.account_pattern.clone(),
                    Arc::new(Budgeted::new(
                        setup.questions.clone(),
                        self.store.clone(),
                        setup.contact.question_limits,
                    )),
                    hint_tx.clone(),
                    self.workflow.moderator_chat,
                ));
                let desk = ModeratorDesk::new(
                    contact.clone(),
                    self.messenger.clone(),
                    setup.moderator.clone(),
                    setup.learner.clone(),
                );
                let (tx, rx) = mpsc::unbounded_channel();
                let task = tokio::spawn(contact_loop(contact, desk, rx, self.shutdown.clone()));
                Some((tx, task))
            }
            None => None,
        };
        let (contact_tx, contact_task) = match contact_tx {
            Some((tx, task)) => (Some(tx), Some(task)),
            None => (None, None),
        };
        let mut worker =
            tokio::spawn(worker(self.processor.clone(), self.store.clone(), hint_rx, self.shutdown.clone()));
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
                    self.handle(ev, &resync, contact_tx.as_ref()).await?;
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
        drop(hint_tx);
        drop(contact_tx);
        resync_task.abort();
        info!("waiting for the step in flight to finish");
        if let Some(task) = contact_task {
            let _ = task.await;
        }
        match worker.await.context("the order worker panicked")? {
            Ok(()) | Err(WorkflowError::ShuttingDown) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(exit)
    }

    async fn handle(
        &self,
        ev: Event,
        resync: &Resync,
        contact: Option<&mpsc::UnboundedSender<ContactJob>>,
    ) -> anyhow::Result<()> {
        match ev {
            Event::NewMessage(m) if m.chat_id == self.workflow.tribute_chat => resync.ingest_one(&m).await,
            Event::NewMessage(m) if is_service_sender(&m) => {
                // Login codes and security notices: never a customer, never stored or answered.
                debug!(chat = m.chat_id, "ignored a message from Telegram's service account");
                Ok(())
            }
            // Routing (issue 4): the moderator chat → the moderator desk; a
            // private chat where the other person wrote → customer contact.
            Event::NewMessage(m) if contact.is_some() && !m.outgoing => {
                let job = if Some(m.chat_id) == self.workflow.moderator_chat {
                    ContactJob::Moderator(m)
                } else if m.chat_id > 0 && m.sender_id == Some(m.chat_id) {
                    ContactJob::Customer(m)
                } else {
                    debug!(chat = m.chat_id, "ignored a message outside the Tribute, moderator and customer chats");
                    return Ok(());
                };
                if let Some(tx) = contact {
                    let _ = tx.send(job);
                }
                Ok(())
            }
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

fn is_service_sender(m: &Message) -> bool {
    m.sender_id == Some(TELEGRAM_SERVICE_USER) || m.chat_id == TELEGRAM_SERVICE_USER
}

/// Reads the Tribute chat history into the store: once at start, then on
/// a timer and after a disconnect, in its own task.
#[derive(Clone)]
struct Resync {
    store: Store,
    messenger: Arc<dyn Messenger>,
    workflow: WorkflowConfig,
    ingest: IngestConfig,
    /// Wake-up hints for the order worker.
    hints: mpsc::UnboundedSender<i64>,
    /// Asks for a re-read at once (after a disconnect).
    now: Arc<Notify>,
}

impl Resync {
    async fn ingest_one(&self, m: &Message) -> anyhow::Result<()> {
        match ingest(&self.store, &self.ingest, m).await.context("Failed to store a Tribute message")? {
            Recorded::NewOrder(id) => {
                let _ = self.hints.send(id);
            }
            Recorded::Stored => {
                // A follow-up made its order due, or a malformed order's card is in the outbox.
                let _ = self.hints.send(0);
            }
            Recorded::Duplicate => {}
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
        }
    }

    /// Reads the Tribute chat from below the recent window on (every page),
    /// storing what is not stored yet: an update lost in transit — even one
    /// below the newest stored message — is found on the next pass. On the
    /// very first start (empty store) only messages younger than the
    /// configured look-back are processed: older orders were answered by a
    /// person before the assistant existed and must not be activated again.
    async fn catch_up(&self) -> anyhow::Result<()> {
        let chat = self.workflow.tribute_chat;
        let now_secs = crate::clock::now_secs();
        let first_start = self.store.last_seen_message(chat).await? == 0;
        let window_start = now_secs - self.workflow.resync_window.as_secs() as i64;
        let mut after = self.store.last_message_before(chat, window_start).await?;
        let cutoff = now_secs - self.workflow.first_start_lookback.as_secs() as i64;
        let (mut seen, mut skipped) = (0, 0);
        loop {
            let page = self.messenger.history_since(chat, after, HISTORY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            seen += page.len();
            for m in &page {
                if first_start && m.date < cutoff {
                    let why = "older than the first start's look-back; not processed";
                    self.store.record_tribute_message(m, MessageKind::Other, Some(why), None, None).await?;
                    skipped += 1;
                } else {
                    self.ingest_one(m).await?;
                }
            }
        }
        debug!(messages = seen, skipped_as_too_old = skipped, "re-read the Tribute chat history");
        Ok(())
    }
}

/// Takes due orders from the store, furthest along first, one at a time
/// (serialising the bot exchanges), and posts moderator cards. Wakes on a
/// hint (the value is ignored), at the next due time, or at the sweep
/// interval at the latest.
async fn worker(
    processor: Arc<OrderProcessor>,
    store: Store,
    mut hints: mpsc::UnboundedReceiver<i64>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), WorkflowError> {
    loop {
        flush_cards(&processor).await?;
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
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
            if *shutdown.borrow() {
                return Ok(());
            }
        }
        flush_cards(&processor).await?;
        if !store.due_orders(now_ms(), 1).await?.is_empty() {
            continue;
        }
        let next = store.next_order_due().await?.map_or(SWEEP, |due| crate::clock::until(due).min(SWEEP));
        tokio::select! {
            hint = hints.recv() => if hint.is_none() { return Ok(()) },
            _ = tokio::time::sleep(next) => {}
            _ = stopped(&shutdown) => return Ok(()),
        }
        // Take every hint that is already there: one pass serves them all.
        while hints.try_recv().is_ok() {}
    }
}

/// Orders taken per pass before cards are posted again.
const DUE_BATCH: i64 = 50;
/// The longest the worker sleeps without looking at the store.
const SWEEP: Duration = Duration::from_secs(1);

async fn flush_cards(processor: &OrderProcessor) -> Result<(), WorkflowError> {
    match processor.post_cards().await {
        Ok(_) => Ok(()),
        Err(WorkflowError::Telegram(e)) => {
            warn!(error = %e, "could not post a case to the moderator chat; will retry");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The contact task: customers' messages, the moderator chat and the
/// dialogue timers, one at a time. A failed step is logged and retried by
/// the next tick (every step starts from what the store says).
async fn contact_loop(
    contact: Arc<Contact>,
    desk: ModeratorDesk,
    mut jobs: mpsc::UnboundedReceiver<ContactJob>,
    shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = contact.resume().await {
        warn!(error = %e, "resuming the customer dialogues failed; the next tick retries");
    }
    let mut tick = tokio::time::interval(contact.config().tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let res = tokio::select! {
            job = jobs.recv() => match job {
                Some(ContactJob::Customer(m)) => contact.on_customer_message(&m).await,
                Some(ContactJob::Moderator(m)) => desk.on_message(&m).await,
                None => return,
            },
            _ = tick.tick() => contact.tick().await,
            _ = stopped(&shutdown) => return,
        };
        if let Err(e) = res {
            warn!(error = %e, "a contact step failed; it is retried from the store on the next tick");
        }
    }
}

/// Resolves once the shutdown flag is raised (or its sender is gone).
pub async fn stopped(shutdown: &watch::Receiver<bool>) {
    let mut rx = shutdown.clone();
    let _ = rx.wait_for(|s| *s).await;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    info!("shutdown signal received; finishing the step in flight");
}
