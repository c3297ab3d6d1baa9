//! A complete installation on loopback: the Telegram simulator, the
//! reference backend, a SQLite store in a directory and the daemon. Used
//! by `demo`, the benchmark and the integration tests, so all three drive
//! exactly the same wiring as production minus the real Telegram.
//!
//! The daemon talks to the simulator either directly ([`Transport::Sim`],
//! a `SimClient` from `world.connect()`) or through the real grammers
//! adapter over MTProto to the in-process test server serving the same
//! world ([`Transport::Mtproto`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::ReferenceBackend;
use crate::mtproto::MtprotoServer;
use crate::sim::{SimConfig, SimWorld};
use tribute_assistant::app::assemble::{assemble, Assembled, Blueprint, Observations};
use tribute_assistant::backend::BackendConfig;
use tribute_assistant::contact::ContactConfig;
use tribute_assistant::daemon::Exit;
use tribute_assistant::domain::OrderState;
use tribute_assistant::moderator::ModeratorConfig;
use tribute_assistant::orders::{CheckpointHook, IngestConfig, WorkflowConfig, DEFAULT_REPLY_TEMPLATE};
use tribute_assistant::store::Store;
use tribute_assistant::telegram::grammers::session::open_session;
use tribute_assistant::telegram::grammers::{FileSession, GrammersConfig, GrammersMessenger, RateLimit};
use tribute_assistant::telegram::{ChatId, Messenger, UserId};
use tribute_assistant::tribute::ParserConfig;

/// How the daemon reaches the simulated Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// A simulator client in-process (`world.connect()`).
    #[default]
    Sim,
    /// The real grammers adapter ([`GrammersMessenger`]) over MTProto to
    /// the in-process test server ([`MtprotoServer`]) serving the world.
    Mtproto,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sim => "sim",
            Transport::Mtproto => "mtproto",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The sandbox's own grammers session file in the data dir (never the
/// production `telegram.session`).
pub const SANDBOX_SESSION_FILE: &str = "sandbox-telegram.session";

/// The sandbox's moderator (a user id in the simulator).
pub const SANDBOX_MODERATOR: UserId = 7001;

#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub transport: Transport,
    pub send_button_text: String,
    pub button_timeout: Duration,
    pub backend_attempts: u32,
    pub backend_backoff: Duration,
    pub park_delay: Duration,
    /// ops: serve /healthz and /metrics on 127.0.0.1:0.
    pub ops_listener: bool,
    /// ops: also serve the Tribute webhook (on its own listener, `listen` in the settings) and run its reconciler.
    pub webhook: Option<tribute_assistant::webhook::WebhookSettings>,
    /// Customer contact settings; `None` sends every account problem straight to the moderator.
    pub contact: Option<ContactConfig>,
    /// Customers' questions answered by the agent (retrieval-only, over the
    /// starter FAQ ingested into the data dir) instead of going to the moderator.
    pub agent: bool,
    /// How often the daemon re-reads the Tribute chat (production: 60 s;
    /// here 1 s, so tests find a lost update fast).
    pub resync_interval: Duration,
    /// The automation report: `/report`'s window and the weekly summary.
    pub report: tribute_assistant::report::ReportSettings,
    /// Runs before each inbox message is handled (a test makes one panic).
    pub item_hook: Option<tribute_assistant::daemon::ItemHook>,
    /// Prune and scrub the store while the daemon runs (`[retention]`); off by default.
    pub retention: Option<tribute_assistant::retention::RetentionSettings>,
    /// How long an order may wait for a failing backend or Telegram before
    /// the outage card reports it (production default: 15 min).
    pub outage_after: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            transport: Transport::Sim,
            send_button_text: "Send".into(),
            button_timeout: Duration::from_secs(5),
            backend_attempts: 4,
            backend_backoff: Duration::from_millis(50),
            park_delay: Duration::from_millis(300),
            ops_listener: false,
            webhook: None,
            contact: Some(ContactConfig::default()),
            agent: false,
            resync_interval: Duration::from_secs(1),
            report: tribute_assistant::report::ReportSettings::default(),
            item_hook: None,
            retention: None,
            outage_after: Duration::from_secs(
                tribute_assistant::telegram::TelegramSection::default().outage_alert_secs,
            ),
        }
    }
}

