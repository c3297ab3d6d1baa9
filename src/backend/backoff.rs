//! Delay between activation attempts.
//!
//! Exponential so a struggling backend gets room to recover, capped so an
//! order is never stuck behind one huge sleep, and jittered so many parked
//! orders retried at once do not hit the backend in lockstep.

use std::time::Duration;

/// Delay after failed attempt number `attempt` (1-based): "equal jitter",
/// i.e. half of `min(max, initial * 2^(attempt-1))` plus a random part of
/// up to the other half. Never panics or overflows, whatever the inputs.
pub(crate) fn delay(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    let base = initial.saturating_mul(factor).min(max);
    let half = base / 2;
    let jitter_nanos = fastrand::u64(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX));
    half + Duration::from_nanos(jitter_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_bounds() {
        let initial = Duration::from_millis(200);
        let max = Duration::from_secs(10);
        for (attempt, base_ms) in [(1, 200u64), (2, 400), (3, 800), (4, 1600), (7, 10_000), (40, 10_000)] {
            for _ in 0..50 {
                let d = delay(attempt, initial, max);
                assert!(d >= Duration::from_millis(base_ms / 2), "attempt {attempt}: {d:?}");
                assert!(d <= Duration::from_millis(base_ms), "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn handles_degenerate_inputs() {
        assert_eq!(delay(0, Duration::ZERO, Duration::ZERO), Duration::ZERO);
        assert!(delay(u32::MAX, Duration::MAX, Duration::from_secs(1)) <= Duration::from_secs(1));
    }
}
