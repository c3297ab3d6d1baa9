//! `tribute-assistant testbed`: the stand-in world as one long-running
//! process, for the real daemon (`run`, the grammers adapter, real MTProto)
//! to be pointed at — by a publisher trying their backend before going
//! live, by the SIGKILL chaos run, by scripts. It serves the simulated
//! Telegram over MTProto, the reference backend (unless the publisher's
//! own), and the control API; it writes a ready daemon config, a
//! pre-authorised session and the backend secret into its directory; and
//! it prints one JSON line with the addresses when ready.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tracing::info;

use super::backend::ReferenceBackend;
use super::backend_probe::{self, SecretSource};
use super::control::{self, ControlState};
use super::mtproto::{LoginAccount, MtprotoServer, SentCode};
use super::sandbox::{seed_key_only_session_file, seed_session_file, SANDBOX_MODERATOR};
use super::sim::{FaultLevel, FaultPlan, SimConfig, SimWorld};
use tribute_assistant::backend::BACKEND_SECRET_ENV;
use tribute_assistant::http::ServerHandle;
use tribute_assistant::telegram::ChatId;

/// `tribute-assistant testbed`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestbedArgs {
    /// Where the daemon's config, session, secret and data dir are written.
    #[arg(long, default_value = "testbed")]
    pub dir: PathBuf,
    /// The MTProto server's address (port 0: a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub mtproto: SocketAddr,
    /// The control API's address (port 0: a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub control: SocketAddr,
    /// `reference` (a built-in backend that activates what `POST
    /// /backend/pending` adds) or your backend's base URL; the secret the
    /// daemon signs with is then TRIBUTE_ASSISTANT_BACKEND_SECRET, or a new
    /// one written to DIR/backend.secret for your backend to use.
    #[arg(long, default_value = "reference")]
    pub backend: String,
    /// How much the simulated Telegram misbehaves: none, normal or hostile.
    #[arg(long, default_value = "none")]
    pub faults: FaultLevel,
    /// Seed of the fault plan (the same seed, the same faults for the same calls).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The reference backend accepts only `v2` signatures (method and path
    /// signed too), as after the migration in docs/backend-api.md.
    #[arg(long)]
    pub require_v2: bool,
    /// Do not log the daemon in: the session holds only the server's key,
    /// and `tribute-assistant --config DIR/config.toml login` goes through
    /// the whole first login (phone, code, 2FA password). The phone and
    /// password are in the ready line (`login`); each login code is printed
    /// as a JSON line `{"login_code": …}`, as Telegram shows it in the
    /// account's other apps. Docs: docs/first-login.md.
    #[arg(long)]
    pub rehearse_login: bool,
}

/// The testbed account's login (`--rehearse-login`). A stand-in account:
/// its password is no secret.
pub const REHEARSAL_PHONE: &str = "+999 66 2 1000";
pub const REHEARSAL_PASSWORD: &str = "tribute-testbed";
pub const REHEARSAL_HINT: &str = "the testbed's ready line says it";

/// What a rehearsed login needs, in the ready line.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RehearsedLogin {
    pub phone: String,
    pub password: String,
    pub hint: String,
}

/// What the testbed prints on stdout when it is ready (one JSON line).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Ready {
    pub mtproto: String,
    pub control: String,
    pub backend: String,
    pub config: String,
    /// With `--rehearse-login`: the account's phone and 2FA password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<RehearsedLogin>,
    /// With the publisher's backend: why its `GET /health` handshake failed
    /// at start (it does not answer, another secret, …); absent when it
    /// passed or the backend is the reference one. A warning: the testbed runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_warning: Option<String>,
}

/// The running stand-in world.
pub struct Testbed {
    pub state: Arc<ControlState>,
    pub mtproto: MtprotoServer,
    pub ready: Ready,
    control: ServerHandle,
}

/// The daemon's files in the testbed's directory.
pub struct DaemonFiles {
    pub config: PathBuf,
    pub session: PathBuf,
    pub backend_secret: PathBuf,
    pub api_hash: PathBuf,
    pub data_dir: PathBuf,
}

