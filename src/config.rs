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
use crate::tribute::ParserConfig;

/// Environment variable holding the backend HMAC secret.
pub const BACKEND_SECRET_ENV: &str = "TRIBUTE_ASSISTANT_BACKEND_SECRET";
/// Environment variable overriding `backend.url`.
pub const BACKEND_URL_ENV: &str = "TRIBUTE_ASSISTANT_BACKEND_URL";
/// Environment variable overriding `data_dir`.
pub const DATA_DIR_ENV: &str = "TRIBUTE_ASSISTANT_DATA_DIR";

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
    /// Reply to the Tribute message; {product}, {account_id}, {order_ref}, {price}.
    pub reply_template: Option<String>,
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
            reply_template: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    pub url: Option<String>,
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserSection {
    /// Regex for the account ID in Order Details (group 1 if present).
    pub account_pattern: Option<String>,
}

impl ParserSection {
    pub fn parser_config(&self) -> anyhow::Result<ParserConfig> {
        match &self.account_pattern {
            Some(p) => ParserConfig::default()
                .with_account_pattern(p)
                .with_context(|| format!("Invalid [parser] account_pattern {p:?}")),
            None => Ok(ParserConfig::default()),
        }
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
fn default_backend_timeout() -> u64 {
    10
}
fn default_attempts() -> u32 {
    5
}
fn default_park() -> u64 {
    60
}

/// Everything the daemon needs, with secrets resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub telegram: TelegramSection,
    pub backend_url: String,
    pub backend_secret: SecretString,
    pub backend: BackendSection,
    pub parser: ParserSection,
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
        let backend_url = env(BACKEND_URL_ENV).or_else(|| backend.url.clone()).with_context(|| {
            format!("No backend URL: set [backend] url in the config file or {BACKEND_URL_ENV}")
        })?;
        let secret = match (env(BACKEND_SECRET_ENV), &backend.secret_file) {
            (Some(s), _) => s,
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("Failed to read the backend secret file {}", path.display()))?
                .trim()
                .to_owned(),
            (None, None) => bail!(
                "No backend secret: set {BACKEND_SECRET_ENV} or [backend] secret_file (a 0600 file)"
            ),
        };
        if secret.is_empty() {
            bail!("The backend secret is empty");
        }
        let data_dir = env(DATA_DIR_ENV).map(PathBuf::from).unwrap_or(file.data_dir);
        Ok(Self {
            data_dir,
            telegram: file.telegram,
            backend_url,
            backend_secret: SecretString::from(secret),
            backend,
            parser: file.parser,
        })
    }

    pub fn backend_config(&self) -> BackendConfig {
        BackendConfig {
            url: self.backend_url.clone(),
            secret: self.backend_secret.clone(),
            timeout: Duration::from_secs(self.backend.timeout_secs),
            max_attempts: self.backend.max_attempts,
            ..BackendConfig::new(self.backend_url.clone(), self.backend_secret.clone())
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
        }
    }

    pub fn ingest_config(&self) -> anyhow::Result<IngestConfig> {
        Ok(IngestConfig { parser: self.parser.parser_config()?, tribute_bot: self.telegram.tribute_chat })
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(crate::DATABASE_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_comes_from_env_and_is_redacted_in_debug() {
        let file: FileConfig = toml::from_str("[backend]\nurl = \"http://x\"\n").unwrap();
        let cfg = Config::resolve(file, |k| (k == BACKEND_SECRET_ENV).then(|| "hunter2-secret".to_owned()))
            .unwrap();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("hunter2"), "secret leaked: {dbg}");
        assert_eq!(cfg.telegram.send_button_texts, vec!["Send", "Отправить"]);
        assert!(!format!("{:?}", cfg.backend_config()).contains("hunter2"));
        assert_eq!(cfg.workflow_config().tribute_chat, 93372553);
        assert_eq!(cfg.workflow_config().reply_template, DEFAULT_REPLY_TEMPLATE);
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
}
