//! Finding the customer's site account ID in free text.
//!
//! Used on the "Order Details" of a notification and, later, on the
//! customer's chat replies, so it takes plain text and knows nothing about
//! orders. The rule is deliberately strict: exactly one distinct candidate
//! is an answer; none or several go to a person (or back to the customer)
//! instead of guessing, because activating the wrong account gives the
//! product to a stranger.

use regex::Regex;

use crate::domain::AccountId;

/// The configured account pattern is not a valid regular expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid account pattern: {0}")]
pub struct PatternError(regex::Error);

/// A compiled account-ID pattern.
///
/// The default finds maximal runs of 4–12 ASCII digits, so `id123456`,
/// `#123456` and `ID: 123456` all yield `123456`, while a 13-digit card or
/// phone number and short fragments like `12 34 56` yield nothing.
#[derive(Debug, Clone)]
pub struct AccountPattern {
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// Maximal runs of ASCII digits whose length is in this range. Done by
    /// hand because "not adjacent to other digits" needs look-around,
    /// which the `regex` crate does not have.
    DigitRun { min: usize, max: usize },
    /// A publisher-supplied regex; capture group 1 if it has one, else the
    /// whole match.
    Custom(Regex),
}

impl Default for AccountPattern {
    fn default() -> Self {
        Self { matcher: Matcher::DigitRun { min: 4, max: 12 } }
    }
}

impl AccountPattern {
    /// Compiles a custom pattern, e.g. `(?i)acc-([a-z0-9]+)`. If the regex
    /// has a capture group, group 1 is the ID (matches where it did not
    /// take part are skipped); otherwise the whole match is. Candidates that
    /// are not a valid [`AccountId`] (spaces, punctuation) are ignored.
    pub fn new(regex: &str) -> Result<Self, PatternError> {
        let re = Regex::new(regex).map_err(PatternError)?;
        Ok(Self { matcher: Matcher::Custom(re) })
    }

    /// The publisher's own regex, when one is configured (the redactor
    /// replaces its matches too).
    pub fn custom_regex(&self) -> Option<&Regex> {
        match &self.matcher {
            Matcher::Custom(re) => Some(re),
            Matcher::DigitRun { .. } => None,
        }
    }

    /// Finds the account ID in `text`: one distinct candidate is `Found`
    /// (the same ID written twice still counts once), none is `Missing`,
    /// several are `Ambiguous` (in order of first appearance).
    pub fn extract(&self, text: &str) -> AccountExtraction {
        let candidates: Vec<&str> = match &self.matcher {
            Matcher::DigitRun { min, max } => {
                text.split(|c: char| !c.is_ascii_digit()).filter(|run| (*min..=*max).contains(&run.len())).collect()
            }
            Matcher::Custom(re) => {
                let group = usize::from(re.captures_len() > 1);
                re.captures_iter(text).filter_map(|c| c.get(group)).map(|m| m.as_str()).collect()
            }
        };
        let mut ids: Vec<AccountId> = Vec::new();
        for id in candidates.into_iter().filter_map(|s| AccountId::parse(s).ok()) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        match ids.len() {
            0 => AccountExtraction::Missing,
            1 => AccountExtraction::Found(ids.remove(0)),
            _ => AccountExtraction::Ambiguous(ids),
        }
    }
}

/// What [`AccountPattern::extract`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountExtraction {
    /// Exactly one distinct ID.
    Found(AccountId),
    /// No ID at all.
    Missing,
    /// Several different IDs; we must not pick one.
    Ambiguous(Vec<AccountId>),
}

