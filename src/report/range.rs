//! The time range a report covers and its trend buckets (UTC days or
//! weeks starting on Monday).

use std::time::Duration;

use super::weekly::{FIRST_MONDAY, WEEK};
use crate::store::report::ReportQuery;

const DAY: i64 = 86_400_000;
/// Ranges up to this long are shown per day when the bucket is not chosen.
const DAILY_UP_TO: i64 = 62 * DAY;
/// More buckets than this make a trend nobody can read (and a page nobody can load).
const MAX_BUCKETS: i64 = 5000;

/// How the trend is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Day,
    Week,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
        }
    }

    fn size(self) -> i64 {
        match self {
            Bucket::Day => DAY,
            Bucket::Week => WEEK,
        }
    }

    /// The start of the bucket `t` falls in.
    fn floor(self, t: i64) -> i64 {
        let origin = match self {
            Bucket::Day => 0,
            Bucket::Week => FIRST_MONDAY,
        };
        origin + (t - origin).div_euclid(self.size()) * self.size()
    }
}

/// `[since, until)` in unix ms, cut into buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub since_ms: i64,
    pub until_ms: i64,
    pub bucket: Bucket,
}

impl Range {
    /// `bucket`: `None` picks days for up to 62 days, weeks beyond.
    pub fn new(since_ms: i64, until_ms: i64, bucket: Option<Bucket>) -> anyhow::Result<Self> {
        if since_ms >= until_ms {
            anyhow::bail!("the range is empty: --since must be before --until");
        }
        let bucket = bucket.unwrap_or(if until_ms - since_ms <= DAILY_UP_TO { Bucket::Day } else { Bucket::Week });
        let range = Self { since_ms, until_ms, bucket };
        if range.buckets() > MAX_BUCKETS {
            anyhow::bail!(
                "the range spans {} {}s; at most {MAX_BUCKETS} fit a trend: narrow --since/--until{}",
                range.buckets(),
                bucket.as_str(),
                if bucket == Bucket::Day { " or use --by week" } else { "" }
            );
        }
        Ok(range)
    }

    /// The seven days before `end`, per day (the weekly summary's range).
    pub fn last_week(end: i64) -> Self {
        Self { since_ms: end - WEEK, until_ms: end, bucket: Bucket::Day }
    }

    /// The last `d` before `end`.
    pub fn last(d: Duration, end: i64) -> anyhow::Result<Self> {
        let back = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self::new(end.saturating_sub(back).max(0).min(end - 1), end, None)
    }

    /// The first instant of bucket `b` (as numbered by [`Self::query`]).
    pub fn bucket_start(&self, b: i64) -> i64 {
        self.bucket.floor(self.since_ms) + b * self.bucket.size()
    }

    /// How many buckets the range spans.
    pub fn buckets(&self) -> i64 {
        (self.until_ms - 1 - self.bucket.floor(self.since_ms)).div_euclid(self.bucket.size()) + 1
    }

    /// The store's query for this range.
    pub fn query(&self, as_of_ms: i64, resolution_window: Duration) -> ReportQuery {
        ReportQuery {
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            as_of_ms,
            resolution_window_ms: resolution_window.as_millis().min(i64::MAX as u128 / 4) as i64,
            bucket_origin_ms: self.bucket.floor(self.since_ms),
            bucket_ms: self.bucket.size(),
        }
    }
}

/// `7d`, `2w`, `12h`: a duration back from now.
pub fn parse_relative(s: &str) -> Option<Duration> {
    let s = s.trim();
    // The unit is the last character, whatever its width (`7д`, `1🙂`).
    let (at, unit) = s.char_indices().last()?;
    let n: u64 = s[..at].parse().ok()?;
    let secs = match unit {
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-14T15:00:00Z, a Wednesday.
    const WED_3PM: i64 = 1_768_402_800_000;

    #[test]
    fn buckets_are_utc_days_and_monday_weeks() {
        let r = Range::new(WED_3PM, WED_3PM + 2 * DAY, Some(Bucket::Day)).unwrap();
        assert_eq!(r.bucket_start(0), WED_3PM - 15 * 3_600_000);
        assert_eq!(r.buckets(), 3, "Wednesday 15:00 to Friday 15:00 touches three days");
        let q = r.query(0, Duration::from_secs(60));
        assert_eq!((WED_3PM - q.bucket_origin_ms) / q.bucket_ms, 0);
        assert_eq!((WED_3PM + DAY - q.bucket_origin_ms) / q.bucket_ms, 1);
        let w = Range::new(WED_3PM, WED_3PM + 90 * DAY, None).unwrap();
        assert_eq!(w.bucket, Bucket::Week, "long ranges go per week");
        let monday = w.bucket_start(0);
        assert_eq!(chrono::DateTime::from_timestamp_millis(monday).unwrap().to_rfc3339(), "2026-01-12T00:00:00+00:00");
        assert!(Range::new(5, 5, None).is_err());
    }

    #[test]
    fn relative_since() {
        assert_eq!(parse_relative("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_relative("2w"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_relative("12h"), Some(Duration::from_secs(12 * 3600)));
        for bad in [
            "",
            "d",
            "7",
            "7y",
            "-1d",
            "2026-01-01",
            "7д",
            "🙂",
            "1🙂",
            "д",
            "99999999999999999999d",
            "\u{200f}7d\u{200b}",
        ] {
            assert_eq!(parse_relative(bad), None, "{bad}");
        }
        let r = Range::last(Duration::from_secs(u64::MAX), WED_3PM).unwrap();
        assert_eq!(r.since_ms, 0, "a huge duration is clamped to the epoch, not wrapped");
        assert_eq!(r.bucket, Bucket::Week);
        assert!(Range::new(0, WED_3PM, Some(Bucket::Day)).unwrap_err().to_string().contains("--by week"));
    }
}
