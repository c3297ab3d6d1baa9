//! The listeners and the tasks that come with them.
//!
//! Two listeners, never one: the Tribute webhook is the only route that must
//! be reachable from the internet, while `/healthz` and `/metrics` are
//! unauthenticated and tell a stranger a lot (order counts, queue depths,
//! whether Telegram is connected). Serving the webhook alone on its own
//! address means a reverse proxy (or a firewall rule) cannot expose the ops
//! routes by accident.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::health::health_report;
use super::metrics::{render, Scrape};
use super::observed_messenger::TelegramStats;
use super::{Metrics, OpsSettings, OpsState};
use crate::backend::BackendClient;
use crate::http::ServerHandle;
use crate::store::Store;
use crate::webhook::{self, Reconciler, WebhookState, WebhookStats};

/// How long [`OpsRuntime::shutdown`] waits for the reconciler.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The running ops or webhook listener.
pub type OpsServer = ServerHandle;

/// Binds `addr` (port 0 picks a free port) and serves `/healthz` and `/metrics`.
pub async fn start(addr: SocketAddr, state: Arc<OpsState>) -> anyhow::Result<OpsServer> {
    let app = Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(state);
    serve(addr, app, "the ops listener", "[ops] listen").await
}

/// Binds `addr` and serves the Tribute webhook route, and nothing else.
pub async fn start_webhook(addr: SocketAddr, webhook: Arc<WebhookState>) -> anyhow::Result<OpsServer> {
    serve(addr, webhook::router(webhook), "the webhook listener", "[webhook] listen").await
}

async fn serve(addr: SocketAddr, app: Router, what: &'static str, setting: &str) -> anyhow::Result<OpsServer> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("Failed to bind {what} to {addr} ({setting})"))?;
    let server = ServerHandle::serve(listener, app, what)?;
    info!(addr = %server.addr(), listener = what, "listening");
    Ok(server)
}

async fn healthz(State(state): State<Arc<OpsState>>) -> Response {
    let report = health_report(&state).await;
    let status = if report.healthy() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

async fn metrics(State(state): State<Arc<OpsState>>) -> Response {
    let store = match state.store.snapshot().await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot read the store for /metrics");
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the store: {e}\n")).into_response();
        }
    };
    let mut external = Vec::new();
    for family in state.external() {
        let samples = match &family.source {
            Some(source) => source.samples().await.unwrap_or_else(|e| {
                warn!(family = family.name, error = %e, "a metric source failed; exporting no samples");
                Vec::new()
            }),
            None => Vec::new(),
        };
        external.push((family, samples));
    }
    let webhook = state.webhook.as_ref().map(|w| {
        let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("stored", n(&w.stored)),
            ("duplicate", n(&w.duplicates)),
            ("bad_signature", n(&w.bad_signature)),
            ("invalid", n(&w.invalid)),
            ("store_error", n(&w.store_errors)),
        ]
    });
    let text = render(&Scrape {
        store: &store,
        telegram: &state.telegram.snapshot(),
        metrics: &state.metrics,
        webhook,
        external,
        uptime: state.uptime(),
        tasks: state.tasks.reports(crate::runtime::clock::now_ms()),
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// The listeners and the webhook reconciler, as the daemon runs them.
pub struct OpsRuntime {
    /// `/healthz` and `/metrics` (`[ops] listen`).
    pub server: Option<OpsServer>,
    /// The Tribute webhook alone (`[webhook] listen`).
    pub webhook_server: Option<OpsServer>,
    /// Shared with the listener; the lead wires metric sources here.
    pub state: Arc<OpsState>,
    reconciler: Option<JoinHandle<()>>,
}

impl OpsRuntime {
    /// Starts what `settings` asks for: the ops listener, the webhook
    /// listener with its reconciler, both or neither.
    pub async fn start(
        settings: &OpsSettings,
        store: Store,
        backend: BackendClient,
        metrics: Arc<Metrics>,
        telegram: Arc<TelegramStats>,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let mut state = OpsState::new(store.clone(), metrics, telegram, settings.max_update_age);
        let mut webhook_server = None;
        let mut reconciler = None;
        if let Some(w) = &settings.webhook {
            if let Some(ops) = settings.listen {
                crate::ops::settings::ensure_distinct_listeners(ops, w.listen)?;
            }
            let stats = Arc::new(WebhookStats::default());
            let wake = Arc::new(Notify::new());
            state.webhook = Some(stats.clone());
            let webhook_state =
                Arc::new(WebhookState { store: store.clone(), api_key: w.api_key.clone(), wake: wake.clone(), stats });
            webhook_server = Some(start_webhook(w.listen, webhook_state).await?);
            let r = Reconciler::new(store, backend, w.reconcile.clone(), wake);
            reconciler = Some(tokio::spawn(r.run(shutdown)));
        }
        let state = Arc::new(state);
        let server = match settings.listen {
            Some(addr) => Some(start(addr, state.clone()).await?),
            None => None,
        };
        Ok(Self { server, webhook_server, state, reconciler })
    }

    /// `http://<addr>` of the ops listener.
    pub fn url(&self) -> Option<String> {
        self.server.as_ref().map(OpsServer::url)
    }

    /// `http://<addr>` of the webhook listener (post to [`webhook::WEBHOOK_PATH`] there).
    pub fn webhook_url(&self) -> Option<String> {
        self.webhook_server.as_ref().map(OpsServer::url)
    }

    /// Stops the listeners; the reconciler stops on the shutdown flag (waited for up to 5 s).
    pub async fn shutdown(mut self) {
        for server in [self.server.take(), self.webhook_server.take()].into_iter().flatten() {
            server.shutdown().await;
        }
        if let Some(mut task) = self.reconciler.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}
