//! The two languages we write in, and the one guess of a text's language
//! that the dialogue, the agent and the knowledge base all share: three
//! guesses used to disagree on the same customer text.

use std::fmt;
use std::str::FromStr;

/// A customer's language. Russian or English: the templates, the holding
/// messages and the knowledge base exist in these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Ru,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Ru => "ru",
            Language::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_lowercase().as_str() {
            "ru" | "rus" | "russian" => Some(Language::Ru),
            "en" | "eng" | "english" => Some(Language::En),
            _ => None,
        }
    }

    /// Guesses the language of a text. Russian when at least a third of its
    /// letters are Cyrillic: Russian customers mix in Latin product names,
    /// IDs and links, and an English text with one Russian word is still
    /// English. English when it has at least three Latin letters otherwise.
    /// `None` when the text says nothing (digits, emoji, "ok"): the caller
    /// keeps what it knew or its default.
    pub fn detect(text: &str) -> Option<Self> {
        let (mut cyrillic, mut latin, mut letters) = (0usize, 0usize, 0usize);
        for c in text.chars().filter(|c| c.is_alphabetic()) {
            letters += 1;
            if ('\u{0400}'..='\u{04FF}').contains(&c) {
                cyrillic += 1;
            } else if c.is_ascii_alphabetic() {
                latin += 1;
            }
        }
        if cyrillic > 0 && cyrillic * 3 >= letters {
            Some(Language::Ru)
        } else if latin >= 3 {
            Some(Language::En)
        } else {
            None
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown language {0:?}: expected ru or en")]
pub struct UnknownLanguage(pub String);

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownLanguage(s.trim().to_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_with_latin_names_is_russian() {
        assert_eq!(Language::detect("Когда придут diamonds на аккаунт?"), Some(Language::Ru));
        assert_eq!(Language::detect("Как оплатить PayPal"), Some(Language::Ru));
        assert_eq!(Language::detect("Иван Петров"), Some(Language::Ru));
        assert_eq!(Language::detect("Anna, мой ID"), Some(Language::Ru), "a third of the letters are Cyrillic");
        assert_eq!(Language::detect("да"), Some(Language::Ru));
    }

    #[test]
    fn english_and_no_signal() {
        assert_eq!(Language::detect("When will my diamonds arrive?"), Some(Language::En));
        assert_eq!(Language::detect("How to pay"), Some(Language::En));
        assert_eq!(Language::detect("Anna Smith, account please"), Some(Language::En));
        assert_eq!(Language::detect("12345"), None);
        assert_eq!(Language::detect("123456 🙂"), None);
        assert_eq!(Language::detect("ok"), None);
    }

    /// Texts on which the three former detectors (dialogue: any Cyrillic is
    /// Russian; agent: a third of the letters; knowledge base: a majority)
    /// gave different answers.
    #[test]
    fn texts_the_old_detectors_disagreed_on() {
        // Knowledge base said English (6 Latin letters against 3 Cyrillic).
        assert_eq!(Language::detect("Anna, мой ID"), Some(Language::Ru));
        // The dialogue said Russian (it has Cyrillic).
        assert_eq!(Language::detect("Please send the diamonds to my account today, спасибо"), Some(Language::En));
        // The agent said English (its default), the others had no answer.
        assert_eq!(Language::detect("ok"), None);
    }

    #[test]
    fn names_parse_and_unknown_ones_are_errors() {
        assert_eq!("RU".parse::<Language>().unwrap(), Language::Ru);
        assert_eq!(" english ".parse::<Language>().unwrap(), Language::En);
        assert_eq!("de".parse::<Language>(), Err(UnknownLanguage("de".into())));
        assert_eq!(serde_json::to_string(&Language::Ru).unwrap(), "\"ru\"");
    }
}
