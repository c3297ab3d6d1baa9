//! Configuration: one TOML file, then environment variables. Secrets are
//! read only from the environment or from a file named in the config, never
//! from the TOML itself, so the config file can be shared or committed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use secrecy::SecretString;
use serde::Deserialize;

use crate::backend::BackendConfig;
use crate::orders::{IngestConfig, WorkflowConfig, DEFAULT_REPLY_TEMPLATE};
use crate::sensitive_url::SensitiveUrl;
use crate::tribute::ParserConfig;

/// Environment variable holding the backend HMAC secret.
pub const BACKEND_SECRET_ENV: &str = "TRIBUTE_ASSISTANT_BACKEND_SECRET";
/// Environment variable overriding `backend.url`.
pub const BACKEND_URL_ENV: &str = "TRIBUTE_ASSISTANT_BACKEND_URL";
/// Environment variable overriding `data_dir`.
pub const DATA_DIR_ENV: &str = "TRIBUTE_ASSISTANT_DATA_DIR";
/// Largest `[telegram] first_start_lookback_hours`: 100 years.
const MAX_LOOKBACK_HOURS: u64 = 100 * 366 * 24;
/// Largest duration in seconds any `*_secs` setting may have: 10 years.
/// Durations become unix-ms due times (`now + d` in i64); a value near
/// `u64::MAX` would wrap there instead of meaning "never".
const MAX_SECS: u64 = 10 * 366 * 24 * 3600;

/// Refuses a `*_secs` setting too large to be a due time, naming it.
fn bounded_secs(settings: &[(&str, Option<u64>)]) -> anyhow::Result<()> {
    for (name, value) in settings {
        if let Some(v) = value.filter(|v| *v > MAX_SECS) {
            bail!("{name} = {v} is too long: at most {MAX_SECS} seconds (10 years)");
        }
    }
    Ok(())
}
/// Environment variable holding the Telegram api_id (my.telegram.org).
pub const API_ID_ENV: &str = "TRIBUTE_ASSISTANT_API_ID";
/// Environment variable holding the Telegram api_hash (a secret).
pub const API_HASH_ENV: &str = "TRIBUTE_ASSISTANT_API_HASH";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the SQLite database (and later the session and the index) live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub telegram: TelegramSection,
    pub backend: Option<BackendSection>,
    #[serde(default)]
    pub parser: ParserSection,
    /// The LLM agent: endpoint, thresholds, hard topics.
    #[serde(default)]
    pub agent: crate::agent::AgentSection,
    // ops/webhooks
    #[serde(default)]
    pub ops: OpsSection,
    #[serde(default)]
    pub webhook: WebhookSection,
    /// Knowledge base: index backend and embedding provider.
    #[serde(default)]
    pub knowledge: crate::knowledge::KnowledgeSection,
    /// Customer contact.
    #[serde(default)]
    pub contact: ContactSection,
    /// The moderator chat's people.
    #[serde(default)]
    pub moderator: ModeratorSection,
}

/// `[contact]`: the assistant writes to customers whose account ID is
/// missing, ambiguous or refused, and finishes their orders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSection {
    /// Off: every account problem goes straight to the moderator.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A reminder this long after we asked without an answer.
    #[serde(default = "default_reminder")]
    pub reminder_after_secs: u64,
    /// The moderator gets the order this long after we asked without an answer.
    #[serde(default = "default_contact_escalate")]
    pub escalate_after_secs: u64,
    /// Never more messages than this to one customer per UTC day.
    #[serde(default = "default_max_messages")]
    pub max_messages_per_day: u32,
    /// Questions per customer per minute that reach the agent or the
    /// moderator; the rest are stored without an answer.
    #[serde(default = "default_questions_per_minute")]
    pub questions_per_minute: u32,
    /// Agent answers per customer per UTC day; past that a person answers.
    #[serde(default = "default_agent_turns_per_day")]
    pub agent_turns_per_day: u32,
    /// Directory with `contact/*.ru.md` / `*.en.md` templates (built-in texts otherwise).
    pub prompts_dir: Option<PathBuf>,
    /// `ru` or `en`: for customers whose name and messages are not clearly English.
    #[serde(default = "default_language")]
    pub language: String,
}

impl Default for ContactSection {
    fn default() -> Self {
        toml::from_str("").expect("the empty [contact] is valid")
    }
}

/// `[moderator]`: who may act on cases in the moderator chat.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeratorSection {
    /// Telegram user ids obeyed in the moderator chat; anyone else is refused and logged.
    #[serde(default)]
    pub moderators: Vec<i64>,
}

fn default_true() -> bool {
    true
}
fn default_reminder() -> u64 {
    3600
}
fn default_contact_escalate() -> u64 {
    24 * 3600
}
fn default_max_messages() -> u32 {
    10
}
fn default_language() -> String {
    "ru".into()
}

