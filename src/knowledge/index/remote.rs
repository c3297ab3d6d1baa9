//! Qdrant server backend through qdrant-client (gRPC), used when
//! `[knowledge] qdrant_url` is set. Same layout as the Edge backend; the
//! collection meta (model + dimension) lives in the collection's metadata.
//!
//! Requests are built by plain functions so they can be unit-tested without
//! a server; the live test (`knowledge::live_qdrant_server`, ignored by
//! default) runs with `--ignored` against the server in `QDRANT_URL`.

use std::collections::HashMap;

use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::{
    Condition, CreateCollection, CreateCollectionBuilder, DeletePoints, DeletePointsBuilder, Distance, Filter,
    Modifier, PointId, PointStruct, PointsIdsList, Query, QueryPoints, QueryPointsBuilder, ScrollPoints,
    ScrollPointsBuilder, SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpsertPoints, UpsertPointsBuilder,
    Vector, VectorInput, VectorParamsBuilder, VectorsConfigBuilder,
};
use qdrant_client::{Payload, Qdrant};
use secrecy::{ExposeSecret, SecretString};

use super::{ChunkPayload, CollectionMeta, IndexHit, IndexPoint, StoredKey, VectorIndex, DENSE, LEXICAL};
use crate::config::sensitive_url::redact_credentials;
use crate::knowledge::{ChunkKind, KnowledgeError, SearchFilter, SparseVec};

/// Key of the collection metadata entry holding our [`CollectionMeta`] (JSON).
pub const META_KEY: &str = "tribute_assistant_meta";

fn err(e: impl std::fmt::Display) -> KnowledgeError {
    // Client errors may quote the URL, credentials included.
    KnowledgeError::Index { backend: "qdrant", message: redact_credentials(&e.to_string()).into_owned() }
}

/// Where the server is and how to log in.
#[derive(Clone)]
pub struct QdrantServerConfig {
    pub url: String,
    pub api_key: Option<SecretString>,
    pub collection: String,
}

impl std::fmt::Debug for QdrantServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantServerConfig")
            .field("url", &redact_credentials(&self.url))
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("collection", &self.collection)
            .finish()
    }
}

pub struct RemoteIndex {
    client: Qdrant,
    config: QdrantServerConfig,
    meta: CollectionMeta,
}

impl std::fmt::Debug for RemoteIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteIndex").field("config", &self.config).field("meta", &self.meta).finish()
    }
}

impl RemoteIndex {
    /// Connects, then creates the collection or checks its stored meta.
    pub async fn open(
        config: &QdrantServerConfig,
        wanted: &CollectionMeta,
        rebuild: bool,
    ) -> Result<Self, KnowledgeError> {
        let mut builder = Qdrant::from_url(&config.url).timeout(std::time::Duration::from_secs(30));
        if let Some(key) = &config.api_key {
            builder = builder.api_key(key.expose_secret().to_owned());
        }
        let client = builder.build().map_err(err)?;
        let name = &config.collection;
        let location = format!("{} collection {name}", redact_credentials(&config.url));
        let mut exists = client.collection_exists(name).await.map_err(err)?;
        if exists && rebuild {
            client.delete_collection(name).await.map_err(err)?;
            exists = false;
        }
        if exists {
            let info = client.collection_info(name).await.map_err(err)?;
            let metadata = info.result.and_then(|r| r.config).map(|c| c.metadata).unwrap_or_default();
            match meta_from_metadata(&metadata)? {
                Some(stored) => stored.check(wanted, &location)?,
                None => {
                    return Err(err(format!(
                        "{location} exists but was not created by tribute-assistant; choose another \
                         [knowledge] collection or re-ingest with --rebuild"
                    )))
                }
            }
        } else {
            client.create_collection(create_collection_request(name, wanted)).await.map_err(err)?;
        }
        Ok(Self { client, config: config.clone(), meta: wanted.clone() })
    }
}

/// The collection with our layout and the meta in its metadata.
pub fn create_collection_request(name: &str, meta: &CollectionMeta) -> CreateCollection {
    let mut sparse = SparseVectorsConfigBuilder::default();
    sparse.add_named_vector_params(LEXICAL, SparseVectorParamsBuilder::default().modifier(Modifier::Idf));
    let mut builder = CreateCollectionBuilder::new(name).sparse_vectors_config(sparse);
    if let Some(d) = &meta.dense {
        let mut dense = VectorsConfigBuilder::default();
        dense.add_named_vector_params(DENSE, VectorParamsBuilder::new(d.dimension as u64, Distance::Cosine));
        builder = builder.vectors_config(dense);
    }
    let metadata: HashMap<String, serde_json::Value> = HashMap::from([(
        META_KEY.to_owned(),
        serde_json::Value::String(serde_json::to_string(meta).expect("meta serialises")),
    )]);
    builder.metadata(metadata).build()
}

