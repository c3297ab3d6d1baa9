//! The agent's [`Retriever`] over the knowledge base.
//!
//! The knowledge base scores lexical hits with raw BM25 (unbounded) and
//! hybrid hits with normalised RRF in (0, 1]; the agent's thresholds are one
//! scale in (0, 1], so lexical scores are mapped by `s / (s + LEXICAL_HALF)`:
//! a BM25 score of [`LEXICAL_HALF`] becomes 0.5. On the starter FAQ a right
//! answer to a one-line question scores 5–15 (0.59–0.81) and an unrelated
//! question below 3 or nothing; the defaults (0.35 any hit, 0.6 a curated
//! answer sent as is) are BM25 ≈ 1.9 and ≈ 5.25.

use async_trait::async_trait;

use super::{Hit, Lang, Retriever, RetrieverError};
use crate::knowledge::{KnowledgeBase, SearchFilter, SearchHit};

/// The BM25 score that maps to 0.5.
pub const LEXICAL_HALF: f64 = 3.5;

pub struct KnowledgeRetriever {
    kb: KnowledgeBase,
    /// True when an embedding provider is configured: scores are RRF, already in (0, 1].
    hybrid: bool,
}

impl KnowledgeRetriever {
    pub fn new(kb: KnowledgeBase, hybrid: bool) -> Self {
        Self { kb, hybrid }
    }

    fn to_hit(&self, h: SearchHit) -> Hit {
        let score = if self.hybrid { h.score } else { h.score.max(0.0) / (h.score.max(0.0) + LEXICAL_HALF) };
        Hit {
            id: h.id,
            source: h.source,
            title: h.title,
            text: h.text,
            answer: h.answer,
            kind: h.kind.as_str().to_owned(),
            language: h.language,
            score,
        }
    }
}

#[async_trait]
impl Retriever for KnowledgeRetriever {
    /// Searches in the customer's language first and falls back to every
    /// language when that finds nothing.
    async fn search(&self, query: &str, language: Option<Lang>, limit: usize) -> Result<Vec<Hit>, RetrieverError> {
        let err = |e: crate::knowledge::KnowledgeError| RetrieverError(e.to_string());
        let mut hits = Vec::new();
        if let Some(lang) = language {
            let filter = SearchFilter { language: Some(lang.as_str().to_owned()), ..Default::default() };
            hits = self.kb.search(query, &filter, limit).await.map_err(err)?;
        }
        if hits.is_empty() {
            hits = self.kb.search(query, &SearchFilter::default(), limit).await.map_err(err)?;
        }
        Ok(hits.into_iter().map(|h| self.to_hit(h)).collect())
    }
}
