//! How a case is named where people see it: `C12`, typed back by
//! moderators in any of a few shapes.

/// The id moderators see and type.
pub fn short_id(id: i64) -> String {
    format!("C{id}")
}

/// Reads `C12`, `c12`, `#C12` or `12` back into a case id.
pub fn parse_short_id(s: &str) -> Option<i64> {
    let s = s.trim().trim_start_matches('#');
    let digits = s.strip_prefix(['C', 'c']).unwrap_or(s);
    digits.parse().ok().filter(|n: &i64| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_read_back() {
        assert_eq!(parse_short_id(&short_id(12)), Some(12));
        assert_eq!(parse_short_id("#c7"), Some(7));
        assert_eq!(parse_short_id("7"), Some(7));
        assert_eq!(parse_short_id("C"), None);
        assert_eq!(parse_short_id("C0"), None);
    }
}
