//! Runs the built parts as tasks ([`crate::app::assemble`] builds them).
//! The store is the only queue:
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

use crate::contact::Contact;
use crate::moderator::ModeratorDesk;
use crate::orders::{IngestConfig, OrderProcessor, WorkflowConfig, WorkflowError};
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
use tasks::{contact_loop, worker, ContactWakes};
pub use tasks::{CardPoster, ItemHook, ITEM_ATTEMPTS};

/// The longest one loop of a task may take before `/healthz` calls it
/// stuck: an LLM turn, a slow backend with its retries, a long history page.
const LOOP_BOUND: Duration = Duration::from_secs(300);

/// The built parts the daemon runs as tasks. [`crate::app::assemble`]
/// builds them, once, for every caller (`run`, the sandbox, `simulate`,
/// the tests): the daemon only starts and stops tasks.
pub struct Parts {
    pub store: Store,
    /// The messenger every task uses (observed for `/metrics`).
    pub messenger: Arc<dyn Messenger>,
    pub orders: Arc<OrderProcessor>,
    /// Customer contact and the moderator desk, when contact is on.
    pub desk: Option<DeskParts>,
    /// The moderator chat's poster, when there is a moderator chat.
    pub cards: Option<CardPoster>,
    pub wakes: Wakes,
    pub workflow: WorkflowConfig,
    pub ingest: IngestConfig,
    /// How long data is kept; `None`: nothing is pruned (tests, `simulate`).
    pub retention: Option<RetentionSettings>,
    /// Each task's pulse, for `/healthz` and `/metrics`.
    pub board: Arc<TaskBoard>,
    /// Runs before each inbox message is handled (tests inject panics).
    pub item_hook: Option<ItemHook>,
    pub shutdown: watch::Receiver<bool>,
}

/// The customer side and the moderator side of the contact task.
pub struct DeskParts {
    pub contact: Arc<Contact>,
    pub desk: Arc<ModeratorDesk>,
}

/// The hints that wake a task when its work is in the store.
#[derive(Clone)]
pub struct Wakes {
    pub orders: Wake,
    pub inbox: Wake,
    pub cards: Wake,
}

impl Wakes {
    pub fn new() -> Self {
        Self { orders: Wake::new(), inbox: Wake::new(), cards: Wake::new() }
    }
}

impl Default for Wakes {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Daemon {
    parts: Parts,
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
    pub fn new(parts: Parts) -> Self {
        Self { parts }
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
        let p = &self.parts;
        let started_secs = crate::runtime::clock::now_secs();
        let resync = Resync {
            store: p.store.clone(),
            messenger: p.messenger.clone(),
            workflow: p.workflow.clone(),
            ingest: p.ingest.clone(),
            orders_wake: p.wakes.orders.clone(),
            inbox_wake: p.wakes.inbox.clone(),
            cards_wake: p.wakes.cards.clone(),
            contact: p.desk.is_some(),
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
        let (board, shutdown) = (&p.board, &p.shutdown);
        let contact_task = p.desk.as_ref().map(|d| {
            let (contact, desk) = (d.contact.clone(), d.desk.clone());
            let wakes = ContactWakes { inbox: p.wakes.inbox.clone(), cards: p.wakes.cards.clone() };
            let hook = p.item_hook.clone();
            spawn_supervised(board, "contact", LOOP_BOUND, shutdown, move |task, stop| {
                contact_loop(contact.clone(), desk.clone(), wakes.clone(), stop, task, hook.clone())
            })
        });
        let desk_task = p.cards.clone().map(|poster| {
            let wake = p.wakes.cards.clone();
            spawn_supervised(board, "cards", LOOP_BOUND, shutdown, move |task, stop| {
                poster.clone().run(wake.clone(), stop, task)
            })
        });
        let mut worker = {
            let (processor, store, wakes) = (p.orders.clone(), p.store.clone(), p.wakes.clone());
            spawn_supervised(board, "orders", LOOP_BOUND, shutdown, move |task, stop| {
                worker(processor.clone(), store.clone(), wakes.orders.clone(), wakes.cards.clone(), stop, task)
            })
        };
        let resync_task = {
            let bound = p.workflow.resync_interval * 3 + LOOP_BOUND;
            let resync = resync.clone();
            spawn_supervised(board, "reread", bound, shutdown, move |task, stop| {
                resync.clone().periodically(stop, task)
            })
        };
        let retention_task = p.retention.clone().map(|settings| {
            let bound = settings.interval * 2 + LOOP_BOUND;
            let store = p.store.clone();
            spawn_supervised(board, "retention", bound, shutdown, move |task, stop| {
                Pruner::new(store.clone(), settings.clone()).run(stop, task)
            })
        });
        let mut failures = 0u32;
        let exit = loop {
            // Decide inside `select!`, act after it: the shutdown branch holds a
            // non-Send watch guard that must not live across our awaits.
            let next = tokio::select! {
                ev = p.messenger.next_event() => Some(ev),
                res = &mut worker => {
                    resync_task.abort();
                    return match res.context("the order worker panicked")? {
                        Ok(()) => Ok(Exit::Shutdown),
                        Err(e) => Err(e.into()),
                    };
                }
                _ = stopped(&p.shutdown) => None,
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
            Event::NewMessage(m) if m.chat_id == self.parts.workflow.tribute_chat => resync.ingest_one(&m).await,
            Event::NewMessage(m) => match resync.route(&m) {
                Some(kind) => resync.enqueue(kind, &m, false).await,
                None => Ok(()),
            },
            Event::MessageEdited(m) if m.chat_id == self.parts.workflow.tribute_chat => {
                self.parts.store.update_tribute_message(&m).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
