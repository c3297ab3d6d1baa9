//! The backend contract, end to end: the published signature vectors (from
//! docs/, computed independently with Python) against our signer, and the
//! real client against the real reference backend on loopback, including
//! the faults the daemon must survive (5xx, backend down, slow answers)
//! and the attacks the receiver must refuse (wrong secret, stale or
//! replayed signatures).

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::Value;
use tribute_assistant::backend::signing::{self, Accept, SignatureError, SIGNATURE_HEADER};
use tribute_assistant::backend::{
    ActivationOutcome, ActivationRequest, BackendClient, BackendConfig, BackendError, DeactivationOutcome,
    DeactivationRequest, HealthError, IDEMPOTENCY_HEADER,
};
use tribute_assistant::domain::{AccountId, Currency, Money, OrderRef};
use tribute_testbed::backend::ReferenceBackend;

const SECRET: &str = "contract-test-secret";

fn vector_file() -> Value {
    let path = crate::support::repo().join("docs/signature-test-vectors.json");
    let text = std::fs::read_to_string(path).expect("docs/signature-test-vectors.json is readable");
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn vectors() -> Vec<Value> {
    let vectors = vector_file()["vectors"].as_array().expect("vectors array").clone();
    assert!(vectors.len() >= 3, "the vector file lost its vectors");
    vectors
}

/// The request a vector signs (`kind` = `request`).
fn signed_request(v: &Value) -> signing::Request<'_> {
    signing::Request {
        method: v["method"].as_str().unwrap(),
        path: v["path"].as_str().unwrap(),
        body: v["body"].as_str().unwrap().as_bytes(),
    }
}

/// Signs a POST to `/activate` of the reference backend (served at the root).
fn sign_activate(secret: &str, t: i64, body: &[u8]) -> String {
    signing::sign(secret.as_bytes(), t, &signing::Request { method: "POST", path: "/activate", body })
}

fn vector(name: &str) -> Value {
    vectors().into_iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no vector {name}"))
}

fn request(message_id: i32, account: &str, product: &str) -> ActivationRequest {
    ActivationRequest {
        order_ref: OrderRef::for_message(93372553, message_id),
        account_id: AccountId::parse(account).unwrap(),
        product: product.into(),
        price: Money::new(500, Currency::Eur).unwrap(),
        customer_telegram_id: Some(777),
        customer_name: "Иван".into(),
        received_at: Utc::now(),
    }
}

fn config(url: String, secret: &str) -> BackendConfig {
    BackendConfig {
        timeout: Duration::from_secs(5),
        max_attempts: 5,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        ..BackendConfig::new(url, SecretString::from(secret))
    }
}

async fn setup() -> (ReferenceBackend, BackendClient) {
    let backend = ReferenceBackend::start(SecretString::from(SECRET)).await.unwrap();
    let client = BackendClient::new(config(backend.url(), SECRET)).unwrap();
    (backend, client)
}