/// Our meta from a collection's metadata; `None` when absent.
pub fn meta_from_metadata(
    metadata: &HashMap<String, qdrant_client::qdrant::Value>,
) -> Result<Option<CollectionMeta>, KnowledgeError> {
    use qdrant_client::qdrant::value::Kind;
    match metadata.get(META_KEY).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => {
            serde_json::from_str(s).map(Some).map_err(|e| err(format!("bad {META_KEY}: {e}")))
        }
        Some(_) => Err(err(format!("bad {META_KEY}: not a string"))),
        None => Ok(None),
    }
}

pub fn upsert_request(name: &str, points: Vec<IndexPoint>) -> Result<UpsertPoints, KnowledgeError> {
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        let mut vectors: HashMap<String, Vector> = HashMap::new();
        vectors.insert(LEXICAL.into(), Vector::new_sparse(p.sparse.indices, p.sparse.values));
        if let Some(d) = p.dense {
            vectors.insert(DENSE.into(), Vector::new_dense(d));
        }
        let json = serde_json::to_value(&p.payload).expect("payload serialises");
        let payload = Payload::try_from(json).map_err(err)?;
        out.push(PointStruct::new(p.id, vectors, payload));
    }
    Ok(UpsertPointsBuilder::new(name, out).wait(true).build())
}

pub fn delete_request(name: &str, ids: Vec<String>) -> DeletePoints {
    let ids: Vec<PointId> = ids.into_iter().map(PointId::from).collect();
    DeletePointsBuilder::new(name).points(PointsIdsList { ids }).wait(true).build()
}

pub fn scroll_request(name: &str, offset: Option<PointId>) -> ScrollPoints {
    let mut b = ScrollPointsBuilder::new(name)
        .limit(1000)
        .with_payload(qdrant_client::qdrant::with_payload_selector::SelectorOptions::Include(
            qdrant_client::qdrant::PayloadIncludeSelector {
                fields: vec!["source".into(), "content_hash".into(), "kind".into()],
            },
        ))
        .with_vectors(false);
    if let Some(o) = offset {
        b = b.offset(o);
    }
    b.build()
}

pub fn filter(f: &SearchFilter) -> Option<Filter> {
    let mut must = Vec::new();
    if let Some(kind) = f.kind {
        must.push(Condition::matches("kind", kind.as_str().to_owned()));
    }
    if let Some(lang) = &f.language {
        must.push(Condition::matches("language", lang.clone()));
    }
    let must_not: Vec<Condition> =
        f.except_language.iter().map(|lang| Condition::matches("language", lang.clone())).collect();
    (!must.is_empty() || !must_not.is_empty()).then(|| Filter { must, must_not, ..Default::default() })
}

pub fn query_request(name: &str, input: VectorInput, using: &str, f: &SearchFilter, limit: usize) -> QueryPoints {
    let mut b = QueryPointsBuilder::new(name)
        .query(Query::new_nearest(input))
        .using(using)
        .limit(limit as u64)
        .with_payload(true);
    if let Some(f) = filter(f) {
        b = b.filter(f);
    }
    b.build()
}

fn id_string(id: Option<PointId>) -> String {
    match id.and_then(|i| i.point_id_options) {
        Some(PointIdOptions::Uuid(u)) => u,
        Some(PointIdOptions::Num(n)) => n.to_string(),
        None => String::new(),
    }
}

fn decode(payload: HashMap<String, qdrant_client::qdrant::Value>) -> Result<ChunkPayload, KnowledgeError> {
    let json: serde_json::Value = Payload::from(payload).into();
    serde_json::from_value(json).map_err(|e| err(format!("unreadable payload: {e}")))
}

impl RemoteIndex {
    async fn query(&self, req: QueryPoints) -> Result<Vec<IndexHit>, KnowledgeError> {
        let resp = self.client.query(req).await.map_err(err)?;
        resp.result
            .into_iter()
            .map(|p| Ok(IndexHit { id: id_string(p.id), score: p.score, payload: decode(p.payload)? }))
            .collect()
    }
}

#[async_trait::async_trait]
impl VectorIndex for RemoteIndex {
    fn backend(&self) -> String {
        format!("qdrant {} collection {}", redact_credentials(&self.config.url), self.config.collection)
    }

    fn meta(&self) -> &CollectionMeta {
        &self.meta
    }

    async fn upsert(&self, points: Vec<IndexPoint>) -> Result<(), KnowledgeError> {
        if points.is_empty() {
            return Ok(());
        }
        self.client.upsert_points(upsert_request(&self.config.collection, points)?).await.map_err(err)?;
        Ok(())
    }

