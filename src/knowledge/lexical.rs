//! Lexical (BM25) sparse vectors for Russian and English without any model.
//!
//! The index's BM25 encoder (`index::bm25`) does the tokenising, lowercasing, stop words,
//! Snowball stemming and BM25 term weighting, but for one language at a
//! time. Customer text mixes both ("оплатить через PayPal"), so each word is
//! routed by its script: Cyrillic words go through the Russian model, the
//! rest through the English one, and the two sparse vectors are summed (token
//! ids are hashes of the stems, so both share one index space). The same
//! vectors serve both backends: sparse vectors are always computed here and
//! the collection applies IDF at search time.

use super::index::{bm25, SparseEncoder};
use super::{KnowledgeError, SparseVec};

/// Two BM25 models behind one interface; cheap to share (`Arc`).
pub struct Lexical {
    ru: Box<dyn SparseEncoder>,
    en: Box<dyn SparseEncoder>,
}

impl std::fmt::Debug for Lexical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lexical(bm25 ru+en)")
    }
}

impl Lexical {
    pub fn new() -> Result<Self, KnowledgeError> {
        Ok(Self { ru: bm25::encoder("russian")?, en: bm25::encoder("english")? })
    }

    /// The vector stored with a chunk (term frequencies, BM25-saturated).
    pub fn embed_document(&self, text: &str) -> SparseVec {
        self.embed(text, false)
    }

    /// The vector a query is searched with (one per distinct term).
    pub fn embed_query(&self, text: &str) -> SparseVec {
        self.embed(text, true)
    }

    fn embed(&self, text: &str, query: bool) -> SparseVec {
        let (ru, en) = split_by_script(text);
        let run = |m: &dyn SparseEncoder, t: &str| {
            if t.is_empty() {
                return None;
            }
            Some(if query { m.embed_query(t) } else { m.embed_document(t) })
        };
        let parts: Vec<SparseVec> = [run(&*self.ru, &ru), run(&*self.en, &en)].into_iter().flatten().collect();
        SparseVec::sum(parts)
    }
}

/// Normalises (lowercase, ё→е) and splits the words into a Cyrillic text and
/// a text of everything else, keeping word order within each.
pub fn split_by_script(text: &str) -> (String, String) {
    let mut ru = String::new();
    let mut en = String::new();
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-')) {
        let word = word.trim_matches(|c| c == '\'' || c == '-');
        if word.is_empty() {
            continue;
        }
        let word: String = word.chars().flat_map(char::to_lowercase).map(|c| if c == 'ё' { 'е' } else { c }).collect();
        let target = if word.chars().any(is_cyrillic) { &mut ru } else { &mut en };
        if !target.is_empty() {
            target.push(' ');
        }
        target.push_str(&word);
    }
    (ru, en)
}

fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}')
}

#[cfg(all(test, feature = "edge"))]
mod tests {
    use super::*;

    fn overlap(a: &SparseVec, b: &SparseVec) -> usize {
        a.indices.iter().filter(|i| b.indices.contains(i)).count()
    }

    #[test]
    fn russian_inflections_share_stems_and_yo_is_e() {
        let lx = Lexical::new().unwrap();
        let q = lx.embed_query("Как оплатить заказ?");
        let d = lx.embed_document("Оплата заказов: оплачивайте заказ картой");
        assert!(overlap(&q, &d) >= 1, "{q:?} vs {d:?}");
        assert_eq!(lx.embed_query("ещё").indices, lx.embed_query("еще").indices);
    }

    #[test]
    fn english_stemming_and_stop_words() {
        let lx = Lexical::new().unwrap();
        assert_eq!(lx.embed_query("the refunds").indices, lx.embed_query("refund").indices);
        assert!(lx.embed_query("the and of").indices.is_empty());
    }

    #[test]
    fn mixed_text_uses_both_stemmers() {
        let lx = Lexical::new().unwrap();
        let mixed = lx.embed_query("оплаты payments");
        let ru = lx.embed_query("оплата");
        let en = lx.embed_query("payment");
        assert_eq!(overlap(&mixed, &ru), 1);
        assert_eq!(overlap(&mixed, &en), 1);
        // Russian stop words are dropped in mixed text too.
        assert_eq!(lx.embed_query("и в на payment").indices, en.indices);
    }
}
