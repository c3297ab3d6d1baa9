//! The activation client: one signed, idempotent `POST /activate` with
//! retries, turned into a typed outcome.
//!
//! Retrying is safe because every attempt carries the same body bytes and
//! the same `Idempotency-Key` (the order reference): a backend that already
//! activated the order answers `already_activated`. Each attempt is signed
//! afresh, with a timestamp strictly later than the one last used for the
//! same key (also across calls), so no two requests ever carry the same
//! signature header and a receiver's replay check never refuses our own retry.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use tracing::{debug, warn};

use super::answer::{classify, classify_deactivation, snippet, Verdict};
use super::error::BackendError;
use super::signing::{self, SIGNATURE_HEADER};
pub use super::wire::{ActivationOutcome, ActivationRequest, DeactivationOutcome, DeactivationRequest};
use crate::config::sensitive_url::redact_credentials;
use crate::runtime::backoff::{self, Jitter};

/// Header carrying the order reference so the backend can deduplicate.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Where the backend is and how hard to try. `Debug` never shows the secret
/// nor credentials in the URL.
#[derive(Clone)]
pub struct BackendConfig {
    /// Base URL; requests go to `{url}/activate`. It may hold `user:password@`
    /// (sent as Basic auth); every message shows it masked.
    pub url: String,
    /// Shared HMAC secret for `X-Tribute-Assistant-Signature`.
    pub secret: SecretString,
    /// Limit for one attempt (connect + request + answer).
    pub timeout: Duration,
    /// Attempts per [`BackendClient::activate`] call before giving up with
    /// [`BackendError::Unavailable`] (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles after that.
    pub initial_backoff: Duration,
    /// Upper bound for any single backoff (also caps a `Retry-After`).
    pub max_backoff: Duration,
}

impl BackendConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
    pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(200);
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);

    /// A config with the default timeout, attempts and backoff.
    pub fn new(url: impl Into<String>, secret: SecretString) -> Self {
        Self {
            url: url.into(),
            secret,
            timeout: Self::DEFAULT_TIMEOUT,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            initial_backoff: Self::DEFAULT_INITIAL_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
        }
    }
}

impl fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendConfig")
            .field("url", &redact_credentials(&self.url))
            .field("secret", &"[redacted]")
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

/// Sees every HTTP attempt the client makes, for the latency histogram and
/// the request counters on `/metrics`. Kept as a trait so `backend` does not
/// depend on the ops module.
pub trait BackendObserver: Send + Sync {
    /// One attempt at `endpoint` (`activate`, `deactivate`, `health`) took
    /// `took`; `result` is `ok` (a business answer), `retry` (transient) or
    /// `error` (a permanent refusal).
    fn observe(&self, endpoint: &'static str, took: Duration, result: &'static str);
}

/// Calls the publisher's activation endpoint. Cheap to clone (shares one
/// connection pool).
#[derive(Clone)]
pub struct BackendClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    deactivate_url: reqwest::Url,
    health_url: reqwest::Url,
    config: Arc<BackendConfig>,
    timestamps: Arc<Timestamps>,
    observer: Option<Arc<dyn BackendObserver>>,
}

impl fmt::Debug for BackendClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendClient").field("endpoint", &self.endpoint()).finish_non_exhaustive()
    }
}

/// Why the `GET /health` signature handshake did not prove a shared secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// Nothing answered (connection refused, DNS, TLS, timeout).
    #[error("cannot reach the backend: {0}")]
    Unreachable(String),
    /// The backend refused our signature: `code` is its 401 error code
    /// (`bad_signature` = a different secret, `stale_timestamp` = clocks apart).
    #[error("the backend refused our signature ({code}): {message}")]
    SignatureRefused { code: String, message: String },
    /// The backend accepted the request but did not prove it knows the
    /// secret (no or wrong signature on its answer, or it echoed another request).
    #[error("the backend did not prove it shares the secret: {0}")]
    Unproven(String),
    /// Any other answer (wrong URL, proxy error, 5xx).
    #[error("the backend answered HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
}

/// What a successful handshake measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The full `/health` URL that answered (credentials masked).
    pub url: String,
    /// Round trip of the signed request.
    pub latency: Duration,
}