    async fn delete(&self, ids: Vec<String>) -> Result<(), KnowledgeError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.client.delete_points(delete_request(&self.config.collection, ids)).await.map_err(err)?;
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<StoredKey>, KnowledgeError> {
        let mut out = Vec::new();
        let mut offset = None;
        loop {
            let resp = self.client.scroll(scroll_request(&self.config.collection, offset)).await.map_err(err)?;
            for p in resp.result {
                let json: serde_json::Value = Payload::from(p.payload).into();
                let field = |k: &str| json.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let kind = ChunkKind::parse(&field("kind")).ok_or_else(|| err("point without a kind"))?;
                out.push(StoredKey {
                    id: id_string(p.id),
                    source: field("source"),
                    content_hash: field("content_hash"),
                    kind,
                });
            }
            match resp.next_page_offset {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    async fn sample(&self, limit: usize) -> Result<Vec<IndexHit>, KnowledgeError> {
        let request = ScrollPointsBuilder::new(&self.config.collection)
            .limit(limit.min(u32::MAX as usize) as u32)
            .with_payload(true)
            .with_vectors(false)
            .build();
        let resp = self.client.scroll(request).await.map_err(err)?;
        resp.result
            .into_iter()
            .map(|p| Ok(IndexHit { id: id_string(p.id), score: 0.0, payload: decode(p.payload)? }))
            .collect()
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
        let input = VectorInput::new_sparse(query.indices.clone(), query.values.clone());
        self.query(query_request(&self.config.collection, input, LEXICAL, filter, limit)).await
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
        let input = VectorInput::new_dense(query.to_vec());
        self.query(query_request(&self.config.collection, input, DENSE, filter, limit)).await
    }

    /// The server indexes in the background.
    async fn optimize(&self) -> Result<(), KnowledgeError> {
        Ok(())
    }

    /// Writes use `wait = true`: durable when they return.
    async fn flush(&self) -> Result<(), KnowledgeError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::index::DenseMeta;

    fn payload() -> ChunkPayload {
        ChunkPayload {
            source: "faq.en.md".into(),
            title: "Refunds".into(),
            phrasings: vec![],
            text: "Within 14 days.".into(),
            answer: Some("Within 14 days.".into()),
            language: Some("en".into()),
            kind: ChunkKind::Doc,
            content_hash: "abc".into(),
            ingested_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn create_collection_has_both_vectors_and_the_meta() {
        let meta = CollectionMeta::new(Some(DenseMeta { model: "m".into(), dimension: 8 }));
        let req = create_collection_request("kb", &meta);
        assert_eq!(req.collection_name, "kb");
        let sparse = req.sparse_vectors_config.expect("sparse config");
        assert_eq!(sparse.map[LEXICAL].modifier, Some(Modifier::Idf as i32));
        let dense = format!("{:?}", req.vectors_config.expect("dense config"));
        assert!(dense.contains("\"dense\"") && dense.contains("size: 8"), "{dense}");
        assert_eq!(meta_from_metadata(&req.metadata).unwrap(), Some(meta));
        let lexical_only = create_collection_request("kb", &CollectionMeta::new(None));
        assert!(lexical_only.vectors_config.is_none());
    }

    #[test]
    fn upsert_carries_named_vectors_and_payload() {
        let p = IndexPoint {
            id: "00000000-0000-8000-8000-000000000001".into(),
            dense: Some(vec![0.5; 4]),
            sparse: SparseVec { indices: vec![3, 7], values: vec![1.0, 2.0] },
            payload: payload(),
        };
        let req = upsert_request("kb", vec![p]).unwrap();
        assert_eq!(req.collection_name, "kb");
        assert_eq!(req.wait, Some(true));
        let point = &req.points[0];
        assert_eq!(id_string(point.id.clone()), "00000000-0000-8000-8000-000000000001");
        let json: serde_json::Value = Payload::from(point.payload.clone()).into();
        let back: ChunkPayload = serde_json::from_value(json).unwrap();
        assert_eq!(back, payload());
        let vectors = format!("{:?}", point.vectors);
        assert!(vectors.contains("\"lexical\"") && vectors.contains("\"dense\""), "{vectors}");
    }

    #[test]
    fn queries_use_the_named_vector_and_filters() {
        let f = SearchFilter { kind: Some(ChunkKind::Conversation), language: Some("ru".into()), ..Default::default() };
        let req = query_request("kb", VectorInput::new_sparse(vec![1u32], vec![1.0f32]), LEXICAL, &f, 5);
        assert_eq!(req.using.as_deref(), Some(LEXICAL));
        assert_eq!(req.limit, Some(5));
        let filter = format!("{:?}", req.filter.expect("filter"));
        assert!(filter.contains("conversation") && filter.contains("\"ru\""), "{filter}");
        let none = query_request("kb", VectorInput::new_dense(vec![0.1]), DENSE, &SearchFilter::default(), 3);
        assert!(none.filter.is_none());
        let del = delete_request("kb", vec!["00000000-0000-8000-8000-000000000001".into()]);
        assert!(format!("{del:?}").contains("00000000-0000-8000-8000-000000000001"));
        let scroll = scroll_request("kb", None);
        assert_eq!(scroll.limit, Some(1000));
    }
}
