//! Codes and times as a person reads them on our HTML pages (the report and
//! the review export): every stored code (escalation reasons, the agent's
//! rules, moderator commands) in words, dates spelled out. The JSON, CSV
//! and JSONL outputs keep the codes; this is only how pages say them.

use chrono::{DateTime, Utc};

use crate::agent::{Reason, ReasonCode};
use crate::domain::EscalationReason;

/// A reason stored as a code: a case's or order's escalation reason, or a
/// rule of the agent's. A code this build does not know reads as its words
/// (`some_new_code` → "some new code"), never as the code.
pub fn reason(code: &str) -> String {
    if let Some(r) = EscalationReason::parse(code) {
        return escalation(r).to_owned();
    }
    if let Ok(code) = serde_json::from_value::<ReasonCode>(serde_json::Value::String(code.to_owned())) {
        return Reason::new(code, "").in_words();
    }
    unknown(code)
}

/// Short enough for a table row on a phone; the case card says more
/// ([`EscalationReason::explain`]).
fn escalation(r: EscalationReason) -> &'static str {
    match r {
        EscalationReason::MissingAccount => "no account ID in the order",
        EscalationReason::AmbiguousAccount => "several account IDs in the order",
        EscalationReason::NoPendingOrder => "the backend had no pending order",
        EscalationReason::UnknownAccount => "an account ID the backend does not know",
        EscalationReason::AlreadyFulfilled => "already delivered for an earlier payment",
        EscalationReason::BackendRejected => "the backend rejected the activation",
        EscalationReason::ButtonNeverCame => "Tribute never showed the Send button",
        EscalationReason::MalformedOrder => "an order message we could not read",
        EscalationReason::UnrecognisedMessage => "a Tribute message we do not recognise",
        EscalationReason::CustomerUnreachable => "we cannot write to the customer",
        EscalationReason::CustomerSilent => "the customer did not answer",
        EscalationReason::AccountRejectedThrice => "the account ID was refused three times",
        EscalationReason::MessageCapReached => "the day's message limit for the customer",
        EscalationReason::CustomerQuestion => "a customer's question",
        EscalationReason::TelegramRefused => "Telegram refused a step of the order",
        EscalationReason::QuestionsQueued => "too many questions at once (queued)",
        EscalationReason::BackendUnauthorized => "the backend refused our signature",
        EscalationReason::WebhookInvalid => "a Tribute webhook we could not read",
        EscalationReason::WebhookAmountMismatch => "the paid amount differs from the order",
        EscalationReason::WebhookUnmatchedPurchase => "a payment without an order",
        EscalationReason::WebhookRefund => "a payment refunded in Tribute",
        EscalationReason::Unhandled => "a message that failed every time",
        EscalationReason::SendUnconfirmed => "the Send button went away, delivery unconfirmed",
        EscalationReason::Outage => "a service kept failing (outage)",
        EscalationReason::WebhookMatchingStopped => "a payment no order matched in time",
    }
}

/// What a moderator did, from the audit log's action name: a verb phrase
/// ("gave an account ID").
pub fn moderator_action(action: &str) -> String {
    match action {
        "account" => "gave an account ID",
        "done" => "closed a case as handled by hand",
        "reject" => "rejected an order",
        "retry" => "retried an order",
        "note" => "added a note",
        "relay" => "answered a customer",
        "case" => "looked at a case",
        "cases" => "listed the open cases",
        "learn" => "previewed a FAQ entry",
        "approve" => "added a FAQ entry",
        "report" => "asked for the report",
        "forget" => "erased a customer's data",
        "refused" => "was refused (not a moderator)",
        "unknown" => "sent something that is not a command",
        other => return unknown(other),
    }
    .to_owned()
}

/// An order's state, as "where the order is".
pub fn order_state(state: &str) -> String {
    match state {
        "received" => "received",
        "activation_requested" => "activating",
        "activated" => "activated, reply to Tribute next",
        "replied" => "replied, waiting for the Send button",
        "confirmed" => "completed (Send pressed)",
        "needs_customer" => "waiting for the customer",
        "escalated" => "with a moderator",
        "failed" => "failed",
        "refunded" => "refunded",
        other => return unknown(other),
    }
    .to_owned()
}

/// A conversation's dialogue state.
pub fn dialogue_state(state: &str) -> String {
    match state {
        "idle" => "nothing pending",
        "awaiting_account" => "waiting for the customer's account ID",
        "validating" => "checking an account ID",
        "with_moderator" => "with a moderator",
        other => return unknown(other),
    }
    .to_owned()
}

/// `n` and a noun, plural when it is not 1 ("1 question", "3 questions").
pub fn count(n: impl Into<i64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "1 time", "13 times".
pub fn times(n: i64) -> String {
    match n {
        1 => "once".to_owned(),
        2 => "twice".to_owned(),
        n => format!("{n} times"),
    }
}

fn unknown(code: &str) -> String {
    code.replace('_', " ")
}

/// "7 December 2026".
pub fn day(ms: i64) -> String {
    at(ms).format("%-d %B %Y").to_string()
}

/// "7 December 2026, 00:45 UTC": the report counts in UTC days, so its
/// times are said in UTC.
pub fn day_and_time(ms: i64) -> String {
    at(ms).format("%-d %B %Y, %H:%M UTC").to_string()
}

/// "7 Dec": a chart's axis label.
pub fn day_short(ms: i64) -> String {
    at(ms).format("%-d %b").to_string()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_as_words() {
        for r in EscalationReason::ALL {
            let w = reason(r.as_str());
            assert!(!w.contains('_') && w != r.as_str(), "{r:?}: {w}");
        }
        assert_eq!(reason("no_curated_answer"), "no FAQ answer is close enough");
        assert_eq!(reason("hard_topic"), "a topic for a person");
        assert_eq!(reason("customer_unreachable"), "we cannot write to the customer");
        assert_eq!(reason("brand_new_rule"), "brand new rule");
        assert_eq!(moderator_action("account"), "gave an account ID");
        assert_eq!(moderator_action("new_command"), "new command");
        for s in crate::domain::OrderState::ALL {
            assert!(!order_state(s.as_str()).contains('_'), "{s:?}");
        }
        assert_eq!(dialogue_state("with_moderator"), "with a moderator");
        assert_eq!((count(1, "order", "orders"), count(3, "order", "orders")), ("1 order".into(), "3 orders".into()));
        assert_eq!((times(1), times(13)), ("once".to_owned(), "13 times".to_owned()));
    }

    #[test]
    fn dates_are_spelled_out() {
        // 2026-12-07T00:45:40.939Z
        let t = 1_796_604_340_939;
        assert_eq!(day_and_time(t), "7 December 2026, 00:45 UTC");
        assert_eq!(day(t), "7 December 2026");
        assert_eq!(day_short(t), "7 Dec");
    }
}
