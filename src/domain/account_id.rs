use std::fmt;

/// A publisher-side account identifier as typed by a customer.
///
/// Kept as a string because leading zeros are significant (`000123` and
/// `123` are different accounts on many sites).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountIdError {
    #[error("account ID is empty")]
    Empty,
    #[error("account ID is longer than 64 characters")]
    TooLong,
    #[error("account ID contains {0:?}; only ASCII letters, digits, '-' and '_' are allowed")]
    BadChar(char),
}

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, AccountIdError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(AccountIdError::Empty);
        }
        if s.len() > 64 {
            return Err(AccountIdError::TooLong);
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(AccountIdError::BadChar(c));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = AccountIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<AccountId> for String {
    fn from(a: AccountId) -> Self {
        a.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_leading_zeros_and_rejects_junk() {
        assert_eq!(AccountId::parse(" 000123 ").unwrap().as_str(), "000123");
        assert_eq!(AccountId::parse(""), Err(AccountIdError::Empty));
        assert_eq!(AccountId::parse("12 34"), Err(AccountIdError::BadChar(' ')));
        assert!(AccountId::parse(&"1".repeat(65)).is_err());
    }
}