impl BackendClient {
    /// Checks the config and builds the HTTP client (no request is made).
    pub fn new(config: BackendConfig) -> Result<Self, BackendError> {
        let invalid = |m: String| BackendError::InvalidConfig(m);
        if config.max_attempts == 0 {
            return Err(invalid("max_attempts must be at least 1".into()));
        }
        if config.timeout.is_zero() {
            return Err(invalid("timeout must be longer than zero".into()));
        }
        if config.secret.expose_secret().is_empty() {
            return Err(invalid("the HMAC secret is empty".into()));
        }
        let endpoint = endpoint_url(&config.url, "activate").map_err(invalid)?;
        let deactivate_url = endpoint_url(&config.url, "deactivate").map_err(invalid)?;
        let health_url = endpoint_url(&config.url, "health").map_err(invalid)?;
        if endpoint.scheme() == "http" && !is_loopback(&endpoint) {
            warn!(endpoint = %redact_credentials(endpoint.as_str()), "backend URL is plain http: requests are signed but not encrypted");
        }
        let http = crate::http::tls::client_builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tribute-assistant/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {}", error_chain(&e))))?;
        Ok(Self {
            http,
            endpoint,
            deactivate_url,
            health_url,
            config: Arc::new(config),
            timestamps: Arc::default(),
            observer: None,
        })
    }

    /// Reports every attempt to `observer` (latency histogram, counters).
    pub fn with_observer(mut self, observer: Arc<dyn BackendObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The full `/activate` URL this client posts to, credentials masked.
    pub fn endpoint(&self) -> std::borrow::Cow<'_, str> {
        redact_credentials(self.endpoint.as_str())
    }

