//! The knowledge base the agent answers from: the publisher's documents
//! (`knowledge/`) and moderator-approved conversation pairs, redacted,
//! chunked and indexed for hybrid (dense + lexical) multilingual search.
//!
//! ```text
//! ingest ─► chunk ─► redact ─► lexical (BM25 sparse) ─┬─► index (Qdrant Edge | Qdrant server)
//!                              embed (optional dense) ─┘        ▲
//! search ─► redact ─► lexical + embed ─► index ─► rrf ──────────┘
//! ```
//!
//! [`KnowledgeBase`] is the handle the rest of the program uses: `open`,
//! `search`, `add_approved_pair`, `ingest`, `stats`.

pub mod chunk;
pub mod confidence;
pub mod config;
pub mod embed;
pub mod index;
pub mod ingest;
pub mod lexical;
pub mod redact;
pub mod search;
pub mod starter;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use chunk::{Chunk, ChunkLimits};
pub use config::{KnowledgeConfig, KnowledgeSection};
pub use embed::{Embedder, EmbeddingConfig, OpenAiEmbedder};
pub use index::{CollectionMeta, DenseMeta, StoredKey, VectorIndex};
pub use ingest::{IngestInput, IngestReport, SourceText};
pub use lexical::Lexical;
pub use redact::Redactor;

use crate::store::{ApprovedPair, StoreError};

/// Sub-directory of the data dir holding the Edge collection.
pub const KNOWLEDGE_DIR: &str = "knowledge";

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("invalid knowledge configuration: {0}")]
    Config(String),
    #[error("this binary was built without the `{0}` cargo feature")]
    NotBuilt(&'static str),
    #[error("lexical embedder: {0}")]
    Lexical(String),
    #[error("embedding provider: {0}")]
    Embedding(String),
    #[error(
        "embedding model {model:?} returned {returned}-dimensional vectors, but [knowledge.embedding] dimension = {configured}; fix the dimension in the config"
    )]
    DimensionMismatch { model: String, configured: usize, returned: usize },
    #[error(
        "the knowledge base at {location} was built {stored}, but the config asks for one {configured}; \
         re-ingest with `tribute-assistant kb ingest --rebuild`"
    )]
    ModelMismatch { location: String, stored: String, configured: String },
    #[error("index ({backend}): {message}")]
    Index { backend: &'static str, message: String },
    #[error("{source_name}: {reason}")]
    BadSource { source_name: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a chunk comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkKind {
    /// A section of the publisher's documents.
    Doc,
    /// A moderator-approved question/answer pair from a conversation.
    Conversation,
}

impl ChunkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Doc => "doc",
            ChunkKind::Conversation => "conversation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "doc" => Some(ChunkKind::Doc),
            "conversation" => Some(ChunkKind::Conversation),
            _ => None,
        }
    }
}

/// A sparse vector: sorted unique token ids and their weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVec {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseVec {
    /// Adds vectors token by token.
    pub fn sum(parts: Vec<SparseVec>) -> SparseVec {
        let mut map: std::collections::BTreeMap<u32, f32> = std::collections::BTreeMap::new();
        for p in parts {
            for (i, v) in p.indices.into_iter().zip(p.values) {
                *map.entry(i).or_default() += v;
            }
        }
        let (indices, values) = map.into_iter().unzip();
        SparseVec { indices, values }
    }
}

/// Restricts a search; empty = everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    pub kind: Option<ChunkKind>,
    /// "ru", "en", … as detected at ingestion (or given in JSONL).
    pub language: Option<String>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// Point id (stable for unchanged content).
    pub id: String,
    /// Path relative to the ingested root, or `conversation:<id>`.
    pub source: String,
    pub title: String,
    pub text: String,
    /// The stored answer of a Q/A pair or of a whole FAQ section, for
    /// retrieval-only replies.
    pub answer: Option<String>,
    pub kind: ChunkKind,
    pub language: Option<String>,
    /// What the hits are ranked by. Lexical only: the BM25 score
    /// (IDF-weighted, unbounded; higher is better). Hybrid: the RRF score
    /// normalised to (0, 1], 1 = ranked first by both retrievers.
    pub score: f64,
    /// How sure the search is of this hit, in [0, 1], the same scale on
    /// any corpus: what the agent's thresholds apply to ([`confidence`]).
    pub confidence: f64,
    pub evidence: confidence::Evidence,
}

/// Counts for `kb stats`.
#[derive(Debug, Clone, Serialize)]
pub struct KbStats {
    pub backend: String,
    pub collection: String,
    pub doc_chunks: usize,
    pub conversation_chunks: usize,
    pub sources: usize,
}

