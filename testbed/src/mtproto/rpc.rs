//! API methods: decode a request at the client's layer, drive the
//! [`SimClient`](crate::sim::SimClient), encode the answer.

use std::sync::Arc;

use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};
use tokio::sync::OwnedMutexGuard;

use super::convert::{channel_id, chat_of_channel};
use super::login::{LoginReply, LoginState};
use super::updates::{to_update, UpdateLog};
use super::Shared;
use tribute_assistant::telegram::{
    ChatId, DialogsOffset, EntityKind, Message, MessageId, Messenger, MessengerError, RandomId, UserId, ENTITIES_MAX,
};

/// What the connection sends back for a request.
pub(crate) enum Reply {
    /// `rpc_result` with this serialized (boxed) answer.
    Ok(Vec<u8>),
    /// `rpc_result` with an `rpc_error`.
    Err(i32, String),
    /// No answer: the connection is closed (the sim's link is down).
    Drop,
}

/// A request's reply, and the update log lock if the handler produced
/// updates: the connection releases it only after the reply is queued,
/// so a pushed update never overtakes the answer that precedes it in pts.
pub(crate) struct Outcome {
    pub reply: Reply,
    pub method: &'static str,
    pub hold: Option<OwnedMutexGuard<UpdateLog>>,
}

enum Fail {
    Rpc(i32, String),
    Drop,
}

impl Fail {
    fn bad(name: &str) -> Self {
        Fail::Rpc(400, name.to_owned())
    }
}

impl From<tl::deserialize::Error> for Fail {
    fn from(_: tl::deserialize::Error) -> Self {
        Fail::bad("INPUT_REQUEST_INVALID")
    }
}

impl From<MessengerError> for Fail {
    fn from(e: MessengerError) -> Self {
        match e {
            MessengerError::FloodWait(d) => {
                let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                Fail::Rpc(420, format!("FLOOD_WAIT_{secs}"))
            }
            MessengerError::Disconnected => Fail::Drop,
            MessengerError::Timeout => Fail::bad("BOT_RESPONSE_TIMEOUT"),
            MessengerError::ChatNotFound(_) => Fail::bad("PEER_ID_INVALID"),
            MessengerError::MessageNotFound(..) => Fail::bad("MESSAGE_ID_INVALID"),
            MessengerError::ButtonNotFound(_) => Fail::bad("DATA_INVALID"),
            MessengerError::PrivacyRestricted => Fail::bad("USER_PRIVACY_RESTRICTED"),
            MessengerError::UserBlocked => Fail::bad("USER_IS_BLOCKED"),
            MessengerError::UserDeactivated => Fail::bad("INPUT_USER_DEACTIVATED"),
            MessengerError::PeerFlood => Fail::bad("PEER_FLOOD"),
            MessengerError::MessageTooLong => Fail::bad("MESSAGE_TOO_LONG"),
            MessengerError::MessageEmpty => Fail::bad("MESSAGE_EMPTY"),
            MessengerError::EntitiesTooLong => Fail::bad("ENTITIES_TOO_LONG"),
            MessengerError::DataInvalid => Fail::bad("DATA_INVALID"),
            MessengerError::RandomIdDuplicate => Fail::bad("RANDOM_ID_DUPLICATE"),
            MessengerError::Closed => Fail::Rpc(500, "INTERNAL".into()),
            MessengerError::Other(s) => {
                if !s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
                    Fail::bad(&s)
                } else {
                    Fail::Rpc(500, "INTERNAL".into())
                }
            }
        }
    }
}

type Res = Result<Vec<u8>, Fail>;

/// A function's trailing `query:!X`, kept as raw bytes.
struct Rest(Vec<u8>);

impl Deserializable for Rest {
    fn deserialize(buf: &mut Cursor<'_>) -> tl::deserialize::Result<Self> {
        let mut v = Vec::new();
        buf.read_to_end(&mut v)?;
        Ok(Rest(v))
    }
}

fn now() -> i32 {
    chrono::Utc::now().timestamp() as i32
}