pub struct Sandbox {
    pub world: SimWorld,
    pub backend: ReferenceBackend,
    pub moderator_chat: ChatId,
    /// A user listed as a moderator in the daemon's config, member of the moderator chat.
    pub moderator: UserId,
    pub db_path: PathBuf,
    secret: SecretString,
    opts: SandboxOptions,
    store: Store,
    /// With [`Transport::Mtproto`]: the server (the only caller of
    /// `world.connect()`) and the seeded session file.
    mtproto: Option<Mtproto>,
    running: Option<Running>,
    /// The agent's knowledge base, opened once and shared by every daemon
    /// started here: a restarted daemon's tasks may still hold the previous
    /// handle for a moment, and the embedded index opens in one place at a time.
    knowledge: Option<tribute_assistant::knowledge::KnowledgeBase>,
    /// ops: measurements that outlive daemon restarts, as in one process.
    observations: Observations,
}

struct Mtproto {
    server: MtprotoServer,
    session_path: PathBuf,
}

struct Running {
    shutdown: watch::Sender<bool>,
    handle: JoinHandle<anyhow::Result<Exit>>,
    /// With [`Transport::Mtproto`]: closed once the daemon has stopped.
    grammers: Option<(GrammersMessenger, Arc<FileSession>)>,
    /// ops: the listener and the webhook reconciler.
    ops: tribute_assistant::ops::OpsRuntime,
}

impl Running {
    async fn close_messenger(grammers: Option<(GrammersMessenger, Arc<FileSession>)>) {
        if let Some((messenger, session)) = grammers {
            messenger.close().await;
            session.close().await;
        }
    }
}

