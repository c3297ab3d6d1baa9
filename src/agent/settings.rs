//! The `[agent]` config section and what it resolves to.
//!
//! The LLM endpoint comes from the config file, overridden by the
//! conventional `OPENAI_BASE_URL`, `OPENAI_API_KEY` and `OPENAI_MODEL`;
//! when none of them is set anywhere the agent runs retrieval-only, which is
//! the offline default. The API key is read from the environment or from a
//! file named in the config, never from the TOML itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use secrecy::SecretString;
use serde::Deserialize;

use super::keywords::Phrase;
use crate::config::sensitive_url::{redact_credentials, SensitiveUrl};

pub const OPENAI_BASE_URL_ENV: &str = "OPENAI_BASE_URL";
pub const OPENAI_API_KEY_ENV: &str = "OPENAI_API_KEY";
pub const OPENAI_MODEL_ENV: &str = "OPENAI_MODEL";
/// Used when an endpoint is configured without a model.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// Used when a model or key is configured without a base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// `[agent]` in the config file. Every field has a default, so an absent
/// section means: retrieval-only (unless the environment names an LLM),
/// default thresholds, default keyword lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// OpenAI-compatible API base, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    pub base_url: Option<SensitiveUrl>,
    pub model: Option<String>,
    /// File holding the API key (alternative to OPENAI_API_KEY; keep it 0600).
    pub api_key_file: Option<PathBuf>,
    /// Force retrieval-only even when an LLM is configured.
    #[serde(default)]
    pub retrieval_only: bool,
    /// Per HTTP request to the LLM.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Extra attempts after a 429, a 5xx, a timeout or a refused connection.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// A 429's Retry-After is honoured up to this long; longer waits count as a failure.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after_secs: u64,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// All model calls of one turn, retries included, within this many
    /// seconds; then the turn escalates (`llm_timeout`).
    #[serde(default = "default_turn_budget")]
    pub turn_budget_secs: u64,
    /// Model calls per turn, tool rounds included; then the turn escalates.
    #[serde(default = "default_max_rounds")]
    pub max_rounds: u32,
    /// Knowledge-base hits given to the model (and per `search_knowledge` call).
    /// The model judges which of them answers, so more hits find more right
    /// answers (measured: 8 find 0.80–1.00 of them on unseen FAQs, 5 find 0.70–0.95)
    /// for a few hundred tokens each.
    #[serde(default = "default_hits")]
    pub hits: usize,
    /// The model's own confidence below this escalates.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f64,
    /// LLM mode: an answer whose support is under the corpus's bar is read
    /// a second time with the hits in the reverse order, and sent when that
    /// reading cites the same source with quotes found in it (one more model
    /// call for those answers only). Off: such answers escalate.
    #[serde(default = "default_true")]
    pub second_reading: bool,
    /// LLM mode: an answer whose support (the best cited hit) scores below
    /// this escalates. Unset: the floor the knowledge base's calibration
    /// measured on its own corpus (0.3 for an uncalibrated one).
    pub min_retrieval_score: Option<f64>,
    /// Retrieval-only answers need the best hit at least this good. Unset:
    /// the bar the calibration measured (0.4 for an uncalibrated corpus).
    pub min_curated_score: Option<f64>,
    /// Two questions in a row at least this similar (stem overlap) count as the same.
    #[serde(default = "default_repeat_similarity")]
    pub repeat_similarity: f64,
    /// Earlier messages of the conversation sent to the LLM, newest kept.
    #[serde(default = "default_history_messages")]
    pub history_messages: usize,
    /// Characters of earlier messages sent to the LLM, newest kept.
    #[serde(default = "default_history_chars")]
    pub history_chars: usize,
    /// A customer message longer than this is cut before it reaches the LLM.
    #[serde(default = "default_max_message_chars")]
    pub max_message_chars: usize,
    /// Prompts dir (system.md, holding_ru.txt, holding_en.txt); missing files use the built-in text.
    #[serde(default = "default_prompts_dir")]
    pub prompts_dir: PathBuf,
    /// Hard topics: name → keywords/phrases (RU+EN). A topic named here
    /// replaces that topic's built-in list; other built-in topics stay.
    #[serde(default)]
    pub hard_topics: BTreeMap<String, Vec<String>>,
}

impl Default for AgentSection {
    fn default() -> Self {
        toml::from_str("").expect("the empty [agent] section is valid")
    }
}

fn default_timeout() -> u64 {
    30
}
fn default_retries() -> u32 {
    2
}
fn default_max_retry_after() -> u64 {
    20
}
fn default_max_tokens() -> u32 {
    800
}
fn default_turn_budget() -> u64 {
    60
}
fn default_max_rounds() -> u32 {
    4
}
fn default_hits() -> usize {
    8
}
fn default_true() -> bool {
    true
}
fn default_min_confidence() -> f64 {
    0.7
}
fn default_repeat_similarity() -> f64 {
    0.8
}
fn default_history_messages() -> usize {
    10
}
fn default_history_chars() -> usize {
    4000
}
fn default_max_message_chars() -> usize {
    2000
}
fn default_prompts_dir() -> PathBuf {
    PathBuf::from("prompts/agent")
}

