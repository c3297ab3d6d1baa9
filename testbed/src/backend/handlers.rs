//! HTTP side of the reference backend: `POST /activate`, `POST /deactivate`
//! and the signed `GET /health` handshake,
//! implemented the way we ask a publisher to implement them (signature
//! first, then replay, then the business rules), so the client is tested
//! against a receiver that is as strict as a real one.
//!
//! The `v2` signature covers the path from the request line. This router is
//! served at the root, so `Uri::path` is that path; a receiver mounted under
//! a prefix must verify against the full original path (in axum,
//! `OriginalUri`), not the one its framework left after routing.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tracing::{info, warn};

use super::ledger::{Deactivation, Decision, Ledger};
use tribute_assistant::backend::signing::{
    sign_v1, verify, Accept, Request, SignatureError, Verified, DEFAULT_TOLERANCE_SECS, SIGNATURE_HEADER,
};
use tribute_assistant::backend::IDEMPOTENCY_HEADER;

/// The secrets a request may be signed with. During a rotation both the
/// new (`current`) and the old (`previous`) one are accepted, so the
/// operator can switch the assistant over at any moment without a window
/// in which activations fail.
pub(super) struct Secrets {
    pub(super) current: SecretString,
    pub(super) previous: Option<SecretString>,
    /// `v1` or `v2` during the migration; `v2` only once every sender signs it.
    pub(super) accept: Accept,
}

/// State shared by the handlers and the [`ReferenceBackend`](super::ReferenceBackend) handle.
pub(super) struct Shared {
    pub(super) secrets: Mutex<Secrets>,
    pub(super) ledger: Mutex<Ledger>,
}

impl Shared {
    pub(super) fn secrets(&self) -> MutexGuard<'_, Secrets> {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The books; a panic in another handler cannot poison them for good.
    pub(super) fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The publisher-side view of the body: every documented field is
/// required, unknown fields are ignored (forward compatibility).
#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "price/customer/received_at are checked for presence only")]
struct ActivationBody {
    order_ref: String,
    account_id: String,
    product: String,
    price: Price,
    customer: Customer,
    received_at: String,
}

#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "checked for presence only, as part of ActivationBody")]
struct Price {
    amount_minor: i64,
    currency: String,
}

#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "checked for presence only, as part of ActivationBody")]
struct Customer {
    telegram_user_id: Option<i64>,
    name: String,
}

/// The publisher-side view of a `/deactivate` body.
#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "detail/purchase_id/refunded_at are informational")]
struct DeactivationBody {
    order_ref: String,
    activation_id: String,
    reason: String,
    detail: Option<String>,
    purchase_id: Option<String>,
    refunded_at: String,
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/activate", post(activate))
        .route("/deactivate", post(deactivate))
        .route("/health", get(health))
        .with_state(shared)
}

async fn activate(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let key = header(&headers, IDEMPOTENCY_HEADER).filter(|k| !k.is_empty()).map(str::to_owned);
    let delay = {
        let mut ledger = shared.ledger();
        ledger.note_request(key.as_deref());
        ledger.delay
    };
    let request = Request { method: method.as_str(), path: uri.path(), body: &body };
    let response = process(&shared, key.as_deref(), &headers, &request);
    if let Some(key) = &key {
        // Counted before the sleep so it is recorded even if the client gives up meanwhile.
        shared.ledger().add_handler_time(key, started.elapsed() + delay);
    }
    answer_late(delay, response).await
}

/// Decides the answer. Fully synchronous: the request is committed before
/// any configured delay, like a backend that activates and then answers slowly.
fn process(shared: &Shared, key: Option<&str>, headers: &HeaderMap, request: &Request<'_>) -> Response {
    let (key, order) = match admit::<ActivationBody>(shared, key, headers, request) {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    {
        let mut ledger = shared.ledger();
        if ledger.reject_next > 0 {
            ledger.reject_next -= 1;
            return bad_request("product_not_sold", "this product cannot be activated (injected refusal)");
        }
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
        Decision::AlreadyFulfilled => {
            info!(order_ref = key, account = %order.account_id, product = %order.product, "already fulfilled: a second payment");
            reply(StatusCode::CONFLICT, json!({"status": "already_fulfilled"}))
        }
    }
}

/// A POST body that names its order; the Idempotency-Key must equal it.
trait OrderBody: serde::de::DeserializeOwned {
    fn order_ref(&self) -> &str;
}

impl OrderBody for ActivationBody {
    fn order_ref(&self) -> &str {
        &self.order_ref
    }
}

impl OrderBody for DeactivationBody {
    fn order_ref(&self) -> &str {
        &self.order_ref
    }
}

/// What both POST endpoints check before their business rules, in this
/// order: signature, replay and injected faults, the Idempotency-Key, the
/// JSON body, and that the key names the body's order.
// The refusal is the response itself, as axum handlers return it.
#[allow(clippy::result_large_err)]
fn admit<'k, B: OrderBody>(
    shared: &Shared,
    key: Option<&'k str>,
    headers: &HeaderMap,
    request: &Request<'_>,
) -> Result<(&'k str, B), Response> {
    let (verified, _) = check_signature(shared, headers, request).map_err(IntoResponse::into_response)?;
    if let Some(refusal) = check_replay_and_faults(shared, key, &verified) {
        return Err(refusal);
    }
    let Some(key) = key else {
        return Err(bad_request("missing_idempotency_key", "the Idempotency-Key header is required"));
    };
    let parsed: B = serde_json::from_slice(request.body).map_err(|e| bad_request("invalid_json", &e.to_string()))?;
    if parsed.order_ref() != key {
        return Err(bad_request("idempotency_key_mismatch", "Idempotency-Key must equal order_ref"));
    }
    Ok((key, parsed))
}

/// The replay check and injected failures, shared by both POST endpoints.
/// Replays are keyed on what was verified (`t` and the MACs that matched),
/// not on the header text, so a re-spelled or trimmed copy of an accepted
/// header is refused too.
fn check_replay_and_faults(shared: &Shared, key: Option<&str>, verified: &Verified) -> Option<Response> {
    {
        let mut ledger = shared.ledger();
        let now = tribute_assistant::runtime::clock::now_secs();
        if !ledger.accept_signature(verified.t, &verified.macs, now - 2 * DEFAULT_TOLERANCE_SECS) {
            ledger.stats.rejected_signatures += 1;
            warn!(order_ref = key.unwrap_or("-"), "refused a replayed signature");
            return Some(unauthorized("replayed_signature", "this signature was already accepted"));
        }
        if ledger.take_injected_failure() {
            return Some(reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "error": "injected failure"}),
            ));
        }
    }
    None
}

