//! The mutable heart of the simulated Telegram: chats, their histories,
//! users and their settings, the link, the live stream and the counters.
//! Everything lives behind one `std::sync::Mutex` in [`super::SimWorld`];
//! each operation takes it once for a few microseconds, which keeps the
//! simulator far faster than the daemon it serves, and makes "message
//! stored" and "event handed to the stream" a single atomic step (what the
//! stream then does to the event is the fault plan's business, see
//! [`super::stream`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::bot_state::BotState;
use super::faults::{Dice, FaultPlan, Method};
use super::rules::Strangers;
use super::stream::Stream;
use tribute_assistant::telegram::{
    ChatId, Entity, Event, InlineButton, Message, MessageId, MessengerError, RandomId, UserId,
};

/// A chat as our account sees it. Message ids start at 1 and are the
/// index + 1 in `messages` (a deleted message leaves `None`), so lookups
/// are O(1) and ids are never reused.
pub(super) struct Chat {
    /// Group or channel title; `None` for private chats.
    pub title: Option<String>,
    pub messages: Vec<Option<Message>>,
    /// Anyone ever wrote here (a private chat without it is a stranger's).
    pub talked: bool,
    /// The other person of a private chat wrote here at least once.
    pub they_wrote: bool,
    /// The world's message count when the newest message here was posted:
    /// orders the dialogs list within one second, as Telegram does.
    pub last_activity: u64,
}

impl Chat {
    fn new(title: Option<String>) -> Self {
        Chat { title, messages: Vec::new(), talked: false, they_wrote: false, last_activity: 0 }
    }

    fn slot(id: MessageId) -> Option<usize> {
        usize::try_from(id).ok().and_then(|i| i.checked_sub(1))
    }

    pub fn get(&self, id: MessageId) -> Option<&Message> {
        Self::slot(id).and_then(|i| self.messages.get(i)).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, id: MessageId) -> Option<&mut Message> {
        Self::slot(id).and_then(|i| self.messages.get_mut(i)).and_then(Option::as_mut)
    }

    /// Messages with id > `after`, oldest first, at most `limit`.
    pub fn since(&self, after: MessageId, limit: usize) -> Vec<Message> {
        let start = usize::try_from(after.max(0)).unwrap_or(0).min(self.messages.len());
        self.messages[start..].iter().flatten().take(limit).cloned().collect()
    }

    /// The messages that were not deleted, oldest first.
    pub fn current(&self) -> Vec<Message> {
        self.messages.iter().flatten().cloned().collect()
    }
}

/// A Telegram user known to the world (customers, moderators, bots).
pub(super) struct User {
    pub first_name: String,
    pub username: Option<String>,
    /// Came with an order: the fault plan may choose their settings.
    pub customer: bool,
    /// A bot account (the Tribute bot, other bots).
    pub bot: bool,
    /// Explicit settings (`SimWorld::set_blocked` …) win over the plan's.
    pub settings: UserSettings,
}

/// What a user did about us; `None` leaves it to the fault plan.
#[derive(Default, Clone, Copy)]
pub(super) struct UserSettings {
    pub blocked: Option<bool>,
    pub deactivated: Option<bool>,
    pub privacy: Option<bool>,
}

/// Fault switches, set by tests through [`super::SimWorld`] methods.
#[derive(Default)]
pub(super) struct Faults {
    /// How many of the next `send_message` calls fail with `FloodWait`.
    pub flood_sends_left: u32,
    pub flood_wait: Duration,
    /// Orders whose replies the bot ignores.
    pub button_never: HashSet<MessageId>,
    /// Delay before the bot answers our replies.
    pub button_delay: Duration,
    /// Persistent send failures per chat (privacy, blocked, PEER_FLOOD…).
    pub send_failures: HashMap<ChatId, MessengerError>,
}

