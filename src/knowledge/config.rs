//! The `[knowledge]` config section. Secrets (the Qdrant and embedding API
//! keys) come from the environment or from a file named here, never from
//! the TOML itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::chunk::ChunkLimits;
use super::embed::{EmbeddingConfig, Roles};
use super::KnowledgeError;
use crate::config::sensitive_url::SensitiveUrl;

/// Environment variable overriding `[knowledge] qdrant_url`.
pub const QDRANT_URL_ENV: &str = "TRIBUTE_ASSISTANT_QDRANT_URL";
/// Environment variable holding the Qdrant server's API key.
pub const QDRANT_API_KEY_ENV: &str = "TRIBUTE_ASSISTANT_QDRANT_API_KEY";
/// Environment variable holding the embedding provider's API key.
pub const EMBEDDING_API_KEY_ENV: &str = "TRIBUTE_ASSISTANT_EMBEDDING_API_KEY";
/// The collection name on a Qdrant server unless configured.
pub const DEFAULT_COLLECTION: &str = "tribute_assistant_knowledge";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSection {
    /// A Qdrant server's gRPC URL (e.g. `http://localhost:6334`); unset = Qdrant Edge under the data dir.
    pub qdrant_url: Option<SensitiveUrl>,
    /// File holding the Qdrant API key (alternative to TRIBUTE_ASSISTANT_QDRANT_API_KEY; keep it 0600).
    pub qdrant_api_key_file: Option<PathBuf>,
    /// Collection name on the server.
    pub collection: Option<String>,
    /// Longest chunk in characters before a section is split (default 1500).
    pub max_chunk_chars: Option<usize>,
    /// Characters shared by consecutive pieces of a split section (default 200).
    pub chunk_overlap_chars: Option<usize>,
    /// Dense embeddings; absent = lexical search only.
    pub embedding: Option<EmbeddingSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSection {
    /// OpenAI-compatible base URL, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub base_url: SensitiveUrl,
    pub model: String,
    /// The model's vector size.
    pub dimension: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// File holding the API key (alternative to TRIBUTE_ASSISTANT_EMBEDDING_API_KEY).
    pub api_key_file: Option<PathBuf>,
    /// Milliseconds a customer's query may wait for its vector before search
    /// goes on lexically (one attempt; `timeout_secs` is for ingestion batches).
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// How the server learns query from passage: `"input_type"` (sent in the
    /// request; the server adds the model's marks), `"prefixes"` (the two
    /// prefixes below, added here) or `"none"`. Unset: prefixes when set, else none.
    /// `tribute-assistant check` says which one the server follows.
    pub roles: Option<RolesSetting>,
    /// Put before every search query, e.g. `"query: "` for E5 models on a server that adds none.
    #[serde(default)]
    pub query_prefix: String,
    /// Put before every indexed chunk, e.g. `"passage: "` for E5 models.
    /// Changing it (or `roles`) changes every stored vector: re-ingest with `--rebuild`.
    #[serde(default)]
    pub passage_prefix: String,
    /// No longer used (the confidence is calibrated on the corpus at `kb ingest`);
    /// kept only to say so instead of "unknown field".
    pub min_similarity: Option<f64>,
    pub sure_similarity: Option<f64>,
}

/// `[knowledge.embedding] roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolesSetting {
    InputType,
    Prefixes,
    None,
}

impl EmbeddingSection {
    fn roles(&self) -> Result<Roles, KnowledgeError> {
        let prefixes = !self.query_prefix.is_empty() || !self.passage_prefix.is_empty();
        let bad = |m: &str| Err(KnowledgeError::Config(format!("[knowledge.embedding] {m}")));
        match (self.roles, prefixes) {
            (Some(RolesSetting::InputType), true) => bad(
                "roles = \"input_type\" with query_prefix/passage_prefix would mark every text twice: keep one of them",
            ),
            (Some(RolesSetting::None), true) => bad("roles = \"none\" but query_prefix/passage_prefix are set"),
            (Some(RolesSetting::Prefixes), false) => bad("roles = \"prefixes\" needs query_prefix and passage_prefix"),
            (Some(RolesSetting::InputType), false) => Ok(Roles::InputType),
            (_, true) => Ok(Roles::Prefixes { query: self.query_prefix.clone(), passage: self.passage_prefix.clone() }),
            (_, false) => Ok(Roles::None),
        }
    }
}

