//! PII redaction: customer identifiers are replaced by placeholders before a
//! text is embedded or stored in the index, so the knowledge base (and any
//! remote embedding provider or Qdrant server) never sees them.
//!
//! Order matters: e-mails before @usernames (an address contains `@`), card
//! numbers before phones (a card number looks like a long phone), phones
//! before account IDs (a phone is a run of digits too).

use std::sync::LazyLock;

use regex::Regex;

pub const EMAIL: &str = "[EMAIL]";
pub const CARD: &str = "[CARD]";
pub const PHONE: &str = "[PHONE]";
pub const ACCOUNT_ID: &str = "[ACCOUNT_ID]";
pub const USERNAME: &str = "[USERNAME]";

static EMAIL_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}\b").expect("valid regex"));
/// 13–19 digits, optionally grouped by spaces or dashes (payment cards).
static CARD_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(?:\d[ \-]?){12,18}\d\b").expect("valid regex"));
/// International (+…) or Russian trunk (8 …) numbers with separators, 10–15 digits.
static PHONE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+\d{1,3}|\b8)[\s\-]?\(?\d{3,4}\)?[\s\-]?\d{2,4}[\s\-]?\d{2}[\s\-]?\d{2,4}\b").expect("valid regex")
});
/// A Telegram username: @ + 5–32 letters, digits or underscores.
static USERNAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^\w@])(@[A-Za-z][A-Za-z0-9_]{3,31})\b").expect("valid regex"));
/// A standalone run of 5–12 digits (the shop's account IDs are 4–12 digits;
/// 4-digit runs are left alone unless labelled, they are mostly years).
static LONG_DIGITS_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b\d{5,12}\b").expect("valid regex"));
/// "ID: 1234", "айди 1234", "аккаунт №1234", "account 1234": any labelled token of 3+ digits/letters.
static LABELLED_ID_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(id|айди|ид|аккаунт\w*|account|акк|uid|номер\w*|№)(\s*[:#№=\-]?\s*)([A-Za-z0-9_\-]*\d[A-Za-z0-9_\-]*)",
    )
    .expect("valid regex")
});

/// Replaces personal data with placeholders. An extra pattern (e.g. the
/// `[parser] account_pattern` of the config) catches shop-specific IDs.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    extra_account_pattern: Option<Regex>,
}

impl Redactor {
    pub fn new(extra_account_pattern: Option<Regex>) -> Self {
        Self { extra_account_pattern }
    }

    pub fn redact(&self, text: &str) -> String {
        // Every built-in pattern needs a digit or an `@`; most FAQ prose has
        // neither, and the word-boundary regexes are the slow part of ingestion.
        if !text.contains(|c: char| c == '@' || c.is_numeric()) {
            return match &self.extra_account_pattern {
                Some(re) => re.replace_all(text, ACCOUNT_ID).into_owned(),
                None => text.to_owned(),
            };
        }
        let s = EMAIL_RE.replace_all(text, EMAIL);
        let s = CARD_RE.replace_all(&s, CARD);
        let s = PHONE_RE.replace_all(&s, PHONE);
        let s = USERNAME_RE.replace_all(&s, |c: &regex::Captures| c[0].replace(&c[1], USERNAME));
        // A payment number (TA-<chat>-<message>) names an order, not a
        // person: reviewers look orders up by it.
        let s = LABELLED_ID_RE.replace_all(&s, |c: &regex::Captures| {
            if is_order_ref(&c[3]) {
                c[0].to_owned()
            } else {
                format!("{}{}{ACCOUNT_ID}", &c[1], &c[2])
            }
        });
        let s = LONG_DIGITS_RE.replace_all(&s, |c: &regex::Captures| {
            let m = c.get(0).expect("the whole match");
            if order_ref_around(&s, m.start(), m.end()) {
                m.as_str().to_owned()
            } else {
                ACCOUNT_ID.to_owned()
            }
        });
        match &self.extra_account_pattern {
            Some(re) => re.replace_all(&s, ACCOUNT_ID).into_owned(),
            None => s.into_owned(),
        }
    }
}

fn is_order_ref(token: &str) -> bool {
    token.parse::<crate::domain::OrderRef>().is_ok()
}

/// Whether the digits at `start..end` of `text` are part of a payment number.
fn order_ref_around(text: &str, start: usize, end: usize) -> bool {
    let part_of_ref = |c: char| c.is_ascii_alphanumeric() || c == '-';
    let token_start =
        text[..start].char_indices().rev().find(|(_, c)| !part_of_ref(*c)).map_or(0, |(i, c)| i + c.len_utf8());
    let token_end =
        text[end..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).map_or(text.len(), |i| end + i);
    is_order_ref(text[token_start..token_end].trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_each_kind_of_identifier() {
        let r = Redactor::default();
        let out = r.redact(
            "Мой ID: 48213, почта ivan.petrov@mail.ru, тел +7 (912) 345-67-89, карта 4276 1234 5678 9012, \
             пишите @ivan_petrov, второй аккаунт 99887766",
        );
        for leak in ["48213", "ivan.petrov", "912", "4276", "@ivan_petrov", "99887766"] {
            assert!(!out.contains(leak), "{leak} leaked: {out}");
        }
        for p in [EMAIL, PHONE, CARD, USERNAME, ACCOUNT_ID] {
            assert!(out.contains(p), "{p} missing: {out}");
        }
    }

    #[test]
    fn payment_numbers_are_kept_the_account_ids_beside_them_are_not() {
        let r = Redactor::default();
        let out = r.redact("Номер платежа TA-93372553-10, мой ID 48213; payment number: TA-93372553-11.");
        assert!(out.contains("TA-93372553-10") && out.contains("TA-93372553-11"), "{out}");
        assert!(!out.contains("48213"), "{out}");
        // A multi-byte character right before the digits (found by the fuzz smoke test).
        assert_eq!(r.redact("ма\u{20bd}54321"), format!("ма\u{20bd}{ACCOUNT_ID}"));
    }

    #[test]
    fn keeps_ordinary_numbers_and_words() {
        let r = Redactor::default();
        let text = "100 diamonds cost €5.00, delivery within 24 hours since 2024";
        assert_eq!(r.redact(text), text);
    }

    #[test]
    fn text_without_digits_or_at_is_unchanged_but_the_extra_pattern_still_applies() {
        assert_eq!(Redactor::default().redact("Как оплатить заказ?"), "Как оплатить заказ?");
        let r = Redactor::new(Some(Regex::new(r"(?i)acc-[a-z]+").unwrap()));
        assert_eq!(r.redact("мой аккаунт ACC-abc"), format!("мой аккаунт {ACCOUNT_ID}"));
    }

    #[test]
    fn russian_trunk_phone_and_extra_pattern() {
        let r = Redactor::new(Some(Regex::new(r"(?i)acc-[a-z0-9]+").unwrap()));
        let out = r.redact("звоните 8 912 345 67 89, аккаунт ACC-ab12");
        assert!(!out.contains("345"), "{out}");
        assert!(!out.contains("ab12"), "{out}");
    }
}
