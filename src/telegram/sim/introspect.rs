//! Read-only views of the simulated world for servers that expose it over
//! another protocol (the MTProto test server): who the users are and which
//! chats exist. Nothing here changes the world.

use super::world::SimWorld;
use crate::telegram::{ChatId, UserId};

/// What the world knows about a Telegram user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUserInfo {
    pub id: UserId,
    pub first_name: String,
    pub username: Option<String>,
}

/// What the world knows about a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimChatInfo {
    pub id: ChatId,
    /// Group title; `None` for private chats.
    pub title: Option<String>,
    /// Number of messages (the highest message id).
    pub len: usize,
}

impl SimWorld {
    /// A known user (customers, the bot, moderators); `None` for our own
    /// account and unknown ids.
    pub fn user_info(&self, id: UserId) -> Option<SimUserInfo> {
        let st = self.lock();
        st.users.get(&id).map(|u| SimUserInfo { id, first_name: u.first_name.clone(), username: u.username.clone() })
    }

    /// All known users, in no particular order.
    pub fn users(&self) -> Vec<SimUserInfo> {
        let st = self.lock();
        st.users
            .iter()
            .map(|(&id, u)| SimUserInfo { id, first_name: u.first_name.clone(), username: u.username.clone() })
            .collect()
    }

    /// A chat of our account, if it exists.
    pub fn chat_info(&self, chat: ChatId) -> Option<SimChatInfo> {
        let st = self.lock();
        st.chats.get(&chat).map(|c| SimChatInfo { id: chat, title: c.title.clone(), len: c.messages.len() })
    }

    /// All chats of our account, in no particular order.
    pub fn chats(&self) -> Vec<SimChatInfo> {
        let st = self.lock();
        st.chats.iter().map(|(&id, c)| SimChatInfo { id, title: c.title.clone(), len: c.messages.len() }).collect()
    }
}