/// Strips `invokeWithLayer`, `initConnection`, `invokeWithoutUpdates` and
/// `invokeAfterMsg(s)` wrappers.
fn unwrap_query(mut body: Vec<u8>) -> Result<Vec<u8>, Fail> {
    loop {
        let mut cur = Cursor::from_slice(&body);
        let id = u32::deserialize(&mut cur)?;
        body = match id {
            tl::functions::InvokeWithLayer::<Rest>::CONSTRUCTOR_ID => {
                tl::functions::InvokeWithLayer::<Rest>::deserialize(&mut cur)?.query.0
            }
            tl::functions::InitConnection::<Rest>::CONSTRUCTOR_ID => {
                tl::functions::InitConnection::<Rest>::deserialize(&mut cur)?.query.0
            }
            tl::functions::InvokeWithoutUpdates::<Rest>::CONSTRUCTOR_ID => {
                tl::functions::InvokeWithoutUpdates::<Rest>::deserialize(&mut cur)?.query.0
            }
            tl::functions::InvokeAfterMsg::<Rest>::CONSTRUCTOR_ID => {
                tl::functions::InvokeAfterMsg::<Rest>::deserialize(&mut cur)?.query.0
            }
            tl::functions::InvokeAfterMsgs::<Rest>::CONSTRUCTOR_ID => {
                tl::functions::InvokeAfterMsgs::<Rest>::deserialize(&mut cur)?.query.0
            }
            _ => return Ok(body),
        };
    }
}

/// Decodes a request body (without its constructor id) as `F`.
fn decode<F: Deserializable>(body: &[u8]) -> Result<F, Fail> {
    Ok(F::deserialize(&mut Cursor::from_slice(&body[4..]))?)
}

/// Handles one API request.
pub(crate) async fn call(shared: &Arc<Shared>, body: Vec<u8>) -> Outcome {
    let mut hold = None;
    let (method, result) = match unwrap_query(body) {
        Ok(body) => dispatch(shared, &body, &mut hold).await,
        Err(e) => ("?", Err(e)),
    };
    let reply = match result {
        Ok(bytes) => Reply::Ok(bytes),
        Err(Fail::Rpc(code, name)) => Reply::Err(code, name),
        Err(Fail::Drop) => Reply::Drop,
    };
    Outcome { reply, method, hold }
}

async fn dispatch(
    shared: &Arc<Shared>,
    body: &[u8],
    hold: &mut Option<OwnedMutexGuard<UpdateLog>>,
) -> (&'static str, Res) {
    use tl::functions as f;
    let Some(id) = body.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])) else {
        return ("?", Err(Fail::bad("INPUT_REQUEST_INVALID")));
    };
    let method = tl::name_for_id(id);
    // A dropped link answers nothing: the client sees the connection close.
    if !shared.view.world.is_connected() {
        return (method, Err(Fail::Drop));
    }
    if !shared.login.is_authorised() && !LoginState::is_login_method(id) {
        return (method, Err(Fail::Rpc(401, "AUTH_KEY_UNREGISTERED".into())));
    }
    let result = match id {
        f::auth::SendCode::CONSTRUCTOR_ID
        | f::auth::SignIn::CONSTRUCTOR_ID
        | f::account::GetPassword::CONSTRUCTOR_ID
        | f::auth::CheckPassword::CONSTRUCTOR_ID => login_call(shared, id, body),
        f::channels::GetParticipants::CONSTRUCTOR_ID => get_participants(shared, body),
        f::help::GetConfig::CONSTRUCTOR_ID => Ok(get_config(shared)),
        f::updates::GetState::CONSTRUCTOR_ID => Ok(get_state(shared).await),
        f::users::GetUsers::CONSTRUCTOR_ID => get_users(shared, body).await,
        f::updates::GetDifference::CONSTRUCTOR_ID => get_difference(shared, body).await,
        f::updates::GetChannelDifference::CONSTRUCTOR_ID => get_channel_difference(shared, body).await,
        f::messages::SendMessage::CONSTRUCTOR_ID => send_message(shared, body, hold).await,
        f::messages::GetHistory::CONSTRUCTOR_ID => get_history(shared, body).await,
        f::messages::GetMessages::CONSTRUCTOR_ID => get_messages(shared, body).await,
        f::channels::GetMessages::CONSTRUCTOR_ID => get_channel_messages(shared, body).await,
        f::messages::GetBotCallbackAnswer::CONSTRUCTOR_ID => get_bot_callback_answer(shared, body, hold).await,
        f::contacts::ResolveUsername::CONSTRUCTOR_ID => resolve_username(shared, body),
        f::messages::GetDialogs::CONSTRUCTOR_ID => get_dialogs(shared, body).await,
        f::messages::ReadHistory::CONSTRUCTOR_ID => {
            let log = shared.log.lock().await;
            Ok(tl::enums::messages::AffectedMessages::Messages(tl::types::messages::AffectedMessages {
                pts: log.pts(),
                pts_count: 0,
            })
            .to_bytes())
        }
        f::channels::ReadHistory::CONSTRUCTOR_ID => Ok(true.to_bytes()),
        _ => Err(Fail::bad(&format!("INPUT_METHOD_INVALID_{id:08X}"))),
    };
    (method, result)
}

