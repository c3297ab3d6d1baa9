//! A Tribute webhook body, parsed into typed values.
//!
//! Envelope: `{name, created_at, sent_at, payload}`. We act on
//! `new_digital_product` and `digital_product_refunded`; other names are
//! kept (stored, answered 200) but not acted on, so a new Tribute event
//! type never makes Tribute retry for a day. Ids may come as numbers or
//! strings and are kept as strings; money is in minor units and becomes a
//! [`Money`], so a zero or negative amount or an unknown currency is a
//! clear error naming the field.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::{Currency, Money};
use crate::store::{NewWebhookEvent, PurchaseFacts};

pub const NEW_DIGITAL_PRODUCT: &str = "new_digital_product";
pub const DIGITAL_PRODUCT_REFUNDED: &str = "digital_product_refunded";

/// Why a correctly signed body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the body is not a JSON webhook envelope: {0}")]
    NotJson(String),
    #[error("{event}: field `{field}` {problem}")]
    BadField { event: String, field: &'static str, problem: String },
}

/// What one webhook says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A digital product was paid.
    Purchase(PurchaseFacts),
    /// A digital product purchase was refunded.
    Refund(PurchaseFacts),
    /// An event we store but do not act on.
    Other,
}

/// A verified, parsed webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub event: WebhookEvent,
}

#[derive(Deserialize)]
struct Envelope {
    name: String,
    created_at: Option<String>,
    sent_at: Option<String>,
    #[serde(default)]
    payload: serde_json::Value,
}

/// Parses a body whose signature was already verified.
pub fn parse_event(body: &[u8]) -> Result<ParsedEvent, EventError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    let name = env.name.trim().to_owned();
    let created_at = timestamp(&name, "created_at", env.created_at.as_deref())?;
    let sent_at = timestamp(&name, "sent_at", env.sent_at.as_deref())?;
    let fields = Fields { event: &name, payload: &env.payload };
    let event = match name.as_str() {
        NEW_DIGITAL_PRODUCT => {
            let mut p = fields.purchase()?;
            p.paid_at = Some(created_at.unwrap_or_else(Utc::now).timestamp_millis());
            WebhookEvent::Purchase(p)
        }
        DIGITAL_PRODUCT_REFUNDED => {
            let mut p = fields.purchase()?;
            let refunded_at = timestamp(&name, "payload.refunded_at", fields.opt_str("refunded_at")?.as_deref())?
                .or(created_at)
                .unwrap_or_else(Utc::now);
            p.refund = Some((refunded_at.timestamp_millis(), fields.opt_str("refund_reason")?));
            WebhookEvent::Refund(p)
        }
        _ => WebhookEvent::Other,
    };
    Ok(ParsedEvent { name, created_at, sent_at, event })
}

impl ParsedEvent {
    /// The row the store keeps: unique on name + purchase id (or the body's
    /// hash for events without a purchase id).
    pub fn to_stored(&self, raw_body: &[u8]) -> NewWebhookEvent {
        let purchase = match &self.event {
            WebhookEvent::Purchase(p) | WebhookEvent::Refund(p) => Some(p.clone()),
            WebhookEvent::Other => None,
        };
        let purchase_key = purchase.as_ref().map(|p| p.purchase_id.clone()).unwrap_or_else(|| body_key(raw_body));
        NewWebhookEvent {
            name: self.name.clone(),
            purchase_key,
            created_at: self.created_at.map(|t| t.timestamp_millis()),
            sent_at: self.sent_at.map(|t| t.timestamp_millis()),
            raw_body: String::from_utf8_lossy(raw_body).into_owned(),
            purchase,
        }
    }
}

/// `sha256:<hex>` of a body: the dedup key of events without a purchase id.
pub fn body_key(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

fn timestamp(event: &str, field: &'static str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, EventError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v).map(|t| Some(t.to_utc())).map_err(|e| EventError::BadField {
            event: event.to_owned(),
            field,
            problem: format!("is not an RFC 3339 time ({v:?}: {e})"),
        }),
    }
}

struct Fields<'a> {
    event: &'a str,
    payload: &'a serde_json::Value,
}

