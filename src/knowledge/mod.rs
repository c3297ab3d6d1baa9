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

pub mod calibration;
pub mod chunk;
pub mod confidence;
pub mod config;
pub mod embed;
pub mod index;
pub mod ingest;
pub mod lexical;
pub mod live;
pub mod pseudo_questions;
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
    #[error(
        "the knowledge base under {} is open in another process (a running daemon `tribute-assistant run`, \
         or another `kb` command); it holds the index until it stops",
        dir.display()
    )]
    Busy { dir: PathBuf },
    #[error("the daemon at {url}: {message}")]
    Daemon { url: String, message: String },
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
    /// Everything but this language (chunks without one included): the
    /// other-language half of a cross-language search.
    pub except_language: Option<String>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// What `confidence` must reach on this corpus ([`calibration::Calibration::bar`]);
    /// `None`: a lexical search, judged by the fixed bar.
    pub bar: Option<f64>,
}

/// The customer's language's hits and the other languages' in turns, each
/// list in its own order, up to `limit`.
fn interleave<T>(own: Vec<T>, others: Vec<T>, limit: usize) -> Vec<T> {
    let (mut own, mut others) = (own.into_iter(), others.into_iter());
    let mut out = Vec::with_capacity(limit);
    while out.len() < limit {
        match (own.next(), others.next()) {
            (None, None) => break,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
    out.truncate(limit);
    out
}

/// The customer's language, and every other.
fn language_filters(kind: Option<ChunkKind>, language: &str) -> [SearchFilter; 2] {
    [
        SearchFilter { kind, language: Some(language.to_owned()), except_language: None },
        SearchFilter { kind, language: None, except_language: Some(language.to_owned()) },
    ]
}

/// Candidates a search considers for `limit` hits: enough for the margins
/// and the corpus-relative signals to see the competition.
fn candidate_count(limit: usize) -> usize {
    (limit * 4).max(20)
}

/// Counts for `kb stats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// What the evidence is worth on this corpus (`None`: not calibrated yet,
    /// or too small to calibrate): learnt at ingest, kept beside the index.
    calibration: Arc<std::sync::RwLock<Option<Arc<calibration::Calibration>>>>,
    /// Where the calibration lives.
    knowledge_dir: PathBuf,
    /// Set when embedding a query failed: search stays lexical for a while.
    dense_cooldown: Arc<embed::Cooldown>,
    /// Searches that wanted the dense side and went on lexically (provider down or slow).
    dense_fallbacks: Arc<std::sync::atomic::AtomicU64>,
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
        Self::open_inner(data_dir, config, false, true).await
    }

    /// Like [`Self::open`] for a process that serves customers: a calibration
    /// still to be measured (a knowledge base ingested by an older version, or
    /// with another model) runs in the background instead of delaying the
    /// start by the embedding of its pseudo-questions — or by the retries of a
    /// hung embedding server. Until it is done, hits are judged by the fixed
    /// bar of the uncalibrated confidence.
    pub async fn open_serving(data_dir: &Path, config: &KnowledgeConfig) -> Result<Self, KnowledgeError> {
        Self::open_inner(data_dir, config, false, false).await
    }

    /// Like [`Self::open`], but deletes the existing collection first (after a
    /// model change).
    pub async fn rebuild(data_dir: &Path, config: &KnowledgeConfig) -> Result<Self, KnowledgeError> {
        Self::open_inner(data_dir, config, true, true).await
    }

    async fn open_inner(
        data_dir: &Path,
        config: &KnowledgeConfig,
        rebuild: bool,
        wait: bool,
    ) -> Result<Self, KnowledgeError> {
        let lexical = Arc::new(Lexical::new()?);
        let embedder: Option<Arc<dyn Embedder>> = match &config.embedding {
            Some(e) => Some(Arc::new(OpenAiEmbedder::new(e.clone())?)),
            None => None,
        };
        let wanted = CollectionMeta::new(
            embedder.as_ref().map(|e| DenseMeta { model: e.model().to_owned(), dimension: e.dimension() }),
        );
        let index = Self::open_index(data_dir, config, &wanted, rebuild).await?;
        let knowledge_dir = data_dir.join(KNOWLEDGE_DIR);
        let stored = if rebuild { None } else { calibration::Calibration::load(&knowledge_dir) };
        let kb = Self {
            index,
            lexical,
            embedder,
            calibration: Arc::new(std::sync::RwLock::new(stored.map(Arc::new))),
            knowledge_dir,
            dense_cooldown: Arc::default(),
            dense_fallbacks: Arc::default(),
            redactor: Redactor::new(config.extra_account_pattern.clone()),
            limits: config.chunk_limits,
        };
        if kb.embedder.is_some() && kb.applicable_calibration().is_none() {
            // Ingested by an older version, with another model, or calibrating failed last time.
            if wait {
                kb.recalibrate().await;
            } else {
                let kb = kb.clone();
                tokio::spawn(async move { kb.recalibrate().await });
            }
        }
        Ok(kb)
    }

    /// The calibration in force.
    pub fn calibration(&self) -> Option<Arc<calibration::Calibration>> {
        self.calibration.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The calibration that applies to this knowledge base's dense model, with
    /// its scale of cosines (`None`: lexical, or not measured for this model).
    fn applicable_calibration(&self) -> Option<(Arc<calibration::Calibration>, calibration::DenseScale)> {
        let c = self.calibration()?;
        let scale = c.dense_scale_for(self.dense_model())?;
        Some((c, scale))
    }

    /// The dense model's identity, when hybrid search is configured.
    fn dense_model(&self) -> Option<&str> {
        self.embedder.as_ref().map(|e| e.model())
    }

    /// How many searches went on lexically because the embedding provider
    /// failed or was left alone after a failure (`kb eval` reports it).
    pub fn dense_fallbacks(&self) -> u64 {
        self.dense_fallbacks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Calibrates on the corpus as it is now, with the weights in force (the
    /// publisher's learnt ones, else the prior), and keeps the result (also
    /// on disk). A failure is logged and leaves the previous calibration:
    /// search still works, on the evidence it had.
    pub async fn recalibrate(&self) {
        let previous = self.calibration();
        let model = previous.as_ref().map_or_else(calibration::Model::prior, |c| c.model.clone());
        match self.calibrate(model).await {
            Ok(Some(mut c)) => {
                // What the publisher taught stays (re-teach after a large change of the corpus).
                c.learnt = previous.map(|p| p.learnt.clone()).unwrap_or_default();
                tracing::info!(
                    sections = c.sections,
                    questions = c.questions,
                    bar = c.bar(),
                    "knowledge base calibrated on its own pseudo-questions"
                );
                self.keep(c);
            }
            Ok(None) => tracing::debug!("nothing to calibrate: a lexical or a too small knowledge base"),
            Err(e) => {
                tracing::warn!(error = %e, "calibrating the knowledge base failed; confidences stay as they were")
            }
        }
    }

    fn keep(&self, c: calibration::Calibration) {
        if let Err(e) = c.save(&self.knowledge_dir) {
            tracing::warn!(error = %e, "cannot store the knowledge base's calibration; it is recomputed at the next start");
        }
        *self.calibration.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(c));
    }

    /// Every candidate of a customer's hybrid search for `query` (as the
    /// agent searches: `language` first, the others too), with its features
    /// and whether `is_right(source, title)`: what `kb eval --learn` fits the
    /// weights on. Empty when the knowledge base is not calibrated, or the
    /// query could not be embedded.
    pub async fn labelled(
        &self,
        query: &str,
        language: &str,
        is_right: &dyn Fn(&str, &str) -> bool,
    ) -> Result<Vec<(calibration::Features, bool)>, KnowledgeError> {
        let Some((_, scale)) = self.applicable_calibration() else { return Ok(vec![]) };
        let Some((query, Some(vector))) = self.prepare_query(query, 1).await? else { return Ok(vec![]) };
        let mut out = Vec::new();
        for filter in language_filters(None, language) {
            let list = self.candidates(&query, Some(&vector), &filter, candidate_count(5), None).await?;
            let members = list.members();
            let (_, features) = self.features(&query, &members, Some(scale));
            out.extend(members.iter().zip(features).map(|(m, f)| (f, is_right(&m.payload.source, &m.payload.title))));
        }
        Ok(out)
    }

    /// Adds labelled candidates (see [`Self::labelled`]) to those taught before, refits the weights on all and
    /// keeps them: the bar follows at once. `None`: the knowledge base is not
    /// calibrated (lexical, or not ingested with this model), or the samples
    /// hold only one kind.
    pub fn learn(
        &self,
        questions: Vec<(String, Vec<(calibration::Features, bool)>)>,
        from: String,
    ) -> Option<Arc<calibration::Calibration>> {
        let mut c = (*self.calibration()?).clone();
        c.learnt.extend(questions);
        let all: Vec<(calibration::Features, bool)> = c.learnt.values().flatten().copied().collect();
        c.model = calibration::Model::learn(&all, from)?;
        self.keep(c);
        self.calibration()
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
    /// if the provider fails or is slow at query time (one attempt within
    /// `query_timeout_ms`) the search degrades to lexical with a warning
    /// rather than failing the conversation, and stays lexical for
    /// [`embed::EMBEDDING_COOLDOWN`]. Each hit's `confidence` comes from the
    /// corpus's calibration for the mode the search actually ran in, so the
    /// agent's thresholds keep their meaning in the degraded mode.
    pub async fn search(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<SearchHit>, KnowledgeError> {
        let Some((query, vector)) = self.prepare_query(query, limit).await? else { return Ok(vec![]) };
        self.search_with(&query, vector.as_deref(), filter, limit).await
    }

    /// The query as it is searched (redacted) and its vector, or `None` when
    /// there is nothing to search.
    async fn prepare_query(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Option<(String, Option<Vec<f32>>)>, KnowledgeError> {
        if limit == 0 || query.trim().is_empty() {
            return Ok(None);
        }
        let query = self.redactor.redact(query);
        let vector = self.query_vector(&query).await?;
        Ok(Some((query, vector)))
    }

    /// A customer's search: in their language first, and always also in the
    /// others, each language's candidates judged among themselves (a FAQ in
    /// two languages holds translations, which must not count as each other's
    /// competition). When the customer's language has a hit sure enough to be
    /// sent, that language's hits are the answer; otherwise the two lists
    /// take turns filling the `limit` (their confidences are not comparable:
    /// a language's best is judged against its own translations' rivals), and
    /// those are ordered by confidence, the customer's language first on ties
    /// (lexical search: the other languages only when the customer's finds
    /// nothing). An English question
    /// whose only answer is a Russian section finds it, and a Russian section
    /// that names "Google Pay" does not answer an English customer whose own
    /// section says the same.
    pub async fn search_preferring(
        &self,
        query: &str,
        language: &str,
        kind: Option<ChunkKind>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, KnowledgeError> {
        let Some((query, vector)) = self.prepare_query(query, limit).await? else { return Ok(vec![]) };
        let [own, others] = language_filters(kind, language);
        let hits = self.search_with(&query, vector.as_deref(), &own, limit).await?;
        let sure = |h: &SearchHit| h.confidence >= h.bar.unwrap_or(confidence::UNCALIBRATED_BAR);
        // Lexically, another script shares only brand names and codes with the
        // question ("Google Pay" in a Russian section): there the other languages
        // are searched only when the customer's finds nothing.
        if hits.iter().any(sure) || (vector.is_none() && !hits.is_empty()) {
            return Ok(hits);
        }
        let other = self.search_with(&query, vector.as_deref(), &others, limit).await?;
        let mut hits = interleave(hits, other, limit);
        // Stable: the customer's language keeps its place on ties.
        hits.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        Ok(hits)
    }

    async fn search_with(
        &self,
        query: &str,
        vector: Option<&[f32]>,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<SearchHit>, KnowledgeError> {
        let list = self.candidates(query, vector, filter, candidate_count(limit), None).await?;
        // A search that went on lexically is judged by the fixed lexical bar.
        let calibrated = vector.and_then(|_| self.applicable_calibration());
        let scored = self.score(query, &list.members(), calibrated.as_ref());
        let bar = calibrated.map(|(c, _)| c.bar());
        Ok(list
            .hits
            .into_iter()
            .zip(list.rank_scores)
            .zip(scored)
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
                bar,
            })
            .collect())
    }

    /// The query's dense vector, or `None` for a lexical search (no provider,
    /// or the provider failed now or a moment ago).
    async fn query_vector(&self, query: &str) -> Result<Option<Vec<f32>>, KnowledgeError> {
        let Some(e) = &self.embedder else { return Ok(None) };
        let fallback = || self.dense_fallbacks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.dense_cooldown.active() {
            fallback();
            return Ok(None);
        }
        match e.embed_query(query).await {
            Ok(v) => {
                self.dense_cooldown.reset();
                Ok(Some(v))
            }
            Err(KnowledgeError::Embedding(msg)) => {
                tracing::warn!(
                    error = %msg,
                    "embedding the query failed; lexical search only for the next {}s",
                    embed::EMBEDDING_COOLDOWN.as_secs()
                );
                self.dense_cooldown.trip();
                fallback();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// One query's candidates, best first: the lexical list alone, or fused
    /// with the dense one by RRF; `except` leaves one point out (the corpus
    /// calibration's "answer absent" search).
    async fn candidates(
        &self,
        query: &str,
        vector: Option<&[f32]>,
        filter: &SearchFilter,
        n: usize,
        except: Option<&str>,
    ) -> Result<search::CandidateList, KnowledgeError> {
        let sparse = self.lexical.embed_query(query);
        let mut lexical = self.index.search_lexical(&sparse, filter, n).await?;
        let mut dense = match vector {
            Some(v) => Some(self.index.search_dense(v, filter, n).await?),
            None => None,
        };
        if let Some(id) = except {
            lexical.retain(|h| h.id != id);
            if let Some(d) = dense.as_mut() {
                d.retain(|h| h.id != id);
            }
        }
        Ok(search::CandidateList::fuse(lexical, dense))
    }

    /// The evidence and confidence of every candidate of one query, in order.
    /// `calibrated`: the query was searched densely and the corpus is calibrated for the model.
    fn score(
        &self,
        query: &str,
        members: &[search::Member<'_>],
        calibrated: Option<&(Arc<calibration::Calibration>, calibration::DenseScale)>,
    ) -> Vec<confidence::Evidence> {
        let scale = calibrated.map(|(_, scale)| *scale);
        let (fits, features) = self.features(query, members, scale);
        let confidences: Vec<f64> = match calibrated {
            Some((c, _)) => features.iter().map(|f| c.confidence(f)).collect(),
            None => fits.iter().map(confidence::uncalibrated).collect(),
        };
        members
            .iter()
            .zip(fits)
            .zip(features)
            .zip(confidences)
            .map(|(((m, fit), f), confidence)| confidence::Evidence {
                coverage: fit.coverage,
                title_coverage: fit.title_coverage,
                margin: fit.margin,
                confidence,
                found_by: m.found_by,
                dense_similarity: m.cosine,
                dense_position: f.dense_position,
                dense_gap: f.dense_gap,
                agreement: f.agreement > 0.0,
                calibrated: scale.is_some(),
            })
            .collect()
    }

    /// The lexical evidence and the calibration's features of one candidate list.
    fn features(
        &self,
        query: &str,
        members: &[search::Member<'_>],
        scale: Option<calibration::DenseScale>,
    ) -> (Vec<confidence::LexicalFit>, Vec<calibration::Features>) {
        let bodies: Vec<String> = members
            .iter()
            .map(|m| {
                let p = m.payload;
                chunk::search_text(&chunk::question_text(&p.title, &p.phrasings), &p.text, p.answer.as_deref())
            })
            .collect();
        let candidates: Vec<confidence::Candidate<'_>> = members
            .iter()
            .zip(&bodies)
            .map(|(m, body)| confidence::Candidate {
                questions: std::iter::once(m.payload.title.as_str())
                    .filter(|t| !t.is_empty())
                    .chain(m.payload.phrasings.iter().map(String::as_str))
                    .collect(),
                body,
            })
            .collect();
        let fits = confidence::lexical(&self.lexical, query, &candidates);
        let signals: Vec<calibration::Signals> = members
            .iter()
            .zip(&fits)
            .map(|(m, f)| calibration::Signals {
                lexical_fit: f.fit,
                coverage: f.coverage,
                title_coverage: f.title_coverage,
                cosine: m.cosine,
            })
            .collect();
        let margins: Vec<f64> = fits.iter().map(|f| f.margin).collect();
        let features = calibration::features(&signals, &margins, scale);
        (fits, features)
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

    /// Whether there is an index to open: a Qdrant server is configured, or
    /// the embedded one exists under `data_dir` (opening creates one, which
    /// a command that only removes must not do).
    pub fn exists(data_dir: &Path, config: &KnowledgeConfig) -> bool {
        #[cfg(feature = "qdrant")]
        if config.qdrant.is_some() {
            return true;
        }
        let _ = config;
        data_dir.join(KNOWLEDGE_DIR).exists()
    }

    /// Removes the approved pairs of conversation `conversation_id` (its
    /// customer was erased); returns how many points went. Idempotent.
    pub async fn forget_conversation(&self, conversation_id: i64) -> Result<usize, KnowledgeError> {
        let source = ingest::conversation_source(conversation_id);
        let ids: Vec<String> =
            self.index.keys().await?.into_iter().filter(|k| k.source == source).map(|k| k.id).collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let n = ids.len();
        self.index.delete(ids).await?;
        self.index.flush().await?;
        Ok(n)
    }

    /// Identity of every stored chunk, for the tests' incremental ingestion
    /// checks (feature `test-support`).
    #[cfg(any(test, feature = "test-support"))]
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

#[cfg(test)]
mod tests {
    use super::interleave;

    #[test]
    fn two_languages_take_turns_until_the_limit() {
        assert_eq!(interleave(vec![1, 2, 3], vec![10, 20], 4), [1, 10, 2, 20]);
        assert_eq!(interleave(vec![1, 2, 3], vec![10], 4), [1, 10, 2, 3]);
        assert_eq!(interleave(vec![], vec![10, 20], 5), [10, 20]);
        assert_eq!(interleave(vec![1, 2], vec![10, 20], 3), [1, 10, 2]);
    }
}