/// The connection of our account.
pub(super) struct Link {
    /// False while the `disconnect()` switch is on.
    pub connected: bool,
    /// A disconnect fault keeps the link down until this clock time (ms).
    pub down_until: Option<i64>,
    /// Bumped by every `connect()` and `close_client()`; a client from an
    /// older generation is closed.
    pub generation: u64,
}

/// How the link is, as a waiting client sees it.
pub(super) enum LinkState {
    Up,
    /// Down until somebody reconnects it.
    Down,
    /// Down for this long, then back by itself.
    DownFor(Duration),
}

/// What the world counts for checkers, besides the injected faults.
#[derive(Default)]
pub(super) struct Tally {
    pub refused_sends: BTreeMap<String, u64>,
    pub refused_presses: BTreeMap<String, u64>,
    /// History and dialogs reads refused, by Telegram's name for the error.
    pub refused_reads: BTreeMap<String, u64>,
    /// The longest text ever accepted, in UTF-16 code units.
    pub max_text_utf16: usize,
    /// Messages stored in any chat so far (ours and everybody else's).
    pub messages: u64,
}

/// A message about to be stored; the chat assigns id and date.
pub(super) struct NewMessage {
    pub sender_id: Option<UserId>,
    pub outgoing: bool,
    pub text: String,
    pub entities: Vec<Entity>,
    pub reply_to: Option<MessageId>,
    pub buttons: Vec<Vec<InlineButton>>,
}

pub(super) struct State {
    pub chats: HashMap<ChatId, Chat>,
    pub users: HashMap<UserId, User>,
    pub groups_created: i64,
    pub stream: Stream,
    pub link: Link,
    pub faults: Faults,
    pub dice: Dice,
    pub tally: Tally,
    /// Which send made which message, per `random_id` (one account).
    pub random_ids: HashMap<RandomId, (ChatId, MessageId)>,
    pub strangers: Strangers,
    /// Per method, the clock time (ms) until which calls are flood-waited.
    pub flood_until: HashMap<Method, i64>,
    /// Customers whose plan-chosen settings were already counted as faults.
    pub fated: HashSet<UserId>,
    pub bot: BotState,
}

impl State {
    pub fn new(plan: FaultPlan, update_buffer: Option<usize>) -> Self {
        State {
            chats: HashMap::new(),
            users: HashMap::new(),
            groups_created: 0,
            stream: Stream::new(update_buffer),
            link: Link { connected: true, down_until: None, generation: 0 },
            faults: Faults::default(),
            dice: Dice::new(plan),
            tally: Tally::default(),
            random_ids: HashMap::new(),
            strangers: Strangers::default(),
            flood_until: HashMap::new(),
            fated: HashSet::new(),
            bot: BotState::default(),
        }
    }

    /// The link right now (the clock decides when a disconnect fault ends).
    pub fn link_state(&self) -> LinkState {
        if !self.link.connected {
            return LinkState::Down;
        }
        let now = tribute_assistant::runtime::clock::now_ms();
        match self.link.down_until {
            Some(until) if now < until => LinkState::DownFor(Duration::from_millis((until - now) as u64)),
            _ => LinkState::Up,
        }
    }

    pub fn link_up(&self) -> bool {
        matches!(self.link_state(), LinkState::Up)
    }

    pub fn add_user(&mut self, id: UserId, first_name: &str, username: Option<&str>) {
        let (first_name, username) = (first_name.to_owned(), username.map(str::to_owned));
        match self.users.get_mut(&id) {
            Some(u) => {
                u.first_name = first_name;
                u.username = username;
            }
            None => {
                let user =
                    User { first_name, username, customer: false, bot: false, settings: UserSettings::default() };
                self.users.insert(id, user);
            }
        }
        self.chats.entry(id).or_insert_with(|| Chat::new(None));
    }

    /// Marks a known user as a bot account.
    pub fn mark_bot(&mut self, id: UserId) {
        if let Some(u) = self.users.get_mut(&id) {
            u.bot = true;
        }
    }