// ---- login -----------------------------------------------------------------

fn login_call(shared: &Shared, id: u32, body: &[u8]) -> Res {
    use tl::functions as f;
    let login = &shared.login;
    let reply = match id {
        f::auth::SendCode::CONSTRUCTOR_ID => login.send_code(decode(body)?),
        f::auth::SignIn::CONSTRUCTOR_ID => login.sign_in(decode(body)?),
        f::account::GetPassword::CONSTRUCTOR_ID => login.get_password(),
        _ => login.check_password(decode(body)?),
    };
    match reply {
        LoginReply::Ok(bytes) => Ok(bytes),
        LoginReply::Err(code, name) => Err(Fail::Rpc(code, name.to_owned())),
        LoginReply::Authorised => {
            login.set_authorised();
            tracing::info!("testbed: the account logged in");
            Ok(tl::enums::auth::Authorization::Authorization(tl::types::auth::Authorization {
                setup_password_required: false,
                otherwise_relogin_days: None,
                tmp_sessions: None,
                future_auth_token: None,
                user: shared.view.user(shared.view.self_id),
            })
            .to_bytes())
        }
    }
}

/// The members of a group: those set by the world's owner, else our
/// account and everyone who wrote in it.
fn get_participants(shared: &Shared, body: &[u8]) -> Res {
    let req: tl::functions::channels::GetParticipants = decode(body)?;
    let chat = resolve_channel(shared, &req.channel)?;
    let set = shared.members.lock().unwrap_or_else(|e| e.into_inner()).get(&chat).cloned();
    let members = set.unwrap_or_else(|| {
        let mut ids = vec![shared.view.self_id];
        for m in shared.view.world.messages(chat) {
            if let Some(s) = m.sender_id.filter(|s| !ids.contains(s)) {
                ids.push(s);
            }
        }
        ids
    });
    let members: Vec<UserId> = members.into_iter().filter(|&u| shared.view.user_exists(u)).collect();
    let offset = usize::try_from(req.offset).unwrap_or(0);
    let limit = usize::try_from(req.limit).unwrap_or(0).clamp(1, 200);
    let page: Vec<UserId> = members.iter().copied().skip(offset).take(limit).collect();
    Ok(tl::enums::channels::ChannelParticipants::Participants(tl::types::channels::ChannelParticipants {
        count: members.len() as i32,
        participants: page
            .iter()
            .map(|&user_id| {
                tl::types::ChannelParticipant {
                    user_id,
                    date: 1_700_000_000,
                    subscription_until_date: None,
                    rank: None,
                }
                .into()
            })
            .collect(),
        chats: vec![],
        users: page.iter().map(|&u| shared.view.user(u)).collect(),
    })
    .to_bytes())
}

fn get_config(shared: &Shared) -> Vec<u8> {
    let now = now();
    tl::enums::Config::Config(tl::types::Config {
        default_p2p_contacts: false,
        preload_featured_stickers: false,
        revoke_pm_inbox: true,
        blocked_mode: false,
        force_try_ipv6: false,
        date: now,
        expires: now + 3600,
        test_mode: false,
        this_dc: shared.dc_id,
        dc_options: vec![tl::types::DcOption {
            ipv6: false,
            media_only: false,
            tcpo_only: false,
            cdn: false,
            r#static: true,
            this_port_only: false,
            id: shared.dc_id,
            ip_address: shared.addr.ip().to_string(),
            port: i32::from(shared.addr.port()),
            secret: None,
        }
        .into()],
        dc_txt_domain_name: "localhost".into(),
        chat_size_max: 200,
        megagroup_size_max: 200_000,
        forwarded_count_max: 100,
        online_update_period_ms: 210_000,
        offline_blur_timeout_ms: 5_000,
        offline_idle_timeout_ms: 30_000,
        online_cloud_timeout_ms: 300_000,
        notify_cloud_delay_ms: 30_000,
        notify_default_delay_ms: 1_500,
        push_chat_period_ms: 60_000,
        push_chat_limit: 2,
        edit_time_limit: 172_800,
        revoke_time_limit: i32::MAX,
        revoke_pm_time_limit: i32::MAX,
        rating_e_decay: 2_419_200,
        stickers_recent_limit: 200,
        channels_read_media_period: 604_800,
        tmp_sessions: None,
        call_receive_timeout_ms: 20_000,
        call_ring_timeout_ms: 90_000,
        call_connect_timeout_ms: 30_000,
        call_packet_timeout_ms: 10_000,
        me_url_prefix: "https://t.me/".into(),
        autoupdate_url_prefix: None,
        gif_search_username: None,
        venue_search_username: None,
        img_search_username: None,
        static_maps_provider: None,
        caption_length_max: 1024,
        message_length_max: 4096,
        webfile_dc_id: shared.dc_id,
        suggested_lang_code: None,
        lang_pack_version: None,
        base_lang_pack_version: None,
        reactions_default: None,
        autologin_token: None,
    })
    .to_bytes()
}

