//! The BM25 sparse encoder, from Qdrant Edge's `bm25_embed` (tokenising,
//! stop words, Snowball stemming, BM25 term weighting) — kept behind the
//! index adapter like the rest of Qdrant, so the knowledge base's own code
//! (`lexical`) only sees [`SparseEncoder`]. Token ids are hashes of the
//! stems, so the vectors serve both index backends.

use super::SparseEncoder;
use crate::knowledge::{KnowledgeError, SparseVec};

#[cfg(feature = "edge")]
struct EdgeBm25(qdrant_edge::bm25_embed::EdgeBm25);

#[cfg(feature = "edge")]
impl SparseEncoder for EdgeBm25 {
    fn embed_document(&self, text: &str) -> SparseVec {
        let v = self.0.embed_document(text);
        SparseVec { indices: v.indices, values: v.values }
    }

    fn embed_query(&self, text: &str) -> SparseVec {
        let v = self.0.embed_query(text);
        SparseVec { indices: v.indices, values: v.values }
    }
}

/// A BM25 encoder for one Snowball `language` (`"russian"`, `"english"`).
#[cfg(feature = "edge")]
pub fn encoder(language: &str) -> Result<Box<dyn SparseEncoder>, KnowledgeError> {
    use qdrant_edge::bm25_embed::EdgeBm25Config;
    // Built from JSON: the stop-word and stemmer types are not re-exported
    // by the crate, but the config's serde shape is its documented format.
    let config: EdgeBm25Config = serde_json::from_value(serde_json::json!({
        "language": language,
        "lowercase": true,
        "stopwords": { "languages": ["english", "russian"] },
        "stemmer": { "type": "snowball", "language": language },
        // FAQ sections are short; the default 256 over-rewards length.
        "avg_len": 60.0,
    }))
    .map_err(|e| KnowledgeError::Lexical(format!("BM25 config for {language}: {e}")))?;
    let model = qdrant_edge::bm25_embed::EdgeBm25::new(config)
        .map_err(|e| KnowledgeError::Lexical(format!("BM25 model for {language}: {e}")))?;
    Ok(Box::new(EdgeBm25(model)))
}

#[cfg(not(feature = "edge"))]
pub fn encoder(_language: &str) -> Result<Box<dyn SparseEncoder>, KnowledgeError> {
    Err(KnowledgeError::NotBuilt("edge (the BM25 embedder comes from qdrant-edge)"))
}
