//! The `Messenger` port: everything the core needs from Telegram, and
//! nothing of any client library. Adapters: [`grammers`] (the real MTProto
//! client) and `tribute_testbed::sim` (an in-process Telegram for tests,
//! `demo` and `simulate`, in the testbed crate). Because the core only sees
//! these types, both adapters are interchangeable.

pub mod grammers;
pub mod history;
pub mod send_once;
pub mod settings;
pub use settings::{TelegramApi, TelegramSection, API_HASH_ENV, API_ID_ENV};

use std::time::Duration;

/// Telegram chat id (a user id for private chats, negative for groups).
pub type ChatId = i64;
/// Telegram user id.
pub type UserId = i64;
/// Message id; unique and increasing within one chat.
pub type MessageId = i32;

/// Telegram's `message_length_max` (`help.getConfig`): the longest text, in
/// UTF-16 code units, a message may have.
pub const MESSAGE_LENGTH_MAX: usize = 4096;

/// Length of `s` in UTF-16 code units, the unit of Telegram entity offsets.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The most formatting entities one message may carry.
pub const ENTITIES_MAX: usize = 100;
/// The most bytes of callback data an inline button may carry.
pub const CALLBACK_DATA_MAX: usize = 64;

/// A formatting entity. Offsets and lengths are in UTF-16 code units, as
/// Telegram sends them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entity {
    pub offset: usize,
    pub length: usize,
    pub kind: EntityKind,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EntityKind {
    /// A mention of a user without a username; carries the user id.
    MentionName {
        user_id: UserId,
    },
    /// `@username` mention.
    Mention,
    Bold,
    Italic,
    Code,
    Url,
    TextUrl {
        url: String,
    },
    Other,
}

/// One inline keyboard button with callback data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InlineButton {
    pub text: String,
    pub data: Vec<u8>,
}

/// A message as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub chat_id: ChatId,
    pub id: MessageId,
    /// `None` for channel posts / anonymous admins.
    pub sender_id: Option<UserId>,
    /// True when our own account sent it.
    pub outgoing: bool,
    /// The sender is a bot account (never a customer; the Tribute bot is one).
    #[serde(default)]
    pub sender_is_bot: bool,
    /// Unix seconds.
    pub date: i64,
    pub text: String,
    pub entities: Vec<Entity>,
    pub reply_to: Option<MessageId>,
    /// Inline keyboard rows (empty when the message has none).
    pub buttons: Vec<Vec<InlineButton>>,
}

impl Message {
    /// All inline buttons, row by row.
    pub fn all_buttons(&self) -> impl Iterator<Item = &InlineButton> {
        self.buttons.iter().flatten()
    }
}

/// What arrives from Telegram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    NewMessage(Message),
    /// A message was edited (e.g. the bot removed its keyboard after a press).
    MessageEdited(Message),
    /// Messages were deleted (`updateDeleteMessages`); their ids are gone from history.
    MessagesDeleted {
        chat: ChatId,
        ids: Vec<MessageId>,
    },
}

/// The client-chosen id of a send (`random_id` of `messages.sendMessage`).
/// Telegram remembers it per account: a second send with the same id is
/// refused with `RANDOM_ID_DUPLICATE` because the first one was delivered,
/// which makes a retry after a timeout safe when the id is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct RandomId(pub i64);

impl RandomId {
    /// A new random id (never 0, which some clients treat as "unset").
    pub fn fresh() -> Self {
        loop {
            let id = fastrand::i64(..);
            if id != 0 {
                return RandomId(id);
            }
        }
    }
}

/// The bot's answer to a button press (`messages.getBotCallbackAnswer`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallbackAnswer {
    pub text: Option<String>,
    /// True when the bot showed it as an alert rather than a toast.
    pub alert: bool,
}