fn state(log: &UpdateLog) -> tl::enums::updates::State {
    tl::types::updates::State { pts: log.pts(), qts: log.qts(), date: now(), seq: 0, unread_count: 0 }.into()
}

async fn get_state(shared: &Shared) -> Vec<u8> {
    state(&*shared.log.lock().await).to_bytes()
}

// ---- peers -----------------------------------------------------------------

/// Whether `m` shows `user`: its sender, or a mention entity.
fn message_shows_user(m: &Message, user: UserId) -> bool {
    m.sender_id == Some(user)
        || m.entities.iter().any(|e| matches!(e.kind, EntityKind::MentionName { user_id } if user_id == user))
}

/// The user seen in `msg_id` of `peer` (for the `*FromMessage` inputs).
async fn user_from_message(
    shared: &Shared,
    peer: &tl::enums::InputPeer,
    msg_id: MessageId,
    user_id: UserId,
    error: &str,
) -> Result<UserId, Fail> {
    let chat = Box::pin(resolve_peer(shared, peer)).await?;
    // The server's own lookup: no request of the client, so no fault of its own.
    let found = shared.view.world.message(chat, msg_id);
    match found.as_ref() {
        Some(m) if message_shows_user(m, user_id) && shared.view.user_exists(user_id) => Ok(user_id),
        _ => Err(Fail::bad(error)),
    }
}

/// The sim chat an `InputPeer` names, checking access hashes.
async fn resolve_peer(shared: &Shared, peer: &tl::enums::InputPeer) -> Result<ChatId, Fail> {
    use tl::enums::InputPeer as P;
    let view = &shared.view;
    match peer {
        P::PeerSelf => Ok(view.self_id),
        P::User(u) if u.access_hash == view.user_hash(u.user_id) && view.user_exists(u.user_id) => Ok(u.user_id),
        P::Channel(c) if c.access_hash == view.channel_hash(c.channel_id) => Ok(chat_of_channel(c.channel_id)),
        P::UserFromMessage(u) => user_from_message(shared, &u.peer, u.msg_id, u.user_id, "PEER_ID_INVALID").await,
        _ => Err(Fail::bad("PEER_ID_INVALID")),
    }
}

async fn resolve_user(shared: &Shared, user: &tl::enums::InputUser) -> Result<UserId, Fail> {
    use tl::enums::InputUser as U;
    let view = &shared.view;
    match user {
        U::UserSelf => Ok(view.self_id),
        U::User(u) if u.access_hash == view.user_hash(u.user_id) && view.user_exists(u.user_id) => Ok(u.user_id),
        U::FromMessage(u) => user_from_message(shared, &u.peer, u.msg_id, u.user_id, "USER_ID_INVALID").await,
        _ => Err(Fail::bad("USER_ID_INVALID")),
    }
}

fn resolve_channel(shared: &Shared, channel: &tl::enums::InputChannel) -> Result<ChatId, Fail> {
    match channel {
        tl::enums::InputChannel::Channel(c) if c.access_hash == shared.view.channel_hash(c.channel_id) => {
            let chat = chat_of_channel(c.channel_id);
            shared.view.world.chat_info(chat).map(|_| chat).ok_or_else(|| Fail::bad("CHANNEL_INVALID"))
        }
        _ => Err(Fail::bad("CHANNEL_INVALID")),
    }
}

async fn get_users(shared: &Shared, body: &[u8]) -> Res {
    let req: tl::functions::users::GetUsers = decode(body)?;
    let mut users = Vec::with_capacity(req.id.len());
    for input in &req.id {
        // Unknown or unusable inputs are left out, as Telegram does.
        if let Ok(id) = resolve_user(shared, input).await {
            users.push(shared.view.user(id));
        }
    }
    Ok(users.to_bytes())
}