    /// A group or channel; ids are shaped like supergroup ids, so they
    /// never collide with a user id. Channels come from their own range.
    pub fn add_group(&mut self, title: &str, channel: bool) -> ChatId {
        self.groups_created += 1;
        let base = if channel { -1_000_500_000_000 } else { -1_000_000_000_000 };
        let id = base - self.groups_created;
        self.chats.insert(id, Chat::new(Some(title.to_owned())));
        id
    }

    pub fn chat(&self, chat: ChatId) -> Result<&Chat, MessengerError> {
        self.chats.get(&chat).ok_or(MessengerError::ChatNotFound(chat))
    }

    pub fn message(&self, chat: ChatId, id: MessageId) -> Result<&Message, MessengerError> {
        self.chat(chat)?.get(id).ok_or(MessengerError::MessageNotFound(chat, id))
    }

    /// Stores a message and returns its id. `emit` says whether the live
    /// stream sees it (our own sends do not come back as updates).
    ///
    /// # Panics
    /// If the chat does not exist; callers check first.
    pub fn append(&mut self, chat: ChatId, msg: NewMessage, emit: bool) -> MessageId {
        let c = self.chats.get_mut(&chat).expect("append to a chat that exists");
        let id = MessageId::try_from(c.messages.len() + 1).expect("fewer than 2^31 messages per chat");
        let sender_is_bot = msg.sender_id.and_then(|s| self.users.get(&s)).is_some_and(|u| u.bot);
        let c = self.chats.get_mut(&chat).expect("append to a chat that exists");
        let message = Message {
            chat_id: chat,
            id,
            sender_id: msg.sender_id,
            outgoing: msg.outgoing,
            sender_is_bot,
            date: tribute_assistant::runtime::clock::now_secs(),
            text: msg.text,
            entities: msg.entities,
            reply_to: msg.reply_to,
            buttons: msg.buttons,
        };
        c.talked = true;
        c.they_wrote |= !message.outgoing && message.sender_id == Some(chat);
        self.tally.messages += 1;
        c.last_activity = self.tally.messages;
        c.messages.push(Some(message.clone()));
        if emit {
            self.emit(Event::NewMessage(message));
        }
        id
    }

    /// Edits a message in place (new text if given, new keyboard) and
    /// emits `MessageEdited`. Unknown or deleted messages are ignored.
    pub fn edit(&mut self, chat: ChatId, id: MessageId, text: Option<String>, buttons: Vec<Vec<InlineButton>>) {
        let Some(m) = self.chats.get_mut(&chat).and_then(|c| c.get_mut(id)) else { return };
        if let Some(text) = text {
            m.text = text;
            m.entities.clear();
        }
        m.buttons = buttons;
        let edited = m.clone();
        self.emit(Event::MessageEdited(edited));
    }

    /// Deletes messages and emits `MessagesDeleted` with the ids that
    /// existed; returns them.
    pub fn delete(&mut self, chat: ChatId, ids: &[MessageId]) -> Vec<MessageId> {
        let Some(c) = self.chats.get_mut(&chat) else { return Vec::new() };
        let mut gone = Vec::new();
        for &id in ids {
            if let Some(slot) = Chat::slot(id).and_then(|i| c.messages.get_mut(i)) {
                if slot.take().is_some() {
                    gone.push(id);
                }
            }
        }
        if !gone.is_empty() {
            self.emit(Event::MessagesDeleted { chat, ids: gone.clone() });
        }
        gone
    }

    /// Hands an event to the live stream. Lost when nobody is connected or
    /// the link is down, like Telegram without catch-up.
    pub fn emit(&mut self, event: Event) {
        if self.link_up() {
            self.stream.deliver(event, &mut self.dice);
        }
    }

    /// Counts a refused send or press under Telegram's name for the error.
    pub fn refused(&mut self, press: bool, e: &MessengerError) {
        let map = if press { &mut self.tally.refused_presses } else { &mut self.tally.refused_sends };
        *map.entry(super::rules::error_name(e).to_owned()).or_default() += 1;
    }
}