/// The knowledge base: index + lexical embedder + optional dense embedder.
/// Cheap to clone; share it between tasks.
#[derive(Clone)]
pub struct KnowledgeBase {
    index: Arc<dyn VectorIndex>,
    lexical: Arc<Lexical>,
    embedder: Option<Arc<dyn Embedder>>,
    /// How far the embedder's cosines count towards confidence, when measured.
    dense_scale: Option<confidence::DenseScale>,
    /// Set when embedding a query failed: search stays lexical for a while.
    dense_cooldown: Arc<embed::Cooldown>,
    redactor: Redactor,
    limits: ChunkLimits,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("index", &self.index)
            .field("embedder", &self.embedder)
            .finish_non_exhaustive()
    }
}

impl KnowledgeBase {
    /// Opens the knowledge base of `data_dir` (Qdrant Edge under
    /// `<data_dir>/knowledge/`) or the configured Qdrant server, creating an
    /// empty collection when there is none. A collection built with another
    /// embedding model or dimension is a [`KnowledgeError::ModelMismatch`].
    pub async fn open(data_dir: &Path, config: &KnowledgeConfig) -> Result<Self, KnowledgeError> {
        Self::open_inner(data_dir, config, false).await
    }

    /// Like [`Self::open`], but deletes the existing collection first (after a
    /// model change).
    pub async fn rebuild(data_dir: &Path, config: &KnowledgeConfig) -> Result<Self, KnowledgeError> {
        Self::open_inner(data_dir, config, true).await
    }

    async fn open_inner(data_dir: &Path, config: &KnowledgeConfig, rebuild: bool) -> Result<Self, KnowledgeError> {
        let lexical = Arc::new(Lexical::new()?);
        let embedder: Option<Arc<dyn Embedder>> = match &config.embedding {
            Some(e) => Some(Arc::new(OpenAiEmbedder::new(e.clone())?)),
            None => None,
        };
        let wanted = CollectionMeta::new(
            embedder.as_ref().map(|e| DenseMeta { model: e.model().to_owned(), dimension: e.dimension() }),
        );
        let index = Self::open_index(data_dir, config, &wanted, rebuild).await?;
        Ok(Self {
            index,
            lexical,
            embedder,
            dense_scale: config.embedding.as_ref().and_then(|e| e.scale),
            dense_cooldown: Arc::default(),
            redactor: Redactor::new(config.extra_account_pattern.clone()),
            limits: config.chunk_limits,
        })
    }

    #[allow(unused_variables)]
    async fn open_index(
        data_dir: &Path,
        config: &KnowledgeConfig,
        wanted: &CollectionMeta,
        rebuild: bool,
    ) -> Result<Arc<dyn VectorIndex>, KnowledgeError> {
        #[cfg(feature = "qdrant")]
        if let Some(server) = &config.qdrant {
            return Ok(Arc::new(index::remote::RemoteIndex::open(server, wanted, rebuild).await?));
        }
        #[cfg(feature = "edge")]
        {
            let dir = data_dir.join(KNOWLEDGE_DIR);
            std::fs::create_dir_all(&dir).map_err(|source| KnowledgeError::Io { path: dir.clone(), source })?;
            let wanted = wanted.clone();
            let index = tokio::task::spawn_blocking(move || index::edge::EdgeIndex::open(&dir, &wanted, rebuild))
                .await
                .map_err(|e| KnowledgeError::Index { backend: "qdrant-edge", message: e.to_string() })??;
            Ok(Arc::new(index))
        }
        #[cfg(not(feature = "edge"))]
        Err(KnowledgeError::NotBuilt("edge"))
    }

    /// The index backend in use, e.g. `qdrant-edge /data/knowledge/edge`.
    pub fn backend(&self) -> String {
        self.index.backend()
    }

