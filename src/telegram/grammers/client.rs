//! [`GrammersMessenger`]: the core's [`Messenger`] on a real Telegram user
//! account, over grammers-client 0.11.
//!
//! - Updates are read by one task that owns grammers' update stream (so a
//!   cancelled `next_event` never loses an update) and hands events over a
//!   channel. The update state is written to the session only once the
//!   core has handled the event (when it asks for the next one), so a crash
//!   in between replays the event on restart (`catch_up`).
//! - Every request has a timeout; flood waits up to the configured
//!   threshold are slept through by grammers, longer ones surface as
//!   [`MessengerError::FloodWait`] for the core to schedule.
//! - Sends and presses go through a global [`RateLimiter`].

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use ::grammers_client::client::UpdateStream;
use ::grammers_client::Client;
use ::grammers_mtsender::{
    AutoSleep, ConnectionParams, InvocationError, SenderPool, SenderPoolHandle, UpdatesConfiguration,
};
use ::grammers_session::storages::ErasedSession;
use ::grammers_session::types::{PeerInfo, PeerKind, UpdateState};
use ::grammers_session::updates::{MessageBox, State};
use ::grammers_session::Session;
use ::grammers_tl_types as tl;
use anyhow::{bail, Context};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::convert::{self, convert_update};
use super::errors::{map_error, Op};
use super::peers::{self, MentionMap};
use super::rate_limit::{Priority, RateLimit, RateLimiter};
use super::session::stored_self_id;
use crate::runtime::backoff::{self, Jitter};
use crate::telegram::{
    CallbackAnswer, ChatId, DialogsOffset, DialogsPage, Event, Message, MessageId, Messenger, MessengerError,
    MessengerResult, RandomId, UserId, CALLBACK_DATA_MAX,
};

/// Telegram returns at most this many messages per history request.
const HISTORY_MAX: usize = 100;

/// Settings of the adapter.
#[derive(Debug, Clone)]
pub struct GrammersConfig {
    /// The application's api_id (my.telegram.org).
    pub api_id: i32,
    /// The Tribute bot's chat: mentions in its messages make customers reachable.
    pub tribute_chat: ChatId,
    /// Group chats whose messages are delivered as events (the moderator chat).
    /// Private chats are always delivered; other groups and channels are not.
    pub group_chats: Vec<ChatId>,
    pub rate_limit: RateLimit,
    /// Flood waits up to this long are slept through inside the client.
    pub flood_auto_sleep: Duration,
    /// A request without an answer after this long fails with `Timeout`.
    pub request_timeout: Duration,
}

