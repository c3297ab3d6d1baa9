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
//!   timer, at start and after a disconnect;
//! - the pruner deletes and scrubs what is past its retention window.
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
use tracing::{info, warn};

use crate::backend::BackendClient;
use crate::contact::{Budgeted, Contact, ContactConfig, ModeratorQuestions, QuestionHandler};
use crate::moderator::{Learner, ModeratorConfig, ModeratorDesk};
use crate::orders::{CheckpointHook, IngestConfig, OrderProcessor, WorkflowConfig, WorkflowError};
use crate::report::ReportSettings;
use crate::retention::{Pruner, RetentionSettings};
use crate::runtime::backoff::{self, Jitter};
use crate::runtime::shutdown::stopped;
use crate::runtime::supervisor::spawn_supervised;
use crate::runtime::wake::Wake;
use crate::runtime::TaskBoard;
use crate::store::Store;
use crate::telegram::{Event, Messenger, MessengerError};

mod intake;
mod reread;
mod tasks;

pub use intake::TELEGRAM_SERVICE_USER;
use reread::Resync;
use tasks::{contact_loop, worker, CardPoster, ContactWakes};
pub use tasks::{ItemHook, ITEM_ATTEMPTS};

/// The longest one loop of a task may take before `/healthz` calls it
/// stuck: an LLM turn, a slow backend with its retries, a long history page.
const LOOP_BOUND: Duration = Duration::from_secs(300);

