//! Word matching for Russian and English that tolerates inflection:
//! "refunds", "refunded" match `refund`; "возврата", "возвратом" match
//! `возврат`. No dictionary: a keyword's light stem must be followed in the
//! text word by nothing or by a known ending, so `спор` matches "спора" but
//! not "спорт". Used by the hard-topic rules and the repeat detector.

use std::collections::HashSet;

/// Inflectional endings (RU + EN), longest first so stripping is greedy.
const ENDINGS: &[&str] = &[
    "иями", "ями", "ами", "ого", "его", "ому", "ему", "ыми", "ими", "ться", "тесь", "ешь", "ете", "ите", "ишь", "ing",
    "ers", "ies", "ой", "ей", "ом", "ем", "ам", "ям", "ах", "ях", "ую", "юю", "ая", "яя", "ое", "ее", "ые", "ие", "ый",
    "ий", "ов", "ев", "ть", "ет", "ют", "ут", "ит", "ят", "ла", "ло", "ли", "ed", "es", "er", "ly", "'s", "а", "я",
    "о", "е", "у", "ю", "ы", "и", "ь", "й", "л", "s",
];

/// Lowercases, folds ё to е and splits into words (letters and digits).
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace('ё', "е")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Strips one inflectional ending, keeping at least three characters.
pub fn stem(word: &str) -> &str {
    let chars = word.chars().count();
    for e in ENDINGS {
        if let Some(base) = word.strip_suffix(e) {
            if chars - e.chars().count() >= 3 {
                return base;
            }
        }
    }
    word
}

/// Whether `text_word` is an inflected form of `key_word` (both already
/// lowercased): same stem, or the key's stem followed by at most two endings.
pub fn word_matches(text_word: &str, key_word: &str) -> bool {
    matches_stem(text_word, key_word, stem(key_word))
}

/// [`word_matches`] with the key's stem computed once (phrases keep theirs).
fn matches_stem(text_word: &str, key_word: &str, key_stem: &str) -> bool {
    if text_word == key_word {
        return true;
    }
    let Some(rest) = text_word.strip_prefix(key_stem) else {
        return false;
    };
    rest.is_empty()
        || ENDINGS.contains(&rest)
        || ENDINGS.iter().any(|e| rest.strip_prefix(e).is_some_and(|r| ENDINGS.contains(&r)))
}

/// A keyword or phrase, pre-split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub text: String,
    /// (word, its stem), stemmed once here rather than on every match.
    words: Vec<(String, String)>,
}

impl Phrase {
    pub fn new(text: &str) -> Option<Self> {
        let words: Vec<(String, String)> = words(text)
            .into_iter()
            .map(|w| {
                let s = stem(&w).to_owned();
                (w, s)
            })
            .collect();
        (!words.is_empty()).then(|| Self { text: text.trim().to_owned(), words })
    }

    /// Whether the phrase occurs in `text_words`: its words in order, with
    /// at most [`MAX_GAP`] other words between two of them ("не *на* тот аккаунт").
    pub fn occurs_in(&self, text_words: &[String]) -> bool {
        (0..text_words.len()).any(|start| self.occurs_at(text_words, start))
    }

    fn occurs_at(&self, text_words: &[String], start: usize) -> bool {
        let mut pos = start;
        for (i, (key, key_stem)) in self.words.iter().enumerate() {
            let window = if i == 0 { 1 } else { MAX_GAP + 1 };
            match (pos..text_words.len().min(pos + window)).find(|&j| matches_stem(&text_words[j], key, key_stem)) {
                Some(j) => pos = j + 1,
                None => return false,
            }
        }
        true
    }
}

/// Words allowed between two words of a phrase.
pub const MAX_GAP: usize = 2;

/// The stems of a text's words, for comparing two questions.
pub fn stem_set(text: &str) -> HashSet<String> {
    words(text).iter().map(|w| stem(w).to_owned()).collect()
}

/// Jaccard similarity of two texts' stem sets (1.0 for the same words in any form).
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (stem_set(a), stem_set(b));
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(&b).count() as f64;
    let union = a.union(&b).count() as f64;
    inter / union
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str, key: &str) -> bool {
        Phrase::new(key).unwrap().occurs_in(&words(text))
    }

    #[test]
    fn inflected_forms_match_in_both_languages() {
        assert!(hit("I want a REFUND now", "refund"));
        assert!(hit("were my diamonds refunded?", "refund"));
        assert!(hit("Хочу оформить возврат", "возврат"));
        assert!(hit("а что с возвратом денег", "возврат"));
        assert!(hit("Верните деньги!", "верните деньги"));
        assert!(hit("позовите живого человека", "живой человек"));
        assert!(hit("chargebacks", "chargeback"));
        assert!(hit("Зачислили не на тот аккаунт", "не тот аккаунт"));
    }

    #[test]
    fn different_words_with_a_shared_prefix_do_not_match() {
        assert!(!hit("люблю спорт", "спор"));
        assert!(!hit("refundable deposit? no, a refundable", "refun"));
        assert!(!hit("the administrator", "admin"));
        assert!(!hit("humid weather", "human"));
    }

    #[test]
    fn same_question_in_other_forms_is_similar() {
        assert!(similarity("Когда придут алмазы?", "когда придут алмазы") > 0.99);
        assert!(similarity("when will diamonds arrive", "When will the diamond arrive?") >= 0.8);
        assert!(similarity("how to pay", "refund please") < 0.2);
    }
}