/// Built-in hard topics. Stems are enough: matching tolerates endings.
pub fn default_hard_topics() -> BTreeMap<String, Vec<String>> {
    let t = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    BTreeMap::from([
        (
            "refund".to_owned(),
            t(&[
                "refund",
                "money back",
                "reimburse",
                "return my money",
                "возврат",
                "вернуть деньги",
                "верните деньги",
                "вернете деньги",
                "рефанд",
                "возместить",
            ]),
        ),
        ("dispute".to_owned(), t(&["dispute", "complaint", "спор", "жалоба", "претензия", "оспорить"])),
        (
            "chargeback".to_owned(),
            t(&[
                "chargeback",
                "charge back",
                "reverse the payment",
                "чарджбэк",
                "чарджбек",
                "отмена платежа",
                "отменить платеж",
                "отозвать платеж",
            ]),
        ),
        (
            "wrong_account".to_owned(),
            t(&[
                "wrong account",
                "wrong id",
                "another account",
                "different account",
                "не тот аккаунт",
                "не тот id",
                "не тот айди",
                "другой аккаунт",
                "чужой аккаунт",
                "неправильный id",
                "неправильный аккаунт",
                "ошибся в id",
                "ошибся id",
                "ошибся аккаунтом",
                "someone else",
                "somebody else",
                "кто-то другой",
                "кому-то другому",
            ]),
        ),
        (
            "human".to_owned(),
            t(&[
                "human",
                "real person",
                "live person",
                "operator",
                "manager",
                "talk to someone",
                "человек",
                "оператор",
                "менеджер",
                "администрация",
                "позовите",
            ]),
        ),
        (
            "threat".to_owned(),
            t(&[
                "scam",
                "scammer",
                "fraud",
                "police",
                "lawyer",
                "court",
                "sue",
                "kill",
                "idiot",
                "stupid",
                "fuck",
                "мошенник",
                "мошенничество",
                "обман",
                "кидалово",
                "развод",
                "полиция",
                "суд",
                "юрист",
                "убью",
                "идиот",
                "тупой",
                "сука",
                "бля",
                "нахуй",
                "хуй",
            ]),
        ),
        (
            "manipulation".to_owned(),
            t(&[
                "ignore previous",
                "ignore all previous",
                "ignore the above",
                "ignore your instructions",
                "system prompt",
                "you are now",
                "developer mode",
                "admin",
                "administrator",
                "jailbreak",
                "игнорируй",
                "проигнорируй",
                "забудь инструкции",
                "предыдущие инструкции",
                "системный промпт",
                "ты теперь",
                "режим разработчика",
                "админ",
                "администратор",
            ]),
        ),
    ])
}

/// A hard topic ready for matching.
#[derive(Debug, Clone)]
pub struct HardTopic {
    pub name: String,
    pub phrases: Vec<Phrase>,
}

/// Where the LLM is. The key is a secret and credentials in the URL are
/// too: both are redacted in Debug.
#[derive(Clone)]
pub struct LlmEndpoint {
    pub base_url: String,
    pub model: String,
    /// Empty for local endpoints that need none.
    pub api_key: SecretString,
}

impl std::fmt::Debug for LlmEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmEndpoint")
            .field("base_url", &redact_credentials(&self.base_url))
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// Everything the agent needs, resolved.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// `None`: retrieval-only.
    pub llm: Option<LlmEndpoint>,
    pub timeout: Duration,
    pub retries: u32,
    pub max_retry_after: Duration,
    pub max_tokens: u32,
    pub turn_budget: Duration,
    pub max_rounds: u32,
    pub hits: usize,
    pub min_confidence: f64,
    pub second_reading: bool,
    /// `None`: the calibration's floor (see [`AgentSection::min_retrieval_score`]).
    pub min_retrieval_score: Option<f64>,
    /// `None`: the calibration's bar.
    pub min_curated_score: Option<f64>,
    pub repeat_similarity: f64,
    pub history_messages: usize,
    pub history_chars: usize,
    pub max_message_chars: usize,
    pub prompts_dir: PathBuf,
    pub hard_topics: Vec<HardTopic>,
}

