//! The contact flow's clock: wall time when the daemon started plus tokio's
//! monotonic time since. In production that is the wall clock; under
//! `tokio::time::pause()` it moves with `advance()`, so tests can jump over
//! the one-hour reminder and the 24-hour timeout.

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_at_start: i64,
    started: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Self { wall_at_start: crate::store::now_ms(), started: Instant::now() }
    }

    /// Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.wall_at_start + self.started.elapsed().as_millis() as i64
    }

    /// The UTC day (`YYYY-MM-DD`) of `ms`, for the daily message cap.
    pub fn day(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d").to_string()
    }
}
