//! HTTP side of the reference backend: `POST /activate` and `GET /health`,
//! implemented the way we ask a publisher to implement them (signature
//! first, then replay, then the business rules), so the client is tested
//! against a receiver that is as strict as a real one.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tracing::{info, warn};

use super::ledger::{Decision, Ledger};
use crate::backend::signing::{verify, DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER};
use crate::backend::IDEMPOTENCY_HEADER;

/// State shared by the handlers and the [`ReferenceBackend`](super::ReferenceBackend) handle.
pub(super) struct Shared {
    pub(super) secret: SecretString,
    pub(super) ledger: Mutex<Ledger>,
}

impl Shared {
    /// The books; a panic in another handler cannot poison them for good.
    pub(super) fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The publisher-side view of the body: every documented field is
/// required, unknown fields are ignored (forward compatibility).
#[derive(serde::Deserialize)]
#[allow(dead_code)] // price/customer/received_at are checked for presence only
struct ActivationBody {
    order_ref: String,
    account_id: String,
    product: String,
    price: Price,
    customer: Customer,
    received_at: String,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Price {
    amount_minor: i64,
    currency: String,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Customer {
    telegram_user_id: Option<i64>,
    name: String,
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().route("/activate", post(activate)).route("/health", get(health)).with_state(shared)
}

async fn activate(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let key = header(&headers, IDEMPOTENCY_HEADER).filter(|k| !k.is_empty()).map(str::to_owned);
    let delay = {
        let mut ledger = shared.ledger();
        ledger.note_request(key.as_deref());
        ledger.delay
    };
    let response = process(&shared, key.as_deref(), &headers, &body);
    if let Some(key) = &key {
        // Counted before the sleep so it is recorded even if the client gives up meanwhile.
        shared.ledger().add_handler_time(key, started.elapsed() + delay);
    }
    answer_late(delay, response).await
}

/// Decides the answer. Fully synchronous: the request is committed before
/// any configured delay, like a backend that activates and then answers slowly.
fn process(shared: &Shared, key: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Response {
    let t = match check_signature(shared, headers, body) {
        Ok(t) => t,
        Err(refusal) => return refusal.into_response(),
    };
    {
        let mut ledger = shared.ledger();
        let now = Utc::now().timestamp();
        let signature = header(headers, SIGNATURE_HEADER).unwrap_or_default();
        if !ledger.accept_signature(signature, t, now - 2 * DEFAULT_TOLERANCE_SECS) {
            ledger.stats.rejected_signatures += 1;
            warn!(order_ref = key.unwrap_or("-"), "refused a replayed signature");
            return unauthorized("replayed_signature", "this exact signature was already accepted");
        }
        if ledger.take_injected_failure() {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "error": "injected failure"}),
            );
        }
    }
    let Some(key) = key else {
        return bad_request("missing_idempotency_key", "the Idempotency-Key header is required");
    };
    let order: ActivationBody = match serde_json::from_slice(body) {
        Ok(order) => order,
        Err(e) => return bad_request("invalid_json", &e.to_string()),
    };
    if order.order_ref != key {
        return bad_request("idempotency_key_mismatch", "Idempotency-Key must equal order_ref");
    }
    let decision = shared.ledger().decide(key, &order.account_id, &order.product);
    match decision {
        Decision::Activated(id) => {
            info!(order_ref = key, account = %order.account_id, product = %order.product, activation_id = %id, "activated");
            reply(StatusCode::OK, json!({"status": "activated", "activation_id": id}))
        }
        Decision::AlreadyActivated(id) => {
            info!(order_ref = key, activation_id = %id, "already activated");
            reply(StatusCode::OK, json!({"status": "already_activated", "activation_id": id}))
        }
        Decision::NoPendingOrder => reply(StatusCode::NOT_FOUND, json!({"status": "no_pending_order"})),
        Decision::UnknownAccount => reply(StatusCode::UNPROCESSABLE_ENTITY, json!({"status": "unknown_account"})),
    }
}

async fn health(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let delay = shared.ledger().delay;
    let response = if header(&headers, SIGNATURE_HEADER).is_some() {
        match check_signature(&shared, &headers, &body) {
            Ok(_) => reply(StatusCode::OK, json!({"status": "ok"})),
            Err(refusal) => refusal.into_response(),
        }
    } else {
        reply(StatusCode::OK, json!({"status": "ok"}))
    };
    answer_late(delay, response).await
}

/// Why a signature was refused: a 401 with this code and message.
struct Refusal {
    code: &'static str,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        unauthorized(self.code, &self.message)
    }
}

/// Verifies the signature header; a refusal is counted and logged here.
fn check_signature(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<i64, Refusal> {
    let now = Utc::now().timestamp();
    let result = match header(headers, SIGNATURE_HEADER) {
        None => {
            Err(Refusal { code: "missing_signature", message: format!("the {SIGNATURE_HEADER} header is required") })
        }
        Some(value) => verify(shared.secret.expose_secret().as_bytes(), value, body, now, DEFAULT_TOLERANCE_SECS)
            .map_err(|e| Refusal { code: e.code(), message: e.to_string() }),
    };
    result.inspect_err(|refusal| {
        shared.ledger().stats.rejected_signatures += 1;
        warn!(reason = refusal.code, "refused a request signature");
    })
}

async fn answer_late(delay: Duration, response: Response) -> Response {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn unauthorized(code: &str, message: &str) -> Response {
    reply(StatusCode::UNAUTHORIZED, json!({"status": "bad_signature", "error": code, "message": message}))
}

fn bad_request(code: &str, message: &str) -> Response {
    reply(StatusCode::BAD_REQUEST, json!({"status": "bad_request", "error": code, "message": message}))
}
