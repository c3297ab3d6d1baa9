//! [`SimWorld`]: the simulated Telegram as tests and the demo drive it —
//! other people's actions (the Tribute bot, customers, moderators), fault
//! switches, and inspection of what really happened.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::faults::{Dice, FaultPlan};
use super::order::{Delivery, SimOrder};
use super::state::{NewMessage, State};
use super::tribute_bot::{self, bot_message};
use super::SimConfig;
use tribute_assistant::telegram::{ChatId, Entity, Message, MessageId, MessengerError, UserId};

/// All state of the simulated Telegram. Cheap to clone (an `Arc`); every
/// clone sees the same world.
#[derive(Clone)]
pub struct SimWorld {
    inner: Arc<Inner>,
}

struct Inner {
    config: SimConfig,
    state: Mutex<State>,
}

impl SimWorld {
    /// A world with our account, the Tribute bot and its private chat,
    /// under the config's fault plan.
    pub fn new(config: SimConfig) -> Self {
        let mut state = State::new(config.fault_plan.clone(), config.update_buffer);
        state.add_user(config.tribute_bot_id, "Tribute", Some("tribute"));
        state.mark_bot(config.tribute_bot_id);
        SimWorld { inner: Arc::new(Inner { config, state: Mutex::new(state) }) }
    }

    /// The configuration the world was created with (the fault plan in
    /// force may since have been replaced, see [`fault_plan`](Self::fault_plan)).
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Shuts the current client's event stream down (`next_event` returns
    /// `Err(Closed)`), e.g. to stop a daemon loop at the end of a demo.
    pub fn close_client(&self) {
        let mut st = self.lock();
        st.link.generation += 1;
        st.stream.close();
    }

    /// Installs a fault plan: its seed restarts the world's generator (the
    /// bot's nonces included) and the count of injected faults starts
    /// afresh. `FaultPlan::none()` turns faults off.
    pub fn set_fault_plan(&self, plan: FaultPlan) {
        self.lock().dice = Dice::new(plan);
    }

    /// The fault plan in force.
    pub fn fault_plan(&self) -> FaultPlan {
        self.lock().dice.plan.clone()
    }

    /// Limits the live update buffer: with more than `capacity` events
    /// waiting unread, new ones are dropped (counted as `update_overflow`).
    /// `None` removes the limit.
    pub fn set_update_buffer(&self, capacity: Option<usize>) {
        self.lock().stream.capacity = capacity;
    }

    /// The private chat with the Tribute bot (its id is the bot's user id).
    pub fn tribute_chat(&self) -> ChatId {
        self.inner.config.tribute_bot_id
    }

    /// Registers a Telegram user and opens our private chat with them
    /// (chat id == user id). Re-adding updates the name.
    pub fn add_user(&self, id: UserId, first_name: &str, username: Option<&str>) {
        self.lock().add_user(id, first_name, username);
    }

    /// A group our account is a member of (e.g. the moderator chat).
    /// Its id is negative and never collides with a user id.
    pub fn create_group(&self, title: &str) -> ChatId {
        self.lock().add_group(title, false)
    }

    /// The title of a group, `None` for private or unknown chats.
    pub fn chat_title(&self, chat: ChatId) -> Option<String> {
        self.lock().chats.get(&chat).and_then(|c| c.title.clone())
    }

    /// The Tribute bot posts a Custom Product Order notification. The
    /// customer becomes a known user if they were not one yet.
    pub fn post_order(&self, order: &SimOrder) -> MessageId {
        let mut st = self.lock();
        tribute_bot::post_order(&mut st, &self.inner.config, order)
    }

    /// Any other bot message (a donation, a malformed order…). The bot
    /// does not treat it as an order: replies to it are not understood.
    pub fn post_bot_text(&self, text: &str, entities: Vec<Entity>) -> MessageId {
        let cfg = &self.inner.config;
        self.lock().append(cfg.tribute_bot_id, bot_message(cfg, text.to_owned(), entities, None, vec![]), true)
    }