impl AgentSettings {
    /// Resolves the section plus the environment (`env` is `std::env::var`
    /// in the binary, a map in tests).
    pub fn resolve(section: &AgentSection, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let base_url = nonempty(env(OPENAI_BASE_URL_ENV))
            .or_else(|| nonempty(section.base_url.as_ref().map(|u| u.expose().to_owned())));
        let model = nonempty(env(OPENAI_MODEL_ENV)).or_else(|| nonempty(section.model.clone()));
        let api_key = match (nonempty(env(OPENAI_API_KEY_ENV)), &section.api_key_file) {
            (Some(k), _) => Some(k),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("Failed to read the [agent] api_key_file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let configured = base_url.is_some() || model.is_some() || api_key.is_some();
        let llm = (configured && !section.retrieval_only).then(|| LlmEndpoint {
            base_url: base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()).trim_end_matches('/').to_owned(),
            model: model.unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            api_key: SecretString::from(api_key.unwrap_or_default()),
        });
        for (name, v) in [
            ("min_confidence", section.min_confidence),
            ("min_retrieval_score", section.min_retrieval_score.unwrap_or(0.0)),
            ("min_curated_score", section.min_curated_score.unwrap_or(0.0)),
            ("repeat_similarity", section.repeat_similarity),
        ] {
            if !v.is_finite() || v < 0.0 {
                bail!("[agent] {name} must be a non-negative number, got {v}");
            }
        }
        if section.max_rounds == 0 || section.hits == 0 {
            bail!("[agent] max_rounds and hits must be at least 1");
        }
        let mut topics = default_hard_topics();
        topics.extend(section.hard_topics.clone());
        let hard_topics = topics
            .into_iter()
            .map(|(name, words)| HardTopic { phrases: words.iter().filter_map(|w| Phrase::new(w)).collect(), name })
            .filter(|t| !t.phrases.is_empty())
            .collect();
        Ok(Self {
            llm,
            timeout: Duration::from_secs(section.timeout_secs.max(1)),
            retries: section.retries,
            max_retry_after: Duration::from_secs(section.max_retry_after_secs),
            max_tokens: section.max_tokens.max(16),
            turn_budget: Duration::from_secs(section.turn_budget_secs.max(1)),
            max_rounds: section.max_rounds,
            hits: section.hits,
            min_confidence: section.min_confidence,
            second_reading: section.second_reading,
            min_retrieval_score: section.min_retrieval_score,
            min_curated_score: section.min_curated_score,
            repeat_similarity: section.repeat_similarity,
            history_messages: section.history_messages,
            history_chars: section.history_chars,
            max_message_chars: section.max_message_chars.max(100),
            prompts_dir: section.prompts_dir.clone(),
            hard_topics,
        })
    }

    /// Defaults, retrieval-only, ignoring the environment (tests, demo).
    pub fn retrieval_only() -> Self {
        Self::resolve(&AgentSection::default(), &|_| None).expect("the defaults are valid")
    }

    /// The same settings answering through `endpoint`.
    pub fn with_llm(mut self, endpoint: LlmEndpoint) -> Self {
        self.llm = Some(endpoint);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_endpoint_anywhere_means_retrieval_only() {
        let s = AgentSettings::resolve(&AgentSection::default(), &|_| None).unwrap();
        assert!(s.llm.is_none());
        assert!(s.hard_topics.iter().any(|t| t.name == "refund"));
    }

    #[test]
    fn environment_overrides_the_file_and_the_key_is_redacted() {
        let section: AgentSection =
            toml::from_str("base_url = \"http://file/v1/\"\nmodel = \"file-model\"\nmin_confidence = 0.9\n").unwrap();
        let env = |k: &str| match k {
            OPENAI_MODEL_ENV => Some("env-model".to_owned()),
            OPENAI_API_KEY_ENV => Some("sk-very-secret".to_owned()),
            _ => None,
        };
        let s = AgentSettings::resolve(&section, &env).unwrap();
        let llm = s.llm.as_ref().unwrap();
        assert_eq!(llm.base_url, "http://file/v1");
        assert_eq!(llm.model, "env-model");
        assert_eq!(s.min_confidence, 0.9);
        assert!(!format!("{s:?}").contains("sk-very-secret"));
        let forced: AgentSection = toml::from_str("retrieval_only = true\nmodel = \"m\"\n").unwrap();
        assert!(AgentSettings::resolve(&forced, &env).unwrap().llm.is_none());
    }

    #[test]
    fn configured_topic_replaces_its_default_and_bad_values_are_named() {
        let section: AgentSection = toml::from_str("[hard_topics]\nrefund = [\"деньги назад\"]\n").unwrap();
        let s = AgentSettings::resolve(&section, &|_| None).unwrap();
        let refund = s.hard_topics.iter().find(|t| t.name == "refund").unwrap();
        assert_eq!(refund.phrases.len(), 1);
        assert!(s.hard_topics.iter().any(|t| t.name == "chargeback"));
        let bad: AgentSection = toml::from_str("min_curated_score = -1\n").unwrap();
        let err = AgentSettings::resolve(&bad, &|_| None).unwrap_err().to_string();
        assert!(err.contains("min_curated_score"), "{err}");
        let err = toml::from_str::<AgentSection>("api_key = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("api_key"), "{err}");
    }
}
