//! The two languages we answer in.

use std::fmt;
use std::str::FromStr;

/// A customer's language. Russian or English: the knowledge base and the
/// holding messages exist in these two; anything else is answered in English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// Guesses the language of a customer's text: Russian when at least a
    /// third of its letters are Cyrillic (Russian customers mix in Latin
    /// product names and IDs), English otherwise.
    pub fn detect(text: &str) -> Self {
        let (mut cyrillic, mut letters) = (0usize, 0usize);
        for c in text.chars().filter(|c| c.is_alphabetic()) {
            letters += 1;
            if ('\u{0400}'..='\u{04FF}').contains(&c) {
                cyrillic += 1;
            }
        }
        if letters > 0 && cyrillic * 3 >= letters {
            Lang::Ru
        } else {
            Lang::En
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown language {0:?}: expected ru or en")]
pub struct UnknownLang(pub String);

impl FromStr for Lang {
    type Err = UnknownLang;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "ru" | "rus" | "russian" => Ok(Lang::Ru),
            "en" | "eng" | "english" => Ok(Lang::En),
            other => Err(UnknownLang(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_russian_with_latin_product_names() {
        assert_eq!(Lang::detect("Когда придут diamonds на аккаунт?"), Lang::Ru);
        assert_eq!(Lang::detect("When will my diamonds arrive?"), Lang::En);
        assert_eq!(Lang::detect("12345"), Lang::En);
        assert_eq!("RU".parse::<Lang>().unwrap(), Lang::Ru);
        assert!("de".parse::<Lang>().is_err());
    }
}
