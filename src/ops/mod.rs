//! Operating the daemon: the HTTP listener with `/healthz` and `/metrics`,
//! the separate listener of the Tribute webhook when it is enabled, and the
//! Telegram wrapper that feeds them.
//!
//! Each listener is off unless its `listen` is set; a bare port binds
//! 127.0.0.1. Nothing on the ops listener changes state (not even
//! `/healthz`); the webhook listener serves only the webhook route, which
//! authenticates every request itself.

pub mod conversation_metrics;
mod health;
pub mod metrics;
pub mod observed_messenger;
mod server;
pub mod settings;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use health::{health_report, HealthReport};
pub use metrics::{Kind, MetricSource, Metrics, Sample, AGENT_ANSWERS, CUSTOMER_MESSAGES};
pub use observed_messenger::{ObservedMessenger, TelegramStats};
pub use server::{start as start_ops_server, start_webhook as start_webhook_server, OpsRuntime, OpsServer};
pub use settings::OpsSection;

use crate::runtime::TaskBoard;
use crate::store::Store;
use crate::webhook::{WebhookSettings, WebhookStats};

/// The ops part of the configuration, resolved.
#[derive(Debug, Clone, Default)]
pub struct OpsSettings {
    /// Where the ops listener binds; `None` = no `/healthz`, `/metrics`.
    pub listen: Option<SocketAddr>,
    /// `/healthz` fails when no Telegram update arrived for this long (unset = never).
    pub max_update_age: Option<Duration>,
    /// The Tribute webhook (its own listener) and reconciler, when enabled.
    pub webhook: Option<WebhookSettings>,
}

/// What `/healthz` and `/metrics` read.
pub struct OpsState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub telegram: Arc<TelegramStats>,
    pub webhook: Option<Arc<WebhookStats>>,
    pub max_update_age: Option<Duration>,
    /// The daemon's tasks: the daemon reports on it, `/healthz` judges it.
    pub tasks: Arc<TaskBoard>,
    started: Instant,
    external: RwLock<Vec<metrics::ExternalFamily>>,
}

impl OpsState {
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        telegram: Arc<TelegramStats>,
        max_update_age: Option<Duration>,
    ) -> Self {
        Self {
            store,
            metrics,
            telegram,
            webhook: None,
            max_update_age,
            tasks: TaskBoard::new(),
            started: Instant::now(),
            external: RwLock::new(metrics::external_families()),
        }
    }

    /// Wires the source of an externally owned family ([`CUSTOMER_MESSAGES`],
    /// [`AGENT_ANSWERS`]); an unknown name adds a new family with `help`.
    pub fn set_source(&self, name: &'static str, help: &'static str, kind: Kind, source: Arc<dyn MetricSource>) {
        let mut families = self.external.write().unwrap_or_else(|e| e.into_inner());
        match families.iter_mut().find(|f| f.name == name) {
            Some(f) => f.source = Some(source),
            None => families.push(metrics::ExternalFamily { name, help, kind, source: Some(source) }),
        }
    }

    fn external(&self) -> Vec<metrics::ExternalFamily> {
        self.external.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}
