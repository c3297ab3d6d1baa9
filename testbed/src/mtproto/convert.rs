//! The simulated world in Telegram's TL types, as our account sees it.
//!
//! - Private chats (chat id = user id > 0) are `peerUser` chats.
//! - Sim groups (ids `-1_000_000_000_000 - n`, the Bot API shape of a
//!   supergroup) are megagroup channels with `channel_id = n`, so a
//!   grammers `PeerId`'s Bot API dialog id equals the sim's chat id. Sim
//!   channels (`-1_000_500_000_000 - n`) are broadcast channels.
//! - Message ids are the sim's ids, unique per chat. (Real Telegram numbers
//!   private-chat messages account-wide; grammers filters
//!   `messages.getMessages` results by peer, so per-chat ids work.)
//! - Access hashes are a keyed hash of the id, checked on input.

use grammers_tl_types as tl;

use crate::sim::SimWorld;
use tribute_assistant::telegram::{ChatId, Entity, EntityKind, Message, UserId};

/// Offset between a Bot API supergroup id and its channel id.
const CHANNEL_OFFSET: i64 = 1_000_000_000_000;

/// Channel id of a sim group, `None` for private chats.
pub(crate) fn channel_id(chat: ChatId) -> Option<i64> {
    (chat < -CHANNEL_OFFSET).then(|| -chat - CHANNEL_OFFSET)
}

/// First channel id of the sim's broadcast channels (`create_channel`
/// numbers them from `-1_000_500_000_000`); groups are below it.
const BROADCAST_FROM: i64 = 500_000_000;

/// Whether a channel id is a broadcast channel rather than a group.
pub(crate) fn is_broadcast(channel_id: i64) -> bool {
    channel_id > BROADCAST_FROM
}

/// Sim chat id of a channel.
pub(crate) fn chat_of_channel(channel_id: i64) -> ChatId {
    -CHANNEL_OFFSET - channel_id
}

/// The name our own account has on the server.
pub(crate) const SELF_FIRST_NAME: &str = "Tribute Assistant";

/// Everything needed to render the world for our account.
#[derive(Clone)]
pub(crate) struct View {
    pub world: SimWorld,
    pub self_id: UserId,
    pub bot_id: UserId,
    /// Key of the access-hash function, random per server.
    pub hash_key: u64,
}

impl View {
    /// Access hash of a user or channel for our account.
    pub fn access_hash(&self, kind: u8, id: i64) -> i64 {
        // splitmix64 over (key, kind, id): stable within a server, unguessable enough for tests.
        let mut z = self.hash_key ^ ((kind as u64) << 56) ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as i64 | 1
    }

    pub fn user_hash(&self, id: UserId) -> i64 {
        self.access_hash(b'u', id)
    }

    pub fn channel_hash(&self, channel_id: i64) -> i64 {
        self.access_hash(b'c', channel_id)
    }

    /// Whether `id` is a user our account can see (including itself).
    pub fn user_exists(&self, id: UserId) -> bool {
        id == self.self_id || self.world.user_info(id).is_some()
    }

    pub fn peer(&self, chat: ChatId) -> tl::enums::Peer {
        match channel_id(chat) {
            Some(channel_id) => tl::types::PeerChannel { channel_id }.into(),
            None => tl::types::PeerUser { user_id: chat }.into(),
        }
    }