    /// The full `/health` URL of the handshake, credentials masked.
    pub fn health_url(&self) -> std::borrow::Cow<'_, str> {
        redact_credentials(self.health_url.as_str())
    }

    /// Asks the backend to activate `req`, retrying transient failures with
    /// exponential backoff and jitter. Never activates twice: retries reuse
    /// the body and the idempotency key.
    pub async fn activate(&self, req: &ActivationRequest) -> Result<ActivationOutcome, BackendError> {
        let body =
            serde_json::to_vec(req).map_err(|e| BackendError::Protocol(format!("cannot encode the request: {e}")))?;
        self.call("activate", &self.endpoint, req.order_ref.as_str(), body, classify).await
    }

    /// Asks the backend to take back the product of an activated order
    /// (after a refund). Idempotent on the order reference like `activate`,
    /// with the same retries.
    pub async fn deactivate(&self, req: &DeactivationRequest) -> Result<DeactivationOutcome, BackendError> {
        let body =
            serde_json::to_vec(req).map_err(|e| BackendError::Protocol(format!("cannot encode the request: {e}")))?;
        self.call("deactivate", &self.deactivate_url, req.order_ref.as_str(), body, classify_deactivation).await
    }

    /// The signature handshake: a signed `GET /health` (method, path and
    /// the empty body are signed), answered with a body that echoes our header and is signed
    /// with the same secret. Success proves both sides hold the same secret
    /// and that the clocks agree within the 300 s window. One attempt, no retries.
    pub async fn health(&self) -> Result<HealthReport, HealthError> {
        let secret = self.config.secret.expose_secret().as_bytes();
        let request = signing::Request { method: "GET", path: self.health_url.path(), body: b"" };
        let sent = signing::sign(secret, crate::runtime::clock::now_secs(), &request);
        let started = std::time::Instant::now();
        let response = self.http.get(self.health_url.clone()).header(SIGNATURE_HEADER, &sent).send().await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                self.observe("health", started.elapsed(), "retry");
                return Err(HealthError::Unreachable(error_chain(&e)));
            }
        };
        let status = response.status().as_u16();
        let answer_signature =
            response.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.bytes().await.map_err(|e| HealthError::Unreachable(error_chain(&e)))?;
        let latency = started.elapsed();
        let result = check_health_answer(secret, &sent, status, answer_signature.as_deref(), &body);
        self.observe("health", latency, if result.is_ok() { "ok" } else { "error" });
        result.map(|()| HealthReport { url: self.health_url().into_owned(), latency })
    }

    fn observe(&self, endpoint: &'static str, took: Duration, result: &'static str) {
        if let Some(o) = &self.observer {
            o.observe(endpoint, took, result);
        }
    }

    /// One signed, idempotent POST with retries; `judge` turns each answer into a verdict.
    async fn call<T: fmt::Debug>(
        &self,
        name: &'static str,
        url: &reqwest::Url,
        key: &str,
        body: Vec<u8>,
        judge: fn(u16, Option<&str>, &[u8]) -> Verdict<T>,
    ) -> Result<T, BackendError> {
        let cfg = &self.config;
        let mut last_error = String::new();
        // Timestamps are per endpoint and key: a deactivation may follow an activation at once.
        let ts_key = format!("{name}:{key}");
        for attempt in 1..=cfg.max_attempts {
            let t = self.timestamps.next(&ts_key).await;
            let request = signing::Request { method: "POST", path: url.path(), body: &body };
            let signature = signing::sign(cfg.secret.expose_secret().as_bytes(), t, &request);
            debug!(order_ref = key, endpoint = name, attempt, t, "calling the backend");
            let started = std::time::Instant::now();
            let verdict = self.attempt(url, key, &signature, body.clone(), judge).await;
            let result = match &verdict {
                Verdict::Done(_) => "ok",
                Verdict::Retry { .. } => "retry",
                Verdict::Fail(_) => "error",
            };
            self.observe(name, started.elapsed(), result);
            match verdict {
                Verdict::Done(outcome) => {
                    debug!(order_ref = key, endpoint = name, attempt, ?outcome, "backend answered");
                    return Ok(outcome);
                }
                Verdict::Fail(err) => {
                    warn!(order_ref = key, endpoint = name, attempt, error = %err, "backend refused the request");
                    return Err(err);
                }
                Verdict::Retry { reason, retry_after } => {
                    last_error = reason;
                    if attempt == cfg.max_attempts {
                        warn!(order_ref = key, endpoint = name, attempt, error = %last_error, "backend attempt failed; no attempts left");
                        break;
                    }
                    let wait = retry_after.map(|d| d.min(cfg.max_backoff)).unwrap_or_else(|| {
                        backoff::delay(attempt.saturating_sub(1), cfg.initial_backoff, cfg.max_backoff, Jitter::Equal)
                    });
                    warn!(order_ref = key, endpoint = name, attempt, error = %last_error, retry_in = ?wait, "backend attempt failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(BackendError::Unavailable { attempts: cfg.max_attempts, last_error })
    }

    async fn attempt<T>(
        &self,
        url: &reqwest::Url,
        key: &str,
        signature: &str,
        body: Vec<u8>,
        judge: fn(u16, Option<&str>, &[u8]) -> Verdict<T>,
    ) -> Verdict<T> {
        let sent = self
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, key)
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Verdict::Retry { reason: error_chain(&e), retry_after: None },
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        match response.bytes().await {
            Ok(bytes) => judge(status, retry_after.as_deref(), &bytes),
            // The backend may have acted; a retry with the same key is answered idempotently.
            Err(e) => Verdict::Retry {
                reason: format!("HTTP {status}, body unreadable: {}", error_chain(&e)),
                retry_after: None,
            },
        }
    }
}

/// Judges the answer to a signed `GET /health` (see [`BackendClient::health`]).
fn check_health_answer(
    secret: &[u8],
    sent: &str,
    status: u16,
    answer_signature: Option<&str>,
    body: &[u8],
) -> Result<(), HealthError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        status: Option<String>,
        error: Option<String>,
        message: Option<String>,
        request_signature: Option<String>,
    }
    let answer: Option<Answer> = serde_json::from_slice(body).ok();
    match status {
        200 => {}
        401 => {
            let (code, message) = answer
                .map(|a| (a.error.unwrap_or_else(|| "unknown".into()), a.message.unwrap_or_default()))
                .unwrap_or_else(|| ("unknown".into(), snippet(body)));
            return Err(HealthError::SignatureRefused { code, message });
        }
        _ => return Err(HealthError::Rejected { status, body: snippet(body) }),
    }
    let Some(header) = answer_signature else {
        return Err(HealthError::Unproven(format!(
            "its answer carries no {SIGNATURE_HEADER} header (a backend that does not implement the handshake)"
        )));
    };
    signing::verify_v1(secret, header, body, crate::runtime::clock::now_secs(), signing::DEFAULT_TOLERANCE_SECS)
        .map_err(|e| {
            HealthError::Unproven(match e {
                signing::SignatureError::BadSignature => "its answer is signed with a different secret".to_owned(),
                other => format!("its answer's signature is unusable: {other}"),
            })
        })?;
    let Some(answer) = answer else {
        return Err(HealthError::Unproven(format!("its answer is not JSON: {}", snippet(body))));
    };
    if answer.status.as_deref() != Some("ok") || answer.request_signature.as_deref() != Some(sent) {
        return Err(HealthError::Unproven("its signed answer does not echo our request's signature".into()));
    }
    Ok(())
}

