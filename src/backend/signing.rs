//! The `X-Tribute-Assistant-Signature` scheme, both directions.
//!
//! Header value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//!
//! Why this shape: the timestamp is inside the MAC, so a captured request
//! cannot be replayed later than the receiver's tolerance window, and the
//! raw body bytes (not a re-serialised JSON value) are signed, so PHP,
//! Python or Node receivers can check it without a canonical JSON encoder.
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

type HmacSha256 = Hmac<Sha256>;

/// Why a signature header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=<digits>,v1=<64 hex>`.
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// The MAC is genuine but `t` is outside the tolerance window (clock skew or an old capture).
    #[error("signature timestamp {t} is more than {tolerance_secs} s away from now ({now})")]
    Stale { t: i64, now: i64, tolerance_secs: i64 },
    /// No `v1` value matches the body under this secret.
    #[error("signature does not match the body")]
    BadSignature,
}

impl SignatureError {
    /// Short machine-readable reason, used in a receiver's 401 body.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed(_) => "malformed_header",
            SignatureError::Stale { .. } => "stale_timestamp",
            SignatureError::BadSignature => "bad_signature",
        }
    }
}

/// Signs `body` at time `t`; returns the full header value `t=…,v1=…`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body)))
}

/// Checks a header value against `body`; returns the signed `t` when it is genuine and fresh.
///
/// Several `v1` entries are allowed (any may match) so a sender can sign with
/// an old and a new secret while they are being rotated; unknown keys are
/// ignored for forward compatibility. The MAC is checked before the clock,
/// so [`SignatureError::Stale`] always means "genuine but too old/new" and
/// points at clock skew rather than at a wrong secret. The comparison runs
/// in constant time.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> Result<i64, SignatureError> {
    let parsed = parse_header(header)?;
    let expected = mac(secret, parsed.t, body);
    let matched =
        parsed.v1.iter().fold(subtle::Choice::from(0u8), |acc, candidate| acc | expected.as_slice().ct_eq(candidate));
    if !bool::from(matched) {
        return Err(SignatureError::BadSignature);
    }
    let tolerance_secs = tolerance_secs.max(0);
    if now.abs_diff(parsed.t) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::Stale { t: parsed.t, now, tolerance_secs });
    }
    Ok(parsed.t)
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

struct ParsedHeader {
    t: i64,
    v1: Vec<[u8; 32]>,
}

fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    use SignatureError::Malformed;
    if header.len() > MAX_HEADER_LEN {
        return Err(Malformed("header is too long"));
    }
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.split_once('=').ok_or(Malformed("every part must be key=value"))?;
        match key.trim() {
            "t" => {
                let value = value.trim();
                if t.is_some() {
                    return Err(Malformed("more than one t"));
                }
                if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Malformed("t must be unix seconds"));
                }
                t = Some(value.parse::<i64>().map_err(|_| Malformed("t must be unix seconds"))?);
            }
            "v1" => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(value.trim(), &mut bytes).map_err(|_| Malformed("v1 must be 64 hex digits"))?;
                v1.push(bytes);
            }
            _ => {}
        }
    }
    let t = t.ok_or(Malformed("missing t"))?;
    if v1.is_empty() {
        return Err(Malformed("missing v1"));
    }
    Ok(ParsedHeader { t, v1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";

    #[test]
    fn matches_an_independent_hmac() {
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test_secret
        assert_eq!(
            sign(SECRET, 1_700_000_000, b"{}"),
            "t=1700000000,v1=ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3"
        );
    }

    #[test]
    fn round_trips_and_returns_t() {
        let h = sign(SECRET, 1000, b"body");
        assert_eq!(verify(SECRET, &h, b"body", 1000, 300), Ok(1000));
        assert_eq!(verify(SECRET, &h, b"body", 1300, 300), Ok(1000));
        assert_eq!(verify(SECRET, &h, b"body", 700, 300), Ok(1000), "slightly future t is fine");
    }

    #[test]
    fn rejects_a_changed_body_or_secret_or_t() {
        let h = sign(SECRET, 1000, b"body");
        assert_eq!(verify(SECRET, &h, b"bodY", 1000, 300), Err(SignatureError::BadSignature));
        assert_eq!(verify(b"other", &h, b"body", 1000, 300), Err(SignatureError::BadSignature));
        let moved = h.replace("t=1000", "t=1001");
        assert_eq!(verify(SECRET, &moved, b"body", 1000, 300), Err(SignatureError::BadSignature));
    }

    #[test]
    fn rejects_stale_and_future_timestamps() {
        let h = sign(SECRET, 1000, b"x");
        let err = verify(SECRET, &h, b"x", 1301, 300).unwrap_err();
        assert_eq!(err, SignatureError::Stale { t: 1000, now: 1301, tolerance_secs: 300 });
        assert_eq!(err.code(), "stale_timestamp");
        assert!(matches!(verify(SECRET, &h, b"x", 699, 300), Err(SignatureError::Stale { .. })));
    }

    #[test]
    fn rejects_malformed_headers() {
        let good = sign(SECRET, 1000, b"x");
        let v1 = good.split_once(",v1=").unwrap().1;
        for bad in [
            "",
            "garbage",
            &format!("v1={v1}"),
            "t=1000",
            &format!("t=abc,v1={v1}"),
            &format!("t=-5,v1={v1}"),
            &format!("t=1000,t=1000,v1={v1}"),
            "t=1000,v1=abcd",
            &format!("t=1000,v1={}", "zz".repeat(32)),
            &format!("t=1000,v1={v1},{}", "x".repeat(MAX_HEADER_LEN)),
        ] {
            let err = verify(SECRET, bad, b"x", 1000, 300).unwrap_err();
            assert!(matches!(err, SignatureError::Malformed(_)), "{bad:?} gave {err:?}");
            assert_eq!(err.code(), "malformed_header");
        }
    }

    #[test]
    fn tolerates_spaces_rotation_and_unknown_keys() {
        let good = sign(SECRET, 1000, b"x");
        let v1 = good.split_once(",v1=").unwrap().1;
        let wrong = "0".repeat(64);
        let h = format!("t=1000, v0=legacy, v1={wrong}, v1={}", v1.to_uppercase());
        assert_eq!(verify(SECRET, &h, b"x", 1000, 300), Ok(1000));
        let only_wrong = format!("t=1000,v1={wrong}");
        assert_eq!(verify(SECRET, &only_wrong, b"x", 1000, 300), Err(SignatureError::BadSignature));
    }
}
