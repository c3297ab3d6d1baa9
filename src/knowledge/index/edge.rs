//! Qdrant Edge backend: an embedded shard on disk under the data dir.
//!
//! Edge calls are blocking, so each runs on `spawn_blocking`. Its `flush`
//! panics if another thread holds the WAL, so writes, flushes and
//! optimisation take an exclusive lock and searches a shared one.
//!
//! One process at a time: the shard's WAL is locked by whoever opened it,
//! and Edge reports a second opener only as `Can't init WAL: WouldBlock`.
//! A lock file of our own, taken before the shard is opened and released
//! after it is closed, turns that into [`KnowledgeError::Busy`], which says
//! who holds the index and what to do.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{
    Condition, Distance, EdgeConfigBuilder, EdgeOptimizersConfig, EdgeShard, EdgeSparseVectorParams, EdgeVectorParams,
    FieldCondition, Filter, JsonPath, Match, Modifier, NamedQuery, PointId, PointOperations, PointStruct, QueryEnum,
    ScrollRequest, SearchRequest, UpdateOperation, ValueVariants, Vector, VectorInternal, Vectors,
    WithPayloadInterface, WithVector,
};

use super::{ChunkPayload, CollectionMeta, IndexHit, IndexPoint, StoredKey, VectorIndex, DENSE, LEXICAL};
use crate::knowledge::{ChunkKind, KnowledgeError, SearchFilter, SparseVec};

const META_FILE: &str = "collection.json";
const SHARD_DIR: &str = "edge";
/// The advisory lock held for as long as the shard is open.
pub const LOCK_FILE: &str = "index.lock";

/// Points written into the appendable segment before it is rolled.
///
/// Why ingestion rolls segments: Edge's appendable segment keeps a mutable
/// in-RAM sparse index whose every insert walks the whole posting list of
/// each of the point's terms, so filling one segment with N points costs
/// O(N²) (measured in release: 10k chunks at 1,677/s, 100k at 304/s, 71% of
/// the time in `PostingList::upsert`). Every `ROLL_EVERY` points the
/// appendable segment is turned into an immutable one with a bulk-built
/// index (and a fresh appendable one opened); merging those into a few large
/// segments is left to the explicit `optimize()` after an ingestion, once,
/// instead of after every roll (which would be quadratic again).
const ROLL_EVERY: usize = 5_000;

pub struct EdgeIndex {
    dir: PathBuf,
    meta: CollectionMeta,
    shard: Arc<Held>,
    lock: Arc<RwLock<()>>,
    /// Points written since the last optimisation.
    unoptimized: Arc<AtomicUsize>,
}

impl std::fmt::Debug for EdgeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeIndex").field("dir", &self.dir).field("meta", &self.meta).finish()
    }
}

fn err(e: impl std::fmt::Display) -> KnowledgeError {
    KnowledgeError::Index { backend: "qdrant-edge", message: e.to_string() }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KnowledgeError + '_ {
    move |source| KnowledgeError::Io { path: path.to_owned(), source }
}

/// The open shard and the lock file that guards it. Fields drop in order:
/// the shard is closed before the lock is released, also when the last
/// reference is a search still running on a blocking thread.
struct Held {
    shard: EdgeShard,
    _lock: std::fs::File,
}

/// Takes the index's lock file in `dir`, or says that another process (or
/// another open handle in this one) holds it.
fn lock(dir: &Path) -> Result<std::fs::File, KnowledgeError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Err(KnowledgeError::Busy { dir: dir.to_owned() });
            }
            return Err(KnowledgeError::Io { path, source: e });
        }
    }
    Ok(file)
}