    /// A full user object (with access hash); `userEmpty` for unknown ids.
    pub fn user(&self, id: UserId) -> tl::enums::User {
        let (first_name, username, is_self, bot) = if id == self.self_id {
            (SELF_FIRST_NAME.to_owned(), None, true, false)
        } else if let Some(info) = self.world.user_info(id) {
            (info.first_name, info.username, false, info.bot || id == self.bot_id)
        } else {
            return tl::types::UserEmpty { id }.into();
        };
        tl::types::User {
            is_self,
            contact: false,
            mutual_contact: false,
            deleted: false,
            bot,
            bot_chat_history: false,
            bot_nochats: bot,
            verified: bot,
            restricted: false,
            min: false,
            bot_inline_geo: false,
            support: false,
            scam: false,
            apply_min_photo: false,
            fake: false,
            bot_attach_menu: false,
            premium: false,
            attach_menu_enabled: false,
            bot_can_edit: false,
            close_friend: false,
            stories_hidden: false,
            stories_unavailable: false,
            contact_require_premium: false,
            bot_business: false,
            bot_has_main_app: false,
            bot_forum_view: false,
            bot_forum_can_manage_topics: false,
            bot_can_manage_bots: false,
            bot_guestchat: false,
            bot_guard: false,
            id,
            access_hash: Some(self.user_hash(id)),
            first_name: Some(first_name),
            last_name: None,
            username,
            phone: None,
            photo: None,
            status: None,
            bot_info_version: bot.then_some(1),
            restriction_reason: None,
            bot_inline_placeholder: None,
            lang_code: None,
            emoji_status: None,
            usernames: None,
            stories_max_id: None,
            color: None,
            profile_color: None,
            bot_active_users: None,
            bot_verification_icon: None,
            send_paid_messages_stars: None,
            linked_community_id: None,
        }
        .into()
    }

    /// A megagroup for a sim group; `None` for unknown or private chats.
    pub fn channel(&self, chat: ChatId) -> Option<tl::enums::Chat> {
        let channel_id = channel_id(chat)?;
        let info = self.world.chat_info(chat)?;
        Some(
            tl::types::Channel {
                creator: false,
                left: false,
                broadcast: is_broadcast(channel_id),
                verified: false,
                megagroup: !is_broadcast(channel_id),
                restricted: false,
                signatures: false,
                min: false,
                scam: false,
                has_link: false,
                has_geo: false,
                slowmode_enabled: false,
                call_active: false,
                call_not_empty: false,
                fake: false,
                gigagroup: false,
                noforwards: false,
                join_to_send: false,
                join_request: false,
                forum: false,
                stories_hidden: false,
                stories_hidden_min: false,
                stories_unavailable: false,
                signature_profiles: false,
                autotranslation: false,
                broadcast_messages_allowed: false,
                monoforum: false,
                forum_tabs: false,
                id: channel_id,
                access_hash: Some(self.channel_hash(channel_id)),
                title: info.title.unwrap_or_default(),
                username: None,
                photo: tl::enums::ChatPhoto::Empty,
                date: 1_700_000_000,
                restriction_reason: None,
                admin_rights: None,
                banned_rights: None,
                default_banned_rights: None,
                participants_count: None,
                usernames: None,
                stories_max_id: None,
                color: None,
                profile_color: None,
                emoji_status: None,
                level: None,
                subscription_until_date: None,
                bot_verification_icon: None,
                send_paid_messages_stars: None,
                linked_monoforum_id: None,
                linked_community_id: None,
            }
            .into(),
        )
    }

