//! An in-memory [`Retriever`] over a handful of entries: tests, benchmarks,
//! and small demos. It scores honestly (the share of the query's words found
//! in an entry, inflection-tolerant), so thresholds behave as with the real
//! knowledge base; it is not meant for more than a few hundred entries.

use async_trait::async_trait;

use super::keywords::{stem, word_matches, words};
use super::sources::{Hit, Retriever, RetrieverError};
use super::Lang;

/// Words too common to count as a match.
const STOP: &[&str] = &[
    "the", "and", "for", "you", "your", "are", "can", "does", "what", "how", "with", "this", "that", "have", "will",
    "что", "как", "это", "мне", "мой", "моя", "мои", "где", "или", "для", "так", "уже", "его", "она", "они", "вас",
    "вам", "все", "при", "там",
];

#[derive(Debug, Clone, Default)]
pub struct InMemoryRetriever {
    entries: Vec<(Hit, Vec<String>)>,
}

impl InMemoryRetriever {
    /// Entries' `score` fields are ignored; search computes them.
    pub fn new(entries: Vec<Hit>) -> Self {
        let mut r = Self::default();
        for e in entries {
            r.add(e);
        }
        r
    }

    pub fn add(&mut self, entry: Hit) {
        let w = words(&format!("{} {}", entry.title, entry.text));
        self.entries.push((entry, w));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The score of one entry for a query: matched query words / query words.
    fn score(query: &[String], entry: &[String]) -> f64 {
        if query.is_empty() {
            return 0.0;
        }
        let matched = query
            .iter()
            .filter(|q| entry.iter().any(|w| word_matches(w, q) || word_matches(q, w) || stem(w) == stem(q)))
            .count();
        matched as f64 / query.len() as f64
    }
}

#[async_trait]
impl Retriever for InMemoryRetriever {
    async fn search(&self, query: &str, language: Option<Lang>, limit: usize) -> Result<Vec<Hit>, RetrieverError> {
        let q: Vec<String> =
            words(query).into_iter().filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str())).collect();
        let mut hits: Vec<Hit> = self
            .entries
            .iter()
            .filter_map(|(e, w)| {
                let mut score = Self::score(&q, w);
                // Prefer the customer's language; other languages still count, a bit less.
                if let (Some(l), Some(el)) = (language, e.language.as_deref()) {
                    if el != l.as_str() {
                        score *= 0.8;
                    }
                }
                (score > 0.0).then(|| Hit { score, ..e.clone() })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits.truncate(limit);
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faq(id: &str, lang: &str, title: &str, answer: &str) -> Hit {
        Hit {
            id: id.into(),
            source: "faq.md".into(),
            title: title.into(),
            text: format!("{title}\n{answer}"),
            answer: Some(answer.into()),
            kind: "faq".into(),
            language: Some(lang.into()),
            score: 0.0,
            similarity: None,
            bar: None,
        }
    }

    #[tokio::test]
    async fn ranks_by_shared_words_in_any_inflection() {
        let r = InMemoryRetriever::new(vec![
            faq("ru-1", "ru", "Когда придут алмазы?", "Алмазы зачисляются в течение 5 минут после оплаты."),
            faq("ru-2", "ru", "Можно ли оплатить из Казахстана?", "Да, картой любого банка."),
            faq("en-1", "en", "When will diamonds arrive?", "Diamonds are credited within 5 minutes."),
        ]);
        let hits = r.search("когда придут мои алмазы", Some(Lang::Ru), 3).await.unwrap();
        assert_eq!(hits[0].id, "ru-1");
        assert!(hits[0].score > 0.9, "{hits:?}");
        let hits = r.search("оплата из Казахстана", Some(Lang::Ru), 3).await.unwrap();
        assert_eq!(hits[0].id, "ru-2");
        assert!(r.search("quantum chromodynamics", None, 3).await.unwrap().is_empty());
        assert_eq!(r.search("diamonds", None, 1).await.unwrap().len(), 1);
    }
}
