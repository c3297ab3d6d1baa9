//! How the row types serialise their times (unix ms in the store): RFC 3339
//! UTC with milliseconds, the review export's format (docs/export.md).

use serde::Serializer;

/// Unix ms → RFC 3339 UTC with milliseconds (the number itself if out of range).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// `#[serde(serialize_with)]` for a unix-ms field.
pub(crate) fn ms<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

/// `#[serde(serialize_with)]` for an optional unix-ms field (`null` when absent).
pub(crate) fn opt_ms<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&rfc3339(*ms)),
        None => s.serialize_none(),
    }
}
