//! The agent's [`Retriever`] over the knowledge base.
//!
//! A hit's score for the agent is the knowledge base's calibrated
//! confidence ([`crate::knowledge::confidence`]), in [0, 1] and on the same
//! scale with or without an embedding server, on any corpus size: the
//! `[agent]` thresholds apply to it unchanged when the embedding server is
//! down and search falls back to lexical, so a dead dependency never makes
//! the agent less strict.

use async_trait::async_trait;

use super::{Hit, Lang, Retriever, RetrieverError};
use crate::knowledge::{KnowledgeBase, SearchFilter, SearchHit};

pub struct KnowledgeRetriever {
    kb: KnowledgeBase,
}

impl KnowledgeRetriever {
    pub fn new(kb: KnowledgeBase) -> Self {
        Self { kb }
    }

    fn to_hit(h: SearchHit) -> Hit {
        tracing::debug!(title = %h.title, evidence = ?h.evidence, "hit confidence");
        Hit {
            id: h.id,
            source: h.source,
            title: h.title,
            text: h.text,
            answer: h.answer,
            kind: h.kind.as_str().to_owned(),
            language: h.language,
            score: h.confidence,
            similarity: h.evidence.dense_similarity,
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
        Ok(hits.into_iter().map(Self::to_hit).collect())
    }
}
