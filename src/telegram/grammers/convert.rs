//! Pure conversions from Telegram's TL values (layer of grammers-tl-types
//! 0.11) into the core's types. No I/O, so every case is unit-tested with
//! hand-built TL values.

use ::grammers_tl_types as tl;

use super::utf16;
use crate::telegram::{ChatId, Entity, EntityKind, Event, InlineButton, Message, MessageId, UserId};

/// Bot API style chat id of a peer: user id; `-chat_id` for small groups;
/// `-(10^12 + channel_id)` for channels and supergroups.
pub fn chat_id_of(peer: &tl::enums::Peer) -> ChatId {
    match peer {
        tl::enums::Peer::User(u) => u.user_id,
        tl::enums::Peer::Chat(c) => -c.chat_id,
        tl::enums::Peer::Channel(c) => -(1_000_000_000_000 + c.channel_id),
    }
}

/// The user behind a peer, if it is a user.
pub fn user_of(peer: &tl::enums::Peer) -> Option<UserId> {
    match peer {
        tl::enums::Peer::User(u) => Some(u.user_id),
        _ => None,
    }
}

/// Entities as the core sees them. Offsets and lengths stay in UTF-16 code
/// units (Telegram's and ours); entities whose range does not fit the text
/// are dropped rather than passed on to slice the wrong characters.
pub fn convert_entities(text: &str, entities: Option<&Vec<tl::enums::MessageEntity>>) -> Vec<Entity> {
    use tl::enums::MessageEntity as E;
    let Some(entities) = entities else { return Vec::new() };
    let mut out = Vec::with_capacity(entities.len());
    for e in entities {
        let (offset, length) = (e.offset(), e.length());
        let kind = match e {
            E::MentionName(m) => EntityKind::MentionName { user_id: m.user_id },
            E::InputMessageEntityMentionName(m) => match &m.user_id {
                tl::enums::InputUser::User(u) => EntityKind::MentionName { user_id: u.user_id },
                tl::enums::InputUser::FromMessage(u) => EntityKind::MentionName { user_id: u.user_id },
                _ => EntityKind::Other,
            },
            E::Mention(_) => EntityKind::Mention,
            E::Bold(_) => EntityKind::Bold,
            E::Italic(_) => EntityKind::Italic,
            E::Code(_) | E::Pre(_) => EntityKind::Code,
            E::Url(_) => EntityKind::Url,
            E::TextUrl(t) => EntityKind::TextUrl { url: t.url.clone() },
            _ => EntityKind::Other,
        };
        if offset < 0 || length < 0 || utf16::slice(text, offset as usize, length as usize).is_none() {
            tracing::debug!(offset, length, "dropping an entity outside the message text");
            continue;
        }
        out.push(Entity { offset: offset as usize, length: length as usize, kind });
    }
    out
}