/// Sends one hand-made signed request, bypassing the client's rules.
async fn raw_post(url: &str, key: &str, signature: &str, body: &[u8]) -> (u16, Value) {
    let response = crate::support::http()
        .post(format!("{url}/activate"))
        .header("Content-Type", "application/json")
        .header(IDEMPOTENCY_HEADER, key)
        .header(SIGNATURE_HEADER, signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[test]
fn published_vectors_match_our_signer() {
    let doc = std::fs::read_to_string(crate::support::repo().join("docs/backend-api.md")).unwrap();
    for v in vectors() {
        let (name, secret, body, expected) = (
            &v["name"],
            v["secret"].as_str().unwrap().as_bytes(),
            v["body"].as_str().unwrap(),
            v["expected_header"].as_str().unwrap(),
        );
        let t = v["t"].as_i64().unwrap();
        assert!(doc.contains(expected), "docs/backend-api.md does not list vector {name}");
        if v["kind"] == "answer" {
            assert_eq!(signing::sign_v1(secret, t, body.as_bytes()), expected, "vector {name}");
            assert_eq!(signing::verify_v1(secret, expected, body.as_bytes(), t + 299, 300).unwrap().t, t);
            continue;
        }
        assert_eq!(v["kind"], "request", "vector {name}");
        let req = signed_request(&v);
        assert_eq!(signing::sign(secret, t, &req), expected, "vector {name}");
        let v1_only = v["expected_v1_header"].as_str().unwrap();
        assert_eq!(signing::sign_v1(secret, t, req.body), v1_only, "vector {name}");
        for (header, accept, macs) in
            [(expected, Accept::V1OrV2, 2), (expected, Accept::V2Only, 1), (v1_only, Accept::V1OrV2, 1)]
        {
            let verified = signing::verify(secret, header, &req, t + 299, 300, accept).unwrap();
            assert_eq!((verified.t, verified.macs.len()), (t, macs), "vector {name}");
        }
        let changed = format!("{body} ");
        let changed = signing::Request { body: changed.as_bytes(), ..req };
        assert!(signing::verify(secret, expected, &changed, t, 300, Accept::V1OrV2).is_err());
        let moved = signing::Request { path: "/elsewhere", ..req };
        assert_eq!(
            signing::verify(secret, expected, &moved, t, 300, Accept::V2Only),
            Err(SignatureError::BadSignature)
        );
    }
}

#[test]
fn published_negative_vectors_are_refused_as_malformed() {
    let file = vector_file();
    let negatives = file["negative_vectors"].as_array().expect("negative_vectors array");
    assert!(negatives.len() >= 10, "the vector file lost its negative vectors");
    let base = vector("minimal_object");
    let (secret, t) = (base["secret"].as_str().unwrap().as_bytes(), base["t"].as_i64().unwrap());
    let doc = std::fs::read_to_string(crate::support::repo().join("docs/backend-api.md")).unwrap();
    for n in negatives {
        let header = n["header"].as_str().unwrap();
        let err = signing::verify(secret, header, &signed_request(&base), t, 300, Accept::V1OrV2).unwrap_err();
        assert!(matches!(err, SignatureError::Malformed(_)), "{} gave {err:?}", n["name"]);
        assert_eq!(err.code(), n["error"].as_str().unwrap());
        assert!(!err.to_string().is_empty());
        assert!(doc.contains(n["name"].as_str().unwrap()), "docs/backend-api.md does not list {}", n["name"]);
    }
}

#[test]
fn our_request_body_is_the_published_example_byte_for_byte() {
    let v = vector("activation_example");
    let req = ActivationRequest {
        received_at: DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z").unwrap().to_utc(),
        ..request(42, "123456", "100 Diamonds")
    };
    let body = serde_json::to_vec(&req).unwrap();
    assert_eq!(String::from_utf8(body.clone()).unwrap(), v["body"].as_str().unwrap());
    let request = signing::Request { body: &body, ..signed_request(&v) };
    let signed = signing::sign(v["secret"].as_str().unwrap().as_bytes(), v["t"].as_i64().unwrap(), &request);
    assert_eq!(signed, v["expected_header"].as_str().unwrap());
}

#[tokio::test]
async fn activates_once_and_answers_already_activated_on_repeat() {
    let (backend, client) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    let req = request(1, "123456", "100 diamonds");
    let first = client.activate(&req).await.unwrap();
    assert_eq!(first, ActivationOutcome::Activated { activation_id: "act-000001".into() });
    let again = client.activate(&req).await.unwrap();
    assert_eq!(again, ActivationOutcome::AlreadyActivated { activation_id: "act-000001".into() });
    assert_eq!(backend.activations_for(req.order_ref.as_str()), 1);
    let stats = backend.stats();
    assert_eq!((stats.requests, stats.activations, stats.already_activated), (2, 1, 1));
    backend.shutdown().await;
}

#[tokio::test]
async fn business_answers_map_to_outcomes() {
    let (backend, client) = setup().await;
    backend.add_account("555");
    backend.add_pending("556", "VIP month");
    assert_eq!(client.activate(&request(2, "555", "VIP month")).await.unwrap(), ActivationOutcome::NoPendingOrder);
    assert_eq!(client.activate(&request(3, "556", "100 Diamonds")).await.unwrap(), ActivationOutcome::NoPendingOrder);
    assert_eq!(client.activate(&request(4, "999", "VIP month")).await.unwrap(), ActivationOutcome::UnknownAccount);
    // A failed answer does not bind the key: the same order succeeds once the ID is corrected.
    let corrected = request(4, "556", "VIP month");
    assert!(matches!(client.activate(&corrected).await.unwrap(), ActivationOutcome::Activated { .. }));
    assert_eq!(backend.stats().activations, 1);
    backend.shutdown().await;
}

#[tokio::test]
async fn retries_through_5xx_with_the_same_key_and_activates_once() {
    let (backend, client) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    backend.fail_next(2);
    let req = request(5, "123456", "100 Diamonds");
    assert!(matches!(client.activate(&req).await.unwrap(), ActivationOutcome::Activated { .. }));
    let stats = backend.stats();
    assert_eq!(stats.failures_injected, 2);
    assert_eq!(stats.requests, 3);
    assert_eq!(backend.requests_for(req.order_ref.as_str()), 3, "every attempt carried Idempotency-Key = order_ref");
    assert_eq!(stats.rejected_signatures, 0, "each retry was signed afresh, so none looked like a replay");
    assert_eq!((stats.activations, backend.activations_for(req.order_ref.as_str())), (1, 1));
    backend.shutdown().await;
}

#[tokio::test]
async fn gives_up_as_unavailable_when_nothing_listens() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = BackendClient::new(BackendConfig { max_attempts: 3, ..config(url, SECRET) }).unwrap();
    match client.activate(&request(6, "1", "P")).await {
        Err(BackendError::Unavailable { attempts, last_error }) => {
            assert_eq!(attempts, 3);
            assert!(last_error.starts_with("cannot connect"), "{last_error}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn credentials_in_the_backend_url_never_reach_errors_or_debug() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://shop:hunter2@{}", listener.local_addr().unwrap());
    drop(listener);
    let client = BackendClient::new(BackendConfig { max_attempts: 2, ..config(url, SECRET) }).unwrap();
    let err = client.activate(&request(18, "1", "P")).await.unwrap_err();
    let health = client.health().await.unwrap_err();
    let shown = format!("{err} {err:?} {health} {client:?} {}", client.health_url());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(client.health_url().contains("://***@127.0.0.1"), "{}", client.health_url());

    // With a live backend the credentials are used (Basic auth) and still never shown.
    let (backend, _) = setup().await;
    let authed = format!("http://shop:hunter2@{}", backend.url().trim_start_matches("http://"));
    let client = BackendClient::new(config(authed, SECRET)).unwrap();
    let report = client.health().await.unwrap();
    assert!(!report.url.contains("hunter2") && report.url.ends_with("/health"), "{}", report.url);
    backend.shutdown().await;
}

#[tokio::test]
async fn a_slow_backend_times_out_but_the_retry_never_activates_twice() {
    let (backend, _) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    backend.set_delay(Duration::from_millis(400));
    let impatient =
        BackendConfig { timeout: Duration::from_millis(100), max_attempts: 2, ..config(backend.url(), SECRET) };
    let client = BackendClient::new(impatient).unwrap();
    let req = request(7, "123456", "100 Diamonds");
    assert!(matches!(client.activate(&req).await, Err(BackendError::Unavailable { attempts: 2, .. })));
    // The first attempt was committed even though its answer never arrived.
    assert_eq!(backend.activations_for(req.order_ref.as_str()), 1);
    assert!(backend.handler_time(req.order_ref.as_str()) >= Duration::from_millis(800));
    backend.set_delay(Duration::ZERO);
    let later = BackendClient::new(config(backend.url(), SECRET)).unwrap();
    assert_eq!(
        later.activate(&req).await.unwrap(),
        ActivationOutcome::AlreadyActivated { activation_id: "act-000001".into() }
    );
    assert_eq!(backend.stats().activations, 1);
    backend.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_at_once() {
    let (backend, _) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    let client = BackendClient::new(config(backend.url(), "not-the-secret")).unwrap();
    match client.activate(&request(8, "123456", "100 Diamonds")).await {
        Err(BackendError::Rejected { status: 401, body }) => assert!(body.contains("bad_signature"), "{body}"),
        other => panic!("expected Rejected 401, got {other:?}"),
    }
    let stats = backend.stats();
    assert_eq!((stats.requests, stats.rejected_signatures, stats.activations), (1, 1, 0), "401 is not retried");
    backend.shutdown().await;
}

#[tokio::test]
async fn a_wrong_path_404_is_not_mistaken_for_no_pending_order() {
    let (backend, _) = setup().await;
    let client = BackendClient::new(config(format!("{}/wrong", backend.url()), SECRET)).unwrap();
    assert!(matches!(client.activate(&request(9, "1", "P")).await, Err(BackendError::Rejected { status: 404, .. })));
    backend.shutdown().await;
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused() {
    let (backend, _) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    let req = request(10, "123456", "100 Diamonds");
    let body = serde_json::to_vec(&req).unwrap();
    // A minute past the 300 s window each way: the request may reach the
    // backend seconds later on a busy machine (301 s failed once that way).
    let now = Utc::now().timestamp();
    for t in [now - 360, now + 360] {
        let signature = sign_activate(SECRET, t, &body);
        let (status, answer) = raw_post(&backend.url(), req.order_ref.as_str(), &signature, &body).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some("stale_timestamp")), "{answer}");
    }
    assert_eq!(backend.stats().rejected_signatures, 2);
    assert_eq!(backend.stats().activations, 0);
    backend.shutdown().await;
}

#[tokio::test]
async fn an_exact_replay_of_an_accepted_signature_is_refused() {
    let (backend, _) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    backend.add_pending("123456", "100 Diamonds");
    let req = request(11, "123456", "100 Diamonds");
    let body = serde_json::to_vec(&req).unwrap();
    let signature = sign_activate(SECRET, Utc::now().timestamp(), &body);
    let (status, answer) = raw_post(&backend.url(), req.order_ref.as_str(), &signature, &body).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("activated")));
    let (status, answer) = raw_post(&backend.url(), req.order_ref.as_str(), &signature, &body).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("replayed_signature")), "{answer}");
    assert_eq!(backend.activations_for(req.order_ref.as_str()), 1);
    assert_eq!(backend.stats().activations, 1);
    backend.shutdown().await;
}

