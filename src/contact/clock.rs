//! The contact flow's view of the program's one clock ([`crate::clock`]):
//! under `tokio::time::pause()` it moves with `advance()`, so tests can
//! jump over the one-hour reminder and the 24-hour timeout.

#[derive(Debug, Clone, Copy, Default)]
pub struct Clock;

impl Clock {
    pub fn new() -> Self {
        Clock
    }

    /// Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        crate::clock::now_ms()
    }

    /// The UTC day (`YYYY-MM-DD`) of `ms`, for the daily message cap.
    pub fn day(ms: i64) -> String {
        crate::clock::day(ms)
    }
}