impl GrammersConfig {
    pub fn new(api_id: i32, tribute_chat: ChatId) -> Self {
        Self {
            api_id,
            tribute_chat,
            group_chats: Vec::new(),
            rate_limit: RateLimit::default(),
            flood_auto_sleep: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What the update task hands to `next_event`.
enum Item {
    Event(Event, State),
    /// An update the core does not see; its state can be saved once reached.
    Skipped(State),
    Error(MessengerError),
    Closed,
}

struct EventQueue {
    rx: mpsc::Receiver<Item>,
    /// The state of the last event handed out, saved when the next one is asked for.
    pending: Option<State>,
}

struct Inner {
    client: Client,
    session: Arc<ErasedSession>,
    pool: SenderPoolHandle,
    self_id: UserId,
    cfg: GrammersConfig,
    limiter: RateLimiter,
    mentions: Arc<StdMutex<MentionMap>>,
    events: tokio::sync::Mutex<EventQueue>,
    closed: Arc<AtomicBool>,
    pump: StdMutex<Option<JoinHandle<()>>>,
    runner: StdMutex<Option<JoinHandle<()>>>,
}

/// A connected Telegram user account. Cheap to clone.
#[derive(Clone)]
pub struct GrammersMessenger {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GrammersMessenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammersMessenger").field("self_id", &self.inner.self_id).finish()
    }
}

/// Connection parameters shared by `run` and `login`.
pub fn connection_params(flood_auto_sleep: Duration) -> ConnectionParams {
    ConnectionParams {
        device_model: "tribute-assistant".into(),
        app_version: env!("CARGO_PKG_VERSION").into(),
        retry_policy: Box::new(AutoSleep {
            tries: NonZeroU32::new(2).expect("non-zero"),
            threshold: flood_auto_sleep,
            io_errors_as_flood_of: Some(Duration::from_secs(1)),
        }),
        updates_channel_capacity: NonZeroUsize::new(1000).expect("non-zero"),
        ..ConnectionParams::default()
    }
}

/// The pieces of a running grammers client.
pub struct Connection {
    pub client: Client,
    pub session: Arc<ErasedSession>,
    pub pool: SenderPoolHandle,
    pub updates: mpsc::Receiver<::grammers_session::updates::UpdatesLike>,
    pub runner: JoinHandle<()>,
}

/// Starts the connection pool on a session (nothing is sent until the first request).
pub fn start_pool<S>(session: Arc<S>, api_id: i32, flood_auto_sleep: Duration) -> Connection
where
    S: Session + Sized,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let pool = SenderPool::with_configuration(session, api_id, connection_params(flood_auto_sleep));
    let client = Client::new(pool.handle.clone());
    let runner = tokio::spawn(pool.runner.run());
    Connection {
        client,
        session: pool.handle.session.clone(),
        pool: pool.handle.thin.clone(),
        updates: pool.updates,
        runner,
    }
}

impl GrammersMessenger {
    /// Connects with an authorised session. Fails (naming `tribute-assistant login`)
    /// if the session was never logged in or Telegram says it no longer is.
    /// A network that is down is not fatal: requests retry later.
    pub async fn connect<S>(session: Arc<S>, cfg: GrammersConfig) -> anyhow::Result<Self>
    where
        S: Session + Sized,
        S::Error: std::error::Error + Send + Sync + 'static,
    {
        let conn = start_pool(session, cfg.api_id, cfg.flood_auto_sleep);
        let Some(self_id) = stored_self_id(&*conn.session).await else {
            conn.pool.quit();
            bail!("The Telegram session is not logged in: run `tribute-assistant login` first");
        };
        match tokio::time::timeout(cfg.request_timeout, conn.client.is_authorized()).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                conn.pool.quit();
                bail!("Telegram no longer accepts this session (logged out or revoked): run `tribute-assistant login`");
            }
            Ok(Err(e)) => {
                warn!(error = %e, "could not check the session with Telegram; continuing, requests will retry")
            }
            Err(_) => warn!("Telegram did not answer the session check in time; continuing, requests will retry"),
        }
        let stream = conn
            .client
            .stream_updates(conn.updates, UpdatesConfiguration { catch_up: true })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("Failed to start receiving Telegram updates")?;
        let (tx, rx) = mpsc::channel(256);
        let closed = Arc::new(AtomicBool::new(false));
        let mentions = Arc::new(StdMutex::new(MentionMap::default()));
        let pump = tokio::spawn(pump_updates(
            stream,
            tx,
            PumpFilter { self_id, tribute_chat: cfg.tribute_chat, group_chats: cfg.group_chats.clone() },
            mentions.clone(),
            closed.clone(),
        ));
        let messenger = Self {
            inner: Arc::new(Inner {
                client: conn.client,
                session: conn.session,
                pool: conn.pool,
                self_id,
                limiter: RateLimiter::new(cfg.rate_limit),
                cfg,
                mentions,
                events: tokio::sync::Mutex::new(EventQueue { rx, pending: None }),
                closed,
                pump: StdMutex::new(Some(pump)),
                runner: StdMutex::new(Some(conn.runner)),
            }),
        };
        messenger.warm_peer_cache().await;
        Ok(messenger)
    }

    /// Closes the connection; `next_event` then returns `Closed`. Call it
    /// after the daemon has stopped: the last event it was given counts as
    /// handled and its update state is saved.
    pub async fn close(&self) {
        if let Ok(mut queue) = tokio::time::timeout(Duration::from_secs(1), self.inner.events.lock()).await {
            if let Some(state) = queue.pending.take() {
                save_state(&self.inner.session, &state).await;
            }
        }
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.pool.quit();
        if let Some(pump) = self.inner.pump.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pump.abort();
        }
        let runner = self.inner.runner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(runner) = runner {
            let _ = tokio::time::timeout(Duration::from_secs(5), runner).await;
        }
    }

    /// Remembers that `user` is mentioned in message `message` of `chat`, so
    /// they can be written to through it (e.g. customers of unfinished orders
    /// after a restart, seeded from the store).
    pub fn remember_mention(&self, user: UserId, chat: ChatId, message: MessageId) {
        self.inner.mentions.lock().unwrap_or_else(|e| e.into_inner()).insert(user, chat, message);
    }

    /// The raw grammers client, for tests and tools (not for the core).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Telegram only gives us access hashes it has sent us. If the Tribute
    /// chat (or a configured group) is not in the cache yet, read the dialog
    /// list once: that caches every chat we have. Best-effort.
    async fn warm_peer_cache(&self) {
        let mut wanted = vec![self.inner.cfg.tribute_chat];
        wanted.extend(self.inner.cfg.group_chats.iter().copied());
        let mut missing = false;
        for chat in wanted {
            if let Some(id) = peers::peer_id(chat) {
                if id.kind() != PeerKind::Chat && matches!(self.inner.session.peer_ref(id).await, Ok(None)) {
                    missing = true;
                }
            }
        }
        if !missing {
            return;
        }
        info!("reading the dialog list once to learn the chats' access hashes");
        let mut dialogs = self.inner.client.iter_dialogs();
        let read = tokio::time::timeout(self.inner.cfg.request_timeout * 4, async {
            let mut n = 0usize;
            loop {
                match dialogs.next().await {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => return Ok(n),
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        match read {
            Ok(Ok(n)) => debug!(dialogs = n, "peer cache warmed"),
            Ok(Err(e)) => warn!(error = %e, "could not read the dialog list; chats are resolved as messages arrive"),
            Err(_) => warn!("reading the dialog list timed out; chats are resolved as messages arrive"),
        }
    }

    /// Runs one request with the timeout and the error mapping.
    async fn call<R: tl::RemoteCall>(&self, request: &R, op: Op) -> MessengerResult<R::Return> {
        match tokio::time::timeout(self.inner.cfg.request_timeout, self.inner.client.invoke(request)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.map(&e, op)),
            Err(_) => Err(MessengerError::Timeout),
        }
    }

    fn map(&self, e: &InvocationError, op: Op) -> MessengerError {
        if self.inner.closed.load(Ordering::SeqCst) {
            return MessengerError::Closed;
        }
        let mapped = map_error(e, op);
        debug!(error = %e, ?op, mapped = %mapped, "Telegram request failed");
        mapped
    }

    /// Caches the access hashes of users and chats an answer carried.
    async fn cache(&self, users: &[tl::enums::User], chats: &[tl::enums::Chat]) {
        let infos: Vec<PeerInfo> = users
            .iter()
            .map(PeerInfo::from)
            .chain(chats.iter().map(PeerInfo::from))
            .filter(|p| p.auth().is_some())
            .collect();
        if infos.is_empty() {
            return;
        }
        if let Err(e) = self.inner.session.cache_peers(infos).await {
            warn!(error = %e, "could not cache peers in the session");
        }
    }

    /// The input peer for a chat: cached access hash; for a user only seen as
    /// a mention, `users.getUsers(inputUserFromMessage)` (caching the hash it
    /// returns), else `inputPeerUserFromMessage`; else the ambient hash.
    async fn input_peer(&self, chat: ChatId) -> MessengerResult<tl::enums::InputPeer> {
        let id = peers::peer_id(chat).ok_or(MessengerError::ChatNotFound(chat))?;
        if id.kind() == PeerKind::Chat {
            return peers::input_peer(chat, 0).ok_or(MessengerError::ChatNotFound(chat));
        }
        if let Some(r) = self.cached_ref(chat).await {
            return Ok(r);
        }
        if id.kind() == PeerKind::Channel {
            return Err(MessengerError::ChatNotFound(chat));
        }
        let mention = self.inner.mentions.lock().unwrap_or_else(|e| e.into_inner()).get(chat);
        if let Some((source_chat, msg_id)) = mention {
            if let Some(source) = self.cached_ref(source_chat).await {
                let user = peers::input_user_from_message(source.clone(), msg_id, chat);
                match self.call(&tl::functions::users::GetUsers { id: vec![user] }, Op::Read { chat }).await {
                    Ok(users) => {
                        self.cache(&users, &[]).await;
                        if let Some((_, hash)) =
                            users.iter().filter_map(peers::usable_user_hash).find(|(id, _)| *id == chat)
                        {
                            debug!(user = chat, "access hash from the mention's message");
                            return peers::input_peer(chat, hash).ok_or(MessengerError::ChatNotFound(chat));
                        }
                    }
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => debug!(user = chat, error = %e, "users.getUsers from the message failed"),
                }
                return Ok(peers::input_peer_user_from_message(source, msg_id, chat));
            }
        }
        // Contacts and bots accept the ambient hash; others answer PEER_ID_INVALID (ChatNotFound).
        peers::input_peer(chat, 0).ok_or(MessengerError::ChatNotFound(chat))
    }

    async fn cached_ref(&self, chat: ChatId) -> Option<tl::enums::InputPeer> {
        let id = peers::peer_id(chat)?;
        match self.inner.session.peer_ref(id).await {
            Ok(Some(r)) => Some(r.into()),
            Ok(None) => None,
            Err(e) => {
                warn!(error = %e, chat, "peer cache lookup failed");
                None
            }
        }
    }

    fn note_mentions(&self, messages: &[Message]) {
        let mut map = self.inner.mentions.lock().unwrap_or_else(|e| e.into_inner());
        for m in messages {
            map.note_message(self.inner.cfg.tribute_chat, m);
        }
    }

    async fn convert_answer(&self, res: tl::enums::messages::Messages, chat: ChatId) -> Vec<Message> {
        let (messages, users, chats) = convert::unpack_messages(res);
        self.cache(&users, &chats).await;
        let out: Vec<Message> = messages
            .iter()
            .filter_map(|m| convert::convert_message(m, self.inner.self_id))
            .filter(|m| m.chat_id == chat)
            .collect();
        self.note_mentions(&out);
        out
    }
}

fn input_reply_to(reply_to_msg_id: MessageId) -> tl::enums::InputReplyTo {
    tl::types::InputReplyToMessage {
        reply_to_msg_id,
        top_msg_id: None,
        reply_to_peer_id: None,
        quote_text: None,
        quote_entities: None,
        quote_offset: None,
        monoforum_peer_id: None,
        todo_item_id: None,
        poll_option: None,
    }
    .into()
}

/// The history request for "messages after `after`, oldest first": start just
/// above `after` and look *upwards* (negative `add_offset`), bounded below by `min_id`.
pub fn history_request(
    peer: tl::enums::InputPeer,
    after: MessageId,
    limit: usize,
) -> tl::functions::messages::GetHistory {
    let limit = limit.clamp(1, HISTORY_MAX) as i32;
    tl::functions::messages::GetHistory {
        peer,
        offset_id: after.saturating_add(1),
        offset_date: 0,
        add_offset: -limit,
        limit,
        max_id: 0,
        min_id: after,
        hash: 0,
    }
}

#[async_trait::async_trait]
impl Messenger for GrammersMessenger {
    fn self_id(&self) -> UserId {
        self.inner.self_id
    }

    async fn next_event(&self) -> MessengerResult<Event> {
        let mut queue = self.inner.events.lock().await;
        // The core asks for the next event only after handling the previous one.
        if let Some(state) = queue.pending.take() {
            save_state(&self.inner.session, &state).await;
        }
        loop {
            match queue.rx.recv().await {
                Some(Item::Event(event, state)) => {
                    queue.pending = Some(state);
                    return Ok(event);
                }
                Some(Item::Skipped(state)) => save_state(&self.inner.session, &state).await,
                Some(Item::Error(e)) => return Err(e),
                Some(Item::Closed) | None => return Err(MessengerError::Closed),
            }
        }
    }

    async fn send_message(
        &self,
        chat: ChatId,
        text: &str,
        reply_to: Option<MessageId>,
        random_id: RandomId,
    ) -> MessengerResult<MessageId> {
        let peer = self.input_peer(chat).await?;
        let priority = if chat == self.inner.cfg.tribute_chat { Priority::Order } else { Priority::Other };
        self.inner.limiter.acquire(priority).await;
        // Ours, not grammers': a retry with the same id is refused by Telegram
        // (RANDOM_ID_DUPLICATE) instead of delivering the message twice.
        let RandomId(random_id) = random_id;
        let request = tl::functions::messages::SendMessage {
            no_webpage: true,
            silent: false,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer,
            reply_to: reply_to.map(input_reply_to),
            message: text.to_owned(),
            random_id,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
            rich_message: None,
        };
        let updates = self.call(&request, Op::Send { chat, reply_to }).await?;
        if let tl::enums::Updates::Updates(u) = &updates {
            self.cache(&u.users, &u.chats).await;
        }
        convert::sent_message_id(&updates, random_id)
            .ok_or_else(|| MessengerError::Other("Telegram did not say which message it created".into()))
    }

    async fn press_button(&self, chat: ChatId, message: MessageId, data: &[u8]) -> MessengerResult<CallbackAnswer> {
        if data.len() > CALLBACK_DATA_MAX {
            // No button can carry it; Telegram would answer DATA_INVALID.
            return Err(MessengerError::DataInvalid);
        }
        let peer = self.input_peer(chat).await?;
        self.inner.limiter.acquire(Priority::Order).await;
        let request = tl::functions::messages::GetBotCallbackAnswer {
            game: false,
            peer,
            msg_id: message,
            data: Some(data.to_vec()),
            password: None,
        };
        match self.call(&request, Op::Press { chat, message }).await {
            Ok(tl::enums::messages::BotCallbackAnswer::Answer(a)) => {
                Ok(CallbackAnswer { text: a.message.filter(|t| !t.is_empty()), alert: a.alert })
            }
            Err(MessengerError::Timeout) => {
                // The bot did not answer the callback in time. If the button is gone,
                // the press did reach it (the bot removed its keyboard): not an error.
                match self.get_messages(chat, &[message]).await {
                    Ok(now) if !now.iter().any(|m| m.all_buttons().any(|b| b.data == data)) => {
                        info!(chat, message, "no callback answer, but the button is gone: the press took effect");
                        Ok(CallbackAnswer::default())
                    }
                    _ => Err(MessengerError::Timeout),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn history_since(&self, chat: ChatId, after: MessageId, limit: usize) -> MessengerResult<Vec<Message>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let peer = self.input_peer(chat).await?;
        let res = self.call(&history_request(peer, after, limit), Op::Read { chat }).await?;
        let mut out: Vec<Message> = self.convert_answer(res, chat).await.into_iter().filter(|m| m.id > after).collect();
        out.sort_by_key(|m| m.id);
        out.dedup_by_key(|m| m.id);
        out.truncate(limit.min(HISTORY_MAX));
        Ok(out)
    }

    async fn recent_private_chats(&self, after: Option<DialogsOffset>, limit: usize) -> MessengerResult<DialogsPage> {
        let offset_peer = match after {
            Some(a) => self.input_peer(a.chat).await?,
            None => tl::enums::InputPeer::Empty,
        };
        let request = tl::functions::messages::GetDialogs {
            exclude_pinned: false,
            folder_id: None,
            offset_date: after.map_or(0, |a| a.date as i32),
            offset_id: after.map_or(0, |a| a.message),
            offset_peer,
            limit: limit.clamp(1, HISTORY_MAX) as i32,
            hash: 0,
        };
        // A slice says more dialogs follow; the full list is the last page.
        let (dialogs, messages, users, chats, more) = match self.call(&request, Op::Other).await? {
            tl::enums::messages::Dialogs::Dialogs(d) => (d.dialogs, d.messages, d.users, d.chats, false),
            tl::enums::messages::Dialogs::Slice(d) => (d.dialogs, d.messages, d.users, d.chats, true),
            tl::enums::messages::Dialogs::NotModified(_) => return Ok(DialogsPage::default()),
        };
        // The peers' access hashes: a re-read of their chat (and the next page) needs them.
        self.cache(&users, &chats).await;
        let top_date = |peer: &tl::enums::Peer, id: MessageId| {
            messages.iter().find_map(|m| match m {
                tl::enums::Message::Message(m) if m.id == id && &m.peer_id == peer => Some(i64::from(m.date)),
                tl::enums::Message::Service(m) if m.id == id && &m.peer_id == peer => Some(i64::from(m.date)),
                _ => None,
            })
        };
        let dialogs: Vec<tl::types::Dialog> = dialogs
            .into_iter()
            .filter_map(|d| match d {
                tl::enums::Dialog::Dialog(d) => Some(d),
                _ => None,
            })
            .collect();
        let next = dialogs.last().filter(|_| more).and_then(|d| {
            let date = top_date(&d.peer, d.top_message)?;
            Some(DialogsOffset { date, message: d.top_message, chat: convert::chat_id_of(&d.peer) })
        });
        let chats = dialogs
            .iter()
            .filter_map(|d| match &d.peer {
                tl::enums::Peer::User(u) if u.user_id != self.inner.self_id => Some((u.user_id, d.top_message)),
                _ => None,
            })
            .collect();
        Ok(DialogsPage { chats, next })
    }

    async fn get_messages(&self, chat: ChatId, ids: &[MessageId]) -> MessengerResult<Vec<Message>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let id: Vec<tl::enums::InputMessage> = ids.iter().map(|&id| tl::types::InputMessageId { id }.into()).collect();
        let res = if peers::peer_id(chat).map(|p| p.kind()) == Some(PeerKind::Channel) {
            let channel = match self.input_peer(chat).await? {
                tl::enums::InputPeer::Channel(c) => {
                    tl::types::InputChannel { channel_id: c.channel_id, access_hash: c.access_hash }.into()
                }
                _ => return Err(MessengerError::ChatNotFound(chat)),
            };
            self.call(&tl::functions::channels::GetMessages { channel, id }, Op::Read { chat }).await?
        } else {
            // Private chats and small groups share one message-id space per account.
            self.call(&tl::functions::messages::GetMessages { id }, Op::Read { chat }).await?
        };
        let found = self.convert_answer(res, chat).await;
        Ok(ids.iter().filter_map(|id| found.iter().find(|m| m.id == *id).cloned()).collect())
    }
}

struct PumpFilter {
    self_id: UserId,
    tribute_chat: ChatId,
    group_chats: Vec<ChatId>,
}

impl PumpFilter {
    fn wants(&self, ev: &Event) -> bool {
        let chat = match ev {
            Event::NewMessage(m) | Event::MessageEdited(m) => m.chat_id,
            Event::MessagesDeleted { chat, .. } => *chat,
        };
        chat == self.tribute_chat || chat > 0 || self.group_chats.contains(&chat)
    }
}

/// Owns grammers' update stream; hands events (with their update state) to `next_event`.
/// Connection failures are retried with backoff forever (at most one `Disconnected`
/// is reported per outage, so the core can re-read history once it is back).
async fn pump_updates(
    mut stream: UpdateStream,
    tx: mpsc::Sender<Item>,
    filter: PumpFilter,
    mentions: Arc<StdMutex<MentionMap>>,
    closed: Arc<AtomicBool>,
) {
    let mut failures = 0u32;
    let mut outage = false;
    loop {
        match stream.next_raw().await {
            Ok((update, state, peers)) => {
                if outage {
                    info!("Telegram updates are flowing again");
                }
                failures = 0;
                outage = false;
                let item = match convert_update(&update, filter.self_id) {
                    Some(mut ev) if filter.wants(&ev) => {
                        if let Event::NewMessage(m) | Event::MessageEdited(m) = &mut ev {
                            m.sender_is_bot = m
                                .sender_id
                                .and_then(grammers_session::types::PeerId::user)
                                .and_then(|id| peers.get(id))
                                .is_some_and(|p| matches!(p, grammers_client::peer::Peer::User(u) if u.is_bot()));
                        }
                        if let Event::NewMessage(m) | Event::MessageEdited(m) = &ev {
                            mentions.lock().unwrap_or_else(|e| e.into_inner()).note_message(filter.tribute_chat, m);
                        }
                        Item::Event(ev, state)
                    }
                    _ => Item::Skipped(state),
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
            Err(InvocationError::Dropped(reason)) => {
                debug!(reason, "the Telegram connection pool stopped");
                let _ = tx.send(Item::Closed).await;
                return;
            }
            Err(e) => {
                if closed.load(Ordering::SeqCst) {
                    let _ = tx.send(Item::Closed).await;
                    return;
                }
                let mapped = map_error(&e, Op::Other);
                let wait = backoff::delay(failures, Duration::from_millis(500), Duration::from_secs(60), Jitter::None);
                failures = failures.saturating_add(1);
                warn!(error = %e, retry_in = ?wait, "receiving Telegram updates failed");
                if !outage {
                    outage = true;
                    if tx.send(Item::Error(mapped)).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Saves the update state reached by one handled update.
async fn save_state(session: &Arc<ErasedSession>, state: &State) {
    let Some(update) = state_update(state) else { return };
    if let Err(e) = session.set_update_state(update).await {
        warn!(error = %e, "could not save the update state to the session");
    }
}

/// The session write for a state (`None` for updates outside any message box).
pub fn state_update(state: &State) -> Option<UpdateState> {
    Some(match state.message_box? {
        MessageBox::Common { pts } => UpdateState::Primary { pts, date: state.date, seq: state.seq },
        MessageBox::Secondary { qts } => UpdateState::Secondary { qts },
        MessageBox::Channel { channel_id, pts } => UpdateState::Channel { id: channel_id, pts },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telegram::{InlineButton, Message};

    #[test]
    fn history_request_reads_upwards_from_after() {
        let peer: tl::enums::InputPeer = tl::types::InputPeerUser { user_id: 1, access_hash: 2 }.into();
        let r = history_request(peer.clone(), 41, 100);
        assert_eq!((r.offset_id, r.add_offset, r.limit, r.min_id, r.max_id), (42, -100, 100, 41, 0));
        let r = history_request(peer, 0, 500);
        assert_eq!((r.offset_id, r.add_offset, r.limit, r.min_id), (1, -100, 100, 0));
    }

    #[test]
    fn update_state_per_message_box() {
        let s = |mb| State { date: 5, seq: 6, message_box: mb };
        assert!(matches!(
            state_update(&s(Some(MessageBox::Common { pts: 7 }))),
            Some(UpdateState::Primary { pts: 7, date: 5, seq: 6 })
        ));
        assert!(matches!(
            state_update(&s(Some(MessageBox::Secondary { qts: 3 }))),
            Some(UpdateState::Secondary { qts: 3 })
        ));
        assert!(matches!(
            state_update(&s(Some(MessageBox::Channel { channel_id: 9, pts: 4 }))),
            Some(UpdateState::Channel { id: 9, pts: 4 })
        ));
        assert!(state_update(&s(None)).is_none());
    }

    #[test]
    fn pump_delivers_private_tribute_and_moderator_chats_only() {
        let f = PumpFilter { self_id: 1, tribute_chat: 93372553, group_chats: vec![-300] };
        let m = |chat| {
            Event::NewMessage(Message {
                chat_id: chat,
                id: 1,
                sender_id: None,
                outgoing: false,
                sender_is_bot: false,
                date: 0,
                text: String::new(),
                entities: vec![],
                reply_to: None,
                buttons: vec![vec![InlineButton { text: "Send".into(), data: vec![1] }]],
            })
        };
        assert!(f.wants(&m(93372553)));
        assert!(f.wants(&m(5550001)));
        assert!(f.wants(&m(-300)));
        assert!(!f.wants(&m(-301)));
        assert!(!f.wants(&m(-1_000_000_000_008)));
    }
}
