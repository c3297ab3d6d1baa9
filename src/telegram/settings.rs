//! `[telegram]` in the config file: the chats, the pacing, and the API
//! credentials (the api_hash is a secret, read only from the environment or
//! a 0600 file). Turns into the real adapter's [`GrammersConfig`].

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use secrecy::SecretString;
use serde::Deserialize;

use super::grammers::{session_path, GrammersConfig, RateLimit};
use crate::config::rules::bounded_secs;

/// Environment variable holding the Telegram api_id (my.telegram.org).
pub const API_ID_ENV: &str = "TRIBUTE_ASSISTANT_API_ID";
/// Environment variable holding the Telegram api_hash (a secret).
pub const API_HASH_ENV: &str = "TRIBUTE_ASSISTANT_API_HASH";
/// Largest `[telegram] first_start_lookback_hours`: 100 years (in seconds it
/// must fit the clock's i64).
const MAX_LOOKBACK_HOURS: u64 = 100 * 366 * 24;

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
    /// How the bot's follow-up begins once Send delivered our reply,
    /// compared case-insensitively. When the Send button is gone and the
    /// answer to our press was lost, only this in the chat proves the
    /// delivery; without it the order goes to a moderator.
    #[serde(default = "default_delivered_texts")]
    pub delivered_texts: Vec<String>,
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
    /// The MTProto server to use instead of Telegram's own, as IPv4
    /// `address:port`: the testbed's (`tribute-assistant testbed` writes it),
    /// or one of Telegram's test servers. `login`, `chats`, `init` and `run`
    /// point the session at it; a key the session made with another server
    /// is dropped, never sent to this one.
    pub server: Option<String>,
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
    /// An order that has waited this long for a failing backend or Telegram
    /// is reported to the moderator chat, on one card per outage.
    #[serde(default = "default_outage_alert")]
    pub outage_alert_secs: u64,
}

impl Default for TelegramSection {
    fn default() -> Self {
        Self {
            tribute_chat: default_tribute_chat(),
            moderator_chat: None,
            send_button_texts: default_send_texts(),
            delivered_texts: default_delivered_texts(),
            button_timeout_secs: default_button_timeout(),
            max_flood_sleep_secs: default_flood_sleep(),
            first_start_lookback_hours: default_lookback(),
            resync_secs: default_resync(),
            resync_window_secs: default_resync_window(),
            reply_template: None,
            api_id: None,
            api_hash_file: None,
            session_file: None,
            server: None,
            rate_limit_per_minute: default_rate_per_minute(),
            rate_limit_burst: default_rate_burst(),
            flood_auto_sleep_secs: default_flood_auto_sleep(),
            request_timeout_secs: default_request_timeout(),
            outage_alert_secs: default_outage_alert(),
        }
    }
}

impl TelegramSection {
    /// Refuses values that cannot be durations or due times, naming them.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.server_addr()?;
        if self.first_start_lookback_hours > MAX_LOOKBACK_HOURS {
            bail!("[telegram] first_start_lookback_hours must be at most {MAX_LOOKBACK_HOURS} (100 years)");
        }
        bounded_secs(&[
            ("[telegram] button_timeout_secs", Some(self.button_timeout_secs)),
            ("[telegram] max_flood_sleep_secs", Some(self.max_flood_sleep_secs)),
            ("[telegram] resync_secs", Some(self.resync_secs)),
            ("[telegram] resync_window_secs", Some(self.resync_window_secs)),
            ("[telegram] flood_auto_sleep_secs", Some(self.flood_auto_sleep_secs)),
            ("[telegram] request_timeout_secs", Some(self.request_timeout_secs)),
            ("[telegram] outage_alert_secs", Some(self.outage_alert_secs)),
        ])
    }

    /// `[telegram] server`, parsed (`None`: Telegram's own servers).
    pub fn server_addr(&self) -> anyhow::Result<Option<SocketAddrV4>> {
        let Some(server) = self.server.as_deref() else { return Ok(None) };
        server.trim().parse::<SocketAddrV4>().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "[telegram] server must be an IPv4 address and port, like \"127.0.0.1:4430\" (the testbed's) or \"149.154.167.40:443\", not {server:?}"
            )
        })
    }

    /// Where the Telegram session lives (default: under the data dir).
    pub fn session_path(&self, data_dir: &Path) -> PathBuf {
        self.session_file.clone().unwrap_or_else(|| session_path(data_dir))
    }

    /// The real Telegram adapter's settings (`None` without API credentials).
    pub fn grammers_config(&self, api: Option<&TelegramApi>) -> anyhow::Result<GrammersConfig> {
        let api = api.with_context(|| {
            format!("No Telegram API credentials: set [telegram] api_id (or {API_ID_ENV}) and {API_HASH_ENV} (or [telegram] api_hash_file)")
        })?;
        let t = self;
        if t.rate_limit_per_minute.is_nan() || t.rate_limit_per_minute <= 0.0 {
            bail!("[telegram] rate_limit_per_minute must be positive");
        }
        Ok(GrammersConfig {
            api_id: api.api_id,
            tribute_chat: t.tribute_chat,
            group_chats: t.moderator_chat.into_iter().collect(),
            rate_limit: RateLimit { per_minute: t.rate_limit_per_minute, burst: t.rate_limit_burst.max(1) },
            flood_auto_sleep: Duration::from_secs(t.flood_auto_sleep_secs),
            request_timeout: Duration::from_secs(t.request_timeout_secs.max(1)),
        })
    }
}

fn default_tribute_chat() -> i64 {
    93372553
}
fn default_send_texts() -> Vec<String> {
    vec!["Send".into(), "Отправить".into()]
}
fn default_delivered_texts() -> Vec<String> {
    vec!["✅ Delivered".into(), "✅ Доставлено".into()]
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
fn default_outage_alert() -> u64 {
    15 * 60
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_is_an_ipv4_address_and_port_or_a_clear_error() {
        let t = |s: &str| TelegramSection { server: Some(s.into()), ..TelegramSection::default() };
        assert_eq!(t("127.0.0.1:4430").server_addr().unwrap(), Some("127.0.0.1:4430".parse().unwrap()));
        assert_eq!(TelegramSection::default().server_addr().unwrap(), None);
        let e = t("localhost").validate().unwrap_err().to_string();
        assert!(e.contains("[telegram] server") && e.contains("\"localhost\""), "{e}");
    }
}
