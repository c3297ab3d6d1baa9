//! How figures read in text: durations, rates, dates.

/// `850ms`, `42s`, `3m 10s`, `2h 05m`, `3d 4h`.
pub fn duration(ms: i64) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{}ms", ms.max(0))
    } else if ms < 60_000 {
        format!("{s}s")
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if ms < 86_400_000 {
        format!("{}h {:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}d {}h", s / 86_400, s % 86_400 / 3600)
    }
}

/// `duration` of an optional value; `—` without one.
pub fn maybe_duration(ms: Option<i64>) -> String {
    ms.map_or_else(|| "—".to_owned(), duration)
}

/// `87%`; `—` when there is nothing to divide.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", r * 100.0))
}

/// The UTC date of an RFC 3339 time (`2026-01-12T00:00:00.000Z` → `2026-01-12`).
pub fn date(rfc3339: &str) -> &str {
    rfc3339.get(..10).unwrap_or(rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(190_000), "3m 10s");
        assert_eq!(duration(2 * 3_600_000 + 5 * 60_000), "2h 05m");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
        assert_eq!(maybe_duration(None), "—");
        assert_eq!(percent(Some(0.875)), "88%");
        assert_eq!(date("2026-01-12T00:00:00.000Z"), "2026-01-12");
    }
}