impl ContactSection {
    /// The contact settings, or `None` when contact is disabled.
    pub fn contact_config(&self) -> anyhow::Result<Option<crate::contact::ContactConfig>> {
        if !self.enabled {
            return Ok(None);
        }
        let default_language = crate::domain::Language::parse(&self.language)
            .with_context(|| format!("[contact] language must be \"ru\" or \"en\", not {:?}", self.language))?;
        if self.escalate_after_secs <= self.reminder_after_secs {
            bail!("[contact] escalate_after_secs must be longer than reminder_after_secs");
        }
        bounded_secs(&[
            ("[contact] reminder_after_secs", Some(self.reminder_after_secs)),
            ("[contact] escalate_after_secs", Some(self.escalate_after_secs)),
        ])?;
        Ok(Some(crate::contact::ContactConfig {
            reminder_after: Duration::from_secs(self.reminder_after_secs),
            escalate_after: Duration::from_secs(self.escalate_after_secs),
            max_messages_per_day: self.max_messages_per_day,
            question_limits: crate::contact::QuestionLimits {
                per_minute: self.questions_per_minute.max(1),
                per_day: self.agent_turns_per_day,
            },
            prompts_dir: self.prompts_dir.clone(),
            default_language,
            ..crate::contact::ContactConfig::default()
        }))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSection {
    /// The Tribute bot's chat (its user id). @tribute is 93372553.
    #[serde(default = "default_tribute_chat")]
    pub tribute_chat: i64,
    /// Chat that receives case messages for a person (group or private chat id).
    pub moderator_chat: Option<i64>,
    /// Texts of the bot's confirmation button, compared case-insensitively.
    #[serde(default = "default_send_texts")]
    pub send_button_texts: Vec<String>,
    /// How long to wait for the bot's Send button after our reply.
    #[serde(default = "default_button_timeout")]
    pub button_timeout_secs: u64,
    /// Flood waits up to this long are slept through; longer ones park the step.
    #[serde(default = "default_flood_sleep")]
    pub max_flood_sleep_secs: u64,
    /// On the very first start only Tribute messages this recent are processed.
    #[serde(default = "default_lookback")]
    pub first_start_lookback_hours: u64,
    /// How often the Tribute chat is re-read in case an update was missed.
    #[serde(default = "default_resync")]
    pub resync_secs: u64,
    /// How far back each re-read goes (by message date), so a message lost
    /// below the newest stored one is still found.
    #[serde(default = "default_resync_window")]
    pub resync_window_secs: u64,
    /// Reply to the Tribute message; {product}, {account_id}, {order_ref}, {price}.
    pub reply_template: Option<String>,
    /// The application's api_id from my.telegram.org (or TRIBUTE_ASSISTANT_API_ID).
    pub api_id: Option<i32>,
    /// File holding the api_hash (alternative to TRIBUTE_ASSISTANT_API_HASH; keep it 0600).
    pub api_hash_file: Option<PathBuf>,
    /// The session file (default: `<data_dir>/telegram.session`).
    pub session_file: Option<PathBuf>,
    /// Outgoing actions (messages and button presses) allowed per minute.
    #[serde(default = "default_rate_per_minute")]
    pub rate_limit_per_minute: f64,
    /// Outgoing actions allowed back to back.
    #[serde(default = "default_rate_burst")]
    pub rate_limit_burst: u32,
    /// Flood waits up to this long are slept through inside the Telegram client.
    #[serde(default = "default_flood_auto_sleep")]
    pub flood_auto_sleep_secs: u64,
    /// A Telegram request without an answer after this long fails and is retried.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
}

impl Default for TelegramSection {
    fn default() -> Self {
        Self {
            tribute_chat: default_tribute_chat(),
            moderator_chat: None,
            send_button_texts: default_send_texts(),
            button_timeout_secs: default_button_timeout(),
            max_flood_sleep_secs: default_flood_sleep(),
            first_start_lookback_hours: default_lookback(),
            resync_secs: default_resync(),
            resync_window_secs: default_resync_window(),
            reply_template: None,
            api_id: None,
            api_hash_file: None,
            session_file: None,
            rate_limit_per_minute: default_rate_per_minute(),
            rate_limit_burst: default_rate_burst(),
            flood_auto_sleep_secs: default_flood_auto_sleep(),
            request_timeout_secs: default_request_timeout(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// Credentials in it (`https://user:pass@…`) are masked wherever it is shown.
    pub url: Option<SensitiveUrl>,
    /// File holding the HMAC secret (alternative to the environment variable).
    pub secret_file: Option<PathBuf>,
    #[serde(default = "default_backend_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Delay before an order whose activation failed on every attempt is tried again.
    #[serde(default = "default_park")]
    pub park_secs: u64,
}

/// Parser settings. The label lists are added to the English defaults, so a
/// localised Tribute bot (e.g. `customer_labels = ["Покупатель"]`) works
/// without losing the original words.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserSection {
    /// Regex for the account ID in Order Details (group 1 if present).
    pub account_pattern: Option<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub customer_labels: Vec<String>,
    #[serde(default)]
    pub product_labels: Vec<String>,
    #[serde(default)]
    pub price_labels: Vec<String>,
    #[serde(default)]
    pub details_labels: Vec<String>,
}

impl ParserSection {
    pub fn parser_config(&self) -> anyhow::Result<ParserConfig> {
        let mut cfg = match &self.account_pattern {
            Some(p) => ParserConfig::default()
                .with_account_pattern(p)
                .with_context(|| format!("Invalid [parser] account_pattern {p:?}"))?,
            None => ParserConfig::default(),
        };
        cfg.headers.extend(self.headers.iter().cloned());
        cfg.customer_labels.extend(self.customer_labels.iter().cloned());
        cfg.product_labels.extend(self.product_labels.iter().cloned());
        cfg.price_labels.extend(self.price_labels.iter().cloned());
        cfg.details_labels.extend(self.details_labels.iter().cloned());
        Ok(cfg)
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_tribute_chat() -> i64 {
    93372553
}
fn default_send_texts() -> Vec<String> {
    vec!["Send".into(), "Отправить".into()]
}
fn default_button_timeout() -> u64 {
    120
}
fn default_flood_sleep() -> u64 {
    60
}
fn default_lookback() -> u64 {
    1
}
fn default_resync() -> u64 {
    60
}
fn default_questions_per_minute() -> u32 {
    crate::contact::QuestionLimits::default().per_minute
}
fn default_agent_turns_per_day() -> u32 {
    crate::contact::QuestionLimits::default().per_day
}
fn default_resync_window() -> u64 {
    15 * 60
}
fn default_rate_per_minute() -> f64 {
    crate::telegram::grammers::RateLimit::default().per_minute
}
fn default_rate_burst() -> u32 {
    crate::telegram::grammers::RateLimit::default().burst
}
fn default_flood_auto_sleep() -> u64 {
    5
}
fn default_request_timeout() -> u64 {
    30
}
fn default_backend_timeout() -> u64 {
    10
}
fn default_attempts() -> u32 {
    5
}
fn default_park() -> u64 {
    60
}

/// The application credentials for Telegram's API (my.telegram.org).
/// The api_hash is a secret: redacted in Debug and logs.
#[derive(Debug, Clone)]
pub struct TelegramApi {
    pub api_id: i32,
    pub api_hash: SecretString,
}

impl TelegramApi {
    /// api_id from the environment or `[telegram] api_id`; api_hash from the
    /// environment or `[telegram] api_hash_file`. `Ok(None)` when neither is set.
    pub fn resolve(t: &TelegramSection, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let api_id = match env(API_ID_ENV) {
            Some(v) => Some(v.trim().parse::<i32>().with_context(|| format!("{API_ID_ENV} is not a number"))?),
            None => t.api_id,
        };
        let api_hash = match (env(API_HASH_ENV), &t.api_hash_file) {
            (Some(h), _) => Some(h.trim().to_owned()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("Failed to read the api_hash file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        match (api_id, api_hash) {
            (None, None) => Ok(None),
            (Some(api_id), Some(hash)) if !hash.is_empty() && api_id > 0 => {
                Ok(Some(Self { api_id, api_hash: SecretString::from(hash) }))
            }
            (Some(_), Some(_)) => bail!("The Telegram api_id or api_hash is empty or invalid"),
            (None, Some(_)) => bail!("No Telegram api_id: set [telegram] api_id or {API_ID_ENV}"),
            (Some(_), None) => {
                bail!("No Telegram api_hash: set {API_HASH_ENV} or [telegram] api_hash_file (a 0600 file)")
            }
        }
    }

    /// Like [`Self::resolve`], but missing credentials are an error that says how to get them.
    pub fn require(t: &TelegramSection, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        Self::resolve(t, env)?.with_context(|| {
            format!(
                "No Telegram API credentials: create an application at https://my.telegram.org (API development tools), \
                 then set [telegram] api_id in the config (or {API_ID_ENV}) and {API_HASH_ENV} (or [telegram] api_hash_file)"
            )
        })
    }
}

impl FileConfig {
    /// The data dir after the environment override.
    pub fn resolved_data_dir(&self, env: &impl Fn(&str) -> Option<String>) -> PathBuf {
        env(DATA_DIR_ENV).map(PathBuf::from).unwrap_or_else(|| self.data_dir.clone())
    }

    /// Where the Telegram session lives.
    pub fn session_path(&self, env: &impl Fn(&str) -> Option<String>) -> PathBuf {
        self.telegram
            .session_file
            .clone()
            .unwrap_or_else(|| crate::telegram::grammers::session_path(&self.resolved_data_dir(env)))
    }
}

impl Default for FileConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty config is valid")
    }
}

/// Everything the daemon needs, with secrets resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub telegram: TelegramSection,
    pub backend_url: SensitiveUrl,
    pub backend_secret: SecretString,
    pub backend: BackendSection,
    pub parser: ParserSection,
    /// Telegram API credentials, when configured (required by `run` and `login`).
    pub telegram_api: Option<TelegramApi>,
    /// The ops listener and the Tribute webhook, resolved.
    pub ops: crate::ops::OpsSettings,
    pub contact: ContactSection,
    pub moderator: ModeratorSection,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("Invalid config file {}", path.display()))
    }
}

impl Config {
    /// Resolves the file config plus the environment into a usable config.
    pub fn resolve(file: FileConfig, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let backend = file.backend.clone().unwrap_or(BackendSection {
            url: None,
            secret_file: None,
            timeout_secs: default_backend_timeout(),
            max_attempts: default_attempts(),
            park_secs: default_park(),
        });
        let backend_url = env(BACKEND_URL_ENV)
            .map(SensitiveUrl::from)
            .or_else(|| backend.url.clone())
            .with_context(|| format!("No backend URL: set [backend] url in the config file or {BACKEND_URL_ENV}"))?;
        let secret = match (env(BACKEND_SECRET_ENV), &backend.secret_file) {
            (Some(s), _) => s,
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("Failed to read the backend secret file {}", path.display()))?
                .trim()
                .to_owned(),
            (None, None) => bail!("No backend secret: set {BACKEND_SECRET_ENV} or [backend] secret_file (a 0600 file)"),
        };
        if secret.is_empty() {
            bail!("The backend secret is empty");
        }
        // In seconds it must fit the clock's i64 (`workflow_config` multiplies).
        if file.telegram.first_start_lookback_hours > MAX_LOOKBACK_HOURS {
            bail!("[telegram] first_start_lookback_hours must be at most {MAX_LOOKBACK_HOURS} (100 years)");
        }
        let t = &file.telegram;
        bounded_secs(&[
            ("[telegram] button_timeout_secs", Some(t.button_timeout_secs)),
            ("[telegram] max_flood_sleep_secs", Some(t.max_flood_sleep_secs)),
            ("[telegram] resync_secs", Some(t.resync_secs)),
            ("[telegram] resync_window_secs", Some(t.resync_window_secs)),
            ("[telegram] flood_auto_sleep_secs", Some(t.flood_auto_sleep_secs)),
            ("[telegram] request_timeout_secs", Some(t.request_timeout_secs)),
            ("[backend] timeout_secs", file.backend.as_ref().map(|b| b.timeout_secs)),
            ("[backend] park_secs", file.backend.as_ref().map(|b| b.park_secs)),
            ("[webhook] match_window_secs", Some(file.webhook.match_window_secs)),
            ("[webhook] unmatched_grace_secs", Some(file.webhook.unmatched_grace_secs)),
            ("[ops] max_update_age_secs", file.ops.max_update_age_secs),
        ])?;
        let telegram_api = TelegramApi::resolve(&file.telegram, &env)?;
        let ops = file.ops_settings(&env)?;
        let data_dir = env(DATA_DIR_ENV).map(PathBuf::from).unwrap_or(file.data_dir);
        Ok(Self {
            ops,
            telegram_api,
            data_dir,
            telegram: file.telegram,
            backend_url,
            backend_secret: SecretString::from(secret),
            backend,
            parser: file.parser,
            contact: file.contact,
            moderator: file.moderator,
        })
    }

    /// Customer contact and the moderator chat for the daemon (`None` when `[contact] enabled = false`).
    pub fn contact_setup(&self) -> anyhow::Result<Option<crate::daemon::ContactSetup>> {
        let moderator = crate::moderator::ModeratorConfig { moderators: self.moderator.moderators.clone() };
        Ok(self.contact.contact_config()?.map(|c| crate::daemon::ContactSetup::new(c, moderator)))
    }

    pub fn backend_config(&self) -> BackendConfig {
        BackendConfig {
            timeout: Duration::from_secs(self.backend.timeout_secs),
            max_attempts: self.backend.max_attempts,
            ..BackendConfig::new(self.backend_url.expose(), self.backend_secret.clone())
        }
    }

    pub fn workflow_config(&self) -> WorkflowConfig {
        let t = &self.telegram;
        WorkflowConfig {
            tribute_chat: t.tribute_chat,
            moderator_chat: t.moderator_chat,
            send_button_texts: t.send_button_texts.clone(),
            button_timeout: Duration::from_secs(t.button_timeout_secs),
            max_flood_sleep: Duration::from_secs(t.max_flood_sleep_secs),
            park_delay: Duration::from_secs(self.backend.park_secs),
            reply_template: t.reply_template.clone().unwrap_or_else(|| DEFAULT_REPLY_TEMPLATE.to_owned()),
            first_start_lookback: Duration::from_secs(t.first_start_lookback_hours * 3600),
            resync_interval: Duration::from_secs(t.resync_secs.max(1)),
            resync_window: Duration::from_secs(t.resync_window_secs),
            max_step_backoff: Duration::from_secs(600),
        }
    }

    pub fn ingest_config(&self) -> anyhow::Result<IngestConfig> {
        Ok(IngestConfig { parser: self.parser.parser_config()?, tribute_bot: self.telegram.tribute_chat })
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(crate::DATABASE_FILE)
    }

    /// Where the Telegram session lives.
    pub fn session_path(&self) -> PathBuf {
        self.telegram.session_file.clone().unwrap_or_else(|| crate::telegram::grammers::session_path(&self.data_dir))
    }

    /// The real Telegram adapter's settings (`None` without API credentials).
    pub fn grammers_config(&self) -> anyhow::Result<crate::telegram::grammers::GrammersConfig> {
        let api = self.telegram_api.as_ref().with_context(|| {
            format!("No Telegram API credentials: set [telegram] api_id (or {API_ID_ENV}) and {API_HASH_ENV} (or [telegram] api_hash_file)")
        })?;
        let t = &self.telegram;
        if t.rate_limit_per_minute.is_nan() || t.rate_limit_per_minute <= 0.0 {
            bail!("[telegram] rate_limit_per_minute must be positive");
        }
        Ok(crate::telegram::grammers::GrammersConfig {
            api_id: api.api_id,
            tribute_chat: t.tribute_chat,
            group_chats: t.moderator_chat.into_iter().collect(),
            rate_limit: crate::telegram::grammers::RateLimit {
                per_minute: t.rate_limit_per_minute,
                burst: t.rate_limit_burst.max(1),
            },
            flood_auto_sleep: Duration::from_secs(t.flood_auto_sleep_secs),
            request_timeout: Duration::from_secs(t.request_timeout_secs.max(1)),
        })
    }
}

// ---- ops/webhooks ----

/// Environment variable holding the Tribute API key (the webhook's HMAC key).
pub const TRIBUTE_API_KEY_ENV: &str = "TRIBUTE_ASSISTANT_TRIBUTE_API_KEY";
/// The conventional port of the ops listener (examples and error messages).
pub const DEFAULT_OPS_PORT: u16 = 9184;
/// The conventional port of the webhook listener (examples and error messages).
pub const DEFAULT_WEBHOOK_PORT: u16 = 9185;

/// `[ops]`: the private HTTP listener for `/healthz` and `/metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsSection {
    /// `127.0.0.1:9184`, or just a port (`9184`) for 127.0.0.1. Unset: no listener.
    pub listen: Option<String>,
    /// `/healthz` answers 503 when no Telegram update arrived for this long.
    pub max_update_age_secs: Option<u64>,
}

/// `[webhook]`: Tribute webhooks (off by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    #[serde(default)]
    pub enabled: bool,
    /// The webhook's own listener (`host:port` or a port on 127.0.0.1);
    /// required when enabled and never the `[ops] listen` address.
    pub listen: Option<String>,
    /// File holding the Tribute API key (alternative to TRIBUTE_ASSISTANT_TRIBUTE_API_KEY; keep it 0600).
    pub api_key_file: Option<PathBuf>,
    /// How far apart a payment and its Telegram order may be.
    #[serde(default = "default_match_window")]
    pub match_window_secs: u64,
    /// How long a paid purchase may go without a Telegram order before the moderator is told.
    #[serde(default = "default_unmatched_grace")]
    pub unmatched_grace_secs: u64,
}

