//! Helpers for tests that drive the daemon on the Telegram simulator:
//! orders to post, waiting for the daemon with real-time deadlines, and a
//! paused tokio clock for the contact timers.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tribute_assistant::domain::{OrderRef, OrderState};
use tribute_assistant::store::OrderRecord;
use tribute_assistant::testbed::sandbox::Sandbox;
use tribute_assistant::testbed::sim::SimOrder;

/// How long `eventually` waits, in real time. Generous: all integration
/// tests share one process and two cores.
pub const WAIT: Duration = Duration::from_secs(60);

/// A "Custom Product Order" for 100 Diamonds at €5.00.
pub fn diamonds(customer_id: i64, name: &str, details: &str) -> SimOrder {
    SimOrder {
        customer_id,
        customer_name: name.into(),
        product: "100 Diamonds".into(),
        price: "€5.00".into(),
        details: details.into(),
    }
}

/// A "Custom Product Order" for a Premium month at €5.00 with a valid ID.
pub fn premium_month(customer_id: i64, name: &str) -> SimOrder {
    SimOrder {
        customer_id,
        customer_name: name.into(),
        product: "Premium month".into(),
        price: "€5.00".into(),
        details: "My ID: 123456".into(),
    }
}

thread_local! {
    /// Set while the tokio clock is paused: then time moves only by
    /// `advance()`. Auto-advance is held off by a blocking task (tokio does
    /// not auto-advance while one runs), because it would jump the clock
    /// whenever the runtime waits on the SQLite thread and fire the pool's
    /// acquire timeout; polls yield instead of sleeping.
    static PAUSED: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Polls `check` until it returns `Some`, failing the test after [`WAIT`]
/// of real time.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for: {what}");
        settle_a_little().await;
    }
}

async fn settle_a_little() {
    if PAUSED.with(|p| p.borrow().is_some()) {
        let until = Instant::now() + Duration::from_millis(2);
        while Instant::now() < until {
            tokio::task::yield_now().await;
        }
    } else {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Pauses the tokio clock (see [`PAUSED`]) once the daemon is quiet.
/// Only on a current-thread runtime, as tokio requires.
pub async fn pause_time() {
    settle_quietly().await;
    tokio::time::pause();
    let holding = Arc::new(AtomicBool::new(true));
    let h = holding.clone();
    tokio::task::spawn_blocking(move || {
        while h.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    PAUSED.with(|p| *p.borrow_mut() = Some(holding));
}

/// Moves the paused clock on, after letting in-flight queries finish.
pub async fn advance(by: Duration) {
    settle_quietly().await;
    tokio::time::advance(by).await;
}

/// Lets the daemon's tasks finish what they are doing (a few ms of real time).
pub async fn settle_quietly() {
    for _ in 0..10 {
        settle_a_little().await;
    }
}

pub fn resume_time() {
    if let Some(holding) = PAUSED.with(|p| p.borrow_mut().take()) {
        holding.store(false, Ordering::Relaxed);
    }
    tokio::time::resume();
}

/// The order stored for the Tribute message `msg`, if any yet.
pub async fn try_order(sb: &Sandbox, msg: i32) -> Option<OrderRecord> {
    let r = OrderRef::for_message(sb.tribute_chat(), msg);
    sb.store().order_by_ref(&r).await.unwrap()
}

pub async fn order_of(sb: &Sandbox, msg: i32) -> OrderRecord {
    try_order(sb, msg).await.expect("order stored")
}

/// Waits for the order of Tribute message `msg` to reach `state`; on
/// timeout the failure shows the order's history, which says why not.
pub async fn wait_state(sb: &Sandbox, msg: i32, state: OrderState) -> OrderRecord {
    let start = Instant::now();
    loop {
        let order = try_order(sb, msg).await;
        if let Some(o) = order.as_ref().filter(|o| o.state == state) {
            return o.clone();
        }
        if start.elapsed() >= WAIT {
            let history = match &order {
                Some(o) => sb.store().order_events(o.id).await.unwrap(),
                None => vec![],
            };
            let lines: Vec<String> =
                history.iter().map(|e| format!("  {} → {}: {}", e.at, e.to_state, e.note)).collect();
            panic!(
                "timed out waiting for order {msg} in {state}; it is {:?}:\n{}",
                order.map(|o| o.state),
                lines.join("\n")
            );
        }
        settle_a_little().await;
    }
}