impl DaemonFiles {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            config: dir.join("config.toml"),
            session: dir.join("testbed.session"),
            backend_secret: dir.join("backend.secret"),
            api_hash: dir.join("api_hash"),
            data_dir: dir.join("data"),
        }
    }
}

impl Testbed {
    pub async fn start(args: &TestbedArgs) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&args.dir).with_context(|| format!("Failed to create {}", args.dir.display()))?;
        let dir =
            std::fs::canonicalize(&args.dir).with_context(|| format!("Failed to resolve {}", args.dir.display()))?;
        let files = DaemonFiles::in_dir(&dir);
        let world = SimWorld::new(SimConfig::default());
        world.set_fault_plan(FaultPlan::new(args.seed, args.faults));
        let moderator_chat = world.create_group("Moderators");
        world.add_user(SANDBOX_MODERATOR, "Masha (moderator)", Some("masha_mod"));

        let (backend, backend_url, secret, source) = if args.backend == "reference" {
            let secret = SecretString::from(format!("testbed-{:032x}", fastrand::u128(..)));
            let backend =
                ReferenceBackend::start(secret.clone()).await.context("Failed to start the reference backend")?;
            let url = backend.url();
            (Some(backend), url, secret, None)
        } else {
            let url = reqwest::Url::parse(&args.backend)
                .with_context(|| format!("--backend must be `reference` or a URL, not {:?}", args.backend))?;
            let (secret, source) = match std::env::var(BACKEND_SECRET_ENV) {
                Ok(s) if !s.trim().is_empty() => (SecretString::from(s.trim().to_owned()), SecretSource::Env),
                _ => {
                    let s = SecretString::from(format!("testbed-{:032x}", fastrand::u128(..)));
                    eprintln!(
                        "No {BACKEND_SECRET_ENV}: a new HMAC secret is in {}; give your backend the same one.",
                        files.backend_secret.display()
                    );
                    (s, SecretSource::Generated(files.backend_secret.clone()))
                }
            };
            (None, url.as_str().trim_end_matches('/').to_owned(), secret, Some(source))
        };

        let mtproto = if args.rehearse_login {
            let account = LoginAccount {
                phone: REHEARSAL_PHONE.into(),
                password: Some(REHEARSAL_PASSWORD.into()),
                hint: Some(REHEARSAL_HINT.into()),
            };
            MtprotoServer::start_awaiting_login(world.clone(), args.mtproto, account).await
        } else {
            MtprotoServer::start_on(world.clone(), args.mtproto).await
        }
        .with_context(|| format!("Failed to listen for MTProto on {}", args.mtproto))?;
        mtproto.set_members(moderator_chat, vec![world.config().self_id, SANDBOX_MODERATOR]);
        if args.rehearse_login {
            seed_key_only_session_file(&mtproto, &files.session).await?;
        } else {
            seed_session_file(&mtproto, &world, moderator_chat, &files.session).await?;
        }
        write_private(&files.backend_secret, secret.expose_secret())?;
        // Any value: the test server does not check the application's credentials.
        write_private(&files.api_hash, "0123456789abcdef0123456789abcdef")?;
        let config = daemon_config(&files, &world, moderator_chat, &backend_url, mtproto.addr_v4());
        std::fs::write(&files.config, config).with_context(|| format!("Failed to write {}", files.config.display()))?;

        let backend_warning = match &source {
            Some(source) => backend_probe::probe(&backend_url, secret.clone(), source).await,
            None => None,
        };
        if let Some(w) = &backend_warning {
            eprintln!("warning: {w}");
        }

        let state = Arc::new(ControlState::new(world, backend, moderator_chat));
        let listener = tokio::net::TcpListener::bind(args.control)
            .await
            .with_context(|| format!("Failed to listen for the control API on {}", args.control))?;
        let control = ServerHandle::serve(listener, control::router(state.clone()), "the testbed control API")?;
        let ready = Ready {
            mtproto: mtproto.addr().to_string(),
            control: control.url(),
            backend: backend_url,
            config: files.config.display().to_string(),
            login: args.rehearse_login.then(|| RehearsedLogin {
                phone: REHEARSAL_PHONE.into(),
                password: REHEARSAL_PASSWORD.into(),
                hint: REHEARSAL_HINT.into(),
            }),
            backend_warning,
        };
        info!(mtproto = %ready.mtproto, control = %ready.control, backend = %ready.backend, faults = %args.faults, seed = args.seed, "the testbed is ready");
        Ok(Self { state, mtproto, ready, control })
    }

    pub async fn shutdown(self) {
        self.control.shutdown().await;
        self.mtproto.shutdown().await;
        if let Some(b) = Arc::into_inner(self.state).and_then(|s| s.backend) {
            b.shutdown().await;
        }
    }
}