fn resolve_username(shared: &Shared, body: &[u8]) -> Res {
    let req: tl::functions::contacts::ResolveUsername = decode(body)?;
    let wanted = req.username.trim_start_matches('@').to_lowercase();
    let Some(user) = shared
        .view
        .world
        .users()
        .into_iter()
        .find(|u| u.username.as_deref().is_some_and(|n| n.to_lowercase() == wanted))
    else {
        return Err(Fail::bad("USERNAME_NOT_OCCUPIED"));
    };
    Ok(tl::enums::contacts::ResolvedPeer::Peer(tl::types::contacts::ResolvedPeer {
        peer: tl::types::PeerUser { user_id: user.id }.into(),
        chats: vec![],
        users: vec![shared.view.user(user.id)],
    })
    .to_bytes())
}

/// A page of the account's chats (newest activity first) with their last
/// messages, users and groups (with channel pts): `messages.dialogsSlice`
/// while more follow, `messages.dialogs` for the last page.
async fn get_dialogs(shared: &Shared, body: &[u8]) -> Res {
    let req: tl::functions::messages::GetDialogs = decode(body)?;
    let view = &shared.view;
    let after = match req.offset_peer {
        tl::enums::InputPeer::Empty => None,
        ref peer => Some(DialogsOffset {
            date: i64::from(req.offset_date),
            message: req.offset_id,
            chat: resolve_peer(shared, peer).await?,
        }),
    };
    let limit = usize::try_from(req.limit).unwrap_or(0).clamp(1, 100);
    let (page, next) = view.world.dialogs(after, limit);
    let last: Vec<(ChatId, Option<Message>)> =
        page.iter().filter(|d| d.chat != view.self_id).map(|d| (d.chat, view.world.message(d.chat, d.top))).collect();
    let log = shared.log.lock().await;
    let dialogs = last
        .iter()
        .map(|(chat, top)| {
            tl::types::Dialog {
                pinned: false,
                unread_mark: false,
                view_forum_as_messages: false,
                peer: view.peer(*chat),
                top_message: top.as_ref().map_or(0, |m| m.id),
                read_inbox_max_id: top.as_ref().map_or(0, |m| m.id),
                read_outbox_max_id: top.as_ref().map_or(0, |m| m.id),
                unread_count: 0,
                unread_mentions_count: 0,
                unread_reactions_count: 0,
                unread_poll_votes_count: 0,
                notify_settings: tl::types::PeerNotifySettings {
                    show_previews: None,
                    silent: None,
                    mute_until: None,
                    ios_sound: None,
                    android_sound: None,
                    other_sound: None,
                    stories_muted: None,
                    stories_hide_sender: None,
                    stories_ios_sound: None,
                    stories_android_sound: None,
                    stories_other_sound: None,
                }
                .into(),
                pts: channel_id(*chat).map(|c| log.channel_pts(c)),
                draft: None,
                folder_id: None,
                ttl_period: None,
            }
            .into()
        })
        .collect();
    drop(log);
    let messages: Vec<Message> = last.iter().filter_map(|(_, m)| m.clone()).collect();
    let (mut users, mut chats) = view.peers_of(&messages);
    for (chat, _) in &last {
        match channel_id(*chat) {
            Some(_) => {
                if let Some(c) = view.channel(*chat) {
                    if !chats.contains(&c) {
                        chats.push(c);
                    }
                }
            }
            None => {
                let u = view.user(*chat);
                if !users.contains(&u) {
                    users.push(u);
                }
            }
        }
    }
    let messages = messages.iter().map(|m| view.message(m)).collect();
    Ok(match next {
        Some(_) => tl::enums::messages::Dialogs::Slice(tl::types::messages::DialogsSlice {
            count: view.world.dialogs(None, usize::MAX).0.len() as i32,
            dialogs,
            messages,
            chats,
            users,
        }),
        None => tl::enums::messages::Dialogs::Dialogs(tl::types::messages::Dialogs { dialogs, messages, chats, users }),
    }
    .to_bytes())
}

// ---- updates ---------------------------------------------------------------