    /// Another user writes to `chat`: their private chat with us
    /// (`chat == from`) or a group.
    ///
    /// # Panics
    /// If `chat` is unknown (call [`add_user`](Self::add_user) or
    /// [`create_group`](Self::create_group) first) or if `from` writes
    /// into somebody else's private chat; both are mistakes in the test.
    pub fn post_as_user(&self, chat: ChatId, from: UserId, text: &str, reply_to: Option<MessageId>) -> MessageId {
        let mut st = self.lock();
        assert!(st.chats.contains_key(&chat), "post_as_user: unknown chat {chat}; add_user or create_group first");
        assert!(chat < 0 || chat == from, "post_as_user: user {from} cannot write into the private chat {chat}");
        let msg = NewMessage {
            sender_id: Some(from),
            outgoing: false,
            text: text.to_owned(),
            entities: vec![],
            reply_to,
            buttons: vec![],
        };
        st.append(chat, msg, true)
    }

    /// The full current history of a chat as our account sees it, without
    /// deleted messages (empty for an unknown chat).
    pub fn messages(&self, chat: ChatId) -> Vec<Message> {
        self.lock().chats.get(&chat).map(|c| c.current()).unwrap_or_default()
    }

    /// What the Tribute bot actually delivered to customers, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().bot.deliveries.clone()
    }

    /// Presses of Send the bot accepted for an order (more than one would
    /// mean a double delivery, which the bot itself prevents).
    pub fn send_presses(&self, order_message_id: MessageId) -> u32 {
        self.lock().bot.send_presses(order_message_id)
    }

    // ---- faults ----------------------------------------------------------

    /// Drops the connection: every client call returns `Err(Disconnected)`
    /// and `next_event` waits. Events meanwhile are lost for the live
    /// stream; history keeps them.
    pub fn disconnect(&self) {
        let mut st = self.lock();
        st.link.connected = false;
        st.stream.wake.notify_waiters();
    }

    /// Ends [`disconnect`](Self::disconnect) (and a disconnect fault); the
    /// live stream resumes with new events only.
    pub fn reconnect(&self) {
        let mut st = self.lock();
        st.link.connected = true;
        st.link.down_until = None;
        st.stream.wake.notify_waiters();
    }

    /// False while disconnected, by [`disconnect`](Self::disconnect) or by a fault.
    pub fn is_connected(&self) -> bool {
        self.lock().link_up()
    }

    /// The next `n` `send_message` calls fail with `FloodWait(wait)`
    /// without sending anything.
    pub fn flood_wait_next_sends(&self, n: u32, wait: Duration) {
        let mut st = self.lock();
        st.faults.flood_sends_left = n;
        st.faults.flood_wait = wait;
    }

    /// Every history read (`messages.getHistory`, `getDialogs`) answers
    /// FLOOD_WAIT for `wait` from now.
    pub fn flood_wait_history(&self, wait: Duration) {
        let until = tribute_assistant::runtime::clock::now_ms() + wait.as_millis() as i64;
        self.lock().flood_until.insert(super::faults::Method::History, until);
    }

    /// The bot ignores our replies to this order: no follow-up, no button.
    pub fn button_never_comes(&self, order_message_id: MessageId) {
        self.lock().faults.button_never.insert(order_message_id);
    }

    /// The bot answers our messages after `delay` instead of at once
    /// (`Duration::ZERO`, the default, restores that).
    pub fn button_delay(&self, delay: Duration) {
        self.lock().faults.button_delay = delay;
    }

    /// Every `send_message` to `chat` fails with `error` until cleared,
    /// e.g. `PrivacyRestricted`, `UserBlocked` or `PeerFlood` for a customer.
    pub fn fail_sends_to(&self, chat: ChatId, error: MessengerError) {
        self.lock().faults.send_failures.insert(chat, error);
    }

    pub fn clear_send_failure(&self, chat: ChatId) {
        self.lock().faults.send_failures.remove(&chat);
    }

    // ---- for the client --------------------------------------------------

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge every later test assertion.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for SimWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("SimWorld")
            .field("config", &self.inner.config)
            .field("chats", &st.chats.len())
            .field("connected", &st.link_up())
            .field("fault_plan", &st.dice.plan)
            .finish()
    }
}
