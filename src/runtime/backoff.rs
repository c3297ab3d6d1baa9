//! The one backoff formula: a wait that doubles with every failure in a
//! row, from the caller's `base` up to its `cap`, so a struggling
//! dependency (Telegram, the backend, an LLM) gets room to recover and no
//! item ever waits behind one huge sleep. Each caller keeps its own base
//! and cap; the [`Jitter`] says how items that failed together are spread
//! so they do not retry together. Never panics or overflows, whatever the
//! inputs.

use std::time::Duration;

/// How a wait is spread around the formula's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// The wait as it is: one caller at a time (a reconnect loop, a post
    /// with a schedule of its own).
    None,
    /// ±20 %, never past the cap: orders and work items parked together.
    Spread,
    /// Half the wait plus a random part of up to the other half ("equal
    /// jitter"): requests to one server that failed in a burst.
    Equal,
    /// Up to a quarter more, never less: a wait Telegram asked for (a
    /// flood wait the caller took as the wait) is kept whole.
    Later,
}

impl Jitter {
    /// `wait` spread as this jitter says.
    pub fn apply(self, wait: Duration) -> Duration {
        let up_to =
            |d: Duration| Duration::from_nanos(fastrand::u64(0..=u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)));
        match self {
            Jitter::None => wait,
            Jitter::Spread => {
                Duration::try_from_secs_f64(wait.as_secs_f64() * (0.8 + 0.4 * fastrand::f64())).unwrap_or(Duration::MAX)
            }
            Jitter::Equal => wait / 2 + up_to(wait / 2),
            Jitter::Later => wait.saturating_add(up_to(wait / 4)),
        }
    }
}

/// The wait after `failures` failures in a row (0: the first retry waits
/// `base`): `min(cap, base · 2^failures)`, spread by `jitter` and, for
/// [`Jitter::Spread`], never past `cap`. Negative counts count as 0.
pub fn delay(failures: impl Into<i64>, base: Duration, cap: Duration, jitter: Jitter) -> Duration {
    let doublings = failures.into().clamp(0, 32) as u32;
    let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
    let wait = jitter.apply(base.saturating_mul(factor).min(cap));
    if jitter == Jitter::Spread {
        wait.min(cap)
    } else {
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_base_up_to_the_cap() {
        let (base, cap) = (Duration::from_millis(200), Duration::from_secs(10));
        for (failures, ms) in [(0, 200u64), (1, 400), (2, 800), (3, 1600), (6, 10_000), (40, 10_000)] {
            assert_eq!(delay(failures, base, cap, Jitter::None), Duration::from_millis(ms), "failures {failures}");
        }
    }

    #[test]
    fn each_jitter_stays_in_its_bounds() {
        let (base, cap) = (Duration::from_millis(200), Duration::from_secs(10));
        for (failures, ms) in [(0, 200u64), (3, 1600), (40, 10_000)] {
            let wait = Duration::from_millis(ms);
            for _ in 0..50 {
                let equal = delay(failures, base, cap, Jitter::Equal);
                assert!(equal >= wait / 2 && equal <= wait, "equal, failures {failures}: {equal:?}");
                let spread = delay(failures, base, cap, Jitter::Spread);
                assert!(spread >= wait.mul_f64(0.8) && spread <= wait.mul_f64(1.2).min(cap), "spread: {spread:?}");
                let later = delay(failures, base, cap, Jitter::Later);
                assert!(later >= wait && later <= wait + wait / 4, "later, failures {failures}: {later:?}");
            }
        }
    }

    #[test]
    fn handles_degenerate_inputs() {
        assert_eq!(delay(0, Duration::ZERO, Duration::ZERO, Jitter::Equal), Duration::ZERO);
        assert_eq!(delay(-5, Duration::from_secs(1), Duration::from_secs(9), Jitter::None), Duration::from_secs(1));
        assert!(delay(u32::MAX, Duration::MAX, Duration::from_secs(1), Jitter::Equal) <= Duration::from_secs(1));
        assert!(delay(i64::MAX, Duration::MAX, Duration::MAX, Jitter::Later) == Duration::MAX);
        assert!(delay(i64::MAX, Duration::MAX, Duration::from_secs(1), Jitter::Spread) <= Duration::from_secs(1));
    }
}