    /// Searches documents and approved pairs. Hybrid (RRF of dense and
    /// lexical) when an embedding provider is configured, lexical otherwise;
    /// if the provider fails at query time (one attempt, no retries) the
    /// search degrades to lexical with a warning rather than failing the
    /// conversation, and stays lexical for [`embed::EMBEDDING_COOLDOWN`].
    /// Either way each hit's `confidence` is on the same scale, so the
    /// agent's thresholds stay as strict in the degraded mode.
    pub async fn search(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<SearchHit>, KnowledgeError> {
        if limit == 0 || query.trim().is_empty() {
            return Ok(vec![]);
        }
        let query = self.redactor.redact(query);
        let candidates = (limit * 4).max(20);
        let sparse = self.lexical.embed_query(&query);
        let lexical_hits = self.index.search_lexical(&sparse, filter, candidates).await?;
        let dense_hits = match &self.embedder {
            None => None,
            Some(_) if self.dense_cooldown.active() => None,
            Some(e) => match e.embed_query(&query).await {
                Ok(v) => {
                    self.dense_cooldown.reset();
                    Some(self.index.search_dense(&v, filter, candidates).await?)
                }
                Err(KnowledgeError::Embedding(msg)) => {
                    tracing::warn!(
                        error = %msg,
                        "embedding the query failed; lexical search only for the next {}s",
                        embed::EMBEDDING_COOLDOWN.as_secs()
                    );
                    self.dense_cooldown.trip();
                    None
                }
                Err(e) => return Err(e),
            },
        };
        let lexical_scores: std::collections::HashMap<String, f64> =
            lexical_hits.iter().map(|h| (h.id.clone(), f64::from(h.score))).collect();
        let dense_scores: std::collections::HashMap<String, f64> =
            dense_hits.iter().flatten().map(|h| (h.id.clone(), f64::from(h.score))).collect();
        let scored: Vec<(index::IndexHit, f64)> = match dense_hits {
            Some(dense) => search::rrf(vec![dense, lexical_hits]),
            None => lexical_hits
                .into_iter()
                .map(|h| {
                    let s = f64::from(h.score);
                    (h, s)
                })
                .collect(),
        };
        let bodies: Vec<String> = scored
            .iter()
            .map(|(h, _)| {
                let questions = chunk::question_text(&h.payload.title, &h.payload.phrasings);
                chunk::search_text(&questions, &h.payload.text, h.payload.answer.as_deref())
            })
            .collect();
        let candidates: Vec<confidence::Candidate<'_>> = scored
            .iter()
            .zip(&bodies)
            .map(|((h, _), body)| confidence::Candidate {
                dense_similarity: dense_scores.get(&h.id).copied(),
                questions: std::iter::once(h.payload.title.as_str())
                    .chain(h.payload.phrasings.iter().map(String::as_str))
                    .collect(),
                body,
            })
            .collect();
        let mut evidence = confidence::calibrate(&self.lexical, &query, &candidates, self.dense_scale);
        for ((h, _), e) in scored.iter().zip(evidence.iter_mut()) {
            e.found_by = match (lexical_scores.contains_key(&h.id), e.dense_similarity.is_some()) {
                (true, true) => confidence::FoundBy::Both,
                (false, true) => confidence::FoundBy::Dense,
                _ => confidence::FoundBy::Lexical,
            };
        }
        Ok(scored
            .into_iter()
            .zip(evidence)
            .take(limit)
            .map(|((h, score), evidence)| SearchHit {
                id: h.id,
                source: h.payload.source,
                title: h.payload.title,
                text: h.payload.text,
                answer: h.payload.answer,
                kind: h.payload.kind,
                language: h.payload.language,
                score,
                confidence: evidence.confidence,
                evidence,
            })
            .collect())
    }

    /// Adds one moderator-approved pair at once (redacted), under the source
    /// `conversation:<id>`. Idempotent: the same pair twice is one point.
    pub async fn add_approved_pair(&self, pair: &ApprovedPair) -> Result<IngestReport, KnowledgeError> {
        let started = std::time::Instant::now();
        let mut chunk = ingest::pair_chunk(pair);
        self.redact_chunk(&mut chunk);
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let planned = Self::plan(&ingest::conversation_source(pair.conversation_id), vec![chunk], &now);
        let embedded = self.write(planned, None).await?;
        self.index.flush().await?;
        Ok(IngestReport { added: embedded, embedded, elapsed: started.elapsed(), ..Default::default() })
    }

    /// Identity of every stored chunk (for incremental ingestion checks).
    pub async fn chunk_keys(&self) -> Result<Vec<StoredKey>, KnowledgeError> {
        let mut keys = self.index.keys().await?;
        keys.sort();
        Ok(keys)
    }

    pub async fn stats(&self) -> Result<KbStats, KnowledgeError> {
        let keys = self.index.keys().await?;
        let sources: std::collections::HashSet<&str> = keys.iter().map(|k| k.source.as_str()).collect();
        Ok(KbStats {
            backend: self.index.backend(),
            collection: self.index.meta().describe(),
            doc_chunks: keys.iter().filter(|k| k.kind == ChunkKind::Doc).count(),
            conversation_chunks: keys.iter().filter(|k| k.kind == ChunkKind::Conversation).count(),
            sources: sources.len(),
        })
    }

    /// Builds the search indexes (Edge: blocking work, run off the async runtime).
    pub async fn optimize(&self) -> Result<(), KnowledgeError> {
        self.index.optimize().await
    }

    /// Makes every write durable; call before exit.
    pub async fn flush(&self) -> Result<(), KnowledgeError> {
        self.index.flush().await
    }
}