/// `t=…,v1=…,v2=…` → (t, v1, v2).
fn entries(header: &str) -> (String, String, String) {
    let parts: Vec<&str> = header.split(',').collect();
    let value = |i: usize| parts[i].split_once('=').unwrap().1.to_owned();
    (value(0), value(1), value(2))
}

#[tokio::test]
async fn a_replay_with_a_respelled_or_trimmed_header_is_refused() {
    let (backend, _) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    let req = request(13, "123456", "100 Diamonds");
    let body = serde_json::to_vec(&req).unwrap();
    let signature = sign_activate(SECRET, Utc::now().timestamp(), &body);
    let key = req.order_ref.as_str();
    assert_eq!(raw_post(&backend.url(), key, &signature, &body).await.0, 200);
    let (t, v1, v2) = entries(&signature);
    let wrong = "0".repeat(64);
    for replay in [
        format!("t={t},v2={v2},v1={v1}"),
        format!("t={t},v1={v1}"),
        format!("t={t},v2={v2}"),
        format!("t={t},v1={v1},v2={v2},v1={wrong}"),
        format!("t={t},v1={v1},v1={v1}"),
    ] {
        let (status, answer) = raw_post(&backend.url(), key, &replay, &body).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some("replayed_signature")), "{replay}: {answer}");
    }
    for respelled in
        [format!("t={t}, v1={v1}"), format!("t={t},v1={}", v1.to_uppercase()), format!(" t={t},v1={v1},x=1")]
    {
        let (status, answer) = raw_post(&backend.url(), key, &respelled, &body).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some("malformed_header")), "{respelled}: {answer}");
    }
    assert_eq!(backend.stats().already_activated, 0, "no replay reached the business rules");
    assert_eq!(backend.stats().activations, 1);
    backend.shutdown().await;
}

