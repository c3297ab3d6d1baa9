//! `[webhook]` in the config file: Tribute's payment webhooks (off by
//! default). The Tribute API key (the webhook's HMAC key) is read only from
//! the environment or a 0600 file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use secrecy::SecretString;
use serde::Deserialize;

use super::{ReconcileConfig, WebhookSettings};
use crate::config::rules::{bounded_secs, parse_listen};

/// The conventional port of the webhook listener (examples and error messages).
pub const DEFAULT_WEBHOOK_PORT: u16 = 9185;
/// Environment variable holding the Tribute API key (the webhook's HMAC key).
pub const TRIBUTE_API_KEY_ENV: &str = "TRIBUTE_ASSISTANT_TRIBUTE_API_KEY";

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

impl WebhookSection {
    /// The webhook's settings (`None` when off), the API key from the
    /// environment or its file.
    pub fn resolve(&self, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<WebhookSettings>> {
        bounded_secs(&[
            ("[webhook] match_window_secs", Some(self.match_window_secs)),
            ("[webhook] unmatched_grace_secs", Some(self.unmatched_grace_secs)),
        ])?;
        if !self.enabled {
            return Ok(None);
        }
        let Some(webhook_listen) = self.listen.as_deref() else {
            bail!(
                "[webhook] enabled needs [webhook] listen (e.g. \"127.0.0.1:{DEFAULT_WEBHOOK_PORT}\"): the webhook \
                     has a listener of its own, separate from [ops] listen; point the reverse proxy at it"
            );
        };
        let webhook_listen = parse_listen("[webhook] listen", webhook_listen)?;
        let key = match (env(TRIBUTE_API_KEY_ENV), &self.api_key_file) {
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
        Ok(Some(WebhookSettings {
            api_key: SecretString::from(key),
            listen: webhook_listen,
            reconcile: ReconcileConfig {
                match_window: Duration::from_secs(self.match_window_secs),
                unmatched_grace: Duration::from_secs(self.unmatched_grace_secs),
                ..Default::default()
            },
        }))
    }
}