impl AccountExtraction {
    /// `None` when an ID was found, else `"missing"` or `"ambiguous"`
    /// (the same words the CLI JSON and the logs use).
    pub fn problem(&self) -> Option<&'static str> {
        match self {
            AccountExtraction::Found(_) => None,
            AccountExtraction::Missing => Some("missing"),
            AccountExtraction::Ambiguous(_) => Some("ambiguous"),
        }
    }

    /// The ID, only when exactly one was found.
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            AccountExtraction::Found(id) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn found(s: &str) -> AccountExtraction {
        AccountExtraction::Found(AccountId::parse(s).unwrap())
    }

    fn extract(text: &str) -> AccountExtraction {
        AccountPattern::default().extract(text)
    }

    #[test]
    fn default_pattern_finds_ids_in_common_spellings() {
        for text in ["id123456", "#123456", "ID: 123456", "ID:123456", "my account is 123456, thanks", "123456"] {
            assert_eq!(extract(text), found("123456"), "{text:?}");
        }
    }

    #[test]
    fn default_pattern_respects_run_length() {
        assert_eq!(extract("1234"), found("1234"));
        assert_eq!(extract("123456789012"), found("123456789012"));
        assert_eq!(extract("123"), AccountExtraction::Missing);
        assert_eq!(extract("1234567890123"), AccountExtraction::Missing, "13 digits is not an ID");
        assert_eq!(extract("12 34 56"), AccountExtraction::Missing);
        assert_eq!(extract(""), AccountExtraction::Missing);
        assert_eq!(extract("card 1234567890123456, id 777777"), found("777777"));
    }

    #[test]
    fn keeps_leading_zeros() {
        assert_eq!(extract("id 000123"), found("000123"));
    }

    #[test]
    fn same_id_twice_is_found_two_ids_are_ambiguous() {
        assert_eq!(extract("123456 or again 123456"), found("123456"));
        let two = extract("123456 or maybe 654321");
        assert_eq!(
            two,
            AccountExtraction::Ambiguous(vec![
                AccountId::parse("123456").unwrap(),
                AccountId::parse("654321").unwrap()
            ])
        );
        assert_eq!(two.problem(), Some("ambiguous"));
        assert_eq!(two.account(), None);
    }

    #[test]
    fn non_ascii_digits_are_not_ids() {
        assert_eq!(extract("١٢٣٤٥٦"), AccountExtraction::Missing);
    }

    #[test]
    fn problem_and_account_accessors() {
        assert_eq!(found("1234").problem(), None);
        assert_eq!(found("1234").account().map(AccountId::as_str), Some("1234"));
        assert_eq!(AccountExtraction::Missing.problem(), Some("missing"));
        assert_eq!(AccountExtraction::Missing.account(), None);
    }

    #[test]
    fn custom_pattern_uses_capture_group_one() {
        let p = AccountPattern::new("(?i)acc-([a-z0-9]+)").unwrap();
        assert_eq!(p.extract("please ACC-ab12 thanks"), found("ab12"));
        assert_eq!(p.extract("123456"), AccountExtraction::Missing);
        assert_eq!(p.extract("acc-x1 acc-x1"), found("x1"));
        assert_eq!(p.extract("acc-x1 acc-y2").problem(), Some("ambiguous"));
    }

    #[test]
    fn custom_pattern_without_group_uses_whole_match() {
        let p = AccountPattern::new("U-[0-9]{3}").unwrap();
        assert_eq!(p.extract("user U-042."), found("U-042"));
    }

    #[test]
    fn custom_pattern_skips_candidates_that_are_not_account_ids() {
        let p = AccountPattern::new(r"id=(\S+)").unwrap();
        assert_eq!(p.extract("id=a!b"), AccountExtraction::Missing);
        let optional = AccountPattern::new(r"x(\d+)?").unwrap();
        assert_eq!(optional.extract("x x42"), found("42"));
    }

    #[test]
    fn invalid_pattern_is_an_error() {
        let err = AccountPattern::new("(unclosed").unwrap_err();
        assert!(err.to_string().starts_with("invalid account pattern"), "{err}");
    }

    proptest! {
        #[test]
        fn found_ids_occur_in_the_text(text in "\\PC*") {
            match extract(&text) {
                AccountExtraction::Found(id) => prop_assert!(text.contains(id.as_str())),
                AccountExtraction::Ambiguous(ids) => {
                    prop_assert!(ids.len() >= 2);
                    for id in &ids { prop_assert!(text.contains(id.as_str())); }
                }
                AccountExtraction::Missing => {}
            }
        }
    }
}
