//! Tribute webhooks as a second source (optional, off by default).
//!
//! Tribute signs each webhook (`trbt-signature`: hex HMAC-SHA256 of the raw
//! body with the Tribute API key) and retries for about a day on non-2xx.
//! A listener of its own (`[webhook] listen`, never the ops listener's
//! address) serves [`route::WEBHOOK_PATH`] alone when `[webhook] enabled`:
//! [`signature`] checks the bytes, [`event`] types the body, the store
//! keeps every event unique on name + purchase, and [`reconcile`] matches
//! purchases to Telegram orders, flags what does not add up and turns a
//! refund of an activated order into one backend `/deactivate`.

pub mod event;
pub mod reconcile;
pub mod route;
pub mod settings;
pub mod signature;

use std::net::SocketAddr;

use secrecy::SecretString;

pub use event::{parse_event, EventError, ParsedEvent, WebhookEvent};
pub use reconcile::{Pass, ReconcileConfig, Reconciler};
pub use route::{router, WebhookState, WebhookStats, WEBHOOK_PATH};
pub use settings::{WebhookSection, TRIBUTE_API_KEY_ENV};

/// Everything the webhook needs from the config. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The Tribute API key (Tribute → Settings → API), the HMAC key of `trbt-signature`.
    pub api_key: SecretString,
    /// Where the webhook listener binds (the public side, behind a reverse proxy).
    pub listen: SocketAddr,
    pub reconcile: ReconcileConfig,
}