impl Default for WebhookSection {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: None,
            api_key_file: None,
            match_window_secs: default_match_window(),
            unmatched_grace_secs: default_unmatched_grace(),
        }
    }
}

fn default_match_window() -> u64 {
    3600
}
fn default_unmatched_grace() -> u64 {
    1800
}

/// Parses a `listen` setting (`setting` names it in errors): `host:port`,
/// `[v6]:port`, or a bare port on 127.0.0.1.
pub fn parse_listen(setting: &str, value: &str) -> anyhow::Result<std::net::SocketAddr> {
    let v = value.trim();
    let v = v.strip_prefix(':').unwrap_or(v);
    if let Ok(port) = v.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    v.parse().with_context(|| {
        format!("{setting} = {value:?} is not an address like \"127.0.0.1:{DEFAULT_OPS_PORT}\" or a port")
    })
}

/// The ops and webhook listeners must not share an address: the webhook is
/// the public one, `/healthz` and `/metrics` must stay private. Two
/// addresses clash when their ports are equal and their IPs are equal or
/// either is a wildcard (`0.0.0.0`, `[::]`); port 0 (any free port) never clashes.
pub fn ensure_distinct_listeners(ops: std::net::SocketAddr, webhook: std::net::SocketAddr) -> anyhow::Result<()> {
    let same_ip = ops.ip() == webhook.ip() || ops.ip().is_unspecified() || webhook.ip().is_unspecified();
    if ops.port() != 0 && ops.port() == webhook.port() && same_ip {
        bail!(
            "[webhook] listen ({webhook}) and [ops] listen ({ops}) overlap: the webhook gets a listener of its own \
             so /healthz and /metrics are never exposed with it; give it another port"
        );
    }
    Ok(())
}

