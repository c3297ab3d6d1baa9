//! [`SimClient`]: our account's session in the simulated Telegram, the
//! [`Messenger`] the daemon talks to. Every call takes the world lock once
//! and decides everything there (see [`super::calls`]); nothing sleeps
//! except what the fault plan or a test asks for (a late bot, a link that
//! is down for a while), and those sleeps are on tokio time, so paused-time
//! tests and the `simulate` command run them instantly.

use std::sync::Arc;
use std::time::Duration;

use super::state::LinkState;
use super::tribute_bot;
use super::world::SimWorld;
use tribute_assistant::telegram::{
    CallbackAnswer, ChatId, DialogsOffset, DialogsPage, Event, Message, MessageId, Messenger, MessengerError,
    MessengerResult, RandomId, UserId,
};

/// How long an update held back by the reorder fault waits for a later
/// one to overtake it before it is let through anyway.
const HELD_FOR: Duration = Duration::from_millis(500);

/// A connected client for our account. Clones share one event stream.
#[derive(Clone)]
pub struct SimClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    world: SimWorld,
    /// Which `connect()` this client came from; a later one closes it.
    generation: u64,
}

impl SimWorld {
    /// A client for our account. Replaces the previous client's event
    /// stream (it ends with `Err(Closed)`); the previous client's other
    /// calls keep working, as a second session of the same account would.
    /// Only events from now on are delivered: there is no catch-up, so a
    /// restarted daemon must re-read history.
    pub fn connect(&self) -> SimClient {
        let generation = {
            let mut st = self.lock();
            st.link.generation += 1;
            st.stream.open();
            st.link.generation
        };
        SimClient::new(self.clone(), generation)
    }
}

impl SimClient {
    pub(super) fn new(world: SimWorld, generation: u64) -> Self {
        SimClient { inner: Arc::new(ClientInner { world, generation }) }
    }

    /// The world this client lives in.
    pub fn world(&self) -> &SimWorld {
        &self.inner.world
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

    /// Events queued before a disconnect wait for the link to come back;
    /// events while it is down are lost (history keeps them).
    async fn next_event(&self) -> MessengerResult<Event> {
        let mine = self.inner.generation;
        let wake = self.world().lock().stream.wake.clone();
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut st = self.world().lock();
                if st.link.generation != mine {
                    return Err(MessengerError::Closed);
                }
                match st.link_state() {
                    LinkState::Down => None,
                    LinkState::DownFor(left) => Some(left),
                    LinkState::Up => {
                        if let Some(event) = st.stream.pop() {
                            return Ok(event);
                        }
                        st.stream.has_held().then_some(HELD_FOR)
                    }
                }
            };
            match wait {
                None => notified.await,
                Some(wait) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep(wait) => {
                            let mut st = self.world().lock();
                            if st.link_up() {
                                let st = &mut *st;
                                st.stream.release_held(&mut st.dice);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Our own sent messages do not come back as events (Telegram answers
    /// the request itself); the returned id is the handle.
    async fn send_message(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<MessageId>,
        random_id: RandomId,
    ) -> MessengerResult<MessageId> {
        let world = self.world();
        let sent = world.lock().send(world.config(), chat, text, reply_to, random_id)?;
        if let Some((delay, ours)) = sent.late_followup {
            let world = world.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut st = world.lock();
                tribute_bot::answer(&mut st, world.config(), ours);
            });
        }
        sent.answer
    }

    async fn press_button(&self, chat: ChatId, message: MessageId, data: &[u8]) -> MessengerResult<CallbackAnswer> {
        let world = self.world();
        let answer = world.lock().press(world.config(), chat, message, data);
        answer
    }

    async fn history_since(&self, chat: ChatId, after: MessageId, limit: usize) -> MessengerResult<Vec<Message>> {
        let messages = self.world().lock().history(chat, after, limit);
        messages
    }

    async fn get_messages(&self, chat: ChatId, ids: &[MessageId]) -> MessengerResult<Vec<Message>> {
        let messages = self.world().lock().get_messages(chat, ids);
        messages
    }

    async fn recent_private_chats(&self, after: Option<DialogsOffset>, limit: usize) -> MessengerResult<DialogsPage> {
        let page = self.world().lock().recent_private_chats(after, limit);
        page
    }
}