impl Fields<'_> {
    fn bad(&self, field: &'static str, problem: impl Into<String>) -> EventError {
        EventError::BadField { event: self.event.to_owned(), field, problem: problem.into() }
    }

    /// An id: a JSON string or integer, kept as a string.
    fn opt_id(&self, field: &'static str) -> Result<Option<String>, EventError> {
        match self.payload.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
            Some(other) => Err(self.bad(field, format!("must be a string or an integer id, not {other}"))),
        }
    }

    fn id(&self, field: &'static str) -> Result<String, EventError> {
        self.opt_id(field)?.ok_or_else(|| self.bad(field, "is missing"))
    }

    fn opt_str(&self, field: &'static str) -> Result<Option<String>, EventError> {
        match self.payload.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.bad(field, format!("must be a string, not {other}"))),
        }
    }

    fn int(&self, field: &'static str) -> Result<i64, EventError> {
        match self.payload.get(field) {
            Some(serde_json::Value::Number(n)) => {
                n.as_i64().ok_or_else(|| self.bad(field, format!("must be an integer, not {n}")))
            }
            Some(serde_json::Value::String(s)) => {
                s.trim().parse().map_err(|_| self.bad(field, format!("must be an integer, not {s:?}")))
            }
            None | Some(serde_json::Value::Null) => Err(self.bad(field, "is missing")),
            Some(other) => Err(self.bad(field, format!("must be an integer, not {other}"))),
        }
    }

    fn purchase(&self) -> Result<PurchaseFacts, EventError> {
        let product_name = self.opt_str("product_name")?.filter(|s| !s.trim().is_empty());
        let product_name = product_name.ok_or_else(|| self.bad("product_name", "is missing"))?;
        let currency_text = self.opt_str("currency")?.ok_or_else(|| self.bad("currency", "is missing"))?;
        let currency: Currency = currency_text
            .parse()
            .map_err(|_| self.bad("currency", format!("is not a currency we know ({currency_text:?})")))?;
        let amount = self.int("amount")?;
        let price = Money::new(amount, currency)
            .map_err(|e| self.bad("amount", format!("must be a positive amount in minor units ({amount}: {e})")))?;
        Ok(PurchaseFacts {
            purchase_id: self.id("purchase_id")?,
            product_id: self.opt_id("product_id")?,
            product_name: product_name.trim().to_owned(),
            price,
            telegram_user_id: self.int("telegram_user_id")?,
            transaction_id: self.opt_id("transaction_id")?,
            paid_at: None,
            refund: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PURCHASE: &str = r#"{"name":"new_digital_product","created_at":"2026-11-29T10:00:00Z","sent_at":"2026-11-29T10:00:01Z",
        "payload":{"product_id":17,"product_name":"100 Diamonds","amount":500,"currency":"eur","telegram_user_id":501,
                   "purchase_id":98765,"transaction_id":"tx-1"}}"#;

    #[test]
    fn parses_a_purchase() {
        let ev = parse_event(PURCHASE.as_bytes()).unwrap();
        assert_eq!(ev.name, NEW_DIGITAL_PRODUCT);
        let WebhookEvent::Purchase(p) = &ev.event else { panic!("{ev:?}") };
        assert_eq!((p.purchase_id.as_str(), p.product_id.as_deref()), ("98765", Some("17")));
        assert_eq!(p.price, Money::new(500, Currency::Eur).unwrap());
        assert_eq!(p.telegram_user_id, 501);
        assert_eq!(p.paid_at, Some(DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z").unwrap().timestamp_millis()));
        let stored = ev.to_stored(PURCHASE.as_bytes());
        assert_eq!(stored.purchase_key, "98765");
    }

    #[test]
    fn parses_a_refund_with_its_reason() {
        let body = PURCHASE.replace("new_digital_product", "digital_product_refunded").replace(
            r#""transaction_id":"tx-1""#,
            r#""transaction_id":"tx-1","refund_reason":"changed mind","refunded_at":"2026-11-30T08:00:00Z""#,
        );
        let ev = parse_event(body.as_bytes()).unwrap();
        let WebhookEvent::Refund(p) = &ev.event else { panic!("{ev:?}") };
        let (at, why) = p.refund.clone().unwrap();
        assert_eq!(why.as_deref(), Some("changed mind"));
        assert_eq!(at, DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z").unwrap().timestamp_millis());
    }

    #[test]
    fn unknown_events_are_kept_by_body_hash() {
        let body = br#"{"name":"new_subscription","created_at":null,"payload":{"x":1}}"#;
        let ev = parse_event(body).unwrap();
        assert_eq!(ev.event, WebhookEvent::Other);
        assert!(ev.to_stored(body).purchase_key.starts_with("sha256:"));
    }

    #[test]
    fn bad_bodies_name_what_is_wrong() {
        assert!(matches!(parse_event(b"{not json"), Err(EventError::NotJson(_))));
        assert!(matches!(parse_event(br#"{"payload":{}}"#), Err(EventError::NotJson(_))), "name is required");
        for (from, to, field) in [
            (r#""amount":500"#, r#""amount":0"#, "amount"),
            (r#""amount":500"#, r#""amount":5.5"#, "amount"),
            (r#""currency":"eur""#, r#""currency":"xyz""#, "currency"),
            (r#""purchase_id":98765,"#, "", "purchase_id"),
            (r#""telegram_user_id":501"#, r#""telegram_user_id":"abc""#, "telegram_user_id"),
            ("2026-11-29T10:00:00Z", "yesterday", "created_at"),
        ] {
            let body = PURCHASE.replace(from, to);
            match parse_event(body.as_bytes()) {
                Err(EventError::BadField { field: f, .. }) => assert_eq!(f, field, "{body}"),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
