//! `[ops]` in the config file: the private listener for `/healthz` and
//! `/metrics`, kept apart from the public webhook listener.

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use super::OpsSettings;
use crate::config::rules::{bounded_secs, parse_listen};
use crate::webhook::WebhookSection;

/// `[ops]`: the private HTTP listener for `/healthz` and `/metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsSection {
    /// `127.0.0.1:9184`, or just a port (`9184`) for 127.0.0.1. Unset: no listener.
    pub listen: Option<String>,
    /// `/healthz` answers 503 when no Telegram update arrived for this long.
    pub max_update_age_secs: Option<u64>,
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

impl OpsSection {
    /// Resolves `[ops]` and `[webhook]` (the API key from the environment or its file).
    pub fn resolve(
        &self,
        webhook: &WebhookSection,
        env: &impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<OpsSettings> {
        bounded_secs(&[("[ops] max_update_age_secs", self.max_update_age_secs)])?;
        let listen = self.listen.as_deref().map(|v| parse_listen("[ops] listen", v)).transpose()?;
        let webhook = webhook.resolve(env)?;
        if let (Some(ops), Some(w)) = (listen, &webhook) {
            ensure_distinct_listeners(ops, w.listen)?;
        }
        Ok(OpsSettings { listen, max_update_age: self.max_update_age_secs.map(Duration::from_secs), webhook })
    }
}
