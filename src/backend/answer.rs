//! How one HTTP answer from `/activate` or `/deactivate` maps to an
//! outcome, a retry or a permanent error. Kept pure (status + headers + body in, verdict out) so
//! the retry policy is tested without a network.
//!
//! 404, 409 and 422 count as business answers only when their JSON body
//! says so: a proxy's or web server's own 404 page (wrong URL, missing
//! route) must not make us tell a customer that they have no pending order.
//! `409 already_fulfilled` came later than the others; a backend that never
//! sends it keeps working, and a daemon too old to know it fails the order
//! to a person (a bare 409 is a rejection) instead of asking the customer.

use std::time::Duration;

use super::error::BackendError;
use super::wire::{ActivationOutcome, DeactivationOutcome};

/// Longest piece of an answer body kept in an error message.
const MAX_BODY_IN_ERROR: usize = 1000;

/// What to do with one answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict<T = ActivationOutcome> {
    Done(T),
    /// Transient: try again (after `retry_after` when the backend asked for it).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fail(BackendError),
}

#[derive(serde::Deserialize)]
struct Answer {
    status: Option<String>,
    activation_id: Option<String>,
    error: Option<String>,
}

/// Classifies an answer. `retry_after` is the raw `Retry-After` header, if any.
pub(crate) fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> Verdict {
    let answer: Option<Answer> = serde_json::from_slice(body).ok();
    let said = |s: &str| answer.as_ref().and_then(|a| a.status.as_deref()) == Some(s);
    match status {
        200..=299 => success(status, answer, body),
        404 if said("no_pending_order") => Verdict::Done(ActivationOutcome::NoPendingOrder),
        409 if said("already_fulfilled") => Verdict::Done(ActivationOutcome::AlreadyFulfilled),
        422 if said("unknown_account") => Verdict::Done(ActivationOutcome::UnknownAccount),
        _ => transient_or_rejected(status, retry_after, answer.as_ref(), body),
    }
}

/// Classifies an answer from `/deactivate`: `deactivated` /
/// `already_deactivated` (200) or `not_activated` (404 with that status).
pub(crate) fn classify_deactivation(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> Verdict<DeactivationOutcome> {
    let answer: Option<Answer> = serde_json::from_slice(body).ok();
    let said = |s: &str| answer.as_ref().and_then(|a| a.status.as_deref()) == Some(s);
    match status {
        200..=299 if said("deactivated") => Verdict::Done(DeactivationOutcome::Deactivated),
        200..=299 if said("already_deactivated") => Verdict::Done(DeactivationOutcome::AlreadyDeactivated),
        200..=299 => {
            Verdict::Fail(BackendError::Protocol(format!("HTTP {status} with an unexpected body: {}", snippet(body))))
        }
        404 if said("not_activated") => Verdict::Done(DeactivationOutcome::NotActivated),
        _ => transient_or_rejected(status, retry_after, answer.as_ref(), body),
    }
}

/// The answers every endpoint shares: a replayed-signature 401 and the
/// transient statuses are retried, anything else is a permanent rejection.
fn transient_or_rejected<T>(
    status: u16,
    retry_after: Option<&str>,
    answer: Option<&Answer>,
    body: &[u8],
) -> Verdict<T> {
    match status {
        // Our own earlier attempt used the same signature (same second, e.g.
        // after a restart); a fresh signature is safe because the key is idempotent.
        401 if answer.and_then(|a| a.error.as_deref()) == Some("replayed_signature") => {
            Verdict::Retry { reason: "the backend refused a replayed signature; re-signing".into(), retry_after: None }
        }
        408 | 429 | 500..=599 => Verdict::Retry {
            reason: format!("HTTP {status}: {}", snippet(body)),
            retry_after: retry_after.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs),
        },
        _ => Verdict::Fail(BackendError::Rejected { status, body: snippet(body) }),
    }
}

fn success(status: u16, answer: Option<Answer>, body: &[u8]) -> Verdict {
    let protocol =
        || Verdict::Fail(BackendError::Protocol(format!("HTTP {status} with an unexpected body: {}", snippet(body))));
    let Some(Answer { status: Some(kind), activation_id: Some(id), .. }) = answer else {
        return protocol();
    };
    if id.trim().is_empty() {
        return protocol();
    }
    match kind.as_str() {
        "activated" => Verdict::Done(ActivationOutcome::Activated { activation_id: id }),
        "already_activated" => Verdict::Done(ActivationOutcome::AlreadyActivated { activation_id: id }),
        _ => protocol(),
    }
}