async fn get_difference(shared: &Shared, body: &[u8]) -> Res {
    let req: tl::functions::updates::GetDifference = decode(body)?;
    let log = shared.log.lock().await;
    let entries = log.since(req.pts, req.qts);
    if entries.is_empty() {
        return Ok(tl::enums::updates::Difference::Empty(tl::types::updates::DifferenceEmpty { date: now(), seq: 0 })
            .to_bytes());
    }
    let view = &shared.view;
    let (users, chats) = view.peers_of(entries.iter().map(|e| &e.message));
    let mut new_messages = Vec::new();
    let mut other_updates = Vec::new();
    for e in &entries {
        if e.edit || channel_id(e.message.chat_id).is_some() {
            other_updates.push(to_update(view, e));
        } else {
            new_messages.push(view.message(&e.message));
        }
    }
    Ok(tl::enums::updates::Difference::Difference(tl::types::updates::Difference {
        new_messages,
        new_encrypted_messages: vec![],
        other_updates,
        chats,
        users,
        state: state(&log),
    })
    .to_bytes())
}

async fn get_channel_difference(shared: &Shared, body: &[u8]) -> Res {
    let req: tl::functions::updates::GetChannelDifference = decode(body)?;
    let chat = resolve_channel(shared, &req.channel)?;
    let channel = channel_id(chat).expect("resolved channels are groups");
    let log = shared.log.lock().await;
    let pts = log.channel_pts(channel);
    let entries = log.channel_since(channel, req.pts);
    if entries.is_empty() {
        return Ok(tl::enums::updates::ChannelDifference::Empty(tl::types::updates::ChannelDifferenceEmpty {
            r#final: true,
            pts,
            timeout: None,
        })
        .to_bytes());
    }
    let view = &shared.view;
    let (users, chats) = view.peers_of(entries.iter().map(|e| &e.message));
    let (edits, news): (Vec<_>, Vec<_>) = entries.iter().partition(|e| e.edit);
    Ok(tl::enums::updates::ChannelDifference::Difference(tl::types::updates::ChannelDifference {
        r#final: true,
        pts,
        timeout: None,
        new_messages: news.iter().map(|e| view.message(&e.message)).collect(),
        other_updates: edits.iter().map(|e| to_update(view, e)).collect(),
        chats,
        users,
    })
    .to_bytes())
}

// ---- messages --------------------------------------------------------------

async fn send_message(shared: &Arc<Shared>, body: &[u8], hold: &mut Option<OwnedMutexGuard<UpdateLog>>) -> Res {
    let req: tl::functions::messages::SendMessage = decode(body)?;
    let chat = resolve_peer(shared, &req.peer).await?;
    let reply_to = match &req.reply_to {
        Some(tl::enums::InputReplyTo::Message(r)) => Some(r.reply_to_msg_id),
        _ => None,
    };
    // Hold the log across the send: the bot's instant follow-up must get a
    // later pts than our own message.
    // Explicit entities count against the same limit as the ones the sim
    // finds in the text itself.
    if req.entities.as_ref().is_some_and(|e| e.len() > ENTITIES_MAX) {
        return Err(Fail::bad("ENTITIES_TOO_LONG"));
    }
    let mut log = shared.log.clone().lock_owned().await;
    let id = shared.client.send_message(chat, &req.message, reply_to, RandomId(req.random_id)).await?;
    // Read past the fault plan: the send itself already met its faults.
    let message = shared.view.world.message(chat, id).ok_or_else(|| Fail::Rpc(500, "INTERNAL".into()))?;
    let view = &shared.view;
    let update = log.record(view, message.clone(), false);
    let date = i32::try_from(message.date).unwrap_or(i32::MAX);
    let bytes = if let tl::enums::Update::NewMessage(u) = &update {
        tl::enums::Updates::UpdateShortSentMessage(tl::types::UpdateShortSentMessage {
            out: true,
            id,
            pts: u.pts,
            pts_count: u.pts_count,
            date,
            media: None,
            entities: None,
            ttl_period: None,
        })
        .to_bytes()
    } else {
        let (users, chats) = view.peers_of([&message]);
        tl::enums::Updates::Updates(tl::types::Updates {
            updates: vec![tl::types::UpdateMessageId { id, random_id: req.random_id }.into(), update],
            users,
            chats,
            date,
            seq: 0,
        })
        .to_bytes()
    };
    *hold = Some(log);
    Ok(bytes)
}

