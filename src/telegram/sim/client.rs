//! [`SimClient`]: our account's session in the simulated Telegram, the
//! [`Messenger`] the daemon talks to. Every call takes the world lock once;
//! nothing sleeps, so the simulator keeps up with thousands of orders a
//! second.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use super::state::NewMessage;
use super::tribute_bot;
use super::world::SimWorld;
use crate::telegram::{
    CallbackAnswer, ChatId, Event, Message, MessageId, Messenger, MessengerError, MessengerResult, UserId,
};

/// A connected client for our account. Clones share one event stream.
#[derive(Clone)]
pub struct SimClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    world: SimWorld,
    /// Which `connect()` this client came from; a later one closes it.
    generation: u64,
    events: tokio::sync::Mutex<UnboundedReceiver<Event>>,
}

impl SimClient {
    pub(super) fn new(world: SimWorld, generation: u64, events: UnboundedReceiver<Event>) -> Self {
        SimClient { inner: Arc::new(ClientInner { world, generation, events: tokio::sync::Mutex::new(events) }) }
    }

    /// The world this client lives in.
    pub fn world(&self) -> &SimWorld {
        &self.inner.world
    }

    fn check_connected(&self) -> MessengerResult<()> {
        if self.world().lock().connected {
            Ok(())
        } else {
            Err(MessengerError::Disconnected)
        }
    }
}

impl std::fmt::Debug for SimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimClient").field("generation", &self.inner.generation).finish()
    }
}

#[async_trait::async_trait]
impl Messenger for SimClient {
    fn self_id(&self) -> UserId {
        self.world().config().self_id
    }

    async fn next_event(&self) -> MessengerResult<Event> {
        let mine = self.inner.generation;
        let mut link = self.world().watch_link();
        let mut events = self.inner.events.lock().await;
        loop {
            let now = *link.borrow_and_update();
            if now.generation != mine {
                return Err(MessengerError::Closed);
            }
            if !now.connected {
                // Events queued before the drop wait for the reconnect.
                if link.changed().await.is_err() {
                    return Err(MessengerError::Closed);
                }
                continue;
            }
            tokio::select! {
                event = events.recv() => {
                    return match event {
                        Some(event) if link.borrow().generation == mine => Ok(event),
                        _ => Err(MessengerError::Closed),
                    };
                }
                changed = link.changed() => {
                    if changed.is_err() {
                        return Err(MessengerError::Closed);
                    }
                }
            }
        }
    }

    /// Our own sent messages do not come back as events (Telegram answers
    /// the request itself); the returned id is the handle.
    async fn send_message(&self, chat: ChatId, text: &str, reply_to: Option<MessageId>) -> MessengerResult<MessageId> {
        let world = self.world();
        let cfg = world.config();
        let (id, delay) = {
            let mut st = world.lock();
            if !st.connected {
                return Err(MessengerError::Disconnected);
            }
            if st.faults.flood_sends_left > 0 {
                st.faults.flood_sends_left -= 1;
                return Err(MessengerError::FloodWait(st.faults.flood_wait));
            }
            st.chat(chat)?;
            if let Some(error) = st.faults.send_failures.get(&chat) {
                return Err(error.clone());
            }
            if let Some(r) = reply_to {
                st.message(chat, r)?;
            }
            let msg = NewMessage {
                sender_id: Some(cfg.self_id),
                outgoing: true,
                text: text.to_owned(),
                entities: vec![],
                reply_to,
                buttons: vec![],
            };
            let id = st.append(chat, msg, false);
            let delay = st.faults.button_delay;
            if chat == cfg.tribute_bot_id && delay.is_zero() {
                tribute_bot::answer(&mut st, cfg, id);
            }
            (id, (chat == cfg.tribute_bot_id && !delay.is_zero()).then_some(delay))
        };
        if let Some(delay) = delay {
            let world = world.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut st = world.lock();
                tribute_bot::answer(&mut st, world.config(), id);
            });
        }
        Ok(id)
    }

    async fn press_button(&self, chat: ChatId, message: MessageId, data: &[u8]) -> MessengerResult<CallbackAnswer> {
        let world = self.world();
        let mut st = world.lock();
        if !st.connected {
            return Err(MessengerError::Disconnected);
        }
        tribute_bot::press(&mut st, world.config(), chat, message, data)
    }

    async fn history_since(&self, chat: ChatId, after: MessageId, limit: usize) -> MessengerResult<Vec<Message>> {
        self.check_connected()?;
        Ok(self.world().lock().chat(chat)?.since(after, limit).to_vec())
    }

    async fn get_messages(&self, chat: ChatId, ids: &[MessageId]) -> MessengerResult<Vec<Message>> {
        self.check_connected()?;
        let st = self.world().lock();
        let c = st.chat(chat)?;
        Ok(ids.iter().filter_map(|&id| c.get(id).cloned()).collect())
    }
}
