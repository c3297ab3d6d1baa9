//! `POST /tribute/webhook`: verify, parse, store, then answer.
//!
//! The order of the checks is the contract with Tribute: a wrong or
//! missing signature is 401 before the body is even parsed; a correctly
//! signed body we cannot read is 400 (and kept, with a moderator card, so
//! nothing is lost); 200 is sent only after the event is committed, so a
//! crash before the commit makes Tribute deliver it again, and a repeat is
//! a no-op because events are unique on name + purchase.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::sync::Notify;
use tracing::{info, info_span, warn, Instrument};

use super::event::{body_key, parse_event, WebhookEvent};
use super::signature::{verify, SIGNATURE_HEADER};
use crate::store::{Store, StoredEvent};

/// Where Tribute posts (configure `https://<your host>/tribute/webhook` in Tribute).
pub const WEBHOOK_PATH: &str = "/tribute/webhook";

/// What the route needs. `Debug` never shows the API key.
pub struct WebhookState {
    pub store: Store,
    /// The Tribute API key: the HMAC key of `trbt-signature`.
    pub api_key: SecretString,
    /// Woken after a new event is stored, so matching starts at once.
    pub wake: Arc<Notify>,
    pub stats: Arc<WebhookStats>,
}

impl std::fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookState").field("api_key", &"[redacted]").finish_non_exhaustive()
    }
}

/// Deliveries by how they were answered, for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// 200, new event stored.
    pub stored: AtomicU64,
    /// 200, the same event was stored before.
    pub duplicates: AtomicU64,
    /// 401: missing or wrong `trbt-signature`.
    pub bad_signature: AtomicU64,
    /// 400: signed, but not a usable event.
    pub invalid: AtomicU64,
    /// 500: the database refused the write (Tribute retries).
    pub store_errors: AtomicU64,
}

/// The webhook route alone: everything its listener serves.
pub fn router(state: Arc<WebhookState>) -> Router {
    Router::new().route(WEBHOOK_PATH, post(receive)).with_state(state)
}

async fn receive(State(state): State<Arc<WebhookState>>, headers: HeaderMap, body: Bytes) -> Response {
    let count = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !verify(state.api_key.expose_secret().as_bytes(), signature, &body) {
        count(&state.stats.bad_signature);
        warn!(has_header = !signature.is_empty(), bytes = body.len(), "refused a webhook with a wrong signature");
        return answer(StatusCode::UNAUTHORIZED, json!({"status": "error", "error": "bad_signature"}));
    }
    let parsed = match parse_event(&body) {
        Ok(p) => p,
        Err(e) => {
            count(&state.stats.invalid);
            let raw = String::from_utf8_lossy(&body);
            warn!(error = %e, "refused a signed webhook that is not a usable event");
            if let Err(db) = state.store.store_invalid_webhook(&body_key(&body), &raw, &e.to_string()).await {
                warn!(error = %db, "could not keep the unreadable webhook body");
            }
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"status": "error", "error": "invalid_event", "message": e.to_string()}),
            );
        }
    };
    let stored = parsed.to_stored(&body);
    let span = info_span!("webhook", event = %parsed.name, purchase = %stored.purchase_key);
    async move {
        match state.store.store_webhook_event(&stored).await {
            Ok(StoredEvent::New) => {
                count(&state.stats.stored);
                info!(acted_on = !matches!(parsed.event, WebhookEvent::Other), "webhook event stored");
                state.wake.notify_one();
                answer(StatusCode::OK, json!({"status": "stored"}))
            }
            Ok(StoredEvent::Duplicate) => {
                count(&state.stats.duplicates);
                info!("webhook event was stored before; nothing to do");
                answer(StatusCode::OK, json!({"status": "duplicate"}))
            }
            Err(e) => {
                count(&state.stats.store_errors);
                warn!(error = %e, "could not store a webhook event; Tribute will retry");
                answer(StatusCode::INTERNAL_SERVER_ERROR, json!({"status": "error", "error": "not_stored"}))
            }
        }
    }
    .instrument(span)
    .await
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}
