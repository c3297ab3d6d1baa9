//! Turning the core's chat ids into Telegram input peers.
//!
//! A user account may only address a user with an access hash. For chats we
//! talk in, the session's peer cache has it. A customer we only know from a
//! mention in the Tribute bot's message has none yet: Telegram then lets us
//! name them *through that message* (`inputUserFromMessage` /
//! `inputPeerUserFromMessage`). [`MentionMap`] remembers, for each mentioned
//! user, the latest message that mentions them.

use std::collections::{HashMap, VecDeque};

use ::grammers_session::types::{PeerId, PeerKind};
use ::grammers_tl_types as tl;

use crate::telegram::{ChatId, Message, MessageId, UserId};

/// How many mentioned users to remember (oldest forgotten first).
pub const MENTION_MAP_CAPACITY: usize = 10_000;

/// user id → (chat, message) of the latest message that mentions them.
#[derive(Debug, Default)]
pub struct MentionMap {
    map: HashMap<UserId, (ChatId, MessageId)>,
    order: VecDeque<UserId>,
}

impl MentionMap {
    pub fn insert(&mut self, user: UserId, chat: ChatId, message: MessageId) {
        match self.map.get(&user) {
            // Keep the newest message (more likely still accessible).
            Some(&(c, m)) if c == chat && m >= message => return,
            Some(_) => {}
            None => self.order.push_back(user),
        }
        self.map.insert(user, (chat, message));
        while self.order.len() > MENTION_MAP_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    /// Records every mention-name entity of a message from `source_chat`.
    pub fn note_message(&mut self, source_chat: ChatId, m: &Message) {
        if m.chat_id != source_chat {
            return;
        }
        for user in super::convert::mentioned_users(m) {
            self.insert(user, m.chat_id, m.id);
        }
    }

    pub fn get(&self, user: UserId) -> Option<(ChatId, MessageId)> {
        self.map.get(&user).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The peer identity of a chat id (Bot API convention), if it is a valid one.
pub fn peer_id(chat: ChatId) -> Option<PeerId> {
    PeerId::from_bot_api_dialog_id(chat)
}

/// An input peer from an id and an access hash (0 = "ambient", accepted for
/// contacts and bots we already talk to).
pub fn input_peer(chat: ChatId, access_hash: i64) -> Option<tl::enums::InputPeer> {
    let id = peer_id(chat)?;
    let bare = id.bare_id()?;
    Some(match id.kind() {
        PeerKind::User => tl::types::InputPeerUser { user_id: bare, access_hash }.into(),
        PeerKind::Chat => tl::types::InputPeerChat { chat_id: bare }.into(),
        PeerKind::Channel => tl::types::InputPeerChannel { channel_id: bare, access_hash }.into(),
    })
}

/// `inputUserFromMessage`: the user as seen in a message of `peer`.
pub fn input_user_from_message(peer: tl::enums::InputPeer, msg_id: MessageId, user_id: UserId) -> tl::enums::InputUser {
    tl::types::InputUserFromMessage { peer, msg_id, user_id }.into()
}

/// `inputPeerUserFromMessage`: the user's private chat, named through a message of `peer`.
pub fn input_peer_user_from_message(
    peer: tl::enums::InputPeer,
    msg_id: MessageId,
    user_id: UserId,
) -> tl::enums::InputPeer {
    tl::enums::InputPeer::UserFromMessage(Box::new(tl::types::InputPeerUserFromMessage { peer, msg_id, user_id }))
}

/// The access hash Telegram gave for a user, unless it is a "min" user (whose hash is not usable).
pub fn usable_user_hash(user: &tl::enums::User) -> Option<(UserId, i64)> {
    match user {
        tl::enums::User::User(u) if !u.min => u.access_hash.map(|h| (u.id, h)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telegram::{Entity, EntityKind};

    fn order_msg(chat: ChatId, id: MessageId, users: &[UserId]) -> Message {
        Message {
            chat_id: chat,
            id,
            sender_id: Some(chat),
            outgoing: false,
            sender_is_bot: false,
            date: 0,
            text: "x".repeat(10),
            entities: users
                .iter()
                .map(|&u| Entity { offset: 0, length: 1, kind: EntityKind::MentionName { user_id: u } })
                .collect(),
            reply_to: None,
            buttons: vec![],
        }
    }

    #[test]
    fn remembers_the_latest_mention_from_the_source_chat_only() {
        let mut map = MentionMap::default();
        map.note_message(93372553, &order_msg(93372553, 10, &[5550001, 5550002]));
        map.note_message(93372553, &order_msg(93372553, 12, &[5550001]));
        map.note_message(93372553, &order_msg(93372553, 11, &[5550001]));
        map.note_message(93372553, &order_msg(42, 99, &[5550003]));
        assert_eq!(map.get(5550001), Some((93372553, 12)));
        assert_eq!(map.get(5550002), Some((93372553, 10)));
        assert_eq!(map.get(5550003), None);
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn capacity_is_bounded() {
        let mut map = MentionMap::default();
        for u in 1..=(MENTION_MAP_CAPACITY as i64 + 5) {
            map.insert(u, 1, 1);
        }
        assert_eq!(map.len(), MENTION_MAP_CAPACITY);
        assert_eq!(map.get(1), None);
        assert!(map.get(MENTION_MAP_CAPACITY as i64 + 5).is_some());
    }

    #[test]
    fn input_peers_for_each_kind() {
        assert_eq!(
            input_peer(93372553, 77),
            Some(tl::types::InputPeerUser { user_id: 93372553, access_hash: 77 }.into())
        );
        assert_eq!(input_peer(-300, 0), Some(tl::types::InputPeerChat { chat_id: 300 }.into()));
        assert_eq!(
            input_peer(-1_000_000_000_008, 5),
            Some(tl::types::InputPeerChannel { channel_id: 8, access_hash: 5 }.into())
        );
        assert_eq!(input_peer(0, 0), None);
        let from_msg = input_peer_user_from_message(input_peer(93372553, 77).unwrap(), 10, 5550001);
        assert!(
            matches!(from_msg, tl::enums::InputPeer::UserFromMessage(ref b) if b.user_id == 5550001 && b.msg_id == 10)
        );
    }
}