/// The body as text, cut to [`MAX_BODY_IN_ERROR`] characters.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(MAX_BODY_IN_ERROR) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(v: Verdict) -> ActivationOutcome {
        match v {
            Verdict::Done(o) => o,
            other => panic!("expected an outcome, got {other:?}"),
        }
    }

    #[test]
    fn maps_business_answers() {
        assert_eq!(
            done(classify(200, None, br#"{"status":"activated","activation_id":"a1"}"#)),
            ActivationOutcome::Activated { activation_id: "a1".into() }
        );
        assert_eq!(
            done(classify(200, None, br#"{"status":"already_activated","activation_id":"a1","extra":1}"#)),
            ActivationOutcome::AlreadyActivated { activation_id: "a1".into() }
        );
        assert_eq!(done(classify(404, None, br#"{"status":"no_pending_order"}"#)), ActivationOutcome::NoPendingOrder);
        assert_eq!(done(classify(422, None, br#"{"status":"unknown_account"}"#)), ActivationOutcome::UnknownAccount);
        assert_eq!(
            done(classify(409, None, br#"{"status":"already_fulfilled","note":"unknown fields are ignored"}"#)),
            ActivationOutcome::AlreadyFulfilled
        );
    }

    #[test]
    fn already_fulfilled_counts_only_as_a_409_that_says_so() {
        // Any other status with that body, or a 409 without it, is not a second payment.
        for (status, body) in [
            (409, &br#"{"status":"conflict"}"#[..]),
            (409, b"Conflict"),
            (404, br#"{"status":"already_fulfilled"}"#),
            (422, br#"{"status":"already_fulfilled"}"#),
        ] {
            assert!(
                matches!(classify(status, None, body), Verdict::Fail(BackendError::Rejected { status: s, .. }) if s == status),
                "{status} {body:?}"
            );
        }
        assert!(
            matches!(
                classify(200, None, br#"{"status":"already_fulfilled"}"#),
                Verdict::Fail(BackendError::Protocol(_))
            ),
            "a 2xx must be an activation"
        );
    }

    #[test]
    fn a_bare_404_or_422_is_a_rejection_not_a_business_answer() {
        for (status, body) in [(404, &b"<html>Not Found</html>"[..]), (422, br#"{"status":"invalid"}"#)] {
            assert!(
                matches!(classify(status, None, body), Verdict::Fail(BackendError::Rejected { status: s, .. }) if s == status)
            );
        }
    }

    #[test]
    fn retries_transient_answers_only() {
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(matches!(classify(status, None, b""), Verdict::Retry { .. }), "{status}");
        }
        assert_eq!(
            classify(503, Some(" 7 "), b"busy"),
            Verdict::Retry { reason: "HTTP 503: busy".into(), retry_after: Some(Duration::from_secs(7)) }
        );
        assert!(matches!(
            classify(401, None, br#"{"status":"bad_signature","error":"replayed_signature"}"#),
            Verdict::Retry { .. }
        ));
        for status in [400, 401, 403, 409, 301] {
            assert!(matches!(classify(status, None, b"no"), Verdict::Fail(BackendError::Rejected { .. })), "{status}");
        }
    }

    #[test]
    fn odd_success_bodies_are_protocol_errors() {
        for body in [
            &b"ok"[..],
            br#"{"status":"activated"}"#,
            br#"{"status":"activated","activation_id":" "}"#,
            br#"{"status":"no_pending_order","activation_id":"x"}"#,
        ] {
            assert!(matches!(classify(200, None, body), Verdict::Fail(BackendError::Protocol(_))), "{body:?}");
        }
    }

    #[test]
    fn maps_deactivation_answers() {
        let d = |status, body: &[u8]| match classify_deactivation(status, None, body) {
            Verdict::Done(o) => Some(o),
            _ => None,
        };
        assert_eq!(d(200, br#"{"status":"deactivated"}"#), Some(DeactivationOutcome::Deactivated));
        assert_eq!(d(200, br#"{"status":"already_deactivated"}"#), Some(DeactivationOutcome::AlreadyDeactivated));
        assert_eq!(d(404, br#"{"status":"not_activated"}"#), Some(DeactivationOutcome::NotActivated));
        assert!(matches!(classify_deactivation(404, None, b"Not Found"), Verdict::Fail(BackendError::Rejected { .. })));
        assert!(matches!(classify_deactivation(200, None, b"{}"), Verdict::Fail(BackendError::Protocol(_))));
        assert!(matches!(classify_deactivation(503, None, b""), Verdict::Retry { .. }));
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let body = "я".repeat(MAX_BODY_IN_ERROR + 5);
        let Verdict::Fail(BackendError::Rejected { body, .. }) = classify(400, None, body.as_bytes()) else { panic!() };
        assert_eq!(body.chars().count(), MAX_BODY_IN_ERROR + 1);
    }
}
