//! Tribute's webhook signature: header `trbt-signature` = hex
//! HMAC-SHA256 of the raw body, keyed with the Tribute API key.
//!
//! Checked over the raw bytes as they arrived (never a re-serialised JSON
//! value) and compared in constant time, so neither a formatting
//! difference nor response timing helps anyone forge one.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The HTTP header Tribute puts the signature in.
pub const SIGNATURE_HEADER: &str = "trbt-signature";

/// Hex HMAC-SHA256 of `body` with `api_key`, as Tribute sends it: the
/// sender's side, for the tests and the fuzz target (feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
pub fn sign(api_key: &[u8], body: &[u8]) -> String {
    hex::encode(mac(api_key, body))
}

/// True when `header` is the signature of `body` under `api_key`.
/// Hex case and surrounding spaces do not matter; anything that is not
/// 64 hex digits is simply a mismatch.
pub fn verify(api_key: &[u8], header: &str, body: &[u8]) -> bool {
    let mut given = [0u8; 32];
    if hex::decode_to_slice(header.trim(), &mut given).is_err() {
        return false;
    }
    bool::from(mac(api_key, body).as_slice().ct_eq(&given))
}

fn mac(key: &[u8], body: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(body);
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac() {
        // Python: hmac.new(b"tribute-api-key", b'{"name":"test"}', hashlib.sha256).hexdigest()
        assert_eq!(
            sign(b"tribute-api-key", br#"{"name":"test"}"#),
            "62ffdab6fe7ea8ce4a90a15e5d3fed62a158f8a4b79e79a9ca7a5522e48647de"
        );
    }

    #[test]
    fn verifies_the_raw_bytes_only() {
        let body = br#"{"name":"new_digital_product"}"#;
        let sig = sign(b"k", body);
        assert!(verify(b"k", &sig, body));
        assert!(verify(b"k", &format!(" {} ", sig.to_uppercase()), body));
        assert!(!verify(b"k", &sig, br#"{"name": "new_digital_product"}"#), "re-formatted JSON is another body");
        assert!(!verify(b"other", &sig, body));
        for junk in ["", "zz", &sig[..63], &format!("{sig}00")] {
            assert!(!verify(b"k", junk, body), "{junk:?}");
        }
    }
}
