//! `[backend]` in the config file. The HMAC secret is read only from the
//! environment or a 0600 file named here, never from the TOML itself, so the
//! config file can be shared.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use secrecy::SecretString;
use serde::Deserialize;

use super::BackendConfig;
use crate::config::rules::bounded_secs;
use crate::config::sensitive_url::SensitiveUrl;

/// Environment variable holding the backend HMAC secret.
pub const BACKEND_SECRET_ENV: &str = "TRIBUTE_ASSISTANT_BACKEND_SECRET";
/// Environment variable overriding `backend.url`.
pub const BACKEND_URL_ENV: &str = "TRIBUTE_ASSISTANT_BACKEND_URL";

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

impl Default for BackendSection {
    fn default() -> Self {
        Self {
            url: None,
            secret_file: None,
            timeout_secs: default_backend_timeout(),
            max_attempts: default_attempts(),
            park_secs: default_park(),
        }
    }
}

/// The backend's address and secret, resolved from the section and the environment.
#[derive(Debug, Clone)]
pub struct BackendAccess {
    pub url: SensitiveUrl,
    pub secret: SecretString,
}

impl BackendSection {
    /// The URL (environment first) and the secret (environment, else the
    /// secret file); an error says which one is missing and how to set it.
    pub fn resolve(&self, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<BackendAccess> {
        bounded_secs(&[
            ("[backend] timeout_secs", Some(self.timeout_secs)),
            ("[backend] park_secs", Some(self.park_secs)),
        ])?;
        let url = env(BACKEND_URL_ENV)
            .map(SensitiveUrl::from)
            .or_else(|| self.url.clone())
            .with_context(|| format!("No backend URL: set [backend] url in the config file or {BACKEND_URL_ENV}"))?;
        let secret = match (env(BACKEND_SECRET_ENV), &self.secret_file) {
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
        Ok(BackendAccess { url, secret: SecretString::from(secret) })
    }

    /// The activation client's settings.
    pub fn backend_config(&self, access: &BackendAccess) -> BackendConfig {
        BackendConfig {
            timeout: Duration::from_secs(self.timeout_secs),
            max_attempts: self.max_attempts,
            ..BackendConfig::new(access.url.expose(), access.secret.clone())
        }
    }
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
