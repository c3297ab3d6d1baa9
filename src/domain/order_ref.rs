use std::fmt;

/// Our payment number for an order, also the backend's `Idempotency-Key`.
///
/// Derived from the Tribute chat and the notification's message id, not
/// from a database row id: if the database were ever lost and the chat
/// history re-read, the same order would get the same key and the backend
/// would answer `already_activated` instead of activating twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderRef(String);

impl OrderRef {
    pub fn for_message(chat_id: i64, message_id: i32) -> Self {
        Self(format!("TA-{}-{}", chat_id.unsigned_abs(), message_id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrderRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut parts = s.splitn(3, '-');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("TA"), Some(chat), Some(msg))
                if !chat.is_empty()
                    && chat.bytes().all(|b| b.is_ascii_digit())
                    && !msg.is_empty()
                    && msg.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(Self(s))
            }
            _ => Err(format!("{s:?} is not an order reference like TA-<chat>-<message>")),
        }
    }
}

impl std::str::FromStr for OrderRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_from(s.trim().to_owned())
    }
}

impl From<OrderRef> for String {
    fn from(r: OrderRef) -> Self {
        r.0
    }
}

impl fmt::Display for OrderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_text() {
        let r = OrderRef::for_message(93372553, 42);
        assert_eq!(r.as_str(), "TA-93372553-42");
        assert_eq!("TA-93372553-42".parse::<OrderRef>().unwrap(), r);
        assert!("TA-x-1".parse::<OrderRef>().is_err());
        assert!("42".parse::<OrderRef>().is_err());
    }
}
