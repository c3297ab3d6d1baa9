//! Every bound on a wait in the integration tests, named for what it
//! waits for, and the ways to wait: polling a condition ([`eventually`]),
//! one awaited step ([`within`]), and a paused tokio clock that moves only
//! when a test says so ([`pause_time`], [`advance`]).
//!
//! The bounds are generous on purpose: all integration tests share one
//! process and two cores, and only a failing test waits that long. No
//! check that something happened only once rests on a fixed sleep: such a
//! check waits for a condition (the store's state, a counter, a later
//! event that must come after anything left over) or runs on a paused
//! clock.

use std::future::Future;
use std::time::{Duration, Instant};

pub use tribute_assistant::runtime::clock::paused::PausedClock;

/// The daemon getting somewhere (in a sandbox, over MTProto or as a real
/// process): an order reaching a state, a message sent, a card posted,
/// the process ready or exited. Real time.
pub const SETTLE: Duration = Duration::from_secs(60);

/// One event or answer on a connection the test holds (a simulator
/// client, grammers over loopback). Tokio time: on a paused clock it is
/// also longer than any delay the simulator injects on purpose (a late bot
/// follow-up comes within 30 s, a disconnect fault heals within 8 s), so
/// "nothing within `EVENT`" means nothing is coming.
pub const EVENT: Duration = Duration::from_secs(60);

/// How long a fresh grammers update stream is polled before a test posts
/// anything, so that it has fetched its state (its first `next` asks for
/// it; an update pushed before the answer would count as already seen).
/// grammers gives no sign that it has the state, so this is a time.
pub const STREAM_PRIMING: Duration = Duration::from_millis(300);

/// How long a simulated Telegram outage lasts where a test cuts the link
/// for a while: long enough for the daemon to run into it.
pub const OUTAGE: Duration = Duration::from_millis(300);

/// Polls `check` until it returns `Some`, or `None` after [`SETTLE`] of
/// real time (for callers that say themselves why it timed out).
pub async fn try_eventually<T, F, Fut>(mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if start.elapsed() >= SETTLE {
            return None;
        }
        settle_a_little().await;
    }
}

/// Polls `check` until it returns `Some`, failing the test after
/// [`SETTLE`] of real time.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match try_eventually(check).await {
        Some(v) => v,
        None => panic!("timed out after {SETTLE:?} waiting for: {what}"),
    }
}

/// `fut`, failing the test if it takes longer than [`EVENT`] of tokio time.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(EVENT, fut).await.unwrap_or_else(|_| panic!("timed out after {EVENT:?}: {what}"))
}

async fn settle_a_little() {
    if PausedClock::is_held() {
        let until = Instant::now() + Duration::from_millis(2);
        while Instant::now() < until {
            tokio::task::yield_now().await;
        }
    } else {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Pauses the tokio clock once the daemon is quiet (the library's
/// [`PausedClock`]: auto-advance is held off, because it would jump the
/// clock whenever the runtime waits on the SQLite thread and fire the
/// pool's acquire timeout; polls yield instead of sleeping meanwhile).
/// [`PausedClock::resume`] resumes it. Only on a current-thread runtime,
/// as tokio requires.
pub async fn pause_time() -> PausedClock {
    settle_quietly().await;
    PausedClock::start()
}

/// Moves the paused clock on, after letting in-flight queries finish.
pub async fn advance(by: Duration) {
    settle_quietly().await;
    tokio::time::advance(by).await;
}

/// Lets the daemon's tasks finish what they are doing (a few ms of real
/// time) before the paused clock moves. Not a check of anything.
async fn settle_quietly() {
    for _ in 0..10 {
        settle_a_little().await;
    }
}

/// On a clock paused with auto-advance (`#[tokio::test(start_paused =
/// true)]`, no SQLite): returns once every other task has run until it
/// waits, because tokio moves a paused clock on only when nothing can run.
pub async fn until_idle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}