/// Inline keyboard rows with their callback buttons. Buttons without
/// callback data (URLs, web apps, …) cannot be pressed by the core and are
/// left out; rows that end up empty are dropped.
pub fn convert_buttons(markup: Option<&tl::enums::ReplyMarkup>) -> Vec<Vec<InlineButton>> {
    let Some(tl::enums::ReplyMarkup::ReplyInlineMarkup(markup)) = markup else { return Vec::new() };
    markup
        .rows
        .iter()
        .map(|tl::enums::KeyboardInlineButtonRow::Row(row)| {
            row.buttons
                .iter()
                .filter_map(|tl::enums::KeyboardInlineButton::Button(b)| match &b.r#type {
                    tl::enums::InlineButtonType::Callback(cb) => {
                        Some(InlineButton { text: b.text.clone(), data: cb.data.clone() })
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .filter(|row| !row.is_empty())
        .collect()
}

/// The id of the message replied to, when it is in the same chat.
pub fn reply_to_id(reply_to: Option<&tl::enums::MessageReplyHeader>, chat: ChatId) -> Option<MessageId> {
    match reply_to? {
        tl::enums::MessageReplyHeader::Header(h) => match &h.reply_to_peer_id {
            Some(peer) if chat_id_of(peer) != chat => None,
            _ => h.reply_to_msg_id,
        },
        tl::enums::MessageReplyHeader::MessageReplyStoryHeader(_) => None,
    }
}

/// A TL message as the core's [`Message`]; `None` for empty and service messages.
///
/// Telegram leaves `from_id` out of private-chat messages: the sender is
/// then the other user (incoming) or us (outgoing).
pub fn convert_message(raw: &tl::enums::Message, self_id: UserId) -> Option<Message> {
    let tl::enums::Message::Message(m) = raw else { return None };
    let chat_id = chat_id_of(&m.peer_id);
    let sender_id = match &m.from_id {
        Some(from) => user_of(from),
        None if m.out => Some(self_id),
        None => user_of(&m.peer_id),
    };
    Some(Message {
        chat_id,
        id: m.id,
        sender_id,
        outgoing: m.out,
        // Filled from the update's peers by the adapter (a message alone does not say).
        sender_is_bot: false,
        date: i64::from(m.date),
        text: m.message.clone(),
        entities: convert_entities(&m.message, m.entities.as_ref()),
        reply_to: reply_to_id(m.reply_to.as_ref(), chat_id),
        buttons: convert_buttons(m.reply_markup.as_ref()),
    })
}

/// New and edited messages become events; every other update is `None`.
pub fn convert_update(update: &tl::enums::Update, self_id: UserId) -> Option<Event> {
    use tl::enums::Update as U;
    match update {
        U::NewMessage(u) => convert_message(&u.message, self_id).map(Event::NewMessage),
        U::NewChannelMessage(u) => convert_message(&u.message, self_id).map(Event::NewMessage),
        U::EditMessage(u) => convert_message(&u.message, self_id).map(Event::MessageEdited),
        U::EditChannelMessage(u) => convert_message(&u.message, self_id).map(Event::MessageEdited),
        _ => None,
    }
}

/// Users mentioned by id (mention-name entities) in a message.
pub fn mentioned_users(m: &Message) -> impl Iterator<Item = UserId> + '_ {
    m.entities.iter().filter_map(|e| match e.kind {
        EntityKind::MentionName { user_id } => Some(user_id),
        _ => None,
    })
}

/// The id of the message that `messages.sendMessage` created, from its `Updates` answer.
pub fn sent_message_id(updates: &tl::enums::Updates, random_id: i64) -> Option<MessageId> {
    use tl::enums::Update as U;
    match updates {
        tl::enums::Updates::UpdateShortSentMessage(u) => Some(u.id),
        tl::enums::Updates::Updates(tl::types::Updates { updates, .. })
        | tl::enums::Updates::Combined(tl::types::UpdatesCombined { updates, .. }) => {
            let by_random_id = updates.iter().find_map(|u| match u {
                U::MessageId(m) if m.random_id == random_id => Some(m.id),
                _ => None,
            });
            by_random_id.or_else(|| {
                let mut new = updates.iter().filter_map(|u| match u {
                    U::NewMessage(n) => Some(n.message.id()),
                    U::NewChannelMessage(n) => Some(n.message.id()),
                    _ => None,
                });
                match (new.next(), new.next()) {
                    (Some(id), None) => Some(id),
                    _ => None,
                }
            })
        }
        tl::enums::Updates::UpdateShort(u) => match &u.update {
            U::NewMessage(n) => Some(n.message.id()),
            U::NewChannelMessage(n) => Some(n.message.id()),
            _ => None,
        },
        _ => None,
    }
}

/// Messages, users and chats of a `messages.Messages` answer.
pub fn unpack_messages(
    res: tl::enums::messages::Messages,
) -> (Vec<tl::enums::Message>, Vec<tl::enums::User>, Vec<tl::enums::Chat>) {
    use tl::enums::messages::Messages as M;
    match res {
        M::Messages(m) => (m.messages, m.users, m.chats),
        M::Slice(m) => (m.messages, m.users, m.chats),
        M::ChannelMessages(m) => (m.messages, m.users, m.chats),
        M::NotModified(_) => (Vec::new(), Vec::new(), Vec::new()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plain TL message with every optional field empty.
    pub(crate) fn tl_message(id: i32, peer: tl::enums::Peer, text: &str) -> tl::types::Message {
        tl::types::Message {
            out: false,
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
            id,
            from_id: None,
            from_boosts_applied: None,
            from_rank: None,
            peer_id: peer,
            saved_peer_id: None,
            fwd_from: None,
            via_bot_id: None,
            via_business_bot_id: None,
            guestchat_via_from: None,
            reply_to: None,
            date: 1_700_000_000,
            message: text.to_owned(),
            media: None,
            reply_markup: None,
            entities: None,
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
    }

    pub(crate) fn user_peer(id: i64) -> tl::enums::Peer {
        tl::types::PeerUser { user_id: id }.into()
    }

    fn reply_header(to: i32, peer: Option<tl::enums::Peer>) -> tl::enums::MessageReplyHeader {
        tl::types::MessageReplyHeader {
            reply_to_scheduled: false,
            forum_topic: false,
            quote: false,
            reply_to_ephemeral: false,
            reply_to_msg_id: Some(to),
            reply_to_peer_id: peer,
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
    }

    /// A button: its label and its callback data (`None`: a URL button).
    pub(crate) type TestButton<'a> = (&'a str, Option<&'a [u8]>);

    pub(crate) fn inline_keyboard(rows: &[&[TestButton]]) -> tl::enums::ReplyMarkup {
        tl::types::ReplyInlineMarkup {
            force_reply: false,
            rows: rows
                .iter()
                .map(|row| {
                    tl::types::KeyboardInlineButtonRow {
                        buttons: row
                            .iter()
                            .map(|(text, data)| {
                                let r#type = match data {
                                    Some(d) => tl::types::InlineButtonTypeCallback {
                                        requires_password: false,
                                        data: d.to_vec(),
                                    }
                                    .into(),
                                    None => tl::types::InlineButtonTypeUrl { url: "https://t.me".into() }.into(),
                                };
                                tl::types::KeyboardInlineButton { style: None, text: (*text).to_owned(), r#type }.into()
                            })
                            .collect(),
                    }
                    .into()
                })
                .collect(),
        }
        .into()
    }

    const TRIBUTE: i64 = 93372553;
    const ME: i64 = 777;

    #[test]
    fn chat_ids_follow_the_bot_api_convention() {
        assert_eq!(chat_id_of(&user_peer(42)), 42);
        assert_eq!(chat_id_of(&tl::types::PeerChat { chat_id: 42 }.into()), -42);
        assert_eq!(chat_id_of(&tl::types::PeerChannel { channel_id: 42 }.into()), -1_000_000_000_042);
    }

    #[test]
    fn order_message_with_emoji_and_cyrillic_before_the_mention() {
        let prefix = "🆕 Custom Product Order\n\nПокупатель: ";
        let name = "Иван 🚀 Петров";
        let text = format!("{prefix}{name}\nProduct: Premium\nPrice: €5.00\nOrder Details:\nID 12345");
        let offset = utf16::utf16_len(prefix) as i32;
        let length = utf16::utf16_len(name) as i32;
        let mut m = tl_message(10, user_peer(TRIBUTE), &text);
        m.entities = Some(vec![
            tl::types::MessageEntityBold { offset: 3, length: 20 }.into(),
            tl::types::MessageEntityMentionName { offset, length, user_id: 5550001 }.into(),
            tl::types::MessageEntityTextUrl { offset: 0, length: 2, url: "https://x".into() }.into(),
            tl::types::MessageEntityHashtag { offset: 0, length: 2 }.into(),
        ]);
        let msg = convert_message(&m.into(), ME).unwrap();
        assert_eq!(msg.chat_id, TRIBUTE);
        assert_eq!(msg.sender_id, Some(TRIBUTE), "private chat: the sender is the peer");
        assert!(!msg.outgoing);
        assert_eq!(msg.date, 1_700_000_000);
        let mention = &msg.entities[1];
        assert_eq!(mention.kind, EntityKind::MentionName { user_id: 5550001 });
        // Offsets are kept in UTF-16 units: emoji count twice, Cyrillic once.
        assert_eq!(mention.offset, prefix.chars().count() + 1);
        assert_eq!(utf16::slice(&msg.text, mention.offset, mention.length), Some(name));
        assert_eq!(msg.entities[0].kind, EntityKind::Bold);
        assert_eq!(msg.entities[2].kind, EntityKind::TextUrl { url: "https://x".into() });
        assert_eq!(msg.entities[3].kind, EntityKind::Other);
        assert_eq!(mentioned_users(&msg).collect::<Vec<_>>(), vec![5550001]);
    }

    #[test]
    fn entities_outside_the_text_or_inside_a_surrogate_pair_are_dropped() {
        let mut m = tl_message(1, user_peer(TRIBUTE), "🆕 hi");
        m.entities = Some(vec![
            tl::types::MessageEntityBold { offset: 1, length: 2 }.into(),
            tl::types::MessageEntityBold { offset: 3, length: 9 }.into(),
            tl::types::MessageEntityItalic { offset: 3, length: 2 }.into(),
        ]);
        let msg = convert_message(&m.into(), ME).unwrap();
        assert_eq!(msg.entities, vec![Entity { offset: 3, length: 2, kind: EntityKind::Italic }]);
    }

    #[test]
    fn outgoing_reply_and_group_sender() {
        let mut m = tl_message(11, user_peer(TRIBUTE), "Premium, payment TA-1");
        m.out = true;
        m.reply_to = Some(reply_header(10, None));
        let msg = convert_message(&m.into(), ME).unwrap();
        assert!(msg.outgoing);
        assert_eq!(msg.sender_id, Some(ME));
        assert_eq!(msg.reply_to, Some(10));

        let mut g = tl_message(5, tl::types::PeerChat { chat_id: 300 }.into(), "hello");
        g.from_id = Some(user_peer(42));
        g.reply_to = Some(reply_header(3, Some(user_peer(9))));
        let msg = convert_message(&g.into(), ME).unwrap();
        assert_eq!(msg.chat_id, -300);
        assert_eq!(msg.sender_id, Some(42));
        assert_eq!(msg.reply_to, None, "a reply into another chat is not a reply here");

        let mut c = tl_message(5, tl::types::PeerChannel { channel_id: 8 }.into(), "post");
        c.from_id = Some(tl::types::PeerChannel { channel_id: 8 }.into());
        assert_eq!(convert_message(&c.into(), ME).unwrap().sender_id, None);
    }

    #[test]
    fn inline_callback_buttons_keep_rows_and_drop_url_buttons() {
        let mut m = tl_message(12, user_peer(TRIBUTE), "Confirm sending?");
        m.reply_markup = Some(inline_keyboard(&[
            &[("Send", Some(b"send:10")), ("Edit", Some(b"edit:10"))],
            &[("Open", None)],
            &[("Отправить", Some(b"send:ru"))],
        ]));
        let msg = convert_message(&m.into(), ME).unwrap();
        assert_eq!(
            msg.buttons,
            vec![
                vec![
                    InlineButton { text: "Send".into(), data: b"send:10".to_vec() },
                    InlineButton { text: "Edit".into(), data: b"edit:10".to_vec() },
                ],
                vec![InlineButton { text: "Отправить".into(), data: b"send:ru".to_vec() }],
            ]
        );
        let hidden: tl::enums::ReplyMarkup = tl::types::ReplyKeyboardHide { selective: false }.into();
        assert!(convert_buttons(Some(&hidden)).is_empty());
    }

    #[test]
    fn updates_become_events() {
        let m: tl::enums::Message = tl_message(1, user_peer(TRIBUTE), "x").into();
        let new = tl::types::UpdateNewMessage { message: m.clone(), pts: 2, pts_count: 1 }.into();
        let edit = tl::types::UpdateEditMessage { message: m.clone(), pts: 3, pts_count: 1 }.into();
        assert!(matches!(convert_update(&new, ME), Some(Event::NewMessage(x)) if x.id == 1));
        assert!(matches!(convert_update(&edit, ME), Some(Event::MessageEdited(x)) if x.id == 1));
        let service = tl::types::UpdateNewMessage {
            message: tl::types::MessageEmpty { id: 4, peer_id: None }.into(),
            pts: 4,
            pts_count: 1,
        }
        .into();
        assert_eq!(convert_update(&service, ME), None);
        let other: tl::enums::Update = tl::types::UpdateMessageId { id: 1, random_id: 2 }.into();
        assert_eq!(convert_update(&other, ME), None);
    }

    #[test]
    fn sent_message_id_from_every_answer_shape() {
        let short = tl::types::UpdateShortSentMessage {
            out: true,
            id: 77,
            pts: 1,
            pts_count: 1,
            date: 0,
            media: None,
            entities: None,
            ttl_period: None,
        };
        assert_eq!(sent_message_id(&short.into(), 5), Some(77));
        let m: tl::enums::Message = tl_message(78, user_peer(TRIBUTE), "x").into();
        let full = tl::types::Updates {
            updates: vec![
                tl::types::UpdateMessageId { id: 78, random_id: 5 }.into(),
                tl::types::UpdateNewMessage { message: m, pts: 2, pts_count: 1 }.into(),
            ],
            users: vec![],
            chats: vec![],
            date: 0,
            seq: 0,
        };
        assert_eq!(sent_message_id(&full.clone().into(), 5), Some(78));
        // Without a matching random id, a single new message is still ours.
        assert_eq!(sent_message_id(&full.into(), 6), Some(78));
        assert_eq!(sent_message_id(&tl::enums::Updates::TooLong, 5), None);
    }
}