#[tokio::test]
async fn every_published_negative_vector_gets_a_401_from_the_reference_backend() {
    let (backend, _) = setup().await;
    let file = vector_file();
    let body = serde_json::to_vec(&request(14, "1", "P")).unwrap();
    for n in file["negative_vectors"].as_array().unwrap() {
        let header = n["header"].as_str().unwrap();
        let (status, answer) = raw_post(&backend.url(), "TA-93372553-14", header, &body).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some("malformed_header")), "{}: {answer}", n["name"]);
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    backend.shutdown().await;
}

#[tokio::test]
async fn v2_binds_the_signature_to_method_and_path() {
    let (backend, _) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    let req = request(15, "123456", "100 Diamonds");
    let body = serde_json::to_vec(&req).unwrap();
    let now = Utc::now().timestamp();
    let sign_for = |t: i64, method: &'static str, path: &'static str| {
        signing::sign(SECRET.as_bytes(), t, &signing::Request { method, path, body: &body })
    };
    let (_, _, other_path) = entries(&sign_for(now, "POST", "/deactivate"));
    let (_, _, other_method) = entries(&sign_for(now - 1, "PUT", "/activate"));
    for header in [format!("t={now},v2={other_path}"), format!("t={},v2={other_method}", now - 1)] {
        let (status, answer) = raw_post(&backend.url(), req.order_ref.as_str(), &header, &body).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some("bad_signature")), "{header}: {answer}");
    }
    backend.require_v2(true);
    let moved = sign_for(now - 2, "POST", "/deactivate");
    let (status, answer) = raw_post(&backend.url(), req.order_ref.as_str(), &moved, &body).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("bad_signature")), "v1 alone no longer passes: {answer}");
    assert_eq!(backend.stats().activations, 0);
    backend.shutdown().await;
}