impl Sandbox {
    pub async fn new(data_dir: &Path, opts: SandboxOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("Failed to create {}", data_dir.display()))?;
        let secret = SecretString::from(format!("demo-secret-{:016x}", fastrand::u64(..)));
        let backend = ReferenceBackend::start(secret.clone()).await.context("Failed to start the reference backend")?;
        let world =
            SimWorld::new(SimConfig { send_button_text: opts.send_button_text.clone(), ..SimConfig::default() });
        let moderator_chat = world.create_group("Moderators");
        world.add_user(SANDBOX_MODERATOR, "Masha (moderator)", Some("masha_mod"));
        let db_path = data_dir.join(tribute_assistant::DATABASE_FILE);
        let store = Store::open(&db_path).await.with_context(|| format!("Failed to open {}", db_path.display()))?;
        let mtproto = match opts.transport {
            Transport::Sim => None,
            Transport::Mtproto => Some(Self::start_mtproto(data_dir, &world, moderator_chat).await?),
        };
        Ok(Self {
            world,
            backend,
            moderator_chat,
            moderator: SANDBOX_MODERATOR,
            db_path,
            secret,
            opts,
            store,
            mtproto,
            running: None,
            knowledge: None,
            observations: Observations::default(),
        })
    }

    /// Starts the MTProto test server on `world` and seeds the sandbox's
    /// session file.
    async fn start_mtproto(data_dir: &Path, world: &SimWorld, moderator_chat: ChatId) -> anyhow::Result<Mtproto> {
        let server = MtprotoServer::start(world.clone()).await.context("Failed to start the MTProto test server")?;
        let session_path = data_dir.join(SANDBOX_SESSION_FILE);
        seed_session_file(&server, world, moderator_chat, &session_path).await?;
        Ok(Mtproto { server, session_path })
    }

    pub fn transport(&self) -> Transport {
        self.opts.transport
    }

    /// The MTProto test server's address ([`Transport::Mtproto`] only).
    pub fn mtproto_addr(&self) -> Option<std::net::SocketAddr> {
        self.mtproto.as_ref().map(|m| m.server.addr())
    }

    /// The MTProto test server ([`Transport::Mtproto`] only), e.g. for its call log.
    pub fn mtproto_server(&self) -> Option<&MtprotoServer> {
        self.mtproto.as_ref().map(|m| &m.server)
    }

    /// The secret the daemon signs backend requests with (tests rotate the
    /// reference backend's secret away from it and back).
    pub fn backend_secret(&self) -> &SecretString {
        &self.secret
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// ops: `http://127.0.0.1:<port>` of the running daemon's ops
    /// listener (with [`SandboxOptions::ops_listener`]).
    pub fn ops_url(&self) -> Option<String> {
        self.running.as_ref().and_then(|r| r.ops.url())
    }

    /// `http://127.0.0.1:<port>` of the running daemon's webhook listener
    /// (with [`SandboxOptions::webhook`]).
    pub fn webhook_url(&self) -> Option<String> {
        self.running.as_ref().and_then(|r| r.ops.webhook_url())
    }

    /// ops: the running daemon's ops state (e.g. to wire metric sources).
    pub fn ops_state(&self) -> Option<Arc<tribute_assistant::ops::OpsState>> {
        self.running.as_ref().map(|r| r.ops.state.clone())
    }

    pub fn tribute_chat(&self) -> ChatId {
        self.world.tribute_chat()
    }

    /// Starts a daemon on a fresh simulator connection (as after a process
    /// restart); with [`Transport::Mtproto`], a fresh grammers connection
    /// to the (still running) MTProto server.
    pub async fn start_daemon(&mut self, checkpoint: Option<CheckpointHook>) -> anyhow::Result<()> {
        if self.running.is_some() {
            bail!("the daemon is already running");
        }
        let (client, grammers): (Arc<dyn Messenger>, _) = match &self.mtproto {
            None => (Arc::new(self.world.connect()), None),
            Some(m) => {
                let session = open_session(&m.session_path).await?;
                let cfg = GrammersConfig {
                    group_chats: vec![self.moderator_chat],
                    rate_limit: RateLimit { per_minute: 600.0, burst: 50 },
                    flood_auto_sleep: Duration::from_secs(5),
                    request_timeout: Duration::from_secs(5),
                    ..GrammersConfig::new(12345, self.world.tribute_chat())
                };
                let messenger = match tokio::time::timeout(
                    Duration::from_secs(15),
                    GrammersMessenger::connect(session.clone(), cfg),
                )
                .await
                {
                    Ok(Ok(m)) => m,
                    Ok(Err(e)) => {
                        session.close().await;
                        return Err(e.context("Failed to connect to the MTProto test server"));
                    }
                    Err(_) => {
                        session.close().await;
                        bail!("the MTProto test server did not answer in time");
                    }
                };
                (Arc::new(messenger.clone()), Some((messenger, session)))
            }
        };
        let backend = BackendConfig {
            url: self.backend.url(),
            secret: self.secret.clone(),
            timeout: Duration::from_secs(5),
            max_attempts: self.opts.backend_attempts,
            initial_backoff: self.opts.backend_backoff,
            max_backoff: self.opts.backend_backoff * 8,
        };
        let workflow = WorkflowConfig {
            tribute_chat: self.world.tribute_chat(),
            moderator_chat: Some(self.moderator_chat),
            send_button_texts: vec![self.opts.send_button_text.clone()],
            // The production default: the simulated bot words its delivery as the real one.
            delivered_texts: tribute_assistant::telegram::TelegramSection::default().delivered_texts,
            button_timeout: self.opts.button_timeout,
            max_flood_sleep: Duration::from_secs(5),
            park_delay: self.opts.park_delay,
            reply_template: DEFAULT_REPLY_TEMPLATE.to_owned(),
            first_start_lookback: Duration::from_secs(3600),
            resync_interval: self.opts.resync_interval,
            resync_window: Duration::from_secs(900),
            max_step_backoff: Duration::from_secs(60),
            outage_after: self.opts.outage_after,
        };
        let ops = tribute_assistant::ops::OpsSettings {
            listen: self.opts.ops_listener.then(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            max_update_age: None,
            webhook: self.opts.webhook.clone(),
        };
        let agent = match self.opts.agent && self.opts.contact.is_some() {
            true => Some(self.agent().await?),
            false => None,
        };
        let Assembled { daemon, ops, shutdown } = assemble(Blueprint {
            store: self.store.clone(),
            messenger: client,
            backend,
            workflow,
            ingest: IngestConfig { parser: ParserConfig::default(), tribute_bot: self.world.tribute_chat() },
            ops,
            observations: self.observations.clone(),
            contact: self.opts.contact.clone(),
            moderator: ModeratorConfig { moderators: vec![self.moderator] },
            agent,
            report: self.opts.report.clone(),
            retention: self.opts.retention.clone(),
            checkpoint,
            item_hook: self.opts.item_hook.clone(),
        })
        .await?;
        let handle = tokio::spawn(daemon.run());
        self.running = Some(Running { shutdown, handle, grammers, ops });
        Ok(())
    }

    /// The agent in its offline default (retrieval-only, no LLM) over the
    /// starter FAQ, ingested into the sandbox's data dir once.
    async fn agent(
        &mut self,
    ) -> anyhow::Result<(tribute_assistant::agent::AgentSettings, tribute_assistant::knowledge::KnowledgeBase)> {
        use tribute_assistant::agent::AgentSettings;
        use tribute_assistant::knowledge::{ingest::IngestInput, KnowledgeBase, KnowledgeSection};
        let kb = match &self.knowledge {
            Some(kb) => kb.clone(),
            None => {
                let data_dir = self.db_path.parent().context("the database has no parent dir")?;
                let kc = KnowledgeSection::default().resolve(&|_| None).context("knowledge defaults")?;
                let kb =
                    KnowledgeBase::open(data_dir, &kc).await.context("Failed to open the sandbox's knowledge base")?;
                let input = IngestInput {
                    documents: Some(tribute_assistant::knowledge::starter::sources()),
                    conversations: None,
                };
                kb.ingest(input, false, None).await.context("Failed to ingest the starter FAQ")?;
                self.knowledge.insert(kb).clone()
            }
        };
        let settings = AgentSettings::resolve(&Default::default(), &|_| None).context("agent defaults")?;
        Ok((settings, kb))
    }

    /// Asks the daemon to stop gracefully and waits for it.
    pub async fn stop_daemon(&mut self) -> anyhow::Result<Exit> {
        let Some(running) = self.running.take() else { bail!("the daemon is not running") };
        let _ = running.shutdown.send(true);
        let res = running.handle.await;
        running.ops.shutdown().await;
        Running::close_messenger(running.grammers).await;
        res.context("the daemon panicked")?
    }

    /// Waits for the daemon to exit by itself (e.g. stopped at a checkpoint).
    pub async fn join_daemon(&mut self, timeout: Duration) -> anyhow::Result<anyhow::Result<Exit>> {
        let Some(mut running) = self.running.take() else { bail!("the daemon is not running") };
        let res =
            tokio::time::timeout(timeout, &mut running.handle).await.context("the daemon did not stop in time")?;
        let _ = running.shutdown.send(true);
        running.ops.shutdown().await;
        Running::close_messenger(running.grammers).await;
        res.context("the daemon panicked")
    }

    /// simulate: true once the running daemon's task ended by itself (a
    /// checkpoint stop, an error); false while it runs or when none runs.
    pub fn daemon_finished(&self) -> bool {
        self.running.as_ref().is_some_and(|r| r.handle.is_finished())
    }

    /// simulate: raises the shutdown flag without waiting (the caller moves
    /// a paused clock on until [`daemon_finished`](Self::daemon_finished)).
    pub fn request_stop(&self) {
        if let Some(r) = &self.running {
            let _ = r.shutdown.send(true);
        }
    }

    /// simulate: kills the daemon like a crash. Its task is aborted wherever
    /// it awaits; the tasks it spawned see the shutdown flag and stop after
    /// the step in flight (a real crash would stop them too).
    pub async fn abort_daemon(&mut self) -> anyhow::Result<()> {
        let Some(running) = self.running.take() else { bail!("the daemon is not running") };
        running.handle.abort();
        let _ = running.shutdown.send(true);
        let _ = running.handle.await;
        running.ops.shutdown().await;
        Running::close_messenger(running.grammers).await;
        Ok(())
    }

    /// Waits until `orders` orders exist, all of them settled, and every
    /// moderator card is posted. Returns the counts per state.
    pub async fn wait_settled(&self, orders: usize, timeout: Duration) -> anyhow::Result<Vec<(OrderState, i64)>> {
        let start = Instant::now();
        loop {
            let counts = self.store.count_by_state().await?;
            let total: i64 = counts.iter().map(|(_, n)| n).sum();
            let settled = counts.iter().all(|(s, _)| s.is_settled());
            if total as usize >= orders && settled && self.store.pending_cards().await?.is_empty() {
                return Ok(counts);
            }
            if start.elapsed() > timeout {
                bail!("orders did not settle within {timeout:?}: {counts:?}");
            }
            if let Some(r) = &self.running {
                if r.handle.is_finished() {
                    bail!("the daemon exited while orders were still open: {counts:?}");
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if self.running.is_some() {
            self.stop_daemon().await?;
        }
        self.store.close().await;
        self.backend.shutdown().await;
        if let Some(m) = self.mtproto.take() {
            m.server.shutdown().await;
        }
        Ok(())
    }
}

/// Writes a session file (0600) with what `login` would leave behind for
/// an account on the MTProto test server: the key, the DC, our account,
/// and the chats we talk in (the Tribute bot, the moderator group). A
/// session left by an earlier run (another server's key) is replaced.
pub async fn seed_session_file(
    server: &MtprotoServer,
    world: &SimWorld,
    moderator_chat: ChatId,
    session_path: &Path,
) -> anyhow::Result<()> {
    use grammers_session::types::{ChannelKind, PeerInfo};
    use grammers_session::Session;

    remove_session_files(session_path)?;
    let session = open_session(session_path).await?;
    let seeded = async {
        server.seed_session(&*session).await.context("Failed to seed the session")?;
        let bot = server.peer_ref(world.tribute_chat());
        session
            .cache_peer(PeerInfo::User {
                id: world.tribute_chat(),
                auth: Some(bot.auth),
                bot: Some(true),
                is_self: Some(false),
            })
            .await
            .context("Failed to cache the Tribute bot")?;
        let group = server.peer_ref(moderator_chat);
        if let Some(channel) = group.id.bare_id().filter(|_| moderator_chat < -1_000_000_000_000) {
            session
                .cache_peer(PeerInfo::Channel {
                    id: channel,
                    auth: Some(group.auth),
                    kind: Some(ChannelKind::Megagroup),
                })
                .await
                .context("Failed to cache the moderator group")?;
        }
        anyhow::Ok(())
    }
    .await;
    session.close().await;
    seeded
}

/// Writes a session that holds the server's address and the shared
/// transport key and nobody logged in: what a key exchange with Telegram
/// leaves before the first login (the server must run
/// [`MtprotoServer::start_awaiting_login`]). `login` takes it from there.
pub async fn seed_key_only_session_file(server: &MtprotoServer, session_path: &Path) -> anyhow::Result<()> {
    remove_session_files(session_path)?;
    let session = open_session(session_path).await?;
    let seeded = server.key_only_session_data().import_to(&*session).await.context("Failed to seed the session");
    session.close().await;
    seeded
}

/// Removes a session file and its SQLite journal files.
fn remove_session_files(session_path: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = session_path.to_path_buf().into_os_string();
        p.push(suffix);
        let p = PathBuf::from(p);
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("Failed to remove {}", p.display()))?;
        }
    }
    Ok(())
}
