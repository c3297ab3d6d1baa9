//! The `X-Tribute-Assistant-Signature` scheme, both directions.
//!
//! Header value (grammar in docs/backend-api.md):
//! `t=<unix seconds>,v1=<hex MAC>,v2=<hex MAC>` where
//! `v1 = HMAC-SHA256(secret, "<t>.<raw body>")` and
//! `v2 = HMAC-SHA256(secret, "<t>.<METHOD>.<path>.<raw body>")`.
//!
//! Why this shape: the timestamp is inside the MAC, so a captured request
//! cannot be replayed later than the receiver's tolerance window, and the
//! raw body bytes (not a re-serialised JSON value) are signed, so PHP,
//! Python or Node receivers can check it without a canonical JSON encoder.
//! `v1` does not cover the method and path, so a request signed for one
//! endpoint could be presented to another; `v2` closes that. During the
//! migration we send both, so backends that only know `v1` keep working,
//! and receivers can be switched to require `v2` ([`Accept::V2Only`]).
//!
//! The grammar is strict on purpose: a receiver that tolerates spaces,
//! upper-case hex or unknown keys lets one captured request be spelled many
//! ways, which is exactly what defeats a replay check keyed on the header
//! text. Receivers key replays on [`Verified::macs`] instead.
//!
//! The same code signs our requests (client) and checks them (reference
//! backend), and the published test vectors pin it to an independent
//! implementation.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Name of the HTTP header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Tribute-Assistant-Signature";

/// How far (in seconds, either direction) a receiver lets `t` drift from its clock.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Longest header value [`verify`] will look at; anything longer is junk.
const MAX_HEADER_LEN: usize = 1024;

/// Longest `t` in digits: enough for any unix time, short enough to fit an `i64`.
const MAX_T_DIGITS: usize = 18;

type HmacSha256 = Hmac<Sha256>;

/// One MAC: 32 bytes of HMAC-SHA256.
pub type MacBytes = [u8; 32];

/// What a request signature covers: the method, the path as sent in the
/// request line (the backend URL's own path included, no query) and the raw body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// Upper-case HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// E.g. `/api/tribute/activate`.
    pub path: &'a str,
    pub body: &'a [u8],
}

/// Which signature versions a receiver accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Accept {
    /// The migration default: a matching `v1` or `v2` is enough.
    #[default]
    V1OrV2,
    /// Only a matching `v2` counts; `v1` entries are ignored.
    V2Only,
}

/// Why a signature header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header does not follow the grammar (see docs/backend-api.md).
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// The receiver requires `v2` and the header has none.
    #[error("this receiver requires a v2 signature (method, path and body); the header has only v1")]
    V2Required,
    /// The MAC is genuine but `t` is outside the tolerance window (clock skew or an old capture).
    #[error("signature timestamp {t} is more than {tolerance_secs} s away from now ({now})")]
    Stale { t: i64, now: i64, tolerance_secs: i64 },
    /// No accepted entry matches the request under this secret.
    #[error("signature does not match the request")]
    BadSignature,
}

impl SignatureError {
    /// Short machine-readable reason, used in a receiver's 401 body.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed(_) => "malformed_header",
            SignatureError::V2Required => "v2_required",
            SignatureError::Stale { .. } => "stale_timestamp",
            SignatureError::BadSignature => "bad_signature",
        }
    }
}

/// A genuine, fresh signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed timestamp.
    pub t: i64,
    /// Every MAC in the header that matched. A receiver remembers
    /// `(t, mac)` for each of them: a replay is refused whatever the header
    /// text looks like and whichever subset of its entries is sent again.
    pub macs: Vec<MacBytes>,
}

/// Signs a request at time `t`: `t=…,v1=…,v2=…` (both versions, for the migration).
pub fn sign(secret: &[u8], t: i64, req: &Request<'_>) -> String {
    format!(
        "t={t},v1={},v2={}",
        hex::encode(mac_v1(secret, t, req.body)),
        hex::encode(mac_v2(secret, t, req.method, req.path, req.body))
    )
}

/// Signs a body alone at time `t`: `t=…,v1=…`. Used for the `/health`
/// answer (an answer has no method or path of its own; it is bound to the
/// request by echoing its header).
pub fn sign_v1(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac_v1(secret, t, body)))
}

/// Checks a request's header; returns `t` and the matching MACs when it is
/// genuine and fresh.
///
/// Several entries of one version are allowed (any may match) so a sender
/// can sign with an old and a new secret while they are being rotated. The
/// MAC is checked before the clock, so [`SignatureError::Stale`] always
/// means "genuine but too old/new" and points at clock skew rather than at
/// a wrong secret. Comparisons run in constant time.
pub fn verify(
    secret: &[u8],
    header: &str,
    req: &Request<'_>,
    now: i64,
    tolerance_secs: i64,
    accept: Accept,
) -> Result<Verified, SignatureError> {
    let parsed = parse_header(header)?;
    if accept == Accept::V2Only && parsed.v2.is_empty() {
        return Err(SignatureError::V2Required);
    }
    let mut macs = Vec::new();
    if accept == Accept::V1OrV2 {
        macs.extend(matching(&mac_v1(secret, parsed.t, req.body), &parsed.v1));
    }
    macs.extend(matching(&mac_v2(secret, parsed.t, req.method, req.path, req.body), &parsed.v2));
    fresh(parsed.t, macs, now, tolerance_secs)
}