#[tokio::test]
async fn both_versions_pass_during_the_migration_and_v2_can_be_required() {
    let (backend, client) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    backend.add_pending("123456", "100 Diamonds");
    let req = request(16, "123456", "100 Diamonds");
    let body = serde_json::to_vec(&req).unwrap();
    let key = req.order_ref.as_str();
    let now = Utc::now().timestamp();
    let v1_only = signing::sign_v1(SECRET.as_bytes(), now, &body);
    let (status, answer) = raw_post(&backend.url(), key, &v1_only, &body).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("activated")), "an old, v1-only sender: {answer}");
    let (t, _, v2) = entries(&sign_activate(SECRET, now - 1, &body));
    let (status, answer) = raw_post(&backend.url(), key, &format!("t={t},v2={v2}"), &body).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("already_activated")), "a v2-only sender: {answer}");

    backend.require_v2(true);
    let v1_only = signing::sign_v1(SECRET.as_bytes(), now - 2, &body);
    let (status, answer) = raw_post(&backend.url(), key, &v1_only, &body).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("v2_required")), "{answer}");
    // Our client sends both, so it keeps working after the switch.
    assert!(matches!(
        client.activate(&request(17, "123456", "100 Diamonds")).await,
        Ok(ActivationOutcome::Activated { .. })
    ));
    assert!(client.health().await.is_ok(), "the signed /health handshake carries v2 too");
    backend.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_400_after_the_signature_check() {
    let (backend, _) = setup().await;
    let url = backend.url();
    let now = Utc::now().timestamp();
    let good = serde_json::to_vec(&request(12, "1", "P")).unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("", &good, "missing_idempotency_key"),
        ("TA-93372553-12", b"{not json", "invalid_json"),
        ("TA-93372553-99", &good, "idempotency_key_mismatch"),
    ];
    for (i, (key, body, error)) in cases.into_iter().enumerate() {
        // Distinct t per case so no request looks like a replay of another.
        let signature = sign_activate(SECRET, now - i as i64, body);
        let (status, answer) = raw_post(&url, key, &signature, body).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(error)), "{answer}");
    }
    let (status, answer) = raw_post(&url, "TA-93372553-12", "t=1,v1=zz", &good).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("malformed_header")));
    backend.shutdown().await;
}