/// The slice of a chat's history `messages.getHistory` asks for, newest first.
fn history_window(all: &[Message], req: &tl::functions::messages::GetHistory) -> (Vec<Message>, usize) {
    let mut newest_first: Vec<&Message> = all
        .iter()
        .filter(|m| req.min_id <= 0 || m.id > req.min_id)
        .filter(|m| req.max_id <= 0 || m.id < req.max_id)
        .filter(|m| req.offset_date <= 0 || m.date < i64::from(req.offset_date))
        .collect();
    newest_first.sort_by_key(|m| std::cmp::Reverse(m.id));
    let total = newest_first.len();
    let start = if req.offset_id > 0 {
        newest_first.iter().position(|m| m.id < req.offset_id).unwrap_or(total) as i64
    } else {
        0
    } + i64::from(req.add_offset);
    let limit = if req.limit <= 0 { 100 } else { req.limit.min(100) } as i64;
    let (mut from, mut to) = (start, start + limit);
    from = from.clamp(0, total as i64);
    to = to.clamp(0, total as i64);
    (newest_first[from as usize..to as usize].iter().map(|m| (*m).clone()).collect(), total)
}

async fn get_history(shared: &Shared, body: &[u8]) -> Res {
    let req: tl::functions::messages::GetHistory = decode(body)?;
    let chat = resolve_peer(shared, &req.peer).await?;
    let all = shared.client.history_since(chat, 0, usize::MAX).await?;
    let (messages, total) = history_window(&all, &req);
    let view = &shared.view;
    let (users, chats) = view.peers_of(&messages);
    let messages: Vec<_> = messages.iter().map(|m| view.message(m)).collect();
    let result = if let Some(channel) = channel_id(chat) {
        let pts = shared.log.lock().await.channel_pts(channel);
        tl::enums::messages::Messages::ChannelMessages(tl::types::messages::ChannelMessages {
            inexact: false,
            pts,
            count: total as i32,
            offset_id_offset: None,
            messages,
            topics: vec![],
            chats,
            users,
        })
    } else if messages.len() < total {
        tl::enums::messages::Messages::Slice(tl::types::messages::MessagesSlice {
            inexact: false,
            count: total as i32,
            next_rate: None,
            offset_id_offset: None,
            search_flood: None,
            messages,
            topics: vec![],
            chats,
            users,
        })
    } else {
        tl::enums::messages::Messages::Messages(tl::types::messages::Messages {
            messages,
            topics: vec![],
            chats,
            users,
        })
    };
    Ok(result.to_bytes())
}

fn plain_ids(ids: &[tl::enums::InputMessage]) -> Vec<MessageId> {
    ids.iter()
        .filter_map(|m| match m {
            tl::enums::InputMessage::Id(i) => Some(i.id),
            _ => None,
        })
        .collect()
}

/// `messages.getMessages` has no peer: Telegram numbers private-chat
/// messages account-wide. Here ids are per chat, so every private chat's
/// message with a wanted id is returned (grammers filters by peer).
async fn get_messages(shared: &Shared, body: &[u8]) -> Res {
    let req: tl::functions::messages::GetMessages = decode(body)?;
    let ids = plain_ids(&req.id);
    let mut found = Vec::new();
    let mut requested = false;
    for chat in shared.view.world.chats() {
        if chat.id <= 0 {
            continue;
        }
        if requested {
            found.extend(ids.iter().filter_map(|&id| shared.view.world.message(chat.id, id)));
        } else {
            // One request meets the fault plan once, however many chats it spans.
            found.extend(shared.client.get_messages(chat.id, &ids).await?);
            requested = true;
        }
    }
    let view = &shared.view;
    let (users, chats) = view.peers_of(&found);
    Ok(tl::enums::messages::Messages::Messages(tl::types::messages::Messages {
        messages: found.iter().map(|m| view.message(m)).collect(),
        topics: vec![],
        chats,
        users,
    })
    .to_bytes())
}

async fn get_channel_messages(shared: &Shared, body: &[u8]) -> Res {
    let req: tl::functions::channels::GetMessages = decode(body)?;
    let chat = resolve_channel(shared, &req.channel)?;
    let found = shared.client.get_messages(chat, &plain_ids(&req.id)).await?;
    let view = &shared.view;
    let (users, chats) = view.peers_of(&found);
    let pts = shared.log.lock().await.channel_pts(channel_id(chat).expect("a group"));
    Ok(tl::enums::messages::Messages::ChannelMessages(tl::types::messages::ChannelMessages {
        inexact: false,
        pts,
        count: found.len() as i32,
        offset_id_offset: None,
        messages: found.iter().map(|m| view.message(m)).collect(),
        topics: vec![],
        chats,
        users,
    })
    .to_bytes())
}