/// Hands out signature timestamps so that no two requests for the same
/// idempotency key (same body, hence same MAC for the same `t`) ever carry
/// the same header: a receiver would refuse the second one as a replay.
///
/// A repeat within the same second gets `t` one second past the previous
/// one instead of waiting, so quick retries cost no latency; the lead over
/// the real clock is bounded by [`Self::MAX_LEAD_SECS`] (far inside the
/// receivers' 300 s window) and only past that does a request wait.
/// Shared by all clones of a client; keys are forgotten once their last
/// `t` is far outside any receiver's window.
#[derive(Debug, Default)]
struct Timestamps {
    last_by_key: Mutex<HashMap<String, i64>>,
}

impl Timestamps {
    /// How long a key's last `t` is remembered (twice the receivers' window).
    const MEMORY_SECS: i64 = 2 * signing::DEFAULT_TOLERANCE_SECS;
    /// Furthest a `t` may run ahead of the real clock.
    const MAX_LEAD_SECS: i64 = 30;

    /// The `t` for the next request with `key`: now, or just past the last one used.
    async fn next(&self, key: &str) -> i64 {
        loop {
            let now = crate::runtime::clock::now_secs();
            {
                let mut last = self.last_by_key.lock().unwrap_or_else(|e| e.into_inner());
                let t = last.get(key).map_or(now, |&prev| now.max(prev + 1));
                if t - now <= Self::MAX_LEAD_SECS {
                    last.retain(|_, prev| *prev >= now - Self::MEMORY_SECS);
                    last.insert(key.to_owned(), t);
                    return t;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

fn endpoint_url(base: &str, path: &str) -> Result<reqwest::Url, String> {
    let base = base.trim();
    let shown = redact_credentials(base);
    let url = reqwest::Url::parse(base).map_err(|e| format!("backend URL {shown:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("backend URL must be http or https, not {:?}", url.scheme()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("backend URL must not have a query or fragment".into());
    }
    reqwest::Url::parse(&format!("{}/{path}", base.trim_end_matches('/')))
        .map_err(|e| format!("cannot build the {path} URL from {shown:?}: {e}"))
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An error with its causes, without the URL (it may hold credentials).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer body"
    } else if e.is_builder() {
        "cannot build the request"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> BackendConfig {
        BackendConfig::new(url, SecretString::from("s3cr3t-value"))
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let cfg = config("https://shop.example");
        let shown = format!("{cfg:?} {:?}", BackendClient::new(cfg.clone()).unwrap());
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn credentials_in_the_url_are_masked_in_debug_and_errors() {
        let cfg = config("https://shop:hunter2@shop.example/api");
        let client = BackendClient::new(cfg.clone()).unwrap();
        let shown = format!("{cfg:?} {client:?} {}", client.endpoint());
        assert!(!shown.contains("hunter2") && shown.contains("https://***@shop.example/api/activate"), "{shown}");
        let err = BackendClient::new(config("https://shop:hunter2@shop example/")).unwrap_err().to_string();
        assert!(!err.contains("hunter2") && err.contains("***@shop"), "{err}");
    }

    #[test]
    fn builds_the_activate_url_from_a_base() {
        for base in ["https://shop.example", "https://shop.example/", "https://shop.example/api/ta/ "] {
            let c = BackendClient::new(config(base)).unwrap();
            assert!(c.endpoint().ends_with("/activate") && !c.endpoint().contains("//activate"), "{}", c.endpoint());
        }
        assert_eq!(
            BackendClient::new(config("https://shop.example/api/")).unwrap().endpoint(),
            "https://shop.example/api/activate"
        );
    }

    #[test]
    fn rejects_unusable_configs() {
        for cfg in [
            config("not a url"),
            config("ftp://shop.example"),
            config("https://shop.example/?a=1"),
            BackendConfig { max_attempts: 0, ..config("https://shop.example") },
            BackendConfig { timeout: Duration::ZERO, ..config("https://shop.example") },
            BackendConfig { secret: SecretString::from(""), ..config("https://shop.example") },
        ] {
            assert!(matches!(BackendClient::new(cfg), Err(BackendError::InvalidConfig(_))));
        }
    }

    #[tokio::test]
    async fn timestamps_strictly_increase_per_key_without_waiting() {
        let ts = Timestamps::default();
        let started = std::time::Instant::now();
        let first: Vec<i64> = [ts.next("k").await, ts.next("k").await, ts.next("k").await].into();
        let other = ts.next("other").await;
        assert!(first.windows(2).all(|w| w[1] > w[0]), "{first:?}");
        assert!(other <= first[2], "other keys are not pushed ahead: {other} {first:?}");
        assert!(started.elapsed() < Duration::from_millis(500), "no waiting for the next second");
        assert!(first[2] - chrono::Utc::now().timestamp() <= Timestamps::MAX_LEAD_SECS);
    }
}