/// Failures the core acts on. Adapters map their library errors into these.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MessengerError {
    /// Telegram asks us to wait before the next request of this kind.
    #[error("flood wait: retry after {0:?}")]
    FloodWait(Duration),
    /// The connection is down; retry later.
    #[error("disconnected from Telegram")]
    Disconnected,
    /// The call took too long (e.g. a bot did not answer a callback).
    #[error("Telegram request timed out")]
    Timeout,
    #[error("chat {0} not found or not accessible")]
    ChatNotFound(ChatId),
    #[error("message {1} not found in chat {0}")]
    MessageNotFound(ChatId, MessageId),
    #[error("the button is no longer on message {0}")]
    ButtonNotFound(MessageId),
    /// The user's privacy settings forbid messages from us.
    #[error("the user's privacy settings forbid this message")]
    PrivacyRestricted,
    #[error("the user has blocked this account")]
    UserBlocked,
    #[error("the user's account is deleted")]
    UserDeactivated,
    /// The text is longer than Telegram's `message_length_max` (4096 UTF-16 code units).
    #[error("MESSAGE_TOO_LONG: the text is over 4096 UTF-16 code units")]
    MessageTooLong,
    /// The text is empty or only whitespace.
    #[error("MESSAGE_EMPTY: the text is empty")]
    MessageEmpty,
    /// The message would carry more formatting entities than Telegram accepts (100).
    #[error("ENTITIES_TOO_LONG: too many formatting entities")]
    EntitiesTooLong,
    /// Callback data over 64 bytes, or no such button (`DATA_INVALID`).
    #[error("DATA_INVALID: no such callback button")]
    DataInvalid,
    /// A send with a `random_id` already used: the first send was delivered.
    #[error("RANDOM_ID_DUPLICATE: a message with this random_id was already sent")]
    RandomIdDuplicate,
    /// Telegram limits this account's messages to strangers.
    #[error("PEER_FLOOD: this account may not write to new users for now")]
    PeerFlood,
    /// The event stream has ended (the client was shut down).
    #[error("the Telegram client was closed")]
    Closed,
    #[error("Telegram error: {0}")]
    Other(String),
}

impl MessengerError {
    /// Transient errors are worth retrying after a pause; the rest are final for this request.
    pub fn is_transient(&self) -> bool {
        matches!(self, MessengerError::FloodWait(_) | MessengerError::Disconnected | MessengerError::Timeout)
    }
}

pub type MessengerResult<T> = Result<T, MessengerError>;

/// One page of `messages.getDialogs`, reduced to what a re-read needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialogsPage {
    /// The page's private chats with their newest message id, most recently
    /// active first (groups, channels and our own saved messages are left out).
    pub chats: Vec<(ChatId, MessageId)>,
    /// Where the next page starts; `None` when this page was the last.
    pub next: Option<DialogsOffset>,
}

/// The last dialog of a page (of any kind): Telegram pages dialogs by the
/// date and id of their newest message and the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialogsOffset {
    /// Unix seconds of the dialog's newest message: older pages only follow.
    pub date: i64,
    pub message: MessageId,
    pub chat: ChatId,
}

/// The core's view of a Telegram user account.
#[async_trait::async_trait]
pub trait Messenger: Send + Sync + 'static {
    /// Our own user id.
    fn self_id(&self) -> UserId;

    /// Waits for the next update. Returns `Err(Closed)` when the client is shut down;
    /// transient errors (`Disconnected`) may be returned and the caller retries.
    async fn next_event(&self) -> MessengerResult<Event>;

    /// Sends a text message, optionally as a reply. Returns the new message's id.
    /// `random_id` identifies this send to Telegram: reuse it when retrying the
    /// same message, and a send that already went through is refused with
    /// [`MessengerError::RandomIdDuplicate`] instead of being delivered twice.
    async fn send_message(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<MessageId>,
        random_id: RandomId,
    ) -> MessengerResult<MessageId>;

    /// Presses an inline callback button on a message.
    async fn press_button(&self, chat: ChatId, message: MessageId, data: &[u8]) -> MessengerResult<CallbackAnswer>;

    /// Messages of a chat with id greater than `after`, oldest first, at most `limit`.
    async fn history_since(&self, chat: ChatId, after: MessageId, limit: usize) -> MessengerResult<Vec<Message>>;

    /// The current state of the given messages (missing ones are left out).
    async fn get_messages(&self, chat: ChatId, ids: &[MessageId]) -> MessengerResult<Vec<Message>>;

    /// One page of the account's chats, the most recently active first, at
    /// most `limit` dialogs, starting after `after` (`messages.getDialogs`):
    /// how a re-read finds a message from someone no dialogue waits for whose
    /// live update Telegram lost, also when a crowd wrote since the last look.
    async fn recent_private_chats(&self, after: Option<DialogsOffset>, limit: usize) -> MessengerResult<DialogsPage>;
}