async fn get_bot_callback_answer(
    shared: &Arc<Shared>,
    body: &[u8],
    hold: &mut Option<OwnedMutexGuard<UpdateLog>>,
) -> Res {
    let req: tl::functions::messages::GetBotCallbackAnswer = decode(body)?;
    let chat = resolve_peer(shared, &req.peer).await?;
    let Some(data) = req.data else { return Err(Fail::bad("DATA_INVALID")) };
    let log = shared.log.clone().lock_owned().await;
    let answer = shared.client.press_button(chat, req.msg_id, &data).await?;
    *hold = Some(log);
    Ok(tl::enums::messages::BotCallbackAnswer::Answer(tl::types::messages::BotCallbackAnswer {
        alert: answer.alert,
        has_url: false,
        native_ui: false,
        message: answer.text,
        url: None,
        cache_time: 0,
    })
    .to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: MessageId) -> Message {
        Message {
            chat_id: 1,
            id,
            sender_id: Some(1),
            outgoing: false,
            sender_is_bot: false,
            date: 1_700_000_000,
            text: String::new(),
            entities: vec![],
            reply_to: None,
            buttons: vec![],
        }
    }

    fn req(
        offset_id: i32,
        add_offset: i32,
        limit: i32,
        max_id: i32,
        min_id: i32,
    ) -> tl::functions::messages::GetHistory {
        tl::functions::messages::GetHistory {
            peer: tl::enums::InputPeer::Empty,
            offset_id,
            offset_date: 0,
            add_offset,
            limit,
            max_id,
            min_id,
            hash: 0,
        }
    }

    fn ids(r: (Vec<Message>, usize)) -> (Vec<MessageId>, usize) {
        (r.0.iter().map(|m| m.id).collect(), r.1)
    }

    #[test]
    fn history_window_follows_telegram_semantics() {
        let all: Vec<Message> = (1..=10).map(msg).collect();
        assert_eq!(ids(history_window(&all, &req(0, 0, 3, 0, 0))), (vec![10, 9, 8], 10));
        assert_eq!(ids(history_window(&all, &req(8, 0, 3, 0, 0))), (vec![7, 6, 5], 10));
        assert_eq!(ids(history_window(&all, &req(0, 0, 100, 0, 7))), (vec![10, 9, 8], 3));
        assert_eq!(ids(history_window(&all, &req(0, 0, 100, 4, 0))), (vec![3, 2, 1], 3));
        // add_offset = -limit reads the messages after offset_id.
        assert_eq!(ids(history_window(&all, &req(5, -3, 3, 0, 0))), (vec![7, 6, 5], 10));
    }

    #[test]
    fn messenger_errors_map_to_telegram_names() {
        let name = |e| match Fail::from(e) {
            Fail::Rpc(code, name) => format!("{code} {name}"),
            Fail::Drop => "drop".into(),
        };
        assert_eq!(name(MessengerError::FloodWait(std::time::Duration::from_millis(1500))), "420 FLOOD_WAIT_2");
        assert_eq!(name(MessengerError::PrivacyRestricted), "400 USER_PRIVACY_RESTRICTED");
        assert_eq!(name(MessengerError::PeerFlood), "400 PEER_FLOOD");
        assert_eq!(name(MessengerError::MessageTooLong), "400 MESSAGE_TOO_LONG");
        assert_eq!(name(MessengerError::MessageEmpty), "400 MESSAGE_EMPTY");
        assert_eq!(name(MessengerError::EntitiesTooLong), "400 ENTITIES_TOO_LONG");
        assert_eq!(name(MessengerError::DataInvalid), "400 DATA_INVALID");
        assert_eq!(name(MessengerError::RandomIdDuplicate), "400 RANDOM_ID_DUPLICATE");
        assert_eq!(name(MessengerError::UserBlocked), "400 USER_IS_BLOCKED");
        assert_eq!(name(MessengerError::UserDeactivated), "400 INPUT_USER_DEACTIVATED");
        assert_eq!(name(MessengerError::ChatNotFound(5)), "400 PEER_ID_INVALID");
        assert_eq!(name(MessengerError::ButtonNotFound(5)), "400 DATA_INVALID");
        assert_eq!(name(MessengerError::Other("DATA_INVALID".into())), "400 DATA_INVALID");
        assert_eq!(name(MessengerError::Disconnected), "drop");
    }
}