#[tokio::test]
async fn health_answers_ok_and_checks_a_signature_when_given() {
    let (backend, _) = setup().await;
    let http = crate::support::http();
    let url = format!("{}/health", backend.url());
    let plain = http.get(&url).send().await.unwrap();
    assert_eq!(plain.status().as_u16(), 200);
    assert_eq!(plain.json::<Value>().await.unwrap()["status"], "ok");
    let health = signing::Request { method: "GET", path: "/health", body: b"" };
    let good = signing::sign(SECRET.as_bytes(), Utc::now().timestamp(), &health);
    assert_eq!(http.get(&url).header(SIGNATURE_HEADER, good).send().await.unwrap().status().as_u16(), 200);
    let bad = signing::sign(b"wrong", Utc::now().timestamp(), &health);
    assert_eq!(http.get(&url).header(SIGNATURE_HEADER, bad).send().await.unwrap().status().as_u16(), 401);
    backend.shutdown().await;
}

fn deactivation(req: &ActivationRequest, activation_id: &str) -> DeactivationRequest {
    DeactivationRequest {
        order_ref: req.order_ref.clone(),
        activation_id: activation_id.into(),
        reason: "refund".into(),
        detail: Some("customer request".into()),
        purchase_id: Some("98765".into()),
        refunded_at: Utc::now(),
    }
}

#[test]
fn our_deactivation_body_is_the_published_example_byte_for_byte() {
    let v = vector("deactivation_example");
    let req = DeactivationRequest {
        refunded_at: DateTime::parse_from_rfc3339("2026-11-29T09:30:00Z").unwrap().to_utc(),
        ..deactivation(&request(42, "123456", "100 Diamonds"), "act-000001")
    };
    let body = serde_json::to_vec(&req).unwrap();
    assert_eq!(String::from_utf8(body.clone()).unwrap(), v["body"].as_str().unwrap());
    let request = signing::Request { body: &body, ..signed_request(&v) };
    let signed = signing::sign(v["secret"].as_str().unwrap().as_bytes(), v["t"].as_i64().unwrap(), &request);
    assert_eq!(signed, v["expected_header"].as_str().unwrap());
}

#[test]
fn the_health_answer_vector_echoes_the_health_request_vector() {
    let request = vector("empty_body_health");
    let answer = vector("health_answer");
    assert_eq!(request["body"], "");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["request_signature"], request["expected_header"]);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn deactivates_an_activated_order_once() {
    let (backend, client) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    let req = request(20, "123456", "100 Diamonds");
    let ActivationOutcome::Activated { activation_id } = client.activate(&req).await.unwrap() else { panic!() };
    let off = deactivation(&req, &activation_id);
    assert_eq!(client.deactivate(&off).await.unwrap(), DeactivationOutcome::Deactivated);
    assert_eq!(client.deactivate(&off).await.unwrap(), DeactivationOutcome::AlreadyDeactivated);
    assert_eq!(backend.deactivations_for(req.order_ref.as_str()), 1);
    // A key that was never activated, or a foreign activation id, is not taken back.
    let never = request(21, "123456", "100 Diamonds");
    assert_eq!(
        client.deactivate(&deactivation(&never, "act-000001")).await.unwrap(),
        DeactivationOutcome::NotActivated
    );
    let stats = backend.stats();
    assert_eq!((stats.deactivation_requests, stats.deactivations, stats.rejected_signatures), (3, 1, 0));
    backend.shutdown().await;
}

