//! The mutable heart of the simulated Telegram: chats, their histories,
//! the live event stream and the fault switches. Everything lives behind
//! one `std::sync::Mutex` in [`super::SimWorld`]; each operation takes it
//! once for a few microseconds, which keeps the simulator far faster than
//! the daemon it serves, and makes "message stored" and "event emitted"
//! a single atomic step, so events always arrive in history order.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::tribute_bot::BotState;
use crate::telegram::{ChatId, Entity, Event, InlineButton, Message, MessageId, MessengerError, UserId};

/// A chat as our account sees it. Message ids start at 1 and are the
/// index + 1 in `messages`, so lookups and history slices are O(1).
pub(super) struct Chat {
    /// Group title; `None` for private chats.
    pub title: Option<String>,
    pub messages: Vec<Message>,
}

impl Chat {
    fn new(title: Option<String>) -> Self {
        Chat { title, messages: Vec::new() }
    }

    pub fn get(&self, id: MessageId) -> Option<&Message> {
        usize::try_from(id).ok().and_then(|i| i.checked_sub(1)).and_then(|i| self.messages.get(i))
    }

    fn get_mut(&mut self, id: MessageId) -> Option<&mut Message> {
        usize::try_from(id).ok().and_then(|i| i.checked_sub(1)).and_then(|i| self.messages.get_mut(i))
    }

    /// Messages with id > `after`, oldest first, at most `limit`.
    pub fn since(&self, after: MessageId, limit: usize) -> &[Message] {
        let start = usize::try_from(after.max(0)).unwrap_or(0).min(self.messages.len());
        let end = start.saturating_add(limit).min(self.messages.len());
        &self.messages[start..end]
    }
}

/// A Telegram user known to the world (customers, moderators, the bot).
#[allow(dead_code)] // names are kept for future scripted customers and for debugging
pub(super) struct User {
    pub first_name: String,
    pub username: Option<String>,
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
    /// The live event stream of the connected client, if any.
    pub events: Option<UnboundedSender<Event>>,
    /// False while the `disconnect()` fault is active.
    pub connected: bool,
    pub faults: Faults,
    pub bot: BotState,
}

impl State {
    pub fn new() -> Self {
        State {
            chats: HashMap::new(),
            users: HashMap::new(),
            groups_created: 0,
            events: None,
            connected: true,
            faults: Faults::default(),
            bot: BotState::default(),
        }
    }

    pub fn add_user(&mut self, id: UserId, first_name: &str, username: Option<&str>) {
        self.users.insert(id, User { first_name: first_name.to_owned(), username: username.map(str::to_owned) });
        self.chats.entry(id).or_insert_with(|| Chat::new(None));
    }

    pub fn add_group(&mut self, title: &str) -> ChatId {
        self.groups_created += 1;
        // Shaped like a supergroup id, so it can never collide with a user id.
        let id = -1_000_000_000_000 - self.groups_created;
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
        let message = Message {
            chat_id: chat,
            id,
            sender_id: msg.sender_id,
            outgoing: msg.outgoing,
            date: crate::clock::now_secs(),
            text: msg.text,
            entities: msg.entities,
            reply_to: msg.reply_to,
            buttons: msg.buttons,
        };
        if emit {
            self.emit(Event::NewMessage(message.clone()));
        }
        self.chats.get_mut(&chat).expect("chat checked above").messages.push(message);
        id
    }

    /// Edits a message in place (new text if given, new keyboard) and
    /// emits `MessageEdited`. Unknown messages are ignored.
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

    /// Hands an event to the connected client. Lost when nobody is
    /// connected or the connection is down, like Telegram without catch-up.
    fn emit(&mut self, event: Event) {
        if !self.connected {
            return;
        }
        if let Some(tx) = &self.events {
            if tx.send(event).is_err() {
                // The client was dropped; stop sending into the void.
                self.events = None;
            }
        }
    }
}
