//! Telegram as the ops listener sees it: a [`Messenger`] wrapper that
//! counts flood waits and errors, remembers the last update and whether
//! the connection looks up. It changes nothing about the calls, so the
//! daemon behaves the same with or without it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::runtime::clock::now_ms;
use crate::telegram::{
    CallbackAnswer, ChatId, DialogsOffset, DialogsPage, Event, Message, MessageId, Messenger, MessengerError,
    MessengerResult, RandomId, UserId,
};

/// What the wrapper observed; shared with the ops listener.
#[derive(Debug)]
pub struct TelegramStats {
    /// False after a `Disconnected`/`Closed` error until the next successful call.
    connected: AtomicBool,
    /// Unix ms of the last update received (0 = none yet).
    last_update_ms: AtomicI64,
    updates: AtomicU64,
    flood_waits: AtomicU64,
    flood_wait_ms: AtomicU64,
    /// Errors by kind (`flood_wait`, `disconnected`, `peer_flood`, …).
    errors: Mutex<BTreeMap<&'static str, u64>>,
    last_error: Mutex<Option<String>>,
}

impl Default for TelegramStats {
    fn default() -> Self {
        Self {
            // The adapters are connected when they are handed to the daemon.
            connected: AtomicBool::new(true),
            last_update_ms: AtomicI64::new(0),
            updates: AtomicU64::new(0),
            flood_waits: AtomicU64::new(0),
            flood_wait_ms: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            last_error: Mutex::new(None),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelegramSnapshot {
    pub connected: bool,
    pub last_update_ms: Option<i64>,
    pub updates: u64,
    pub flood_waits: u64,
    pub flood_wait_ms: u64,
    pub errors: Vec<(&'static str, u64)>,
    pub last_error: Option<String>,
}

impl TelegramStats {
    pub fn snapshot(&self) -> TelegramSnapshot {
        let last = self.last_update_ms.load(Ordering::Relaxed);
        TelegramSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            last_update_ms: (last > 0).then_some(last),
            updates: self.updates.load(Ordering::Relaxed),
            flood_waits: self.flood_waits.load(Ordering::Relaxed),
            flood_wait_ms: self.flood_wait_ms.load(Ordering::Relaxed),
            errors: self.errors.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (*k, *v)).collect(),
            last_error: self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    fn ok(&self) {
        self.connected.store(true, Ordering::Relaxed);
    }

    fn update(&self) {
        self.ok();
        self.updates.fetch_add(1, Ordering::Relaxed);
        self.last_update_ms.store(now_ms(), Ordering::Relaxed);
    }

    fn error(&self, e: &MessengerError) {
        if let MessengerError::FloodWait(d) = e {
            self.flood_waits.fetch_add(1, Ordering::Relaxed);
            self.flood_wait_ms.fetch_add(d.as_millis() as u64, Ordering::Relaxed);
        }
        if matches!(e, MessengerError::Disconnected | MessengerError::Closed) {
            self.connected.store(false, Ordering::Relaxed);
        }
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()).entry(error_kind(e)).or_default() += 1;
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
    }

    fn record<T>(&self, r: MessengerResult<T>) -> MessengerResult<T> {
        match &r {
            Ok(_) => self.ok(),
            Err(e) => self.error(e),
        }
        r
    }
}

/// A stable label for each error kind.
pub fn error_kind(e: &MessengerError) -> &'static str {
    match e {
        MessengerError::FloodWait(_) => "flood_wait",
        MessengerError::Disconnected => "disconnected",
        MessengerError::Timeout => "timeout",
        MessengerError::ChatNotFound(_) => "chat_not_found",
        MessengerError::MessageNotFound(..) => "message_not_found",
        MessengerError::ButtonNotFound(_) => "button_not_found",
        MessengerError::PrivacyRestricted => "privacy_restricted",
        MessengerError::UserBlocked => "user_blocked",
        MessengerError::UserDeactivated => "user_deactivated",
        MessengerError::PeerFlood => "peer_flood",
        MessengerError::MessageTooLong => "message_too_long",
        MessengerError::MessageEmpty => "message_empty",
        MessengerError::EntitiesTooLong => "entities_too_long",
        MessengerError::DataInvalid => "data_invalid",
        MessengerError::RandomIdDuplicate => "random_id_duplicate",
        MessengerError::Closed => "closed",
        MessengerError::Other(_) => "other",
    }
}

/// Wraps any messenger (simulator or grammers) and reports to [`TelegramStats`].
pub struct ObservedMessenger {
    inner: Arc<dyn Messenger>,
    stats: Arc<TelegramStats>,
}

impl ObservedMessenger {
    pub fn new(inner: Arc<dyn Messenger>, stats: Arc<TelegramStats>) -> Self {
        Self { inner, stats }
    }
}

#[async_trait::async_trait]
impl Messenger for ObservedMessenger {
    fn self_id(&self) -> UserId {
        self.inner.self_id()
    }

    async fn next_event(&self) -> MessengerResult<Event> {
        let r = self.inner.next_event().await;
        match &r {
            Ok(_) => self.stats.update(),
            Err(e) => self.stats.error(e),
        }
        r
    }

    async fn send_message(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<MessageId>,
        random_id: RandomId,
    ) -> MessengerResult<MessageId> {
        self.stats.record(self.inner.send_message(chat, text, reply_to, random_id).await)
    }

    async fn press_button(&self, chat: ChatId, message: MessageId, data: &[u8]) -> MessengerResult<CallbackAnswer> {
        self.stats.record(self.inner.press_button(chat, message, data).await)
    }

    async fn history_since(&self, chat: ChatId, after: MessageId, limit: usize) -> MessengerResult<Vec<Message>> {
        self.stats.record(self.inner.history_since(chat, after, limit).await)
    }

    async fn get_messages(&self, chat: ChatId, ids: &[MessageId]) -> MessengerResult<Vec<Message>> {
        self.stats.record(self.inner.get_messages(chat, ids).await)
    }

    async fn recent_private_chats(&self, after: Option<DialogsOffset>, limit: usize) -> MessengerResult<DialogsPage> {
        self.stats.record(self.inner.recent_private_chats(after, limit).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_flood_waits_and_tracks_the_connection() {
        let s = TelegramStats::default();
        assert!(s.snapshot().connected);
        s.error(&MessengerError::FloodWait(Duration::from_secs(3)));
        s.error(&MessengerError::Disconnected);
        let snap = s.snapshot();
        assert_eq!((snap.flood_waits, snap.flood_wait_ms, snap.connected), (1, 3000, false));
        assert_eq!(snap.errors, vec![("disconnected", 1), ("flood_wait", 1)]);
        s.update();
        let snap = s.snapshot();
        assert!(snap.connected && snap.last_update_ms.is_some() && snap.updates == 1);
    }
}
