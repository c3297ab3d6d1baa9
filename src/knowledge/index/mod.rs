//! The vector index behind the knowledge base: one collection with a named
//! sparse vector (`lexical`, BM25 with IDF applied by the index) and, when an
//! embedding provider is configured, a named dense vector (`dense`, cosine).
//! Every point carries its chunk as payload.
//!
//! Two backends with the same layout: Qdrant Edge embedded on disk (default)
//! and a Qdrant server through qdrant-client (gRPC). The embedding model and
//! dimension are stored with the collection; opening it with another model
//! is an error that says to re-ingest, because vectors of two models are not
//! comparable.

pub mod bm25;
#[cfg(feature = "edge")]
pub mod edge;
#[cfg(feature = "qdrant")]
pub mod remote;

use serde::{Deserialize, Serialize};

use super::{ChunkKind, KnowledgeError, SearchFilter, SparseVec};

/// Turns text into the sparse vector stored under [`LEXICAL`].
pub trait SparseEncoder: Send + Sync {
    /// The vector stored with a chunk (term frequencies, BM25-saturated).
    fn embed_document(&self, text: &str) -> SparseVec;
    /// The vector a query is searched with (one per distinct term).
    fn embed_query(&self, text: &str) -> SparseVec;
}

/// Name of the dense vector in the collection.
pub const DENSE: &str = "dense";
/// Name of the sparse (lexical) vector in the collection.
pub const LEXICAL: &str = "lexical";
/// Bumped when the payload or vector layout changes incompatibly.
pub const LAYOUT_VERSION: u32 = 1;

/// What the vectors of a collection were made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionMeta {
    pub layout: u32,
    /// Dense model and dimension; `None` = lexical only.
    pub dense: Option<DenseMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseMeta {
    pub model: String,
    pub dimension: usize,
}

impl CollectionMeta {
    pub fn new(dense: Option<DenseMeta>) -> Self {
        Self { layout: LAYOUT_VERSION, dense }
    }

    /// A human description for errors and `kb stats`.
    pub fn describe(&self) -> String {
        match &self.dense {
            None => format!("lexical only (layout {})", self.layout),
            Some(d) => {
                format!("with dense model {:?} ({} dims) + lexical (layout {})", d.model, d.dimension, self.layout)
            }
        }
    }

    /// The stored meta must equal the wanted one.
    pub fn check(&self, wanted: &CollectionMeta, location: &str) -> Result<(), KnowledgeError> {
        if self == wanted {
            Ok(())
        } else {
            Err(KnowledgeError::ModelMismatch {
                location: location.to_owned(),
                stored: self.describe(),
                configured: wanted.describe(),
            })
        }
    }
}

/// A chunk as stored in the index payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkPayload {
    pub source: String,
    pub title: String,
    /// The author's other phrasings of the title's question.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phrasings: Vec<String>,
    pub text: String,
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    pub kind: ChunkKind,
    pub content_hash: String,
    /// RFC 3339.
    pub ingested_at: String,
}

/// A point to write.
#[derive(Debug, Clone)]
pub struct IndexPoint {
    /// UUID (hyphenated) derived from source + content hash.
    pub id: String,
    pub dense: Option<Vec<f32>>,
    pub sparse: SparseVec,
    pub payload: ChunkPayload,
}

/// Identity of a stored point, for incremental ingestion and stats.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoredKey {
    pub id: String,
    pub source: String,
    pub content_hash: String,
    pub kind: ChunkKind,
}

/// A search result from one vector.
#[derive(Debug, Clone)]
pub struct IndexHit {
    pub id: String,
    pub score: f32,
    pub payload: ChunkPayload,
}

#[async_trait::async_trait]
pub trait VectorIndex: Send + Sync + std::fmt::Debug {
    /// "qdrant-edge <dir>" or "qdrant <url> collection <name>".
    fn backend(&self) -> String;
    fn meta(&self) -> &CollectionMeta;
    async fn upsert(&self, points: Vec<IndexPoint>) -> Result<(), KnowledgeError>;
    async fn delete(&self, ids: Vec<String>) -> Result<(), KnowledgeError>;
    /// Every stored point's identity.
    async fn keys(&self) -> Result<Vec<StoredKey>, KnowledgeError>;
    /// Up to `limit` whole points (first by id: point ids are digests, so a
    /// fair sample), for the corpus calibration. `score` is 0.
    async fn sample(&self, limit: usize) -> Result<Vec<IndexHit>, KnowledgeError>;
    async fn search_lexical(
        &self,
        query: &SparseVec,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<IndexHit>, KnowledgeError>;
    async fn search_dense(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<IndexHit>, KnowledgeError>;
    /// Builds the search indexes (Edge searches by brute force until then).
    async fn optimize(&self) -> Result<(), KnowledgeError>;
    /// Makes every write durable.
    async fn flush(&self) -> Result<(), KnowledgeError>;
}

/// `8-4-4-4-12` hex from the first 16 bytes of a digest, with the version
/// and variant bits of a v8 (custom) UUID, which both backends accept.
pub fn uuid_from_digest(d: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
