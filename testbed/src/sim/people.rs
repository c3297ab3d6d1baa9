//! What other people and services do to our account besides the Tribute
//! bot and customers answering us: Telegram's service account writing
//! login codes, other bots, channels, users in groups that are not the
//! moderator chat, edits and deletions, and customers who block us,
//! delete their account or close their privacy. A daemon on a real
//! account meets all of these and must route each correctly (a login code
//! must never reach the agent, the LLM or a case card).
//!
//! The `*_as_user` sends below are what a person's Telegram client can
//! really send (checked by [`super::rules::check_incoming`]): a simulation
//! that throws hostile content at the daemon stays within what Telegram
//! would deliver. Media and forwards arrive as the core's [`Message`]
//! shows them after the grammers adapter: a photo is its caption ("" for
//! none), a forward is the original's text and entities (the core reads no
//! forward header).

use super::calls::SERVICE_USER_ID;
use super::rules::check_incoming;
use super::state::NewMessage;
use super::world::SimWorld;
use tribute_assistant::telegram::{ChatId, Entity, Message, MessageId, MessengerError, UserId};

impl SimWorld {
    /// `from` sends a text to `chat` (their private chat with us, or a
    /// group) as their client would: refused like Telegram refuses it
    /// (empty, over 4096 UTF-16 units, a reply to a message that is not
    /// there), otherwise stored and handed to the live stream.
    pub fn send_as_user(
        &self,
        chat: ChatId,
        from: UserId,
        text: &str,
        reply_to: Option<MessageId>,
    ) -> Result<MessageId, MessengerError> {
        check_incoming(text, false)?;
        self.incoming_from(chat, from, NewMessage { reply_to, ..incoming(Some(from), text) })
    }

    /// `from` sends a photo with `caption` (empty: none): the core sees
    /// the caption as the message's text, as it does with real media.
    pub fn send_media_as_user(&self, chat: ChatId, from: UserId, caption: &str) -> Result<MessageId, MessengerError> {
        check_incoming(caption, true)?;
        self.incoming_from(chat, from, incoming(Some(from), caption))
    }

    /// `from` forwards a message written elsewhere (another chat, a bot's
    /// receipt): its text and entities arrive unchanged, from `from`.
    pub fn forward_as_user(
        &self,
        chat: ChatId,
        from: UserId,
        text: &str,
        entities: Vec<Entity>,
    ) -> Result<MessageId, MessengerError> {
        check_incoming(text, false)?;
        self.incoming_from(chat, from, NewMessage { entities, ..incoming(Some(from), text) })
    }

    /// The author of message `id` in `chat` changes its text, checked like a
    /// new text; emits `MessageEdited`.
    pub fn edit_as_user(&self, chat: ChatId, id: MessageId, text: &str) -> Result<(), MessengerError> {
        check_incoming(text, false)?;
        let mut st = self.lock();
        st.message(chat, id)?;
        st.edit(chat, id, Some(text.to_owned()), vec![]);
        Ok(())
    }

    /// The last message `from` wrote in `chat` that is still there.
    pub fn last_message_from(&self, chat: ChatId, from: UserId) -> Option<Message> {
        let st = self.lock();
        st.chats.get(&chat)?.messages.iter().rev().flatten().find(|m| !m.outgoing && m.sender_id == Some(from)).cloned()
    }

    fn incoming_from(&self, chat: ChatId, from: UserId, msg: NewMessage) -> Result<MessageId, MessengerError> {
        let mut st = self.lock();
        st.chat(chat)?;
        if chat > 0 && chat != from {
            // Nobody writes into somebody else's private chat with us.
            return Err(MessengerError::ChatNotFound(chat));
        }
        if let Some(r) = msg.reply_to {
            st.message(chat, r)?;
        }
        Ok(st.append(chat, msg, true))
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;
    use tribute_assistant::telegram::EntityKind;

    #[test]
    fn users_send_only_what_telegram_delivers() {
        let world = SimWorld::new(SimConfig::default());
        world.add_user(42, "Anna", None);
        world.add_user(43, "Oleg", None);
        assert_eq!(world.send_as_user(42, 42, " ", None), Err(MessengerError::MessageEmpty));
        assert_eq!(world.send_as_user(42, 42, &"я".repeat(4097), None), Err(MessengerError::MessageTooLong));
        assert_eq!(world.send_as_user(42, 42, "hi", Some(99)), Err(MessengerError::MessageNotFound(42, 99)));
        assert_eq!(world.send_as_user(42, 43, "hi", None), Err(MessengerError::ChatNotFound(42)));
        assert_eq!(world.chat_info(42).map(|c| c.len), Some(0), "nothing refused was stored");

        let first = world.send_as_user(42, 42, &"я".repeat(4096), None).unwrap();
        let photo = world.send_media_as_user(42, 42, "").unwrap();
        let bold = vec![Entity { offset: 0, length: 2, kind: EntityKind::Bold }];
        let fwd = world.forward_as_user(42, 42, "🆕 receipt", bold.clone()).unwrap();
        world.edit_as_user(42, first, "ID 123456").unwrap();
        let msgs = world.messages(42);
        assert_eq!((msgs[0].text.as_str(), msgs[1].text.as_str()), ("ID 123456", ""));
        assert_eq!((msgs[2].id, &msgs[2].entities), (fwd, &bold));
        assert_eq!(world.last_message_from(42, 42).map(|m| m.id), Some(fwd));
        assert!(photo > first);
    }
}