fn default_batch() -> usize {
    64
}
fn default_timeout() -> u64 {
    30
}
fn default_retries() -> u32 {
    3
}
fn default_query_timeout_ms() -> u64 {
    2000
}

/// Everything the knowledge base needs, secrets resolved.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeConfig {
    #[cfg(feature = "qdrant")]
    pub qdrant: Option<super::index::remote::QdrantServerConfig>,
    pub embedding: Option<EmbeddingConfig>,
    pub chunk_limits: ChunkLimits,
    /// Shop-specific account ID pattern to redact (the `[parser] account_pattern`).
    pub extra_account_pattern: Option<regex::Regex>,
}

fn read_secret(
    env_name: &str,
    file: Option<&Path>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<SecretString>, KnowledgeError> {
    let value = match (env(env_name), file) {
        (Some(v), _) => v,
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|source| KnowledgeError::Io { path: path.to_owned(), source })?
        }
        (None, None) => return Ok(None),
    };
    let value = value.trim();
    Ok((!value.is_empty()).then(|| SecretString::from(value.to_owned())))
}

impl KnowledgeSection {
    pub fn resolve(&self, env: &impl Fn(&str) -> Option<String>) -> Result<KnowledgeConfig, KnowledgeError> {
        let url = env(QDRANT_URL_ENV)
            .or_else(|| self.qdrant_url.as_ref().map(|u| u.expose().to_owned()))
            .filter(|u| !u.trim().is_empty());
        let api_key = read_secret(QDRANT_API_KEY_ENV, self.qdrant_api_key_file.as_deref(), env)?;
        #[cfg(feature = "qdrant")]
        let qdrant = url.map(|url| super::index::remote::QdrantServerConfig {
            url,
            api_key,
            collection: self.collection.clone().unwrap_or_else(|| DEFAULT_COLLECTION.to_owned()),
        });
        #[cfg(not(feature = "qdrant"))]
        if url.is_some() {
            let _ = api_key;
            return Err(KnowledgeError::NotBuilt("qdrant (the Qdrant server client)"));
        }
        let embedding = match &self.embedding {
            None => None,
            Some(e) => {
                if e.min_similarity.is_some() || e.sure_similarity.is_some() {
                    return Err(KnowledgeError::Config(
                        "[knowledge.embedding] min_similarity and sure_similarity are no longer used: the \
                             confidence is calibrated on your own corpus at `kb ingest` (docs/agent.md); remove them"
                            .into(),
                    ));
                }
                if e.query_timeout_ms == 0 {
                    return Err(KnowledgeError::Config("[knowledge.embedding] query_timeout_ms must be > 0".into()));
                }
                Some(EmbeddingConfig {
                    base_url: e.base_url.expose().to_owned(),
                    model: e.model.clone(),
                    dimension: e.dimension,
                    batch_size: e.batch_size,
                    timeout: Duration::from_secs(e.timeout_secs),
                    query_timeout: Duration::from_millis(e.query_timeout_ms),
                    max_retries: e.max_retries,
                    api_key: read_secret(EMBEDDING_API_KEY_ENV, e.api_key_file.as_deref(), env)?,
                    roles: e.roles()?,
                })
            }
        };
        let d = ChunkLimits::default();
        Ok(KnowledgeConfig {
            #[cfg(feature = "qdrant")]
            qdrant,
            embedding,
            chunk_limits: ChunkLimits {
                max_chars: self.max_chunk_chars.unwrap_or(d.max_chars),
                overlap_chars: self.chunk_overlap_chars.unwrap_or(d.overlap_chars),
            },
            extra_account_pattern: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_env_or_files_and_stay_out_of_debug() {
        let section: KnowledgeSection = toml::from_str(
            "qdrant_url = \"http://localhost:6334\"\n[embedding]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\ndimension = 8\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            QDRANT_API_KEY_ENV => Some("qdrant-secret-123".to_owned()),
            EMBEDDING_API_KEY_ENV => Some("sk-secret-456".to_owned()),
            _ => None,
        };
        let cfg = section.resolve(&env).unwrap();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("qdrant-secret-123") && !dbg.contains("sk-secret-456"), "{dbg}");
        let e = cfg.embedding.unwrap();
        assert_eq!((e.dimension, e.batch_size, e.max_retries), (8, 64, 3));
        assert!(toml::from_str::<KnowledgeSection>("qdrant_api_key = \"x\"").is_err());
    }
}