impl EdgeIndex {
    /// Opens the collection in `dir` (e.g. `<data_dir>/knowledge`), creating
    /// it when absent. With `rebuild` an existing collection is deleted first.
    pub fn open(dir: &Path, wanted: &CollectionMeta, rebuild: bool) -> Result<Self, KnowledgeError> {
        let meta_path = dir.join(META_FILE);
        let shard_path = dir.join(SHARD_DIR);
        let held_lock = lock(dir)?;
        if rebuild {
            for p in [&shard_path] {
                if p.exists() {
                    std::fs::remove_dir_all(p).map_err(io(p))?;
                }
            }
            if meta_path.exists() {
                std::fs::remove_file(&meta_path).map_err(io(&meta_path))?;
            }
        }
        let existing = if meta_path.exists() {
            let text = std::fs::read_to_string(&meta_path).map_err(io(&meta_path))?;
            Some(serde_json::from_str::<CollectionMeta>(&text).map_err(|e| {
                err(format!("{} is not a collection description: {e}; re-ingest with --rebuild", meta_path.display()))
            })?)
        } else {
            None
        };
        let shard = match existing {
            Some(stored) => {
                stored.check(wanted, &dir.display().to_string())?;
                EdgeShard::load(&shard_path, None).map_err(err)?
            }
            None => {
                if shard_path.exists() {
                    std::fs::remove_dir_all(&shard_path).map_err(io(&shard_path))?;
                }
                std::fs::create_dir_all(&shard_path).map_err(io(&shard_path))?;
                let shard = EdgeShard::new(&shard_path, edge_config(wanted)).map_err(err)?;
                let json = serde_json::to_string_pretty(wanted).expect("meta serialises");
                write_atomic(&meta_path, json.as_bytes())?;
                shard
            }
        };
        // Also for collections made before segments were rolled.
        shard.set_optimizers_config(optimizers(false)).map_err(err)?;
        Ok(Self {
            dir: dir.to_owned(),
            meta: wanted.clone(),
            shard: Arc::new(Held { shard, _lock: held_lock }),
            lock: Arc::new(RwLock::new(())),
            unoptimized: Arc::new(AtomicUsize::new(0)),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&EdgeShard) -> Result<T, KnowledgeError> + Send + 'static,
    ) -> Result<T, KnowledgeError> {
        let shard = self.shard.clone();
        let lock = self.lock.clone();
        tokio::task::spawn_blocking(move || {
            if exclusive {
                let _g = lock.write().unwrap_or_else(|p| p.into_inner());
                f(&shard.shard)
            } else {
                let _g = lock.read().unwrap_or_else(|p| p.into_inner());
                f(&shard.shard)
            }
        })
        .await
        .map_err(|e| err(format!("index task failed: {e}")))?
    }

    fn search_blocking(
        shard: &EdgeShard,
        query: VectorInternal,
        using: &str,
        filter: Option<Filter>,
        limit: usize,
    ) -> Result<Vec<IndexHit>, KnowledgeError> {
        let request = SearchRequest {
            query: QueryEnum::Nearest(NamedQuery { query, using: Some(using.to_owned()) }),
            filter,
            params: None,
            limit,
            offset: 0,
            with_payload: Some(WithPayloadInterface::Bool(true)),
            with_vector: Some(WithVector::Bool(false)),
            score_threshold: None,
        };
        let points = shard.search(request).map_err(err)?;
        points
            .into_iter()
            .map(|p| {
                let payload = decode_payload(p.payload)?;
                Ok(IndexHit { id: p.id.to_string(), score: p.score, payload })
            })
            .collect()
    }
}

/// The optimiser settings: any non-empty appendable segment is worth
/// indexing when an optimisation runs (they run only on a roll or on
/// request); while `rolling`, segments are not merged.
fn optimizers(rolling: bool) -> EdgeOptimizersConfig {
    EdgeOptimizersConfig {
        indexing_threshold: Some(1),
        default_segment_number: rolling.then_some(usize::MAX / 4),
        ..Default::default()
    }
}

fn edge_config(meta: &CollectionMeta) -> qdrant_edge::EdgeConfig {
    let mut b = EdgeConfigBuilder::new()
        .optimizers(optimizers(false))
        .sparse_vector(LEXICAL, EdgeSparseVectorParams::builder().modifier(Modifier::Idf).build());
    if let Some(d) = &meta.dense {
        b = b.vector(DENSE, EdgeVectorParams::builder(d.dimension, Distance::Cosine).build());
    }
    b.build()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KnowledgeError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn decode_payload(p: Option<qdrant_edge::Payload>) -> Result<ChunkPayload, KnowledgeError> {
    let map = p.ok_or_else(|| err("point without payload"))?.0;
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| err(format!("unreadable payload: {e}")))
}

fn point_id(id: &str) -> Result<PointId, KnowledgeError> {
    Uuid::parse_str(id).map(PointId::Uuid).map_err(|e| err(format!("bad point id {id:?}: {e}")))
}

fn keyword(key: &str, value: &str) -> Condition {
    Condition::Field(FieldCondition::new_match(
        json_path(key),
        Match::new_value(ValueVariants::String(value.to_owned())),
    ))
}

pub(crate) fn edge_filter(f: &SearchFilter) -> Option<Filter> {
    let mut must = Vec::new();
    if let Some(kind) = f.kind {
        must.push(keyword("kind", kind.as_str()));
    }
    if let Some(lang) = &f.language {
        must.push(keyword("language", lang));
    }
    let must_not: Vec<Condition> = f.except_language.iter().map(|lang| keyword("language", lang)).collect();
    (!must.is_empty() || !must_not.is_empty()).then(|| Filter {
        must: (!must.is_empty()).then_some(must),
        must_not: (!must_not.is_empty()).then_some(must_not),
        ..Default::default()
    })
}

fn sparse_vector(v: &SparseVec) -> Result<Vector, KnowledgeError> {
    Vector::new_sparse(v.indices.clone(), v.values.clone()).map_err(err)
}

#[async_trait::async_trait]
impl VectorIndex for EdgeIndex {
    fn backend(&self) -> String {
        format!("qdrant-edge {}", self.dir.join(SHARD_DIR).display())
    }

    fn meta(&self) -> &CollectionMeta {
        &self.meta
    }

