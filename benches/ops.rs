//! Ops figures: `/metrics` latency over a store with 10k orders, and Tribute
//! webhook events stored per second through the real HTTP route.
//!
//!     cargo bench --bench ops                      # 10k orders, 2000 webhooks
//!     BENCH_ORDERS=50000 BENCH_WEBHOOKS=5000 cargo bench --bench ops
//!
//! The store is a SQLite file in a temp dir (WAL, as in production); the
//! listener is the real axum server on 127.0.0.1:0; requests are made with
//! reqwest over loopback, so each figure includes HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Notify;
use tribute_assistant::domain::{AccountId, Currency, Money, OrderRef, OrderState};
use tribute_assistant::ops::{Metrics, OpsState, TelegramStats};
use tribute_assistant::store::{MessageKind, NewOrder, Recorded, Store, Transition};
use tribute_assistant::telegram::Message;
use tribute_assistant::webhook::signature::{sign, SIGNATURE_HEADER};
use tribute_assistant::webhook::{WebhookState, WebhookStats, WEBHOOK_PATH};

const CHAT: i64 = 93372553;
const API_KEY: &str = "bench-api-key";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `n` orders: most confirmed with an activation, some escalated, some open.
async fn seed(store: &Store, n: usize) {
    for i in 0..n {
        let msg = Message {
            chat_id: CHAT,
            id: i as i32 + 1,
            sender_id: Some(CHAT),
            outgoing: false,
            sender_is_bot: true,
            date: chrono::Utc::now().timestamp(),
            text: format!(
                "🆕 Custom Product Order\nCustomer: C{i}\nProduct: 100 Diamonds\nPrice: €5.00\nOrder Details:\nID {i}"
            ),
            entities: vec![],
            reply_to: None,
            buttons: vec![],
        };
        let order = NewOrder {
            order_ref: OrderRef::for_message(CHAT, msg.id),
            customer_name: format!("C{i}"),
            customer_id: Some(10_000 + i as i64),
            customer_username: None,
            product: "100 Diamonds".into(),
            price: Money::new(500, Currency::Eur).unwrap(),
            details: format!("ID {}", 100_000 + i),
            account_candidates: vec![AccountId::parse(&(100_000 + i).to_string()).unwrap()],
        };
        let Recorded::NewOrder(id) =
            store.record_tribute_message(&msg, MessageKind::Order, None, Some(&order), None).await.unwrap()
        else {
            panic!("order not created")
        };
        if i % 10 == 9 {
            continue; // left in `received`
        }
        let t = Transition::to(OrderState::ActivationRequested, "bench");
        store.transition(id, OrderState::Received, t).await.unwrap();
        let mut t = Transition::to(OrderState::Activated, "bench");
        t.activation_id = Some(format!("act-{i}"));
        store.transition(id, OrderState::ActivationRequested, t).await.unwrap();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn metrics_latency(orders: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.sqlite")).await.unwrap();
    let started = Instant::now();
    seed(&store, orders).await;
    println!("seeded {orders} orders in {:.1} s", started.elapsed().as_secs_f64());
    let state =
        Arc::new(OpsState::new(store.clone(), Arc::new(Metrics::default()), Arc::new(TelegramStats::default()), None));
    let server = tribute_assistant::ops::start_ops_server(([127, 0, 0, 1], 0).into(), state).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", server.url());
    let mut bytes = 0;
    for _ in 0..10 {
        bytes = http.get(&url).send().await.unwrap().bytes().await.unwrap().len();
    }
    let rounds = env_usize("BENCH_SCRAPES", 300);
    let mut took = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let body = http.get(&url).send().await.unwrap().bytes().await.unwrap();
        took.push(t.elapsed());
        assert!(body.len() > 1000);
    }
    took.sort();
    let mean = took.iter().sum::<Duration>() / rounds as u32;
    println!(
        "/metrics over {orders} orders: {rounds} scrapes, p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms, {bytes} bytes",
        percentile(&took, 0.5).as_secs_f64() * 1e3,
        percentile(&took, 0.99).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
    );
    server.shutdown().await;
    store.close().await;
}

fn webhook_body(i: usize) -> String {
    serde_json::json!({
        "name": "new_digital_product",
        "created_at": chrono::Utc::now().to_rfc3339(),
        "sent_at": chrono::Utc::now().to_rfc3339(),
        "payload": {
            "product_id": 17, "product_name": "100 Diamonds", "amount": 500, "currency": "eur",
            "telegram_user_id": 10_000 + i, "purchase_id": 1_000_000 + i, "transaction_id": format!("tx-{i}")
        }
    })
    .to_string()
}

async fn webhook_rate(events: usize, concurrency: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.sqlite")).await.unwrap();
    let stats = Arc::new(WebhookStats::default());
    let webhook = Arc::new(WebhookState {
        store: store.clone(),
        api_key: SecretString::from(API_KEY),
        wake: Arc::new(Notify::new()),
        stats: stats.clone(),
    });
    let server = tribute_assistant::ops::start_webhook_server(([127, 0, 0, 1], 0).into(), webhook).await.unwrap();
    let url = format!("{}{WEBHOOK_PATH}", server.url());
    let bodies: Vec<(String, String)> = (0..events)
        .map(|i| {
            let b = webhook_body(i);
            let s = sign(API_KEY.as_bytes(), b.as_bytes());
            (b, s)
        })
        .collect();
    let bodies = Arc::new(bodies);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (bodies, http, url) = (bodies.clone(), http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for (body, sig) in bodies.iter().skip(worker).step_by(concurrency) {
                let r = http.post(&url).header(SIGNATURE_HEADER, sig).body(body.clone()).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    let stored = stats.stored.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(stored as usize, events);
    println!(
        "webhooks: {events} signed events over HTTP, {concurrency} concurrent senders: {:.0} events stored/s ({:.2} ms each)",
        events as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / events as f64,
    );
    // Replays are answered without a write.
    let started = Instant::now();
    for (body, sig) in bodies.iter().take(500.min(events)) {
        http.post(&url).header(SIGNATURE_HEADER, sig).body(body.clone()).send().await.unwrap();
    }
    println!(
        "webhook replays (duplicates): {:.0} answered/s",
        500.min(events) as f64 / started.elapsed().as_secs_f64()
    );
    server.shutdown().await;
    store.close().await;
}

fn main() {
    tribute_assistant::http::tls::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        metrics_latency(env_usize("BENCH_ORDERS", 10_000)).await;
        let events = env_usize("BENCH_WEBHOOKS", 2000);
        webhook_rate(events, 1).await;
        webhook_rate(events, 8).await;
    });
}
