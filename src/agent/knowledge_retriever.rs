//! The agent's [`Retriever`] over the knowledge base.
//!
//! A hit's score for the agent is the knowledge base's calibrated
//! confidence ([`crate::knowledge::calibration`]): the probability, learnt on
//! this corpus, that the hit answers the question, for the mode the search
//! ran in — when the embedding server is down and search falls back to
//! lexical, the lexical calibration applies, so a dead dependency never makes
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

    /// A knowledge base's hit as the agent sees it (also a hit that came from the daemon).
    pub fn to_hit(h: SearchHit) -> Hit {
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
            bar: h.bar,
        }
    }
}

#[async_trait]
impl Retriever for KnowledgeRetriever {
    /// Searches in the customer's language first and always in the others
    /// too ([`KnowledgeBase::search_preferring`]).
    async fn search(&self, query: &str, language: Option<Lang>, limit: usize) -> Result<Vec<Hit>, RetrieverError> {
        let hits = match language {
            Some(lang) => self.kb.search_preferring(query, lang.as_str(), None, limit).await,
            None => self.kb.search(query, &SearchFilter::default(), limit).await,
        };
        Ok(hits.map_err(|e| RetrieverError(e.to_string()))?.into_iter().map(Self::to_hit).collect())
    }
}
