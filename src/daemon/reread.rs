//! The re-read: the chats' history read into the store once at start,
//! then on a timer and after a disconnect, so a lost update costs a delay,
//! never an item. What it finds goes through the live intake
//! ([`super::intake`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use super::intake::TELEGRAM_SERVICE_USER;
use crate::orders::{IngestConfig, WorkflowConfig};
use crate::runtime::shutdown::stopped;
use crate::runtime::wake::Wake;
use crate::store::{InboxKind, MessageKind, Store};
use crate::telegram::{history, ChatId, MessageId, Messenger, MessengerError};

/// The daemon's way into the store for messages: the live intake's steps
/// ([`super::intake`]) and the re-read (here) that hands them what the
/// history shows; the re-read runs in its own task.
#[derive(Clone)]
pub(super) struct Resync {
    pub(super) store: Store,
    pub(super) messenger: Arc<dyn Messenger>,
    pub(super) workflow: WorkflowConfig,
    pub(super) ingest: IngestConfig,
    pub(super) orders_wake: Wake,
    pub(super) inbox_wake: Wake,
    pub(super) cards_wake: Wake,
    /// Customer contact and the moderator chat are served.
    pub(super) contact: bool,
    /// When this run started (unix s): moderator-chat history older than
    /// that is never replayed on the first read.
    pub(super) started_secs: i64,
    /// Asks for a re-read at once (after a disconnect).
    pub(super) now: Arc<Notify>,
    /// The newest message each re-read chat was paged through to in this
    /// run: our own cards are never in the inbox, so without it every pass
    /// would page through all the cards posted since a moderator last wrote.
    pub(super) paged: Arc<std::sync::Mutex<std::collections::HashMap<ChatId, MessageId>>>,
    /// Unix seconds the dialogs list is paged back to: the start of the last
    /// complete pass (less [`DIALOGS_SLACK`]); at start, the unseen-chat lookback.
    pub(super) dialogs_since: Arc<AtomicI64>,
}

/// What one pass learned from the dialogs list.
#[derive(Default)]
struct Dialogs {
    /// Each listed private chat's newest message.
    tops: std::collections::HashMap<ChatId, MessageId>,
    /// Chats (not awaited ones) to re-read, each with its rank (see
    /// [`Resync::list_dialogs`]), lowest rank first, then newest activity first.
    to_read: Vec<(u8, ChatId)>,
    /// The list was read back to the last complete pass and nothing was left out.
    complete: bool,
}

/// Dialogs per `messages.getDialogs` page.
const RECENT_CHATS: usize = 100;
/// Pages one re-read pass reads at most (a crowd beyond this many chats a
/// minute is read from the newest again next pass).
const MAX_DIALOG_PAGES: usize = 20;
/// Chats found in the dialogs list one pass re-reads at most (one history
/// call each, at least); the rest wait for the next pass.
const MAX_CHAT_REREADS: usize = 50;
/// Seconds a dialog may be dated before the pass that saw it (our clock and
/// Telegram's disagree a little; an update may land while a pass runs).
const DIALOGS_SLACK: i64 = 300;
/// In a private chat the inbox has never seen, messages older than this
/// before the daemon's start are recorded as seen, not answered (seconds).
pub(super) const UNSEEN_CHAT_LOOKBACK: i64 = 24 * 3600;