/// The command: start, print the ready line, serve until SIGTERM/SIGINT.
pub async fn run(args: TestbedArgs) -> anyhow::Result<ExitCode> {
    let testbed = Testbed::start(&args).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&testbed.ready)?)?;
    out.flush()?;
    drop(out);
    if args.rehearse_login {
        tokio::spawn(show_login_codes(testbed.mtproto.login_codes()));
        eprintln!(
            "Rehearse the first login:  tribute-assistant --config {} login\nPhone {REHEARSAL_PHONE}, two-step verification password {REHEARSAL_PASSWORD:?}; the login code is printed here when sent.",
            testbed.ready.config
        );
    }
    eprintln!(
        "Run the daemon against it:  tribute-assistant --config {} run\nPost an order:  curl -s {}/orders -d '{{\"customer_id\":501,\"customer_name\":\"Иван\",\"product\":\"100 Diamonds\",\"price\":\"€5.00\",\"details\":\"ID 123456\"}}' -H 'content-type: application/json'",
        testbed.ready.config, testbed.ready.control
    );
    tribute_assistant::runtime::shutdown::shutdown_signal().await;
    info!("stopping the testbed");
    testbed.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Prints each login code the server sends, as one JSON line on stdout
/// (for scripts) and a sentence on stderr.
async fn show_login_codes(mut codes: tokio::sync::watch::Receiver<Option<SentCode>>) {
    while codes.changed().await.is_ok() {
        let Some(sent) = codes.borrow_and_update().clone() else { continue };
        let line = serde_json::json!({"login_code": sent.code, "phone": sent.phone});
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        eprintln!("Telegram (the testbed) sent the login code {} to {}", sent.code, sent.phone);
    }
}

/// The daemon's config for the testbed: production settings except the
/// speed limits (the simulated Telegram has no reason for real ones).
fn daemon_config(
    files: &DaemonFiles,
    world: &SimWorld,
    moderator_chat: ChatId,
    backend_url: &str,
    server: std::net::SocketAddrV4,
) -> String {
    let q = |p: &Path| toml_string(&p.display().to_string());
    format!(
        "# Written by `tribute-assistant testbed`: the daemon against the simulated Telegram.\n\
         data_dir = {data}\n\
         \n\
         [telegram]\n\
         tribute_chat = {tribute}\n\
         moderator_chat = {moderator_chat}\n\
         api_id = 12345\n\
         api_hash_file = {api_hash}\n\
         session_file = {session}\n\
         server = \"{server}\"\n\
         rate_limit_per_minute = 600.0\n\
         rate_limit_burst = 50\n\
         flood_auto_sleep_secs = 5\n\
         request_timeout_secs = 5\n\
         button_timeout_secs = 30\n\
         resync_secs = 5\n\
         \n\
         [backend]\n\
         url = {url}\n\
         secret_file = {secret}\n\
         timeout_secs = 5\n\
         park_secs = 2\n\
         \n\
         [moderator]\n\
         moderators = [{moderator}]\n",
        data = q(&files.data_dir),
        tribute = world.tribute_chat(),
        api_hash = q(&files.api_hash),
        session = q(&files.session),
        url = toml_string(backend_url),
        secret = q(&files.backend_secret),
        moderator = SANDBOX_MODERATOR,
    )
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    tribute_assistant::private_file::write(path, content, true)
        .with_context(|| format!("Failed to write {}", path.display()))
}
