//! Tribute webhooks end to end: the sandbox daemon with its webhook listener
//! on 127.0.0.1:0 serving `POST /tribute/webhook` alone, a SQLite file, the
//! reference backend and the Telegram simulator. Webhooks are posted over
//! real HTTP, signed the way Tribute signs them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use secrecy::SecretString;
use serde_json::Value;
use tribute_assistant::backend::{BackendClient, BackendConfig};
use tribute_assistant::domain::{OrderRef, OrderState};
use tribute_assistant::webhook::signature::{sign, SIGNATURE_HEADER};
use tribute_assistant::webhook::{Pass, ReconcileConfig, Reconciler, WebhookSettings, WEBHOOK_PATH};
use tribute_testbed::sandbox::SandboxOptions;

use crate::support::app::TestApp;
use crate::support::sandbox::{moderator_texts, wait_cards_posted};
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::{eventually, SETTLE};

const API_KEY: &str = "tribute-api-key-for-tests";
const GRACE: Duration = Duration::from_millis(400);

fn reconcile_config() -> ReconcileConfig {
    ReconcileConfig {
        match_window: Duration::from_secs(3600),
        unmatched_grace: GRACE,
        interval: Duration::from_millis(50),
        retry_delay: Duration::from_millis(100),
    }
}

/// The sandbox daemon with its webhook listener (and the ops listener).
async fn webhook_app() -> TestApp {
    let webhook = WebhookSettings {
        api_key: SecretString::from(API_KEY),
        listen: ([127, 0, 0, 1], 0).into(),
        reconcile: reconcile_config(),
    };
    TestApp::spawn_with(SandboxOptions { ops_listener: true, webhook: Some(webhook), ..SandboxOptions::default() })
        .await
}