pub struct Daemon {
    store: Store,
    messenger: Arc<dyn Messenger>,
    workflow: WorkflowConfig,
    ingest: IngestConfig,
    backend: BackendClient,
    checkpoint: Option<CheckpointHook>,
    shutdown: watch::Receiver<bool>,
    /// Each task's pulse, for `/healthz` and `/metrics`.
    board: Arc<TaskBoard>,
    /// Runs before each inbox message is handled (tests inject panics).
    item_hook: Option<ItemHook>,
    /// Customer contact and the moderator chat, when enabled.
    contact: Option<ContactSetup>,
    /// The automation report's definitions (`/report`) and weekly summary.
    report: ReportSettings,
    /// How long data is kept; `None`: nothing is pruned (tests, `simulate`).
    retention: Option<RetentionSettings>,
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
        Self {
            store,
            messenger,
            workflow,
            ingest,
            backend,
            checkpoint,
            shutdown,
            board: TaskBoard::new(),
            item_hook: None,
            contact: None,
            report: ReportSettings::default(),
            retention: None,
        }
    }

    /// Reports the tasks' pulse on `board` (the one `/healthz` reads).
    pub fn with_task_board(mut self, board: Arc<TaskBoard>) -> Self {
        self.board = board;
        self
    }

    /// Runs `hook` before each inbox message is handled, inside the
    /// message's isolation: how tests make one message's handling panic.
    pub fn with_item_hook(mut self, hook: ItemHook) -> Self {
        self.item_hook = Some(hook);
        self
    }

    /// Prunes and scrubs the store by `settings` while it runs (`retention`).
    pub fn with_retention(mut self, settings: RetentionSettings) -> Self {
        self.retention = Some(settings);
        self
    }

    /// The report's settings: the resolution window `/report` counts with,
    /// and the weekly summary in the moderator chat when one is scheduled.
    pub fn with_report(mut self, settings: ReportSettings) -> Self {
        self.report = settings;
        self
    }

    /// Talks to customers whose order needs their account ID and serves the
    /// moderator chat (instead of sending every account problem straight to
    /// the moderator).
    pub fn with_contact(mut self, setup: ContactSetup) -> Self {
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
        let started_secs = crate::runtime::clock::now_secs();
        let resync = Resync {
            store: self.store.clone(),
            messenger: self.messenger.clone(),
            workflow: self.workflow.clone(),
            ingest: self.ingest.clone(),
            orders_wake: orders_wake.clone(),
            inbox_wake: inbox_wake.clone(),
            cards_wake: cards_wake.clone(),
            contact: self.contact.is_some(),
            started_secs,
            now: Arc::new(Notify::new()),
            paged: Arc::default(),
            dialogs_since: Arc::new(std::sync::atomic::AtomicI64::new(started_secs - reread::UNSEEN_CHAT_LOOKBACK)),
        };
        if let Err(e) = resync.catch_up().await {
            // Telegram may be unreachable right now; the re-read task retries on its timer.
            warn!(error = %format!("{e:#}"), "could not catch up on the Tribute chat history yet; retrying");
            resync.now.notify_one();
        }
        resync.catch_up_inbox().await;
        let mut processor = OrderProcessor::new(
            self.store.clone(),
            self.messenger.clone(),
            self.backend.clone(),
            self.workflow.clone(),
            self.ingest.clone(),
            self.shutdown.clone(),
            self.checkpoint.clone(),
        );
        processor.set_customer_contact(self.contact.is_some());
        let processor = Arc::new(processor);
        let board = &self.board;
        let shutdown = &self.shutdown;
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
            let desk = Arc::new(
                ModeratorDesk::new(
                    contact.clone(),
                    self.messenger.clone(),
                    setup.moderator.clone(),
                    setup.learner.clone(),
                )
                .with_report(self.report.clone()),
            );
            let wakes = ContactWakes { inbox: inbox_wake.clone(), cards: cards_wake.clone() };
            let hook = self.item_hook.clone();
            spawn_supervised(board, "contact", LOOP_BOUND, shutdown, move |task, stop| {
                contact_loop(contact.clone(), desk.clone(), wakes.clone(), stop, task, hook.clone())
            })
        });
        let desk_task = self.workflow.moderator_chat.map(|chat| {
            let poster = CardPoster {
                store: self.store.clone(),
                messenger: self.messenger.clone(),
                chat,
                report: self.report.clone(),
            };
            let wake = cards_wake.clone();
            spawn_supervised(board, "cards", LOOP_BOUND, shutdown, move |task, stop| {
                poster.clone().run(wake.clone(), stop, task)
            })
        });
        let mut worker = {
            let (store, orders_wake, cards_wake) = (self.store.clone(), orders_wake.clone(), cards_wake.clone());
            spawn_supervised(board, "orders", LOOP_BOUND, shutdown, move |task, stop| {
                worker(processor.clone(), store.clone(), orders_wake.clone(), cards_wake.clone(), stop, task)
            })
        };
        let resync_task = {
            let bound = self.workflow.resync_interval * 3 + LOOP_BOUND;
            let resync = resync.clone();
            spawn_supervised(board, "reread", bound, shutdown, move |task, stop| {
                resync.clone().periodically(stop, task)
            })
        };
        let retention_task = self.retention.clone().map(|settings| {
            let bound = settings.interval * 2 + LOOP_BOUND;
            let store = self.store.clone();
            spawn_supervised(board, "retention", bound, shutdown, move |task, stop| {
                Pruner::new(store.clone(), settings.clone()).run(stop, task)
            })
        });
        let mut failures = 0u32;
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
                    failures = 0;
                    if let Err(e) = self.handle(ev, &resync).await {
                        // The update is still in Telegram's history: the next re-read stores it.
                        warn!(error = %format!("{e:#}"), "could not store an update; the history re-read recovers it");
                    }
                }
                Some(Err(MessengerError::Closed)) => break Exit::MessengerClosed,
                Some(Err(e)) => {
                    let wait =
                        backoff::delay(failures, Duration::from_millis(100), Duration::from_secs(30), Jitter::None);
                    failures = failures.saturating_add(1);
                    warn!(error = %e, retry_in = ?wait, "Telegram updates interrupted");
                    tokio::time::sleep(wait).await;
                    if e == MessengerError::Disconnected {
                        // Updates may have been missed while disconnected: the re-read task looks now.
                        resync.now.notify_one();
                    }
                }
            }
        };
        resync_task.abort();
        info!("waiting for the step in flight to finish");
        for task in [contact_task, desk_task, retention_task].into_iter().flatten() {
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