    /// A sim message as our account receives it.
    pub fn message(&self, m: &Message) -> tl::enums::Message {
        let in_channel = channel_id(m.chat_id).is_some();
        // Private chats carry no from_id since layer 119; groups name the sender.
        let from_id = if in_channel { m.sender_id.map(|user_id| tl::types::PeerUser { user_id }.into()) } else { None };
        let reply_to = m.reply_to.map(|id| {
            tl::types::MessageReplyHeader {
                reply_to_scheduled: false,
                forum_topic: false,
                quote: false,
                reply_to_ephemeral: false,
                reply_to_msg_id: Some(id),
                reply_to_peer_id: None,
                reply_from: None,
                reply_media: None,
                reply_to_top_id: None,
                quote_text: None,
                quote_entities: None,
                quote_offset: None,
                todo_item_id: None,
                poll_option: None,
            }
            .into()
        });
        let reply_markup = (!m.buttons.is_empty()).then(|| {
            tl::types::ReplyInlineMarkup {
                force_reply: false,
                rows: m
                    .buttons
                    .iter()
                    .map(|row| {
                        tl::types::KeyboardInlineButtonRow {
                            buttons: row
                                .iter()
                                .map(|b| {
                                    tl::types::KeyboardInlineButton {
                                        style: None,
                                        text: b.text.clone(),
                                        r#type: tl::types::InlineButtonTypeCallback {
                                            requires_password: false,
                                            data: b.data.clone(),
                                        }
                                        .into(),
                                    }
                                    .into()
                                })
                                .collect(),
                        }
                        .into()
                    })
                    .collect(),
            }
            .into()
        });
        tl::types::Message {
            out: m.outgoing,
            mentioned: false,
            media_unread: false,
            silent: false,
            post: false,
            from_scheduled: false,
            legacy: false,
            edit_hide: false,
            pinned: false,
            noforwards: false,
            invert_media: false,
            offline: false,
            video_processing_pending: false,
            paid_suggested_post_stars: false,
            paid_suggested_post_ton: false,
            id: m.id,
            from_id,
            from_boosts_applied: None,
            from_rank: None,
            peer_id: self.peer(m.chat_id),
            saved_peer_id: None,
            fwd_from: None,
            via_bot_id: None,
            via_business_bot_id: None,
            guestchat_via_from: None,
            reply_to,
            date: i32::try_from(m.date).unwrap_or(i32::MAX),
            message: m.text.clone(),
            media: None,
            reply_markup,
            entities: (!m.entities.is_empty()).then(|| m.entities.iter().map(entity).collect()),
            views: None,
            forwards: None,
            replies: None,
            edit_date: None,
            post_author: None,
            grouped_id: None,
            reactions: None,
            restriction_reason: None,
            ttl_period: None,
            quick_reply_shortcut_id: None,
            effect: None,
            factcheck: None,
            report_delivery_until_date: None,
            paid_message_stars: None,
            suggested_post: None,
            schedule_repeat_period: None,
            summary_from_language: None,
            rich_message: None,
        }
        .into()
    }

    /// Users and chats a set of messages refers to: our own user, the
    /// private chats' users, the senders and the groups. Users only
    /// mentioned in entities are left out, as Telegram may do; clients get
    /// them with `inputUserFromMessage`.
    pub fn peers_of<'a>(
        &self,
        messages: impl IntoIterator<Item = &'a Message>,
    ) -> (Vec<tl::enums::User>, Vec<tl::enums::Chat>) {
        let mut user_ids = vec![self.self_id];
        let mut chat_ids = Vec::new();
        for m in messages {
            if channel_id(m.chat_id).is_some() {
                if !chat_ids.contains(&m.chat_id) {
                    chat_ids.push(m.chat_id);
                }
            } else if !user_ids.contains(&m.chat_id) {
                user_ids.push(m.chat_id);
            }
            if let Some(s) = m.sender_id {
                if !user_ids.contains(&s) {
                    user_ids.push(s);
                }
            }
        }
        let users = user_ids.into_iter().map(|id| self.user(id)).collect();
        let chats = chat_ids.into_iter().filter_map(|c| self.channel(c)).collect();
        (users, chats)
    }
}

fn entity(e: &Entity) -> tl::enums::MessageEntity {
    let offset = i32::try_from(e.offset).unwrap_or(i32::MAX);
    let length = i32::try_from(e.length).unwrap_or(i32::MAX);
    match &e.kind {
        EntityKind::MentionName { user_id } => {
            tl::types::MessageEntityMentionName { offset, length, user_id: *user_id }.into()
        }
        EntityKind::Mention => tl::types::MessageEntityMention { offset, length }.into(),
        EntityKind::Bold => tl::types::MessageEntityBold { offset, length }.into(),
        EntityKind::Italic => tl::types::MessageEntityItalic { offset, length }.into(),
        EntityKind::Code => tl::types::MessageEntityCode { offset, length }.into(),
        EntityKind::Url => tl::types::MessageEntityUrl { offset, length }.into(),
        EntityKind::TextUrl { url } => tl::types::MessageEntityTextUrl { offset, length, url: url.clone() }.into(),
        EntityKind::Other => tl::types::MessageEntityUnknown { offset, length }.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_map_to_channels_and_back() {
        assert_eq!(channel_id(-1_000_000_000_001), Some(1));
        assert_eq!(chat_of_channel(1), -1_000_000_000_001);
        assert_eq!(channel_id(93372553), None);
    }
}