impl FileConfig {
    /// Resolves `[ops]` and `[webhook]` (the API key from the environment or its file).
    pub fn ops_settings(&self, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<crate::ops::OpsSettings> {
        let listen = self.ops.listen.as_deref().map(|v| parse_listen("[ops] listen", v)).transpose()?;
        let webhook = if self.webhook.enabled {
            let Some(webhook_listen) = self.webhook.listen.as_deref() else {
                bail!(
                    "[webhook] enabled needs [webhook] listen (e.g. \"127.0.0.1:{DEFAULT_WEBHOOK_PORT}\"): the webhook \
                     has a listener of its own, separate from [ops] listen; point the reverse proxy at it"
                );
            };
            let webhook_listen = parse_listen("[webhook] listen", webhook_listen)?;
            if let Some(ops) = listen {
                ensure_distinct_listeners(ops, webhook_listen)?;
            }
            let key = match (env(TRIBUTE_API_KEY_ENV), &self.webhook.api_key_file) {
                (Some(k), _) => k.trim().to_owned(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .with_context(|| format!("Failed to read the Tribute API key file {}", path.display()))?
                    .trim()
                    .to_owned(),
                (None, None) => {
                    bail!("[webhook] is enabled but there is no Tribute API key: set {TRIBUTE_API_KEY_ENV} or [webhook] api_key_file")
                }
            };
            if key.is_empty() {
                bail!("The Tribute API key is empty");
            }
            Some(crate::webhook::WebhookSettings {
                api_key: SecretString::from(key),
                listen: webhook_listen,
                reconcile: crate::webhook::ReconcileConfig {
                    match_window: Duration::from_secs(self.webhook.match_window_secs),
                    unmatched_grace: Duration::from_secs(self.webhook.unmatched_grace_secs),
                    ..Default::default()
                },
            })
        } else {
            None
        };
        Ok(crate::ops::OpsSettings {
            listen,
            max_update_age: self.ops.max_update_age_secs.map(Duration::from_secs),
            webhook,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_first_start_lookback_is_an_error_not_an_overflow() {
        // Found by the `config` fuzz target: hours * 3600 overflowed u64.
        let env = |k: &str| (k == BACKEND_SECRET_ENV).then(|| "s".to_owned());
        let text =
            |hours: u64| format!("[backend]\nurl = \"http://x\"\n[telegram]\nfirst_start_lookback_hours = {hours}\n");
        let err = Config::resolve(toml::from_str(&text(i64::MAX as u64)).unwrap(), env).unwrap_err();
        assert!(err.to_string().contains("first_start_lookback_hours"), "{err}");
        let cfg = Config::resolve(toml::from_str(&text(MAX_LOOKBACK_HOURS)).unwrap(), env).unwrap();
        assert_eq!(cfg.workflow_config().first_start_lookback.as_secs(), MAX_LOOKBACK_HOURS * 3600);
    }

    #[test]
    fn a_duration_too_long_to_be_a_due_time_is_an_error_naming_it() {
        let env = |k: &str| (k == BACKEND_SECRET_ENV).then(|| "s".to_owned());
        let cfg = |extra: &str| {
            Config::resolve(toml::from_str(&format!("[backend]\nurl = \"http://x\"\n{extra}")).unwrap(), env)
        };
        let err = cfg("park_secs = 9223372036854775807").unwrap_err();
        assert!(err.to_string().contains("[backend] park_secs"), "{err}");
        let err = cfg("[telegram]\nresync_window_secs = 999999999999").unwrap_err();
        assert!(err.to_string().contains("resync_window_secs"), "{err}");
        assert!(cfg(&format!("[telegram]\nbutton_timeout_secs = {MAX_SECS}")).is_ok(), "ten years is still a setting");
        let contact: FileConfig = toml::from_str("[contact]\nescalate_after_secs = 9223372036854775807").unwrap();
        let err = contact.contact.contact_config().unwrap_err();
        assert!(err.to_string().contains("escalate_after_secs"), "{err}");
    }

    #[test]
    fn secret_comes_from_env_and_is_redacted_in_debug() {
        let file: FileConfig = toml::from_str("[backend]\nurl = \"http://x\"\n").unwrap();
        let cfg = Config::resolve(file, |k| (k == BACKEND_SECRET_ENV).then(|| "hunter2-secret".to_owned())).unwrap();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("hunter2"), "secret leaked: {dbg}");
        assert_eq!(cfg.telegram.send_button_texts, vec!["Send", "Отправить"]);
        assert!(!format!("{:?}", cfg.backend_config()).contains("hunter2"));
        assert_eq!(cfg.workflow_config().tribute_chat, 93372553);
        assert_eq!(cfg.workflow_config().reply_template, DEFAULT_REPLY_TEMPLATE);
    }

    #[test]
    fn credentials_in_configured_urls_never_show_in_debug() {
        let file: FileConfig = toml::from_str(
            "[backend]\nurl = \"https://shop:hunter2@shop.example/api\"\n\
             [agent]\nbase_url = \"https://llm:hunter3@llm.example/v1\"\n\
             [knowledge]\nqdrant_url = \"https://q:hunter4@qdrant.example:6334\"\n\
             [knowledge.embedding]\nbase_url = \"https://e:hunter5@emb.example/v1\"\nmodel = \"m\"\ndimension = 8\n",
        )
        .unwrap();
        let cfg = Config::resolve(file.clone(), |k| (k == BACKEND_SECRET_ENV).then(|| "s".to_owned())).unwrap();
        let agent = crate::agent::AgentSettings::resolve(&file.agent, &|_| None).unwrap();
        let knowledge = file.knowledge.resolve(&|_| None).unwrap();
        let shown = format!(
            "{file:?} {cfg:?} {:?} {agent:?} {:?} {:?}",
            cfg.backend_config(),
            knowledge.embedding,
            knowledge.qdrant
        );
        for password in ["hunter2", "hunter3", "hunter4", "hunter5"] {
            assert!(!shown.contains(password), "{password} leaked: {shown}");
        }
        assert!(shown.contains("https://***@shop.example/api"), "{shown}");
        // The code that connects still gets the real URL.
        assert_eq!(cfg.backend_config().url, "https://shop:hunter2@shop.example/api");
        assert_eq!(agent.llm.unwrap().base_url, "https://llm:hunter3@llm.example/v1");
    }

    #[test]
    fn api_hash_is_a_redacted_secret_from_env_or_file() {
        let file: FileConfig = toml::from_str("[backend]\nurl = \"http://x\"\n[telegram]\napi_id = 12345\n").unwrap();
        let env = |k: &str| match k {
            BACKEND_SECRET_ENV => Some("s".to_owned()),
            API_HASH_ENV => Some("0123456789abcdef0123456789abcdef".to_owned()),
            _ => None,
        };
        let cfg = Config::resolve(file.clone(), env).unwrap();
        let api = cfg.telegram_api.as_ref().unwrap();
        assert_eq!(api.api_id, 12345);
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("0123456789abcdef"), "api_hash leaked: {dbg}");
        assert!(!format!("{api:?}").contains("0123456789abcdef"));
        let g = cfg.grammers_config().unwrap();
        assert_eq!(g.api_id, 12345);
        assert_eq!(g.rate_limit, crate::telegram::grammers::RateLimit::default());
        assert!(cfg.session_path().ends_with("telegram.session"));

        // From a file, trimmed.
        let dir = tempfile::tempdir().unwrap();
        let hash_file = dir.path().join("api_hash");
        std::fs::write(&hash_file, "fedcba9876543210fedcba9876543210\n").unwrap();
        let text = format!(
            "[telegram]\napi_id = 7\napi_hash_file = {:?}\nrate_limit_per_minute = 6\nrate_limit_burst = 1\n",
            hash_file
        );
        let file: FileConfig = toml::from_str(&text).unwrap();
        let api = TelegramApi::require(&file.telegram, &|_| None).unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(api.api_hash.expose_secret(), "fedcba9876543210fedcba9876543210");
        assert_eq!(file.telegram.rate_limit_burst, 1);

        // Half-configured and unconfigured are clear errors.
        let file: FileConfig = toml::from_str("[telegram]\napi_id = 7\n").unwrap();
        let err = TelegramApi::resolve(&file.telegram, &|_| None).unwrap_err().to_string();
        assert!(err.contains(API_HASH_ENV), "{err}");
        let err = TelegramApi::require(&FileConfig::default().telegram, &|_| None).unwrap_err().to_string();
        assert!(err.contains("my.telegram.org"), "{err}");
        let no_api = Config::resolve(toml::from_str("[backend]\nurl = \"http://x\"\n").unwrap(), |k| {
            (k == BACKEND_SECRET_ENV).then(|| "s".to_owned())
        })
        .unwrap();
        assert!(no_api.telegram_api.is_none());
        assert!(no_api.grammers_config().unwrap_err().to_string().contains(API_HASH_ENV));
    }

    #[test]
    fn missing_secret_and_unknown_keys_are_clear_errors() {
        let file: FileConfig = toml::from_str("[backend]\nurl = \"http://x\"\n").unwrap();
        let err = Config::resolve(file, |_| None).unwrap_err().to_string();
        assert!(err.contains(BACKEND_SECRET_ENV), "{err}");
        let err = toml::from_str::<FileConfig>("[backend]\nsecret = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("secret"), "{err}");
        let file: FileConfig = toml::from_str("[parser]\naccount_pattern = \"([0-9\"\n").unwrap();
        let err = file.parser.parser_config().unwrap_err().to_string();
        assert!(err.contains("account_pattern"), "{err}");
    }

    #[test]
    fn localised_labels_extend_the_defaults() {
        let file: FileConfig = toml::from_str(
            "[parser]\nheaders = [\"Заказ цифрового товара\"]\ncustomer_labels = [\"Покупатель\"]\n\
             product_labels = [\"Товар\"]\nprice_labels = [\"Цена\"]\ndetails_labels = [\"Детали заказа\"]\n",
        )
        .unwrap();
        let cfg = file.parser.parser_config().unwrap();
        let ru = "🆕 Заказ цифрового товара\nПокупатель: Иван\nТовар: VIP\nЦена: ₽500\nДетали заказа:\nID 123456";
        let order = crate::tribute::parse_order(ru, &[], &cfg).unwrap();
        assert_eq!(order.product, "VIP");
        assert_eq!(order.price.amount_minor, 50_000);
        let en = "🆕 Custom Product Order\nCustomer: Ann\nProduct: VIP\nPrice: $5\nOrder Details:\nID 123456";
        assert!(crate::tribute::parse_order(en, &[], &cfg).is_ok(), "English still parses");
    }

    #[test]
    fn ops_and_webhook_sections_resolve() {
        let parse = |v: &str| parse_listen("[ops] listen", v);
        assert_eq!(parse("9184").unwrap().to_string(), "127.0.0.1:9184");
        assert_eq!(parse(":9200").unwrap().to_string(), "127.0.0.1:9200");
        assert_eq!(parse("0.0.0.0:1").unwrap().to_string(), "0.0.0.0:1");
        assert!(parse("localhost:x").unwrap_err().to_string().contains("[ops] listen"));
        let off = FileConfig::default().ops_settings(&|_| None).unwrap();
        assert!(off.listen.is_none() && off.webhook.is_none());

        let file: FileConfig =
            toml::from_str("[ops]\nlisten = \"127.0.0.1:0\"\n[webhook]\nenabled = true\nlisten = \"9185\"\n").unwrap();
        let err = file.ops_settings(&|_| None).unwrap_err().to_string();
        assert!(err.contains(TRIBUTE_API_KEY_ENV), "{err}");
        let env = |k: &str| (k == TRIBUTE_API_KEY_ENV).then(|| "tribute-key-123".to_owned());
        let on = file.ops_settings(&env).unwrap();
        let w = on.webhook.expect("enabled");
        assert_eq!(w.reconcile.match_window, Duration::from_secs(3600));
        assert_eq!(w.listen.to_string(), "127.0.0.1:9185");
        assert!(!format!("{w:?}").contains("tribute-key-123"), "key leaked");

        // The webhook no longer needs the ops listener, but it needs its own.
        let webhook_only: FileConfig = toml::from_str("[webhook]\nenabled = true\nlisten = \"9185\"\n").unwrap();
        assert!(webhook_only.ops_settings(&env).unwrap().listen.is_none());
        let no_listener: FileConfig = toml::from_str("[ops]\nlisten = \"9184\"\n[webhook]\nenabled = true\n").unwrap();
        assert!(no_listener.ops_settings(&env).unwrap_err().to_string().contains("[webhook] listen"));
    }

    #[test]
    fn the_webhook_never_shares_the_ops_listener() {
        let env = |k: &str| (k == TRIBUTE_API_KEY_ENV).then(|| "tribute-key-123".to_owned());
        for (ops, webhook) in
            [("9184", "9184"), ("127.0.0.1:9184", "127.0.0.1:9184"), ("0.0.0.0:9184", "9184"), ("9184", "0.0.0.0:9184")]
        {
            let text = format!("[ops]\nlisten = {ops:?}\n[webhook]\nenabled = true\nlisten = {webhook:?}\n");
            let err = toml::from_str::<FileConfig>(&text).unwrap().ops_settings(&env).unwrap_err().to_string();
            assert!(err.contains("[webhook] listen") && err.contains("overlap"), "{ops} / {webhook}: {err}");
        }
        for (ops, webhook) in [("9184", "9185"), ("127.0.0.1:9184", "10.0.0.5:9184"), ("127.0.0.1:0", "127.0.0.1:0")] {
            let text = format!("[ops]\nlisten = {ops:?}\n[webhook]\nenabled = true\nlisten = {webhook:?}\n");
            assert!(toml::from_str::<FileConfig>(&text).unwrap().ops_settings(&env).is_ok(), "{ops} / {webhook}");
        }
    }
}
