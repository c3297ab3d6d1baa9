//! An in-process Telegram server that speaks MTProto 2.0 to the real
//! grammers client over TCP on loopback and serves the simulated world of
//! [`crate::sim`] as our account sees it. Test support: it lets
//! the grammers-based adapter run end to end without Telegram.
//!
//! - Transport: grammers' default, the "full" TCP transport (length,
//!   sequence number, CRC32), framed with `grammers_mtproto::transport::Full`.
//! - Encryption: MTProto 2.0 AES-IGE with an auth key shared in advance
//!   ([`MtprotoServer::session_data`] seeds a grammers session with it, the
//!   DC address and a logged-in self user, so there is no DH exchange and
//!   no login). Unknown keys get the transport error -404.
//! - Login ([`login`]): a server started with
//!   [`MtprotoServer::start_awaiting_login`] shares only the key
//!   ([`MtprotoServer::key_only_session_data`]) and serves the first login
//!   (auth.sendCode, auth.signIn, account.getPassword, auth.checkPassword
//!   with SRP) before anything else.
//! - Service messages: new_session_created, future salts, msgs_ack,
//!   ping / ping_delay_disconnect, msg_container, gzip_packed requests,
//!   rpc_result / rpc_error, destroy_session.
//! - API (layer [`grammers_tl_types::LAYER`]): invokeWithLayer, initConnection,
//!   help.getConfig (127.0.0.1:port), users.getUsers (incl.
//!   inputUserFromMessage), updates.getState / getDifference /
//!   getChannelDifference, messages.sendMessage (reply_to),
//!   messages.getHistory, messages.getMessages, channels.getMessages,
//!   messages.getBotCallbackAnswer, messages.getDialogs,
//!   contacts.resolveUsername, messages.readHistory, channels.getParticipants
//!   (the members set with [`MtprotoServer::set_members`], else our account
//!   and whoever wrote in the group). Anything else: `400 INPUT_METHOD_INVALID_<id>`.
//! - Requests drive one [`SimClient`] (from `world.connect()` at start, so do
//!   not call `world.connect()` while the server runs); its events become
//!   pushed `updates` with pts, logged for `getDifference`.
//! - `MessengerError`s become Telegram errors (FLOOD_WAIT_X 420,
//!   USER_PRIVACY_RESTRICTED, PEER_FLOOD, USER_IS_BLOCKED,
//!   INPUT_USER_DEACTIVATED, DATA_INVALID, MESSAGE_ID_INVALID,
//!   PEER_ID_INVALID, MESSAGE_TOO_LONG, MESSAGE_EMPTY, ENTITIES_TOO_LONG,
//!   RANDOM_ID_DUPLICATE). The client's `random_id` reaches the sim, so the
//!   sim's duplicate rule holds over MTProto too. While the sim's link is down (`world.disconnect()`),
//!   connections are dropped and requests go unanswered.
//!
//! How the world maps to Telegram objects is described in [`convert`].

mod conn;
mod convert;
mod crypto;
mod inflate;
pub mod login;
mod rpc;
mod updates;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grammers_session::storages::MemorySession;
use grammers_session::types::{DcOption, PeerAuth, PeerId, PeerInfo, PeerRef};
use grammers_session::{Session, SessionData};
use grammers_tl_types::{self as tl, Serializable};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};

use self::conn::Out;
use self::convert::{channel_id, View};
use self::crypto::ServerKey;
use self::login::LoginState;
pub use self::login::{LoginAccount, SentCode};
use self::rpc::Reply;
use self::updates::UpdateLog;
use crate::sim::{SimClient, SimWorld};
use tribute_assistant::telegram::{ChatId, Event, Message, Messenger, MessengerError, UserId};

/// The DC our account lives in (grammers' default home DC).
const DC_ID: i32 = 2;

/// One API call the server answered, for test assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// TL name, e.g. `messages.sendMessage`.
    pub method: String,
    /// `None` on success, else the error name (`FLOOD_WAIT_3`, …) or
    /// `"<dropped>"` when the connection was closed instead.
    pub error: Option<String>,
}

pub(crate) struct ConnEntry {
    out: mpsc::UnboundedSender<Out>,
    abort: AbortHandle,
}

pub(crate) struct Shared {
    view: View,
    client: SimClient,
    key: ServerKey,
    auth_key: [u8; 256],
    addr: SocketAddr,
    dc_id: i32,
    salt: i64,
    log: Arc<tokio::sync::Mutex<UpdateLog>>,
    conns: Mutex<HashMap<u64, ConnEntry>>,
    next_conn: AtomicU64,
    accepted: AtomicU64,
    calls: Mutex<Vec<CallRecord>>,
    login: LoginState,
    /// Group members set by the world's owner (`channels.getParticipants`).
    members: Mutex<HashMap<ChatId, Vec<UserId>>>,
}