/// Checks a `t=…,v1=…` header over a body alone (the `/health` answer).
/// `v2` entries are allowed by the grammar but cannot match: an answer has
/// no method or path.
pub fn verify_v1(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<Verified, SignatureError> {
    let parsed = parse_header(header)?;
    let macs = matching(&mac_v1(secret, parsed.t, body), &parsed.v1);
    fresh(parsed.t, macs, now, tolerance_secs)
}

/// The candidates equal to `expected`, each compared in constant time.
fn matching(expected: &MacBytes, candidates: &[MacBytes]) -> Vec<MacBytes> {
    candidates.iter().filter(|c| bool::from(expected.as_slice().ct_eq(c.as_slice()))).copied().collect()
}

fn fresh(t: i64, macs: Vec<MacBytes>, now: i64, tolerance_secs: i64) -> Result<Verified, SignatureError> {
    if macs.is_empty() {
        return Err(SignatureError::BadSignature);
    }
    let tolerance_secs = tolerance_secs.max(0);
    if now.abs_diff(t) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::Stale { t, now, tolerance_secs });
    }
    Ok(Verified { t, macs })
}

fn hmac(secret: &[u8], parts: &[&[u8]]) -> MacBytes {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    for part in parts {
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

fn mac_v1(secret: &[u8], t: i64, body: &[u8]) -> MacBytes {
    hmac(secret, &[t.to_string().as_bytes(), b".", body])
}

fn mac_v2(secret: &[u8], t: i64, method: &str, path: &str, body: &[u8]) -> MacBytes {
    hmac(secret, &[t.to_string().as_bytes(), b".", method.as_bytes(), b".", path.as_bytes(), b".", body])
}

struct ParsedHeader {
    t: i64,
    v1: Vec<MacBytes>,
    v2: Vec<MacBytes>,
}

/// The strict grammar: `t=<digits>` first, then one or more `v1=`/`v2=`
/// entries of 64 lower-case hex digits, separated by `,` with no spaces.
fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    use SignatureError::Malformed;
    if header.len() > MAX_HEADER_LEN {
        return Err(Malformed("header is too long"));
    }
    if header.is_empty() {
        return Err(Malformed("header is empty"));
    }
    if header.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(Malformed("whitespace is not allowed"));
    }
    let mut parts = header.split(',');
    let first = parts.next().unwrap_or_default();
    let t = match first.split_once('=') {
        Some(("t", value)) => parse_t(value)?,
        _ => return Err(Malformed("the header must start with t=")),
    };
    let (mut v1, mut v2) = (Vec::new(), Vec::new());
    for part in parts {
        let (key, value) = part.split_once('=').ok_or(Malformed("every part must be key=value"))?;
        let list = match key {
            "v1" => &mut v1,
            "v2" => &mut v2,
            "t" => return Err(Malformed("more than one t")),
            _ => return Err(Malformed("unknown key (only t, v1 and v2 are allowed)")),
        };
        list.push(parse_mac(value)?);
    }
    if v1.is_empty() && v2.is_empty() {
        return Err(Malformed("missing v1 or v2"));
    }
    Ok(ParsedHeader { t, v1, v2 })
}

fn parse_t(value: &str) -> Result<i64, SignatureError> {
    let digits = !value.is_empty() && value.len() <= MAX_T_DIGITS && value.bytes().all(|b| b.is_ascii_digit());
    if !digits || (value.len() > 1 && value.starts_with('0')) {
        return Err(SignatureError::Malformed("t must be unix seconds: decimal digits, no sign, no leading zero"));
    }
    value.parse().map_err(|_| SignatureError::Malformed("t must be unix seconds"))
}