/// One more reconciliation pass, run by the test on the daemon's store and
/// backend: what the reconciler would still do. Nothing, once an event is
/// fully handled; so whatever it did is final, not waiting for a later tick.
async fn one_more_pass(app: &TestApp) -> Pass {
    let backend = BackendClient::new(BackendConfig {
        url: app.backend.url(),
        secret: app.backend_secret().clone(),
        timeout: Duration::from_secs(5),
        max_attempts: 1,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(50),
    })
    .unwrap();
    let reconciler = Reconciler::new(app.store().clone(), backend, reconcile_config(), Arc::new(Default::default()));
    reconciler.pass().await.unwrap()
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn purchase(purchase_id: u64, user: i64, amount: i64) -> String {
    serde_json::json!({
        "name": "new_digital_product",
        "created_at": now(),
        "sent_at": now(),
        "payload": {
            "product_id": 17, "product_name": "100 Diamonds", "amount": amount, "currency": "eur",
            "telegram_user_id": user, "purchase_id": purchase_id, "transaction_id": format!("tx-{purchase_id}")
        }
    })
    .to_string()
}

fn refund(purchase_id: u64, user: i64) -> String {
    serde_json::json!({
        "name": "digital_product_refunded",
        "created_at": now(),
        "sent_at": now(),
        "payload": {
            "product_id": 17, "product_name": "100 Diamonds", "amount": 500, "currency": "eur",
            "telegram_user_id": user, "purchase_id": purchase_id, "transaction_id": format!("tx-{purchase_id}"),
            "refund_reason": "customer asked", "refunded_at": now()
        }
    })
    .to_string()
}

/// Posts `body` with `signature` (None = no header); returns status and JSON answer.
async fn post(app: &TestApp, body: &str, signature: Option<String>) -> (u16, Value) {
    let url = format!("{}{WEBHOOK_PATH}", app.webhook_url().expect("webhook listener"));
    let mut req = crate::support::http().post(url).header("Content-Type", "application/json").body(body.to_owned());
    if let Some(sig) = signature {
        req = req.header(SIGNATURE_HEADER, sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post_signed(app: &TestApp, body: &str) -> (u16, Value) {
    post(app, body, Some(sign(API_KEY.as_bytes(), body.as_bytes()))).await
}

#[tokio::test]
async fn a_signed_event_is_stored_once_even_when_posted_three_times() {
    let app = webhook_app().await;
    let body = purchase(1001, 777, 500);
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(post_signed(&app, &body).await);
    }
    assert_eq!(answers[0], (200, serde_json::json!({"status": "stored"})));
    assert_eq!(answers[1], (200, serde_json::json!({"status": "duplicate"})));
    assert_eq!(answers[2], (200, serde_json::json!({"status": "duplicate"})));
    assert_eq!(app.store().webhook_event_counts().await.unwrap(), vec![("new_digital_product".to_owned(), 1)]);
    let p = app.store().purchase("1001").await.unwrap().expect("the purchase is stored");
    assert_eq!((p.telegram_user_id, p.price.amount_minor(), p.transaction_id.as_deref()), (777, 500, Some("tx-1001")));
    app.shutdown().await;
}

#[tokio::test]
async fn the_webhook_listener_serves_the_webhook_alone_and_the_ops_listener_never_does() {
    let app = webhook_app().await;
    let (ops, webhook) = (app.ops_url().expect("ops listener"), app.webhook_url().expect("webhook listener"));
    assert_ne!(ops, webhook, "two listeners");
    let http = crate::support::http();
    for path in ["/healthz", "/metrics"] {
        assert_eq!(http.get(format!("{webhook}{path}")).send().await.unwrap().status().as_u16(), 404, "{path}");
        assert_eq!(http.get(format!("{ops}{path}")).send().await.unwrap().status().as_u16(), 200, "{path}");
    }
    let body = purchase(1010, 777, 500);
    let signed = http
        .post(format!("{ops}{WEBHOOK_PATH}"))
        .header(SIGNATURE_HEADER, sign(API_KEY.as_bytes(), body.as_bytes()))
        .body(body.clone());
    assert_eq!(signed.send().await.unwrap().status().as_u16(), 404, "the ops listener has no webhook route");
    assert_eq!(post_signed(&app, &body).await.0, 200);
    // The webhook's counters are still on the (private) /metrics.
    let metrics = http.get(format!("{ops}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("webhook_requests_total{result=\"stored\"} 1"), "{metrics}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_wrong_or_missing_signature_is_401_and_nothing_is_stored() {
    let app = webhook_app().await;
    let body = purchase(1002, 777, 500);
    let other_body = purchase(1003, 777, 500);
    for signature in [
        Some(sign(b"not-the-api-key", body.as_bytes())),
        Some(sign(API_KEY.as_bytes(), other_body.as_bytes())),
        Some("garbage".to_owned()),
        None,
    ] {
        let (status, answer) = post(&app, &body, signature.clone()).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some("bad_signature")), "{signature:?}");
    }
    // A re-serialised body is another body: the signature covers the raw bytes.
    let reformatted = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    let (status, _) = post(&app, &reformatted, Some(sign(API_KEY.as_bytes(), body.as_bytes()))).await;
    assert_eq!(status, 401);
    assert!(app.store().webhook_event_counts().await.unwrap().is_empty());
    assert!(app.store().purchase("1002").await.unwrap().is_none());
    app.shutdown().await;
}

#[tokio::test]
async fn bad_json_with_a_valid_signature_is_400_and_reaches_the_moderator_once() {
    let app = webhook_app().await;
    let body = r#"{"name":"new_digital_product","payload":{"purchase_id":"#;
    for _ in 0..2 {
        let (status, answer) = post_signed(&app, body).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_event")), "{answer}");
    }
    // A readable envelope with a bad field is refused the same way, naming the field.
    let zero = purchase(1004, 777, 0);
    let (status, answer) = post_signed(&app, &zero).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("amount"), "{answer}");

    // Each card was stored before its request was answered: once every
    // stored card is posted, the chat shows them all.
    wait_cards_posted(&app).await;
    let cards = moderator_texts(&app);
    assert_eq!(cards.len(), 2, "the repeated body is one card: {cards:?}");
    assert!(cards.iter().any(|t| t.contains(body)), "the raw body reaches the moderator: {cards:?}");
    assert!(app.store().purchase("1004").await.unwrap().is_none(), "nothing was stored as a purchase");
    app.shutdown().await;
}

#[tokio::test]
async fn refund_of_an_activated_order_deactivates_it_once_and_tells_the_moderator() {
    let app = webhook_app().await;
    let msg = app.post_order(&order(501));
    app.wait_settled(1, SETTLE).await.unwrap();
    let order_ref = OrderRef::for_message(app.tribute_chat(), msg);
    let stored = app.store().order_by_ref(&order_ref).await.unwrap().unwrap();
    assert!(stored.activation_id.is_some());

    assert_eq!(post_signed(&app, &purchase(2001, 501, 500)).await.0, 200);
    let matched = eventually("the purchase to match", || async {
        app.store().purchase("2001").await.unwrap().and_then(|p| p.order_id)
    })
    .await;
    assert_eq!(matched, stored.id);

    let body = refund(2001, 501);
    for _ in 0..3 {
        assert_eq!(post_signed(&app, &body).await.0, 200);
    }
    let p = eventually("the refund to be handled", || async {
        app.store().purchase("2001").await.unwrap().filter(|p| p.refund_handled_at.is_some())
    })
    .await;
    assert_eq!(p.deactivation.as_deref(), Some("deactivated"));
    let card = eventually("the refund card", || async {
        moderator_texts(&app).into_iter().find(|t| t.contains("Refund of order"))
    })
    .await;
    assert!(card.contains(order_ref.as_str()) && card.contains("took the product back"), "{card}");
    assert!(card.contains("customer asked"), "{card}");
    // Nothing is left for the reconciler to do twice, so the counts are final.
    assert_eq!(one_more_pass(&app).await, Pass::default());
    wait_cards_posted(&app).await;
    assert_eq!(app.backend.deactivations_for(order_ref.as_str()), 1);
    assert_eq!(app.backend.stats().deactivation_requests, 1, "one call for three deliveries");
    assert_eq!(moderator_texts(&app).iter().filter(|t| t.contains("Refund of order")).count(), 1);
    let history = app.store().order_events(stored.id).await.unwrap();
    assert!(history.iter().any(|e| e.note.contains("refunded")), "{history:?}");
    assert_eq!(app.store().order(stored.id).await.unwrap().state, OrderState::Refunded);
    app.shutdown().await;
}

#[tokio::test]
async fn a_refund_of_an_order_never_activated_settles_it_so_no_later_account_id_activates_it() {
    let app = webhook_app().await;
    let msg = app.post_order(&order(506).details("забыл написать айди"));
    let order_ref = OrderRef::for_message(app.tribute_chat(), msg);
    // The assistant asks the customer for the account ID.
    let stored = eventually("the order to wait for the customer", || async {
        app.store().order_by_ref(&order_ref).await.unwrap().filter(|o| o.state == OrderState::NeedsCustomer)
    })
    .await;
    eventually("the question to the customer", || async { app.world.messages(506).into_iter().find(|m| m.outgoing) })
        .await;
    assert_eq!(post_signed(&app, &purchase(6001, 506, 500)).await.0, 200);
    eventually("the purchase to match", || async {
        app.store().purchase("6001").await.unwrap().and_then(|p| p.order_id)
    })
    .await;
    assert_eq!(post_signed(&app, &refund(6001, 506)).await.0, 200);
    eventually("the refund to be handled", || async {
        app.store().purchase("6001").await.unwrap().filter(|p| p.refund_handled_at.is_some())
    })
    .await;
    let refunded = app.store().order(stored.id).await.unwrap();
    assert_eq!(refunded.state, OrderState::Refunded, "the refund settles the order at once");
    let link = app.store().order_link(stored.id).await.unwrap().expect("the order's dialogue link");
    assert_eq!(link.status.as_str(), "closed");
    // The customer answers late with a valid ID: no order waits for one, so
    // it is a message for a person, and nothing is activated.
    app.customer_says(506, "123456");
    let card = app.wait_card("123456").await;
    assert!(card.text.contains("question"), "{}", card.text);
    assert_eq!(app.store().order(stored.id).await.unwrap().state, OrderState::Refunded);
    assert_eq!(app.backend.activations_for(order_ref.as_str()), 0, "a refunded order is never activated");
    assert_eq!(app.backend.requests_for(order_ref.as_str()), 0);
    app.shutdown().await;
}

#[tokio::test]
async fn an_amount_mismatch_is_flagged_to_the_moderator() {
    let app = webhook_app().await;
    let msg = app.post_order(&order(502));
    app.wait_settled(1, SETTLE).await.unwrap();
    assert_eq!(post_signed(&app, &purchase(3001, 502, 700)).await.0, 200);
    let card = eventually("the mismatch card", || async {
        moderator_texts(&app).into_iter().find(|t| t.contains("Amounts differ"))
    })
    .await;
    let order_ref = OrderRef::for_message(app.tribute_chat(), msg);
    assert!(card.contains(order_ref.as_str()), "{card}");
    assert!(card.contains("€5.00") && card.contains("€7.00"), "{card}");
    let p = app.store().purchase("3001").await.unwrap().unwrap();
    assert!(p.order_id.is_some(), "still matched, so a refund can find the order");
    app.shutdown().await;
}

#[tokio::test]
async fn a_paid_purchase_without_a_telegram_order_is_flagged_after_the_grace_period() {
    let app = webhook_app().await;
    // A matching order for another customer must not be taken.
    app.post_order(&order(503));
    app.wait_settled(1, SETTLE).await.unwrap();
    assert_eq!(post_signed(&app, &purchase(4001, 999, 500)).await.0, 200);
    let card = eventually("the unmatched card", || async {
        moderator_texts(&app).into_iter().find(|t| t.contains("no Telegram order"))
    })
    .await;
    assert!(card.contains("4001") && card.contains("tg://user?id=999"), "{card}");
    let p = app.store().purchase("4001").await.unwrap().unwrap();
    assert_eq!(p.order_id, None);
    let (paid, flagged) = (p.paid_at.unwrap(), p.unmatched_flagged_at.unwrap());
    assert!(flagged - paid >= GRACE.as_millis() as i64, "flagged {flagged} only after the grace from {paid}");
    // The purchase stays unmatched, but another pass does not flag it again.
    assert_eq!(one_more_pass(&app).await, Pass::default());
    wait_cards_posted(&app).await;
    assert_eq!(moderator_texts(&app).iter().filter(|t| t.contains("no Telegram order")).count(), 1, "flagged once");
    app.shutdown().await;
}

#[tokio::test]
async fn a_deactivation_the_backend_cannot_take_is_retried_and_still_happens_once() {
    let app = webhook_app().await;
    let msg = app.post_order(&order(504));
    app.wait_settled(1, SETTLE).await.unwrap();
    let order_ref = OrderRef::for_message(app.tribute_chat(), msg);
    assert_eq!(post_signed(&app, &purchase(5001, 504, 500)).await.0, 200);
    eventually("the purchase to match", || async {
        app.store().purchase("5001").await.unwrap().and_then(|p| p.order_id)
    })
    .await;
    // More failures than one call's attempts: the first call gives up, the refund is parked and retried.
    app.backend.fail_next(6);
    assert_eq!(post_signed(&app, &refund(5001, 504)).await.0, 200);
    let p = eventually("the refund to be handled", || async {
        app.store().purchase("5001").await.unwrap().filter(|p| p.refund_handled_at.is_some())
    })
    .await;
    assert_eq!(p.deactivation.as_deref(), Some("deactivated"));
    assert!(app.backend.stats().deactivation_requests >= 7, "{:?}", app.backend.stats());
    assert_eq!(one_more_pass(&app).await, Pass::default(), "nothing parked any more");
    assert_eq!(app.backend.deactivations_for(order_ref.as_str()), 1);
    app.shutdown().await;
}