impl Resync {
    pub(super) async fn periodically(
        self,
        shutdown: watch::Receiver<bool>,
        task: crate::runtime::TaskHandle,
    ) -> Result<(), std::convert::Infallible> {
        // When Telegram lets us read history again (unix ms): a pass during
        // its flood wait would only be refused (and on real Telegram, asking
        // again during a wait can make the next one longer).
        let mut history_free_at = i64::MIN;
        loop {
            task.beat();
            let pause = self.workflow.resync_interval.max(crate::runtime::clock::until(history_free_at));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.now.notified() => {}
                _ = stopped(&shutdown) => return Ok(()),
            }
            if crate::runtime::clock::now_ms() < history_free_at {
                continue; // a hint (a reconnect) during the wait: the re-read still waits
            }
            let mut flood = None;
            if let Err(err) = self.catch_up().await {
                flood = flood_wait(&err);
                warn!(error = %format!("{err:#}"), "history re-read failed; the next one retries");
            }
            if flood.is_none() {
                flood = self.catch_up_inbox().await;
            }
            if let Some(wait) = flood {
                history_free_at = crate::runtime::clock::now_ms() + wait.as_millis() as i64;
                info!(
                    wait_secs = wait.as_secs(),
                    "Telegram asked us to wait before reading history again; the re-read waits"
                );
            }
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
    pub(super) async fn catch_up(&self) -> anyhow::Result<()> {
        let chat = self.workflow.tribute_chat;
        let now_secs = crate::runtime::clock::now_secs();
        let first_start = self.store.last_seen_message(chat).await? == 0;
        let window = self.workflow.resync_window.as_secs() as i64;
        let since = match self.store.history_read_through(chat).await? {
            Some(read_through) => read_through.min(now_secs) - window,
            None => now_secs - window,
        };
        let mut pages = history::Pages::new(chat, self.store.last_message_before(chat, since).await?);
        let cutoff = now_secs - self.workflow.first_start_lookback.as_secs() as i64;
        let (mut seen, mut skipped) = (0, 0);
        while let Some(page) = pages.next(self.messenger.as_ref()).await? {
            let (Some(first), Some(last)) = (page.first(), page.last()) else { break };
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

    /// Reads the moderator chat, the chats of customers a dialogue waits
    /// for and any other private chat with something new since the last
    /// re-read, so what arrived while the daemon was down (or was lost in
    /// transit) is handled. On the very first read of the moderator chat,
    /// its older history is recorded as seen, never replayed.
    ///
    /// Returns Telegram's flood wait on reading history, if a read met one
    /// (the chats after it wait for the next pass).
    pub(super) async fn catch_up_inbox(&self) -> Option<Duration> {
        if !self.contact {
            return None;
        }
        let awaited = self.store.customers_to_reread().await.unwrap_or_else(|e| {
            warn!(error = %e, "could not list the customers' chats to re-read");
            Vec::new()
        });
        let pass_started = crate::runtime::clock::now_secs();
        let dialogs = self.list_dialogs(&awaited).await;
        // Awaited customers first, but only those with something the re-read
        // has not paged through (each re-read is a history call, and every
        // call spent on a chat with nothing new is one a flood wait or a
        // dropped link may take from a chat with a lost message).
        let fresh = awaited.into_iter().filter(|chat| match (self.paged_through(*chat), dialogs.tops.get(chat)) {
            (Some(p), Some(top)) => p < *top,
            // Not in a complete list: nothing since the last complete pass.
            (Some(_), None) => !dialogs.complete,
            (None, _) => true,
        });
        let mut chats: Vec<(ChatId, InboxKind)> =
            self.workflow.moderator_chat.map(|c| (c, InboxKind::Moderator)).into_iter().collect();
        chats.extend(fresh.chain(dialogs.to_read.into_iter().map(|(_, c)| c)).map(|c| (c, InboxKind::Customer)));
        let mut complete = dialogs.complete;
        let mut flood = None;
        for (chat, kind) in chats {
            if let Err(e) = self.reread_chat(chat, kind).await {
                warn!(chat, error = %format!("{e:#}"), "re-reading a chat failed; the next pass retries");
                complete = false;
                // Telegram holds every history call for a while: the others wait for the next pass.
                if let Some(wait) = flood_wait(&e) {
                    flood = Some(wait);
                    break;
                }
            }
        }
        // Only a pass that read every chat it had to moves the mark: a chat
        // whose re-read failed is read from before this pass again.
        if complete {
            self.dialogs_since.store(pass_started - DIALOGS_SLACK, Ordering::Relaxed);
        }
        flood
    }

    /// Pages the dialogs list back to the start of the last complete pass
    /// (so a crowd of new senders does not hide one lost message): what each
    /// private chat's newest message is, and which chats other than the
    /// awaited ones have something the re-read has not seen (a stranger's
    /// question whose live update Telegram lost is found here).
    async fn list_dialogs(&self, awaited: &[ChatId]) -> Dialogs {
        let since = self.dialogs_since.load(Ordering::Relaxed);
        let mut dialogs = Dialogs::default();
        let mut offset = None;
        for page_no in 1..=MAX_DIALOG_PAGES {
            let page = match self.messenger.recent_private_chats(offset, RECENT_CHATS).await {
                Ok(page) => page,
                Err(e) => {
                    warn!(error = %e, "could not list the recent private chats; the next pass retries");
                    break;
                }
            };
            for (chat, top) in page.chats {
                dialogs.tops.insert(chat, top);
                if chat == TELEGRAM_SERVICE_USER || chat == self.workflow.tribute_chat || awaited.contains(&chat) {
                    continue;
                }
                let paged = self.paged_through(chat);
                match paged {
                    Some(p) if p >= top => continue,
                    // Paged before, newer messages since: even when their
                    // updates came, one before them may have been lost.
                    Some(_) => {}
                    // Not looked at in this run: if everything up to the top
                    // was stored before the last pass, nothing is new.
                    None => match self.store.inbox_cursor_before(chat, since * 1000).await {
                        Ok(seen) if seen.is_some_and(|s| s >= top) => {
                            self.mark_paged(chat, top);
                            continue;
                        }
                        _ => {}
                    },
                }
                // First a chat with nothing of it stored (its first message
                // was lost: nobody knows they wrote), then one not re-read
                // yet in this run, then the rest.
                let rank = match (paged, self.store.inbox_cursor(chat).await) {
                    (_, Ok(None)) => 0,
                    (None, _) => 1,
                    (Some(_), _) => 2,
                };
                dialogs.to_read.push((rank, chat));
            }
            match page.next {
                Some(next) if next.date >= since && page_no < MAX_DIALOG_PAGES => offset = Some(next),
                Some(next) if next.date >= since => {
                    warn!(
                        pages = page_no,
                        "more chats were active since the last pass than one pass reads; \
                        the next pass reads the newest again"
                    );
                    break;
                }
                _ => {
                    dialogs.complete = true;
                    break;
                }
            }
        }
        // By rank, then newest activity first; at most
        // MAX_CHAT_REREADS a pass (the rest next pass).
        dialogs.to_read.sort_by_key(|(rank, _)| *rank);
        if dialogs.to_read.len() > MAX_CHAT_REREADS {
            debug!(chats = dialogs.to_read.len(), "more chats to re-read than one pass takes");
            dialogs.to_read.truncate(MAX_CHAT_REREADS);
            dialogs.complete = false;
        }
        dialogs
    }

    /// The newest message of `chat` a re-read of this run paged through.
    fn paged_through(&self, chat: ChatId) -> Option<MessageId> {
        self.paged.lock().unwrap_or_else(|e| e.into_inner()).get(&chat).copied()
    }

    fn mark_paged(&self, chat: ChatId, through: MessageId) {
        self.paged.lock().unwrap_or_else(|e| e.into_inner()).insert(chat, through);
    }

    pub(super) async fn reread_chat(&self, chat: ChatId, kind: InboxKind) -> anyhow::Result<()> {
        let cursor = self.store.inbox_cursor(chat).await?;
        let first_read = cursor.is_none() && kind == InboxKind::Moderator;
        // A private chat never stored from before the assistant's time (or
        // long before this start) is history, not a question to answer now.
        let stale_before =
            if cursor.is_none() && kind == InboxKind::Customer { self.started_secs - UNSEEN_CHAT_LOOKBACK } else { 0 };
        // From where the last re-read stopped, not from the newest stored
        // message: a live update may have come after one that was lost. A
        // chat not re-read in this run starts at what was stored before the
        // last complete pass (a day before the start, after a restart); if
        // every stored message is newer, at the start of the chat, leaving
        // out what is older than that pass (looked at then, or handled and
        // pruned since: never taken again).
        let since = self.dialogs_since.load(Ordering::Relaxed);
        let (after, older_seen) = match self.paged_through(chat) {
            Some(p) => (p, 0),
            None => match self.store.inbox_cursor_before(chat, since * 1000).await? {
                Some(before) => (before, 0),
                None => (0, if cursor.is_some() { since } else { 0 }),
            },
        };
        debug!(chat, after, older_seen, "re-reading a chat");
        let mut pages = history::Pages::new(chat, after);
        while let Some(page) = pages.next(self.messenger.as_ref()).await? {
            for m in page.iter().filter(|m| self.route(m) == Some(kind) && m.date >= older_seen) {
                self.enqueue(kind, m, (first_read && m.date < self.started_secs) || m.date < stale_before).await?;
            }
            // Everything up to here is stored (or not ours to store).
            self.mark_paged(chat, pages.after());
        }
        Ok(())
    }
}

/// Telegram's flood wait, if that is what a re-read met.
fn flood_wait(e: &anyhow::Error) -> Option<Duration> {
    match e.downcast_ref::<MessengerError>() {
        Some(MessengerError::FloodWait(wait)) => Some(*wait),
        _ => None,
    }
}