fn parse_mac(value: &str) -> Result<MacBytes, SignatureError> {
    let lower_hex = value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let mut bytes = [0u8; 32];
    if value.len() != 64 || !lower_hex || hex::decode_to_slice(value, &mut bytes).is_err() {
        return Err(SignatureError::Malformed("a signature must be 64 lower-case hex digits"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";

    fn post<'a>(path: &'a str, body: &'a [u8]) -> Request<'a> {
        Request { method: "POST", path, body }
    }

    #[test]
    fn v1_matches_an_independent_hmac() {
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test_secret
        assert_eq!(
            sign_v1(SECRET, 1_700_000_000, b"{}"),
            "t=1700000000,v1=ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3"
        );
    }

    #[test]
    fn round_trips_and_returns_t_and_both_macs() {
        let h = sign(SECRET, 1000, &post("/activate", b"body"));
        let ok = verify(SECRET, &h, &post("/activate", b"body"), 1000, 300, Accept::V1OrV2).unwrap();
        assert_eq!((ok.t, ok.macs.len()), (1000, 2));
        assert_eq!(verify(SECRET, &h, &post("/activate", b"body"), 1300, 300, Accept::V2Only).unwrap().macs.len(), 1);
        assert!(verify(SECRET, &h, &post("/activate", b"body"), 700, 300, Accept::V1OrV2).is_ok(), "slightly future t");
    }

    #[test]
    fn v2_covers_method_and_path() {
        let h = sign(SECRET, 1000, &post("/activate", b"body"));
        for other in [post("/deactivate", b"body"), Request { method: "PUT", path: "/activate", body: b"body" }] {
            assert_eq!(verify(SECRET, &h, &other, 1000, 300, Accept::V2Only), Err(SignatureError::BadSignature));
            // v1 alone does not see the difference: that is why v2 exists.
            assert_eq!(verify(SECRET, &h, &other, 1000, 300, Accept::V1OrV2).unwrap().macs.len(), 1);
        }
    }

    #[test]
    fn v2_only_refuses_a_v1_header() {
        let h = sign_v1(SECRET, 1000, b"body");
        assert_eq!(
            verify(SECRET, &h, &post("/activate", b"body"), 1000, 300, Accept::V2Only),
            Err(SignatureError::V2Required)
        );
        assert_eq!(SignatureError::V2Required.code(), "v2_required");
    }

    #[test]
    fn rejects_a_changed_body_or_secret_or_t() {
        let req = post("/a", b"body");
        let h = sign(SECRET, 1000, &req);
        assert_eq!(
            verify(SECRET, &h, &post("/a", b"bodY"), 1000, 300, Accept::V1OrV2),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(verify(b"other", &h, &req, 1000, 300, Accept::V1OrV2), Err(SignatureError::BadSignature));
        let moved = h.replace("t=1000", "t=1001");
        assert_eq!(verify(SECRET, &moved, &req, 1000, 300, Accept::V1OrV2), Err(SignatureError::BadSignature));
    }

    #[test]
    fn rejects_stale_and_future_timestamps() {
        let h = sign_v1(SECRET, 1000, b"x");
        let err = verify_v1(SECRET, &h, b"x", 1301, 300).unwrap_err();
        assert_eq!(err, SignatureError::Stale { t: 1000, now: 1301, tolerance_secs: 300 });
        assert_eq!(err.code(), "stale_timestamp");
        assert!(matches!(verify_v1(SECRET, &h, b"x", 699, 300), Err(SignatureError::Stale { .. })));
    }

    #[test]
    fn rejects_everything_outside_the_grammar() {
        let good = sign(SECRET, 1000, &post("/a", b"x"));
        let v1 = good.split(',').nth(1).unwrap().trim_start_matches("v1=").to_owned();
        for (bad, why) in [
            (String::new(), "empty"),
            ("garbage".into(), "start with t="),
            (format!("v1={v1}"), "start with t="),
            (format!("v1={v1},t=1000"), "start with t="),
            ("t=1000".into(), "missing v1 or v2"),
            (format!("t=abc,v1={v1}"), "unix seconds"),
            (format!("t=-5,v1={v1}"), "unix seconds"),
            (format!("t=01000,v1={v1}"), "leading zero"),
            (format!("t=1000,t=1000,v1={v1}"), "more than one t"),
            (format!("t=1000, v1={v1}"), "whitespace"),
            (format!("t=1000,v1={v1} "), "whitespace"),
            (format!("t=1000,v1={}", v1.to_uppercase()), "lower-case hex"),
            (format!("t=1000,v1={v1},v0=legacy"), "unknown key"),
            (format!("t=1000,V1={v1}"), "unknown key"),
            ("t=1000,v1=".into(), "lower-case hex"),
            ("t=1000,v1=abcd".into(), "lower-case hex"),
            (format!("t=1000,v1={v1},"), "key=value"),
            (format!("t=1000,v1={v1},{}", "x".repeat(MAX_HEADER_LEN)), "too long"),
        ] {
            let err = verify(SECRET, &bad, &post("/a", b"x"), 1000, 300, Accept::V1OrV2).unwrap_err();
            assert!(matches!(err, SignatureError::Malformed(m) if m.contains(why)), "{bad:?} gave {err:?}");
            assert_eq!(err.code(), "malformed_header");
        }
    }

    #[test]
    fn accepts_rotation_and_reports_only_the_matching_macs() {
        let good = sign_v1(SECRET, 1000, b"x");
        let wrong = "0".repeat(64);
        let h = format!("t=1000,v1={wrong},{}", good.split_once(',').unwrap().1);
        let ok = verify_v1(SECRET, &h, b"x", 1000, 300).unwrap();
        assert_eq!(ok.macs.len(), 1);
        assert_ne!(hex::encode(ok.macs[0]), wrong);
        let only_wrong = format!("t=1000,v1={wrong}");
        assert_eq!(verify_v1(SECRET, &only_wrong, b"x", 1000, 300), Err(SignatureError::BadSignature));
    }
}