async fn deactivate(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = header(&headers, IDEMPOTENCY_HEADER).filter(|k| !k.is_empty()).map(str::to_owned);
    let delay = {
        let mut ledger = shared.ledger();
        ledger.stats.deactivation_requests += 1;
        ledger.delay
    };
    let request = Request { method: method.as_str(), path: uri.path(), body: &body };
    let response = process_deactivation(&shared, key.as_deref(), &headers, &request);
    answer_late(delay, response).await
}

/// Same order as `/activate`: signature, replay, then the business rules.
fn process_deactivation(shared: &Shared, key: Option<&str>, headers: &HeaderMap, request: &Request<'_>) -> Response {
    let (key, req) = match admit::<DeactivationBody>(shared, key, headers, request) {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    match shared.ledger().deactivate(key, &req.activation_id, &req.reason) {
        Deactivation::Deactivated => {
            info!(order_ref = key, activation_id = %req.activation_id, reason = %req.reason, "deactivated");
            reply(StatusCode::OK, json!({"status": "deactivated"}))
        }
        Deactivation::AlreadyDeactivated => reply(StatusCode::OK, json!({"status": "already_deactivated"})),
        Deactivation::NotActivated => reply(StatusCode::NOT_FOUND, json!({"status": "not_activated"})),
    }
}

/// The handshake: without a signature header a plain liveness answer;
/// with one, the signature over the empty body is checked and the answer
/// echoes it and is signed with the secret that matched, which proves to
/// the caller that we hold the same secret.
async fn health(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = shared.ledger().delay;
    let request = Request { method: method.as_str(), path: uri.path(), body: &body };
    let response = match header(&headers, SIGNATURE_HEADER) {
        None => reply(StatusCode::OK, json!({"status": "ok"})),
        Some(sent) => match check_signature(&shared, &headers, &request) {
            Ok((_, secret)) => {
                let answer =
                    serde_json::to_vec(&json!({"status": "ok", "request_signature": sent})).expect("JSON serialises");
                let signature =
                    sign_v1(secret.expose_secret().as_bytes(), tribute_assistant::runtime::clock::now_secs(), &answer);
                (
                    StatusCode::OK,
                    [
                        (CONTENT_TYPE, "application/json".to_owned()),
                        (HeaderName::from_static("x-tribute-assistant-signature"), signature),
                    ],
                    answer,
                )
                    .into_response()
            }
            Err(refusal) => refusal.into_response(),
        },
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

/// Verifies the signature header against the current and (during a
/// rotation) the previous secret; returns what verified (the matching MACs
/// under every secret, so a replay that keeps only the entries of one
/// secret is still recognised) and the first secret that matched.
/// A refusal is counted and logged here.
fn check_signature(
    shared: &Shared,
    headers: &HeaderMap,
    request: &Request<'_>,
) -> Result<(Verified, SecretString), Refusal> {
    let now = tribute_assistant::runtime::clock::now_secs();
    let result = match header(headers, SIGNATURE_HEADER) {
        None => {
            Err(Refusal { code: "missing_signature", message: format!("the {SIGNATURE_HEADER} header is required") })
        }
        Some(value) => {
            let secrets = shared.secrets();
            let candidates = std::iter::once(&secrets.current).chain(secrets.previous.as_ref());
            let mut first_error = None;
            let mut matched: Option<(Verified, SecretString)> = None;
            for secret in candidates {
                match verify(
                    secret.expose_secret().as_bytes(),
                    value,
                    request,
                    now,
                    DEFAULT_TOLERANCE_SECS,
                    secrets.accept,
                ) {
                    Ok(verified) => match &mut matched {
                        Some((first, _)) => first.macs.extend(verified.macs),
                        None => matched = Some((verified, secret.clone())),
                    },
                    // A genuine-but-stale answer says more than "bad signature" from the other secret.
                    Err(e) if first_error.is_none() || matches!(e, SignatureError::Stale { .. }) => {
                        first_error = Some(e)
                    }
                    Err(_) => {}
                }
            }
            matched.ok_or_else(|| {
                let e = first_error.unwrap_or(SignatureError::BadSignature);
                Refusal { code: e.code(), message: e.to_string() }
            })
        }
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
