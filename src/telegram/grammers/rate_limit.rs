//! A global token bucket for everything the account *does* (sends and
//! button presses). Reads are not limited. Telegram does not publish its
//! limits for user accounts; a steady, human-like pace keeps the account
//! from being flagged as a spammer (FLOOD_WAIT, PEER_FLOOD, or a ban).
//!
//! Order work goes first: while a Tribute reply or a Send press waits for
//! a token, customer and moderator messages wait behind it, so a chatty
//! customer can never delay a paid order's delivery. Time is tokio's, so
//! the limiter follows the program's one clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Who is asking for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The Tribute exchange of a paid order (reply, Send press).
    Order,
    /// Everything else: customers, the moderator chat.
    Other,
}

/// Rate limit settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Actions allowed per minute, sustained.
    pub per_minute: f64,
    /// Actions allowed back to back after a quiet period.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 20 actions a minute (one every 3 s), bursts of 3: an order needs two
    /// (reply and press), so about ten orders a minute, far above what a
    /// Tribute shop sees, and slower than a person typing.
    fn default() -> Self {
        Self { per_minute: 20.0, burst: 3 }
    }
}

/// The bucket itself, with time passed in so it can be tested without sleeping.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        let capacity = f64::from(limit.burst.max(1));
        Self { tokens: capacity, capacity, per_sec: (limit.per_minute / 60.0).max(1e-6), last: now }
    }

    /// Takes a token, or says how long to wait for the next one.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
        }
    }
}

/// The shared limiter. Waiters of the same priority are served in the
/// order the mutex grants the lock (tokio's mutex is fair); an `Other`
/// caller steps back while an `Order` caller waits.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Mutex<Bucket>,
    /// `Order` callers waiting for a token right now.
    orders_waiting: AtomicUsize,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self { bucket: Mutex::new(Bucket::new(limit, Instant::now())), orders_waiting: AtomicUsize::new(0) }
    }

    /// Waits for a token. Holding the lock while sleeping keeps the order of
    /// callers of one priority.
    pub async fn acquire(&self, priority: Priority) {
        if priority == Priority::Order {
            self.orders_waiting.fetch_add(1, Ordering::SeqCst);
            let _counted = Counted(&self.orders_waiting);
            return self.take().await;
        }
        loop {
            if self.orders_waiting.load(Ordering::SeqCst) == 0 {
                let mut bucket = self.bucket.lock().await;
                if self.orders_waiting.load(Ordering::SeqCst) == 0 {
                    match bucket.try_take(Instant::now()) {
                        Ok(()) => return,
                        Err(wait) => {
                            drop(bucket);
                            tracing::debug!(?wait, "outgoing rate limit: waiting");
                            tokio::time::sleep(wait.min(OTHER_RECHECK)).await;
                            continue;
                        }
                    }
                }
            }
            tokio::time::sleep(OTHER_RECHECK).await;
        }
    }

    async fn take(&self) {
        let mut bucket = self.bucket.lock().await;
        loop {
            match bucket.try_take(Instant::now()) {
                Ok(()) => return,
                Err(wait) => {
                    tracing::debug!(?wait, "outgoing rate limit: waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// How often a waiting non-order caller looks again.
const OTHER_RECHECK: Duration = Duration::from_millis(50);

/// Uncounts a waiting `Order` caller however its wait ends (also when the
/// caller's future is dropped).
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_pace() {
        let t0 = Instant::now();
        let mut b = Bucket::new(RateLimit { per_minute: 60.0, burst: 3 }, t0);
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        let wait = b.try_take(t0).unwrap_err();
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_err());
        assert!(b.try_take(t0 + Duration::from_millis(1000)).is_ok());
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(b.try_take(later).is_ok());
        }
        assert!(b.try_take(later).is_err());
    }

    #[test]
    fn default_is_conservative() {
        let d = RateLimit::default();
        assert!(d.per_minute <= 30.0 && d.burst <= 5);
    }

    #[tokio::test]
    async fn limiter_spaces_out_callers() {
        let limiter = RateLimiter::new(RateLimit { per_minute: 1200.0, burst: 1 });
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire(Priority::Other).await;
        }
        // One immediate token, then three at 50 ms each.
        assert!(start.elapsed() >= Duration::from_millis(140), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn order_work_goes_before_waiting_customer_messages() {
        use std::sync::Arc;
        let limiter = Arc::new(RateLimiter::new(RateLimit { per_minute: 60.0, burst: 1 }));
        limiter.acquire(Priority::Other).await; // the bucket is empty now
        let done = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, p) in [Priority::Other, Priority::Other, Priority::Order, Priority::Order].into_iter().enumerate() {
            let (l, d) = (limiter.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                l.acquire(p).await;
                d.lock().unwrap().push((i, p));
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order: Vec<Priority> = done.lock().unwrap().iter().map(|(_, p)| *p).collect();
        assert_eq!(order, vec![Priority::Order, Priority::Order, Priority::Other, Priority::Other], "{done:?}");
    }
}
