//! What arrives over HTTP: Tribute's webhook (body + `trbt-signature`), a
//! signature header on our backend's API, and the backend's answers.
//!
//! Inputs are written as a header line, `\n`, then the raw body.

use tribute_assistant::backend::signing::{self, Accept};
use tribute_assistant::test_support::backend_answer::{activation_done, deactivation_done, snippet};
use tribute_assistant::webhook::{parse_event, signature, WebhookEvent};

const KEY: &[u8] = b"fuzz-key";

/// `trbt-signature` header line, then the body.
pub(super) fn tribute_webhook(data: &[u8]) {
    let (header, body) = super::split_line(data);
    let header = super::text(header);
    let genuine = signature::sign(KEY, body);
    assert!(signature::verify(KEY, &genuine, body), "our own signature must verify");
    if signature::verify(KEY, &header, body) {
        assert!(header.trim().eq_ignore_ascii_case(&genuine), "only the body's own MAC verifies");
    }
    // The route parses only verified bodies, but what a signed body may hold
    // is just as open: every body is parsed.
    if let Ok(event) = parse_event(body) {
        if let WebhookEvent::Purchase(p) | WebhookEvent::Refund(p) = &event.event {
            assert!(p.price.amount_minor() > 0, "a purchase has a positive price");
            assert!(!p.purchase_id.is_empty(), "a purchase has an id");
        }
        assert!(!event.to_stored(body).purchase_key.is_empty(), "every stored event has a dedup key");
    }
}

/// 8 bytes of "now" and 8 of tolerance (LE), then the
/// `X-Tribute-Assistant-Signature` header line, then the body.
pub(super) fn backend_signature(data: &[u8]) {
    let Some((clock, rest)) = data.split_first_chunk::<16>() else {
        return;
    };
    let now = i64::from_le_bytes(clock[..8].try_into().expect("8 bytes"));
    let tolerance = i64::from_le_bytes(clock[8..].try_into().expect("8 bytes"));
    let (header, body) = super::split_line(rest);
    let header = super::text(header);
    let req = signing::Request { method: "POST", path: "/api/tribute/activate", body };
    for accept in [Accept::V1OrV2, Accept::V2Only] {
        if let Ok(v) = signing::verify(KEY, &header, &req, now, tolerance, accept) {
            let t = v.t;
            assert!(t >= 0 && now.abs_diff(t) <= tolerance.max(0).unsigned_abs(), "accepted a stale or negative t={t}");
            assert!(!v.macs.is_empty(), "accepted without a matching MAC");
        }
    }
    // `t` is unix seconds of at most 18 digits (see `signing::verify`).
    if (0..1_000_000_000_000_000_000).contains(&now) {
        let genuine = signing::sign(KEY, now, &req);
        for accept in [Accept::V1OrV2, Accept::V2Only] {
            let verified = signing::verify(KEY, &genuine, &req, now, tolerance, accept).map(|v| v.t);
            assert_eq!(verified, Ok(now), "our own signature must verify");
        }
        // v2 signs the path: the same header never verifies for another one.
        let elsewhere = signing::Request { path: "/api/tribute/deactivate", ..req };
        assert!(signing::verify(KEY, &genuine, &elsewhere, now, tolerance, Accept::V2Only).is_err());
    }
}

/// 2 bytes of HTTP status (LE), the `Retry-After` header line, then the body.
pub(super) fn backend_answer(data: &[u8]) {
    let Some((status, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = u16::from_le_bytes(*status);
    let (retry_after, body) = super::split_line(rest);
    let retry_after = super::text(retry_after);
    let retry_after = (!retry_after.is_empty()).then_some(&*retry_after);
    if activation_done(status, retry_after, body) {
        assert!((200..300).contains(&status) || status == 404 || status == 422, "HTTP {status} taken as an answer");
    }
    if deactivation_done(status, retry_after, body) {
        assert!((200..300).contains(&status) || status == 404, "HTTP {status} taken as an answer");
    }
    assert!(snippet(body).chars().count() <= 1001, "error snippets are cut");
}