#[tokio::test]
async fn deactivation_retries_through_5xx_and_refuses_a_wrong_secret() {
    let (backend, client) = setup().await;
    backend.add_pending("123456", "100 Diamonds");
    let req = request(22, "123456", "100 Diamonds");
    let id = client.activate(&req).await.unwrap().activation_id().unwrap().to_owned();
    backend.fail_next(2);
    assert_eq!(client.deactivate(&deactivation(&req, &id)).await.unwrap(), DeactivationOutcome::Deactivated);
    assert_eq!(backend.stats().deactivation_requests, 3);
    let wrong = BackendClient::new(config(backend.url(), "not-the-secret")).unwrap();
    assert!(matches!(
        wrong.deactivate(&deactivation(&req, &id)).await,
        Err(BackendError::Rejected { status: 401, .. })
    ));
    assert_eq!(backend.stats().deactivations, 1);
    backend.shutdown().await;
}

#[tokio::test]
async fn the_health_handshake_proves_a_shared_secret() {
    let (backend, client) = setup().await;
    let report = client.health().await.unwrap();
    assert!(report.url.ends_with("/health"), "{}", report.url);
    let wrong = BackendClient::new(config(backend.url(), "not-the-secret")).unwrap();
    match wrong.health().await {
        Err(HealthError::SignatureRefused { code, .. }) => assert_eq!(code, "bad_signature"),
        other => panic!("expected a refused signature, got {other:?}"),
    }
    backend.shutdown().await;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let down = BackendClient::new(config(url, SECRET)).unwrap();
    assert!(matches!(down.health().await, Err(HealthError::Unreachable(_))));
}

#[tokio::test]
async fn a_backend_that_does_not_sign_its_answer_is_not_proven() {
    // Answers 200 {"status":"ok"} to anything, like a backend that only implements liveness.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = BackendClient::new(config(url, SECRET)).unwrap();
    match client.health().await {
        Err(HealthError::Unproven(why)) => assert!(why.contains("does not implement the handshake"), "{why}"),
        other => panic!("expected Unproven, got {other:?}"),
    }
    server.abort();
}

#[tokio::test]
async fn the_backend_accepts_two_secrets_during_a_rotation() {
    const OLD: &str = "old-secret";
    const NEW: &str = "new-secret";
    let backend = ReferenceBackend::start(SecretString::from(OLD)).await.unwrap();
    backend.add_pending("123456", "100 Diamonds");
    backend.add_pending("123456", "100 Diamonds");
    let old = BackendClient::new(config(backend.url(), OLD)).unwrap();
    let new = BackendClient::new(config(backend.url(), NEW)).unwrap();
    assert!(new.health().await.is_err(), "the new secret is not known yet");

    // Step 1: the backend accepts both; the assistant still runs on the old one.
    backend.rotate_secret(SecretString::from(NEW));
    assert!(old.health().await.is_ok());
    assert!(matches!(
        old.activate(&request(30, "123456", "100 Diamonds")).await.unwrap(),
        ActivationOutcome::Activated { .. }
    ));
    // Step 2: the assistant is configured with the new one.
    assert!(new.health().await.is_ok());
    assert!(matches!(
        new.activate(&request(31, "123456", "100 Diamonds")).await.unwrap(),
        ActivationOutcome::Activated { .. }
    ));
    // Step 3: the old secret is dropped.
    backend.drop_previous_secret();
    assert!(matches!(old.health().await, Err(HealthError::SignatureRefused { .. })));
    assert!(matches!(old.activate(&request(32, "123456", "P")).await, Err(BackendError::Rejected { status: 401, .. })));
    assert!(new.health().await.is_ok());
    assert_eq!(backend.stats().activations, 2);
    backend.shutdown().await;

    // A backend started mid-rotation accepts both from the start.
    let both =
        ReferenceBackend::start_with_secrets(SecretString::from(NEW), Some(SecretString::from(OLD))).await.unwrap();
    for client in
        [BackendClient::new(config(both.url(), OLD)).unwrap(), BackendClient::new(config(both.url(), NEW)).unwrap()]
    {
        assert!(client.health().await.is_ok());
    }
    both.shutdown().await;
}