impl Shared {
    fn note_call(&self, method: &str, reply: &Reply) {
        let error = match reply {
            Reply::Ok(_) => None,
            Reply::Err(_, name) => Some(name.clone()),
            Reply::Drop => Some("<dropped>".to_owned()),
        };
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(CallRecord { method: method.to_owned(), error });
    }

    fn push(&self, updates: Vec<u8>) {
        // A key nobody logged in with receives no updates.
        if !self.login.is_authorised() {
            return;
        }
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for c in conns.values() {
            let _ = c.out.send(Out::Push(updates.clone()));
        }
    }

    fn drop_connections(&self) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for (_, c) in conns.drain() {
            c.abort.abort();
        }
    }

    /// Logs a sim event and pushes it to every connection.
    async fn record(&self, message: Message, edit: bool) {
        let mut log = self.log.lock().await;
        let update = log.record(&self.view, message.clone(), edit);
        let (users, chats) = self.view.peers_of([&message]);
        let updates = tl::enums::Updates::Updates(tl::types::Updates {
            updates: vec![update],
            users,
            chats,
            date: chrono::Utc::now().timestamp() as i32,
            seq: 0,
        });
        // Pushed under the lock, so connections see updates in pts order.
        self.push(updates.to_bytes());
    }
}

/// The running server. Dropping it without [`shutdown`](Self::shutdown)
/// also stops it.
pub struct MtprotoServer {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl MtprotoServer {
    /// Listens on 127.0.0.1 (a free port) and serves `world` to our account.
    pub async fn start(world: SimWorld) -> io::Result<Self> {
        Self::start_on(world, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Listens on `addr` (port 0: a free one) and serves `world`.
    pub async fn start_on(world: SimWorld, addr: SocketAddr) -> io::Result<Self> {
        Self::start_with(world, addr, LoginState::authorised()).await
    }

    /// Listens on `addr` with nobody logged in: the account's first login
    /// (phone, code, 2FA password) comes before anything else. Sessions get
    /// the key only ([`key_only_session_data`](Self::key_only_session_data));
    /// each code sent is on [`login_codes`](Self::login_codes).
    pub async fn start_awaiting_login(world: SimWorld, addr: SocketAddr, account: LoginAccount) -> io::Result<Self> {
        Self::start_with(world, addr, LoginState::awaiting(account)).await
    }

    async fn start_with(world: SimWorld, addr: SocketAddr, login: LoginState) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mut auth_key = [0u8; 256];
        auth_key.iter_mut().for_each(|b| *b = fastrand::u8(..));
        let cfg = world.config().clone();
        let client = world.connect();
        let shared = Arc::new(Shared {
            view: View {
                world: world.clone(),
                self_id: cfg.self_id,
                bot_id: cfg.tribute_bot_id,
                hash_key: fastrand::u64(..),
            },
            client,
            key: ServerKey::new(auth_key),
            auth_key,
            addr,
            dc_id: DC_ID,
            salt: fastrand::i64(1..),
            log: Arc::new(tokio::sync::Mutex::new(UpdateLog::new())),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            accepted: AtomicU64::new(0),
            calls: Mutex::new(Vec::new()),
            login,
            members: Mutex::new(HashMap::new()),
        });
        let tasks = vec![
            tokio::spawn(accept_loop(shared.clone(), listener)),
            tokio::spawn(pump(shared.clone())),
            tokio::spawn(watch_link(shared.clone())),
        ];
        tracing::debug!(%addr, "MTProto test server listening");
        Ok(MtprotoServer { shared, tasks })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The authorization key clients must use (see [`session_data`](Self::session_data)).
    pub fn auth_key(&self) -> [u8; 256] {
        self.shared.auth_key
    }

    pub fn dc_id(&self) -> i32 {
        self.shared.dc_id
    }

    /// Our account's user id.
    pub fn self_id(&self) -> UserId {
        self.shared.view.self_id
    }

    pub fn world(&self) -> &SimWorld {
        &self.shared.view.world
    }

    /// The access hash our account has for a user.
    pub fn user_access_hash(&self, user: UserId) -> i64 {
        self.shared.view.user_hash(user)
    }

    /// A grammers peer reference for a sim chat (private chat or group),
    /// with the access hash our account would have cached.
    pub fn peer_ref(&self, chat: ChatId) -> PeerRef {
        match channel_id(chat) {
            Some(channel) => PeerRef {
                id: PeerId::channel(channel).expect("sim group ids are supergroup-shaped"),
                auth: PeerAuth::from_hash(self.shared.view.channel_hash(channel)),
            },
            None => PeerRef {
                id: PeerId::user(chat).expect("sim user ids are positive"),
                auth: PeerAuth::from_hash(self.shared.view.user_hash(chat)),
            },
        }
    }

    /// Session contents for a grammers client: home DC = ours at
    /// 127.0.0.1:port with the shared auth key (no other DCs, so nothing
    /// ever leaves loopback), and our account as the logged-in user. The
    /// update state is empty (the client asks `updates.getState`).
    pub fn session_data(&self) -> SessionData {
        let addr = match self.shared.addr {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
        };
        let dc = DcOption {
            id: self.shared.dc_id,
            ipv4: addr,
            ipv6: SocketAddrV6::new(addr.ip().to_ipv6_mapped(), addr.port(), 0, 0),
            auth_key: Some(self.shared.auth_key),
        };
        let self_id = self.self_id();
        let me = PeerInfo::User {
            id: self_id,
            auth: Some(PeerAuth::from_hash(self.shared.view.user_hash(self_id))),
            bot: Some(false),
            is_self: Some(true),
        };
        SessionData {
            home_dc: self.shared.dc_id,
            dc_options: HashMap::from([(dc.id, dc)]),
            // MemorySession looks the self user up by PeerId::self_user();
            // other storages derive it from `is_self`. Both keys serve either.
            peer_infos: HashMap::from([(PeerId::self_user(), me.clone()), (me.id(), me)]),
            ..SessionData::default()
        }
    }

    /// Session contents before the first login: the server's address and
    /// the shared transport key (what a key exchange with Telegram would
    /// leave), and no user.
    pub fn key_only_session_data(&self) -> SessionData {
        let mut data = self.session_data();
        data.peer_infos.clear();
        data
    }

    /// Whether someone has logged in (always, unless started with
    /// [`start_awaiting_login`](Self::start_awaiting_login)).
    pub fn is_authorised(&self) -> bool {
        self.shared.login.is_authorised()
    }

    /// The login codes the server sends, as Telegram shows them in the
    /// account's other apps (the newest; `None` before the first).
    pub fn login_codes(&self) -> tokio::sync::watch::Receiver<Option<SentCode>> {
        self.shared.login.codes()
    }

    /// Who is in a group, as `channels.getParticipants` lists them.
    pub fn set_members(&self, chat: ChatId, members: Vec<UserId>) {
        self.shared.members.lock().unwrap_or_else(|e| e.into_inner()).insert(chat, members);
    }

    /// An in-memory grammers session seeded by [`session_data`](Self::session_data).
    pub fn memory_session(&self) -> MemorySession {
        MemorySession::from(self.session_data())
    }

    /// Seeds any grammers session storage (e.g. a `SqliteSession` file).
    pub async fn seed_session<S: Session>(&self, session: &S) -> Result<(), S::Error> {
        self.session_data().import_to(session).await
    }

    /// The address clients would use if they only had the server's
    /// IPv4 socket (handy for configs).
    pub fn addr_v4(&self) -> SocketAddrV4 {
        match self.shared.addr {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
        }
    }

    /// Closes every client connection now (a dropped TCP link). Clients
    /// may reconnect at once.
    pub fn drop_connections(&self) {
        self.shared.drop_connections();
    }

    /// Open client connections.
    pub fn connection_count(&self) -> usize {
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Connections accepted since start.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// API calls answered so far, in order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The account's current common pts.
    pub async fn pts(&self) -> i32 {
        self.shared.log.lock().await.pts()
    }

    /// Stops listening, closes all connections and stops driving the sim.
    pub async fn shutdown(mut self) {
        self.stop();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
        self.shared.drop_connections();
    }
}

impl Drop for MtprotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for MtprotoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtprotoServer").field("addr", &self.shared.addr).field("dc_id", &self.shared.dc_id).finish()
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if !shared.view.world.is_connected() {
            drop(stream); // the link is down: nobody answers
            continue;
        }
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        // Register before the task runs, so no update pushed meanwhile is lost.
        let mut conns = shared.conns.lock().unwrap_or_else(|e| e.into_inner());
        let task_shared = shared.clone();
        let task_out = out_tx.clone();
        let handle = tokio::spawn(async move {
            conn::serve(task_shared.clone(), stream, task_out, out_rx).await;
            task_shared.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
        conns.insert(id, ConnEntry { out: out_tx, abort: handle.abort_handle() });
    }
}

/// Turns the sim client's events into logged, pushed updates.
async fn pump(shared: Arc<Shared>) {
    loop {
        match shared.client.next_event().await {
            Ok(Event::NewMessage(m)) => shared.record(m, false).await,
            Ok(Event::MessageEdited(m)) => shared.record(m, true).await,
            // Deletions are not served as updates (no updateDeleteMessages yet);
            // history and getMessages simply no longer return the messages.
            Ok(Event::MessagesDeleted { .. }) => {}
            Err(MessengerError::Closed) => {
                tracing::warn!("MTProto test server: the sim client was replaced or closed; no more updates");
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Drops all connections when the sim's link goes down.
async fn watch_link(shared: Arc<Shared>) {
    let mut was_up = true;
    loop {
        let up = shared.view.world.is_connected();
        if was_up && !up {
            shared.drop_connections();
        }
        was_up = up;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
