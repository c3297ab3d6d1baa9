//! What we send to `/activate` and what we get back, as typed values.
//!
//! The request serialises to exactly the JSON documented in
//! `docs/backend-api.md`; the field names there are a published contract,
//! so they are spelled out here once instead of following our struct layout.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

use crate::domain::{AccountId, Money, OrderRef};

/// One activation call. The same value is sent, byte for byte, on every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationRequest {
    /// Our payment number; also the `Idempotency-Key`.
    pub order_ref: OrderRef,
    pub account_id: AccountId,
    /// Product name exactly as Tribute showed it.
    pub product: String,
    pub price: Money,
    /// Telegram user id of the buyer, when the notification carried one.
    pub customer_telegram_id: Option<i64>,
    pub customer_name: String,
    /// When the Tribute notification reached us (sent as RFC 3339 UTC, whole seconds).
    pub received_at: DateTime<Utc>,
}

/// The backend's verdict on an activation call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationOutcome {
    /// The product was activated now.
    Activated { activation_id: String },
    /// This `Idempotency-Key` was activated before; nothing new happened.
    AlreadyActivated { activation_id: String },
    /// The account exists but has no pending order for this product.
    NoPendingOrder,
    /// The backend does not know the account ID.
    UnknownAccount,
    /// The account exists and already received this product for an earlier
    /// payment; nothing is pending for it now. Most likely the customer paid
    /// twice: another account ID would not help, a person decides.
    AlreadyFulfilled,
}

impl ActivationOutcome {
    /// The activation id, for the two successful outcomes.
    pub fn activation_id(&self) -> Option<&str> {
        match self {
            ActivationOutcome::Activated { activation_id } | ActivationOutcome::AlreadyActivated { activation_id } => {
                Some(activation_id)
            }
            ActivationOutcome::NoPendingOrder
            | ActivationOutcome::UnknownAccount
            | ActivationOutcome::AlreadyFulfilled => None,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    order_ref: &'a str,
    account_id: &'a str,
    product: &'a str,
    price: &'a Money,
    customer: Customer<'a>,
    received_at: String,
}

#[derive(Serialize)]
struct Customer<'a> {
    telegram_user_id: Option<i64>,
    name: &'a str,
}

impl Serialize for ActivationRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Body {
            order_ref: self.order_ref.as_str(),
            account_id: self.account_id.as_str(),
            product: &self.product,
            price: &self.price,
            customer: Customer { telegram_user_id: self.customer_telegram_id, name: &self.customer_name },
            received_at: self.received_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
        .serialize(serializer)
    }
}

/// One deactivation call (a refund of an activated order). Sent to
/// `/deactivate` with the same `Idempotency-Key` (the order reference) on
/// every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeactivationRequest {
    /// Our payment number of the activated order; also the `Idempotency-Key`.
    pub order_ref: OrderRef,
    /// What the backend answered to `/activate` for this order.
    pub activation_id: String,
    /// Why the product is taken back, e.g. `refund`.
    pub reason: String,
    /// Free text from the payment provider (Tribute's `refund_reason`), if any.
    pub detail: Option<String>,
    /// Tribute's purchase id, when the refund came from a webhook.
    pub purchase_id: Option<String>,
    /// When the refund happened (RFC 3339 UTC, whole seconds).
    pub refunded_at: DateTime<Utc>,
}

/// The backend's verdict on a deactivation call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeactivationOutcome {
    /// The product was taken back now.
    Deactivated,
    /// This key was deactivated before; nothing new happened.
    AlreadyDeactivated,
    /// The backend never activated this key (nothing to take back).
    NotActivated,
}

#[derive(Serialize)]
struct DeactivationBody<'a> {
    order_ref: &'a str,
    activation_id: &'a str,
    reason: &'a str,
    detail: Option<&'a str>,
    purchase_id: Option<&'a str>,
    refunded_at: String,
}

impl Serialize for DeactivationRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        DeactivationBody {
            order_ref: self.order_ref.as_str(),
            activation_id: &self.activation_id,
            reason: &self.reason,
            detail: self.detail.as_deref(),
            purchase_id: self.purchase_id.as_deref(),
            refunded_at: self.refunded_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    #[test]
    fn serialises_to_the_documented_body() {
        let req = ActivationRequest {
            order_ref: OrderRef::for_message(93372553, 42),
            account_id: AccountId::parse("123456").unwrap(),
            product: "100 Diamonds".into(),
            price: Money::new(500, Currency::Eur).unwrap(),
            customer_telegram_id: Some(777),
            customer_name: "Иван".into(),
            received_at: DateTime::parse_from_rfc3339("2026-11-28T12:00:00.250Z").unwrap().to_utc(),
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"order_ref":"TA-93372553-42","account_id":"123456","product":"100 Diamonds","price":{"amount_minor":500,"currency":"EUR"},"customer":{"telegram_user_id":777,"name":"Иван"},"received_at":"2026-11-28T12:00:00Z"}"#
        );
        assert_eq!(ActivationOutcome::NoPendingOrder.activation_id(), None);
    }

    #[test]
    fn deactivation_serialises_to_the_documented_body() {
        let req = DeactivationRequest {
            order_ref: OrderRef::for_message(93372553, 42),
            activation_id: "act-000001".into(),
            reason: "refund".into(),
            detail: Some("customer request".into()),
            purchase_id: Some("98765".into()),
            refunded_at: DateTime::parse_from_rfc3339("2026-11-29T09:30:00Z").unwrap().to_utc(),
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"order_ref":"TA-93372553-42","activation_id":"act-000001","reason":"refund","detail":"customer request","purchase_id":"98765","refunded_at":"2026-11-29T09:30:00Z"}"#
        );
    }
}
