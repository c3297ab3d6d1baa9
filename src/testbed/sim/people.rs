//! What other people and services do to our account besides the Tribute
//! bot and customers answering us: Telegram's service account writing
//! login codes, other bots, channels, users in groups that are not the
//! moderator chat, edits and deletions, and customers who block us,
//! delete their account or close their privacy. A daemon on a real
//! account meets all of these and must route each correctly (a login code
//! must never reach the agent, the LLM or a case card).

use super::calls::SERVICE_USER_ID;
use super::state::NewMessage;
use super::world::SimWorld;
use crate::telegram::{ChatId, MessageId, UserId};

impl SimWorld {
    /// Telegram's service account (777000) writes in its private chat with
    /// us, e.g. a login code or a new-login security notice.
    pub fn post_service_message(&self, text: &str) -> MessageId {
        let mut st = self.lock();
        if !st.users.contains_key(&SERVICE_USER_ID) {
            st.add_user(SERVICE_USER_ID, "Telegram", None);
        }
        st.append(SERVICE_USER_ID, incoming(Some(SERVICE_USER_ID), text), true)
    }

    /// Another bot (not Tribute) writes to us in its private chat; it
    /// becomes a known user if it was not one.
    pub fn post_from_bot(&self, bot: UserId, username: &str, text: &str) -> MessageId {
        let mut st = self.lock();
        if !st.users.contains_key(&bot) {
            st.add_user(bot, username, Some(username));
            st.mark_bot(bot);
        }
        st.append(bot, incoming(Some(bot), text), true)
    }

    /// A broadcast channel our account follows. Its posts have no sender.
    pub fn create_channel(&self, title: &str) -> ChatId {
        self.lock().add_group(title, true)
    }

    /// A post in a channel (`sender_id` is `None`).
    ///
    /// # Panics
    /// If `channel` is unknown (a mistake in the test).
    pub fn post_in_channel(&self, channel: ChatId, text: &str) -> MessageId {
        let mut st = self.lock();
        assert!(st.chats.contains_key(&channel), "post_in_channel: unknown chat {channel}; create_channel first");
        st.append(channel, incoming(None, text), true)
    }

    /// The author edits a message: new text, entities and keyboard gone;
    /// emits `MessageEdited`. Returns false for an unknown or deleted message.
    pub fn edit_message(&self, chat: ChatId, id: MessageId, text: &str) -> bool {
        let mut st = self.lock();
        if st.message(chat, id).is_err() {
            return false;
        }
        st.edit(chat, id, Some(text.to_owned()), vec![]);
        true
    }

    /// Messages are deleted (by their author or an admin): they leave
    /// history and `get_messages`, their ids are never reused, and one
    /// `MessagesDeleted` event names those that existed, which are returned.
    pub fn delete_messages(&self, chat: ChatId, ids: &[MessageId]) -> Vec<MessageId> {
        self.lock().delete(chat, ids)
    }

    /// The user blocks (`true`) or unblocks our account: sends to them fail
    /// with `UserBlocked`. Overrides what the fault plan chose.
    pub fn set_blocked(&self, user: UserId, blocked: bool) {
        self.with_settings(user, |s| s.blocked = Some(blocked));
    }

    /// The user's account is deleted (`true`): sends fail with `UserDeactivated`.
    pub fn set_deactivated(&self, user: UserId, deactivated: bool) {
        self.with_settings(user, |s| s.deactivated = Some(deactivated));
    }

    /// The user accepts first messages from contacts only (`true`): our
    /// first message fails with `PrivacyRestricted`; once they wrote to us
    /// we may answer.
    pub fn set_privacy_restricted(&self, user: UserId, restricted: bool) {
        self.with_settings(user, |s| s.privacy = Some(restricted));
    }

    fn with_settings(&self, user: UserId, change: impl FnOnce(&mut super::state::UserSettings)) {
        let mut st = self.lock();
        if !st.users.contains_key(&user) {
            st.add_user(user, &format!("User {user}"), None);
        }
        if let Some(u) = st.users.get_mut(&user) {
            change(&mut u.settings);
        }
    }
}

fn incoming(sender_id: Option<UserId>, text: &str) -> NewMessage {
    NewMessage { sender_id, outgoing: false, text: text.to_owned(), entities: vec![], reply_to: None, buttons: vec![] }
}