    async fn upsert(&self, points: Vec<IndexPoint>) -> Result<(), KnowledgeError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut structs = Vec::with_capacity(points.len());
        for p in points {
            let mut named: Vec<(&str, Vector)> = vec![(LEXICAL, sparse_vector(&p.sparse)?)];
            match (&self.meta.dense, p.dense) {
                (Some(d), Some(v)) if v.len() == d.dimension => named.push((DENSE, Vector::new_dense(v))),
                (Some(d), Some(v)) => {
                    return Err(KnowledgeError::DimensionMismatch {
                        model: d.model.clone(),
                        configured: d.dimension,
                        returned: v.len(),
                    })
                }
                (Some(_), None) => return Err(err("a point without its dense vector")),
                (None, _) => {}
            }
            let payload = serde_json::to_value(&p.payload).expect("payload serialises");
            structs.push(PointStruct::new(point_id(&p.id)?, Vectors::new_named(named), payload).into());
        }
        let written = structs.len();
        let unoptimized = self.unoptimized.clone();
        self.blocking(true, move |shard| {
            shard
                .update(UpdateOperation::PointOperation(PointOperations::UpsertPoints(
                    qdrant_edge::PointInsertOperations::PointsList(structs),
                )))
                .map_err(err)?;
            if unoptimized.fetch_add(written, Ordering::Relaxed) + written >= ROLL_EVERY {
                unoptimized.store(0, Ordering::Relaxed);
                shard.set_optimizers_config(optimizers(true)).map_err(err)?;
                let rolled = shard.optimize().map_err(err);
                shard.set_optimizers_config(optimizers(false)).map_err(err)?;
                rolled?;
                tracing::debug!("rolled the appendable knowledge segment");
            }
            Ok(())
        })
        .await
    }

    async fn delete(&self, ids: Vec<String>) -> Result<(), KnowledgeError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.iter().map(|i| point_id(i)).collect::<Result<Vec<_>, _>>()?;
        self.blocking(true, move |shard| {
            shard.update(UpdateOperation::PointOperation(PointOperations::DeletePoints { ids })).map_err(err)
        })
        .await
    }

    async fn keys(&self) -> Result<Vec<StoredKey>, KnowledgeError> {
        self.blocking(false, |shard| {
            let mut out = Vec::new();
            let mut offset = None;
            loop {
                let request = ScrollRequest {
                    offset,
                    limit: Some(1000),
                    filter: None,
                    with_payload: Some(WithPayloadInterface::Fields(vec![
                        json_path("source"),
                        json_path("content_hash"),
                        json_path("kind"),
                    ])),
                    with_vector: WithVector::Bool(false),
                    order_by: None,
                };
                let (records, next) = shard.scroll(request).map_err(err)?;
                for r in records {
                    let map = r.payload.map(|p| p.0).unwrap_or_default();
                    let field = |k: &str| map.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                    let kind = ChunkKind::parse(&field("kind")).ok_or_else(|| err("point without a kind"))?;
                    out.push(StoredKey {
                        id: r.id.to_string(),
                        source: field("source"),
                        content_hash: field("content_hash"),
                        kind,
                    });
                }
                match next {
                    Some(n) => offset = Some(n),
                    None => break,
                }
            }
            Ok(out)
        })
        .await
    }

    async fn sample(&self, limit: usize) -> Result<Vec<IndexHit>, KnowledgeError> {
        self.blocking(false, move |shard| {
            let request = ScrollRequest {
                offset: None,
                limit: Some(limit),
                filter: None,
                with_payload: Some(WithPayloadInterface::Bool(true)),
                with_vector: WithVector::Bool(false),
                order_by: None,
            };
            let (records, _) = shard.scroll(request).map_err(err)?;
            records
                .into_iter()
                .map(|r| Ok(IndexHit { id: r.id.to_string(), score: 0.0, payload: decode_payload(r.payload)? }))
                .collect()
        })
        .await
    }

    async fn search_lexical(
        &self,
        query: &SparseVec,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<IndexHit>, KnowledgeError> {
        if query.indices.is_empty() {
            return Ok(vec![]);
        }
        let q = sparse_vector(query)?.0;
        let filter = edge_filter(filter);
        self.blocking(false, move |shard| Self::search_blocking(shard, q, LEXICAL, filter, limit)).await
    }

    async fn search_dense(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<IndexHit>, KnowledgeError> {
        if self.meta.dense.is_none() {
            return Ok(vec![]);
        }
        let q = VectorInternal::Dense(query.to_vec());
        let filter = edge_filter(filter);
        self.blocking(false, move |shard| Self::search_blocking(shard, q, DENSE, filter, limit)).await
    }

    async fn optimize(&self) -> Result<(), KnowledgeError> {
        let unoptimized = self.unoptimized.clone();
        self.blocking(true, move |shard| {
            unoptimized.store(0, Ordering::Relaxed);
            shard.optimize().map(|_| ()).map_err(err)
        })
        .await
    }

    async fn flush(&self) -> Result<(), KnowledgeError> {
        self.blocking(true, |shard| {
            shard.flush();
            Ok(())
        })
        .await
    }
}

fn json_path(key: &str) -> JsonPath {
    key.parse().expect("a plain payload key is a valid JSON path")
}
