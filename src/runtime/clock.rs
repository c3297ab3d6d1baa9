//! The one clock of the program: unix milliseconds that move with tokio's
//! time. In production tokio's time is the monotonic clock, so this is the
//! wall clock read once plus the time elapsed since; under
//! `tokio::time::pause()` (tests, `simulate`) it moves only when tokio's
//! time is advanced, so every due time in the store, every timeout and
//! every date the simulator stamps on a message follow the same clock.
//!
//! Anchored once per process: a wall-clock reading and the monotonic
//! instant it was taken at. A paused runtime's clock starts at the real
//! instant it was paused and only moves forward from there, so it stays
//! comparable to the anchor.

use std::sync::OnceLock;
use std::time::Duration;

struct Anchor {
    wall_ms: i64,
    at: std::time::Instant,
}

fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| Anchor { wall_ms: chrono::Utc::now().timestamp_millis(), at: std::time::Instant::now() })
}

/// Unix milliseconds on the program's clock.
pub fn now_ms() -> i64 {
    let a = anchor();
    let now = tokio::time::Instant::now().into_std();
    match now.checked_duration_since(a.at) {
        Some(ahead) => a.wall_ms + ahead.as_millis() as i64,
        None => a.wall_ms - a.at.duration_since(now).as_millis() as i64,
    }
}

/// Unix seconds on the program's clock (Telegram's message dates).
pub fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

/// The same instant as a `chrono` time, for formatting and signatures.
pub fn now_utc() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(now_ms()).unwrap_or_default()
}

/// Milliseconds from now until `due_ms` (zero when it is due).
pub fn until(due_ms: i64) -> Duration {
    Duration::from_millis(due_ms.saturating_sub(now_ms()).max(0) as u64)
}

/// The UTC day (`YYYY-MM-DD`) of `ms`, for daily caps.
pub fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d").to_string()
}

/// A paused clock for tests over SQLite: the library's unit tests and,
/// through the `test-support` feature, the integration tests.
#[cfg(any(test, feature = "test-support"))]
pub mod paused {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    thread_local! {
        /// Set while this thread's runtime clock is paused by [`PausedClock`]:
        /// waits that poll should then yield instead of sleeping.
        static HELD: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
    }

    /// Pauses tokio's clock so only `tokio::time::advance` moves it. A
    /// blocking task holds off auto-advance: tokio would otherwise jump the
    /// clock while the runtime waits on SQLite's thread and time the pool
    /// out. Dropped (a failing assertion unwinds, or the test ends), it lets
    /// the blocking task go, so the runtime can shut down; the clock stays
    /// paused unless [`PausedClock::resume`]d. Only on a current-thread
    /// runtime, as tokio requires.
    #[must_use = "the clock is held paused only while this lives"]
    pub struct PausedClock(Arc<AtomicBool>);

    impl PausedClock {
        pub fn start() -> Self {
            tokio::time::pause();
            let hold = Arc::new(AtomicBool::new(true));
            let h = hold.clone();
            tokio::task::spawn_blocking(move || {
                while h.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            HELD.with(|held| *held.borrow_mut() = Some(hold.clone()));
            Self(hold)
        }

        /// Lets the blocking task go and resumes tokio's clock.
        pub fn resume(self) {
            drop(self);
            tokio::time::resume();
        }

        /// Whether a [`PausedClock`] holds this thread's clock now.
        pub fn is_held() -> bool {
            HELD.with(|held| held.borrow().is_some())
        }
    }

    impl Drop for PausedClock {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Relaxed);
            HELD.with(|held| held.borrow_mut().take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn moves_with_paused_tokio_time() {
        let before = now_ms();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let after = now_ms();
        assert!((after - before - 3_600_000).abs() < 50, "advanced {} ms", after - before);
    }

    #[test]
    fn close_to_the_wall_clock_outside_paused_time() {
        let wall = chrono::Utc::now().timestamp_millis();
        assert!((now_ms() - wall).abs() < 1000);
    }
}
