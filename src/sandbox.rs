//! A complete installation on loopback: the Telegram simulator, the
//! reference backend, a SQLite store in a directory and the daemon. Used
//! by `demo`, the benchmark and the integration tests, so all three drive
//! exactly the same wiring as production minus the real Telegram.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::reference::ReferenceBackend;
use crate::backend::{BackendClient, BackendConfig};
use crate::daemon::{Daemon, Exit};
use crate::domain::OrderState;
use crate::orders::{CheckpointHook, IngestConfig, WorkflowConfig, DEFAULT_REPLY_TEMPLATE};
use crate::store::Store;
use crate::telegram::sim::{SimConfig, SimWorld};
use crate::telegram::ChatId;
use crate::tribute::ParserConfig;

#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub send_button_text: String,
    pub button_timeout: Duration,
    pub backend_attempts: u32,
    pub backend_backoff: Duration,
    pub park_delay: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            send_button_text: "Send".into(),
            button_timeout: Duration::from_secs(5),
            backend_attempts: 4,
            backend_backoff: Duration::from_millis(50),
            park_delay: Duration::from_millis(300),
        }
    }
}

pub struct Sandbox {
    pub world: SimWorld,
    pub backend: ReferenceBackend,
    pub moderator_chat: ChatId,
    pub db_path: PathBuf,
    secret: SecretString,
    opts: SandboxOptions,
    store: Store,
    running: Option<Running>,
}

struct Running {
    shutdown: watch::Sender<bool>,
    handle: JoinHandle<anyhow::Result<Exit>>,
}

impl Sandbox {
    pub async fn new(data_dir: &Path, opts: SandboxOptions) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("Failed to create {}", data_dir.display()))?;
        let secret = SecretString::from(format!("demo-secret-{:016x}", fastrand::u64(..)));
        let backend = ReferenceBackend::start(secret.clone()).await.context("Failed to start the reference backend")?;
        let world = SimWorld::new(SimConfig { send_button_text: opts.send_button_text.clone(), ..SimConfig::default() });
        let moderator_chat = world.create_group("Moderators");
        let db_path = data_dir.join(crate::DATABASE_FILE);
        let store = Store::open(&db_path).await.with_context(|| format!("Failed to open {}", db_path.display()))?;
        Ok(Self { world, backend, moderator_chat, db_path, secret, opts, store, running: None })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn tribute_chat(&self) -> ChatId {
        self.world.tribute_chat()
    }

    /// Starts a daemon on a fresh simulator connection (as after a process restart).
    pub async fn start_daemon(&mut self, checkpoint: Option<CheckpointHook>) -> anyhow::Result<()> {
        if self.running.is_some() {
            bail!("the daemon is already running");
        }
        let client = Arc::new(self.world.connect());
        let backend = BackendClient::new(BackendConfig {
            url: self.backend.url(),
            secret: self.secret.clone(),
            timeout: Duration::from_secs(5),
            max_attempts: self.opts.backend_attempts,
            initial_backoff: self.opts.backend_backoff,
            max_backoff: self.opts.backend_backoff * 8,
        })?;
        let workflow = WorkflowConfig {
            tribute_chat: self.world.tribute_chat(),
            moderator_chat: Some(self.moderator_chat),
            send_button_texts: vec![self.opts.send_button_text.clone()],
            button_timeout: self.opts.button_timeout,
            max_flood_sleep: Duration::from_secs(5),
            park_delay: self.opts.park_delay,
            reply_template: DEFAULT_REPLY_TEMPLATE.to_owned(),
            first_start_lookback: Duration::from_secs(3600),
            resync_interval: Duration::from_secs(1),
        };
        let ingest = IngestConfig { parser: ParserConfig::default(), tribute_bot: self.world.tribute_chat() };
        let (tx, rx) = watch::channel(false);
        let daemon = Daemon::new(self.store.clone(), client, backend, workflow, ingest, rx, checkpoint);
        let handle = tokio::spawn(daemon.run());
        self.running = Some(Running { shutdown: tx, handle });
        Ok(())
    }

    /// Asks the daemon to stop gracefully and waits for it.
    pub async fn stop_daemon(&mut self) -> anyhow::Result<Exit> {
        let Some(running) = self.running.take() else { bail!("the daemon is not running") };
        let _ = running.shutdown.send(true);
        running.handle.await.context("the daemon panicked")?
    }

    /// Waits for the daemon to exit by itself (e.g. stopped at a checkpoint).
    pub async fn join_daemon(&mut self, timeout: Duration) -> anyhow::Result<anyhow::Result<Exit>> {
        let Some(running) = self.running.take() else { bail!("the daemon is not running") };
        let res = tokio::time::timeout(timeout, running.handle).await.context("the daemon did not stop in time")?;
        Ok(res.context("the daemon panicked")?)
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
        Ok(())
    }
}
