//! Configuration: one TOML file, then environment variables. Each part owns
//! its section type and how it resolves (`backend::BackendSection`,
//! `telegram::TelegramSection`, …); this file only assembles them. Secrets
//! are read only from the environment or from a file named in the config,
//! never from the TOML itself, so the config file can be shared or committed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::backend::{BackendAccess, BackendConfig, BackendSection};
use crate::contact::ContactSection;
use crate::moderator::ModeratorConfig;
use crate::ops::{OpsSection, OpsSettings};
use crate::orders::{IngestConfig, WorkflowConfig, DEFAULT_REPLY_TEMPLATE};
use crate::telegram::{TelegramApi, TelegramSection};
use crate::tribute::ParserSection;
use crate::webhook::WebhookSection;

/// Environment variable overriding `data_dir`.
pub const DATA_DIR_ENV: &str = "TRIBUTE_ASSISTANT_DATA_DIR";

/// The config file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the SQLite database, the session and the index live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub telegram: TelegramSection,
    pub backend: Option<BackendSection>,
    #[serde(default)]
    pub parser: ParserSection,
    /// The LLM agent: endpoint, thresholds, hard topics.
    #[serde(default)]
    pub agent: crate::agent::AgentSection,
    #[serde(default)]
    pub ops: OpsSection,
    #[serde(default)]
    pub webhook: WebhookSection,
    /// Knowledge base: index backend and embedding provider.
    #[serde(default)]
    pub knowledge: crate::knowledge::KnowledgeSection,
    /// Customer contact.
    #[serde(default)]
    pub contact: ContactSection,
    /// The moderator chat's people.
    #[serde(default)]
    pub moderator: ModeratorConfig,
    /// The automation report: its definitions and the weekly summary.
    #[serde(default)]
    pub report: crate::report::ReportSection,
    /// How long each kind of data is kept (docs/privacy.md).
    #[serde(default)]
    pub retention: crate::retention::RetentionSection,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

impl Default for FileConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty config is valid")
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("Invalid config file {}", path.display()))
    }

    /// The data dir after the environment override.
    pub fn resolved_data_dir(&self, env: &impl Fn(&str) -> Option<String>) -> PathBuf {
        env(DATA_DIR_ENV).map(PathBuf::from).unwrap_or_else(|| self.data_dir.clone())
    }

    /// Where the Telegram session lives.
    pub fn session_path(&self, env: &impl Fn(&str) -> Option<String>) -> PathBuf {
        self.telegram.session_path(&self.resolved_data_dir(env))
    }
}

/// Everything the daemon needs, with secrets resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub telegram: TelegramSection,
    pub backend_access: BackendAccess,
    pub backend: BackendSection,
    pub parser: ParserSection,
    /// Telegram API credentials, when configured (required by `run` and `login`).
    pub telegram_api: Option<TelegramApi>,
    /// The ops listener and the Tribute webhook, resolved.
    pub ops: OpsSettings,
    pub contact: ContactSection,
    pub moderator: ModeratorConfig,
    pub report: crate::report::ReportSettings,
    pub retention: crate::retention::RetentionSettings,
}

impl Config {
    /// Resolves the file config plus the environment into a usable config.
    pub fn resolve(file: FileConfig, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let backend = file.backend.clone().unwrap_or_default();
        let backend_access = backend.resolve(&env)?;
        file.telegram.validate()?;
        let telegram_api = TelegramApi::resolve(&file.telegram, &env)?;
        let ops = file.ops.resolve(&file.webhook, &env)?;
        let data_dir = file.resolved_data_dir(&env);
        let report = file.report.settings()?;
        let retention = file.retention.settings()?;
        let matching =
            Duration::from_secs(file.webhook.match_window_secs.saturating_add(file.webhook.unmatched_grace_secs));
        if retention.unmatched_purchase_deadline < matching {
            anyhow::bail!(
                "[retention] unmatched_purchase_hours is shorter than [webhook] match_window_secs + \
                 unmatched_grace_secs: a payment would stop being matched before its order could arrive"
            );
        }
        Ok(Self {
            report,
            retention,
            ops,
            telegram_api,
            data_dir,
            telegram: file.telegram,
            backend_access,
            backend,
            parser: file.parser,
            contact: file.contact,
            moderator: file.moderator,
        })
    }

    pub fn backend_config(&self) -> BackendConfig {
        self.backend.backend_config(&self.backend_access)
    }

    pub fn workflow_config(&self) -> WorkflowConfig {
        let t = &self.telegram;
        WorkflowConfig {
            tribute_chat: t.tribute_chat,
            moderator_chat: t.moderator_chat,
            send_button_texts: t.send_button_texts.clone(),
            delivered_texts: t.delivered_texts.clone(),
            button_timeout: Duration::from_secs(t.button_timeout_secs),
            max_flood_sleep: Duration::from_secs(t.max_flood_sleep_secs),
            park_delay: Duration::from_secs(self.backend.park_secs),
            reply_template: t.reply_template.clone().unwrap_or_else(|| DEFAULT_REPLY_TEMPLATE.to_owned()),
            first_start_lookback: Duration::from_secs(t.first_start_lookback_hours * 3600),
            resync_interval: Duration::from_secs(t.resync_secs.max(1)),
            resync_window: Duration::from_secs(t.resync_window_secs),
            max_step_backoff: Duration::from_secs(600),
            outage_after: Duration::from_secs(t.outage_alert_secs),
        }
    }

    pub fn ingest_config(&self) -> anyhow::Result<IngestConfig> {
        Ok(IngestConfig { parser: self.parser.parser_config()?, tribute_bot: self.telegram.tribute_chat })
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(crate::DATABASE_FILE)
    }

    /// Where the Telegram session lives.
    pub fn session_path(&self) -> PathBuf {
        self.telegram.session_path(&self.data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BACKEND_SECRET_ENV;
    use crate::config::rules::{parse_listen, MAX_SECS};
    use crate::domain::Language;
    use crate::telegram::API_HASH_ENV;
    use crate::webhook::TRIBUTE_API_KEY_ENV;

    const MAX_LOOKBACK_HOURS: u64 = 100 * 366 * 24;

    impl FileConfig {
        fn ops_settings(&self, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<OpsSettings> {
            self.ops.resolve(&self.webhook, env)
        }
    }

    #[test]
    fn a_huge_first_start_lookback_is_an_error_not_an_overflow() {
        // Found by the `config` fuzz target: hours * 3600 overflowed u64.
        let env = |k: &str| (k == BACKEND_SECRET_ENV).then(|| "s".to_owned());
        let text =
            |hours: u64| format!("[backend]\nurl = \"http://x\"\n[telegram]\nfirst_start_lookback_hours = {hours}\n");
        let err = Config::resolve(toml::from_str(&text(i64::MAX as u64)).unwrap(), env).unwrap_err();
        assert!(err.to_string().contains("first_start_lookback_hours"), "{err}");
        let cfg = Config::resolve(toml::from_str(&text(MAX_LOOKBACK_HOURS)).unwrap(), env).unwrap();
        assert_eq!(cfg.workflow_config().first_start_lookback.as_secs(), MAX_LOOKBACK_HOURS * 3600);
    }

    #[test]
    fn a_duration_too_long_to_be_a_due_time_is_an_error_naming_it() {
        let env = |k: &str| (k == BACKEND_SECRET_ENV).then(|| "s".to_owned());
        let cfg = |extra: &str| {
            Config::resolve(toml::from_str(&format!("[backend]\nurl = \"http://x\"\n{extra}")).unwrap(), env)
        };
        let err = cfg("park_secs = 9223372036854775807").unwrap_err();
        assert!(err.to_string().contains("[backend] park_secs"), "{err}");
        let err = cfg("[telegram]\nresync_window_secs = 999999999999").unwrap_err();
        assert!(err.to_string().contains("resync_window_secs"), "{err}");
        assert!(cfg(&format!("[telegram]\nbutton_timeout_secs = {MAX_SECS}")).is_ok(), "ten years is still a setting");
        let contact: FileConfig = toml::from_str("[contact]\nescalate_after_secs = 9223372036854775807").unwrap();
        let err = contact.contact.contact_config().unwrap_err();
        assert!(err.to_string().contains("escalate_after_secs"), "{err}");
    }

    #[test]
    fn secret_comes_from_env_and_is_redacted_in_debug() {
        let file: FileConfig = toml::from_str("[backend]\nurl = \"http://x\"\n").unwrap();
        let cfg = Config::resolve(file, |k| (k == BACKEND_SECRET_ENV).then(|| "hunter2-secret".to_owned())).unwrap();
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("hunter2"), "secret leaked: {dbg}");
        assert_eq!(cfg.telegram.send_button_texts, vec!["Send", "Отправить"]);
        assert!(!format!("{:?}", cfg.backend_config()).contains("hunter2"));
        assert_eq!(cfg.workflow_config().tribute_chat, 93372553);
        assert_eq!(cfg.workflow_config().reply_template, DEFAULT_REPLY_TEMPLATE);
    }

    #[test]
    fn credentials_in_configured_urls_never_show_in_debug() {
        let file: FileConfig = toml::from_str(
            "[backend]\nurl = \"https://shop:hunter2@shop.example/api\"\n\
             [agent]\nbase_url = \"https://llm:hunter3@llm.example/v1\"\n\
             [knowledge]\nqdrant_url = \"https://q:hunter4@qdrant.example:6334\"\n\
             [knowledge.embedding]\nbase_url = \"https://e:hunter5@emb.example/v1\"\nmodel = \"m\"\ndimension = 8\n",
        )
        .unwrap();
        let cfg = Config::resolve(file.clone(), |k| (k == BACKEND_SECRET_ENV).then(|| "s".to_owned())).unwrap();
        let agent = crate::agent::AgentSettings::resolve(&file.agent, &|_| None).unwrap();
        let knowledge = file.knowledge.resolve(&|_| None).unwrap();
        let shown = format!(
            "{file:?} {cfg:?} {:?} {agent:?} {:?} {:?}",
            cfg.backend_config(),
            knowledge.embedding,
            knowledge.qdrant
        );
        for password in ["hunter2", "hunter3", "hunter4", "hunter5"] {
            assert!(!shown.contains(password), "{password} leaked: {shown}");
        }
        assert!(shown.contains("https://***@shop.example/api"), "{shown}");
        // The code that connects still gets the real URL.
        assert_eq!(cfg.backend_config().url, "https://shop:hunter2@shop.example/api");
        assert_eq!(agent.llm.unwrap().base_url, "https://llm:hunter3@llm.example/v1");
    }

    #[test]
    fn api_hash_is_a_redacted_secret_from_env_or_file() {
        let file: FileConfig = toml::from_str("[backend]\nurl = \"http://x\"\n[telegram]\napi_id = 12345\n").unwrap();
        let env = |k: &str| match k {
            BACKEND_SECRET_ENV => Some("s".to_owned()),
            API_HASH_ENV => Some("0123456789abcdef0123456789abcdef".to_owned()),
            _ => None,
        };
        let cfg = Config::resolve(file.clone(), env).unwrap();
        let api = cfg.telegram_api.as_ref().unwrap();
        assert_eq!(api.api_id, 12345);
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("0123456789abcdef"), "api_hash leaked: {dbg}");
        assert!(!format!("{api:?}").contains("0123456789abcdef"));
        let g = cfg.telegram.grammers_config(cfg.telegram_api.as_ref()).unwrap();
        assert_eq!(g.api_id, 12345);
        assert_eq!(g.rate_limit, crate::telegram::grammers::RateLimit::default());
        assert!(cfg.session_path().ends_with("telegram.session"));

        // From a file, trimmed.
        let dir = tempfile::tempdir().unwrap();
        let hash_file = dir.path().join("api_hash");
        std::fs::write(&hash_file, "fedcba9876543210fedcba9876543210\n").unwrap();
        let text = format!(
            "[telegram]\napi_id = 7\napi_hash_file = {:?}\nrate_limit_per_minute = 6\nrate_limit_burst = 1\n",
            hash_file
        );
        let file: FileConfig = toml::from_str(&text).unwrap();
        let api = TelegramApi::require(&file.telegram, &|_| None).unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(api.api_hash.expose_secret(), "fedcba9876543210fedcba9876543210");
        assert_eq!(file.telegram.rate_limit_burst, 1);

        // Half-configured and unconfigured are clear errors.
        let file: FileConfig = toml::from_str("[telegram]\napi_id = 7\n").unwrap();
        let err = TelegramApi::resolve(&file.telegram, &|_| None).unwrap_err().to_string();
        assert!(err.contains(API_HASH_ENV), "{err}");
        let err = TelegramApi::require(&FileConfig::default().telegram, &|_| None).unwrap_err().to_string();
        assert!(err.contains("my.telegram.org"), "{err}");
        let no_api = Config::resolve(toml::from_str("[backend]\nurl = \"http://x\"\n").unwrap(), |k| {
            (k == BACKEND_SECRET_ENV).then(|| "s".to_owned())
        })
        .unwrap();
        assert!(no_api.telegram_api.is_none());
        assert!(no_api.telegram.grammers_config(None).unwrap_err().to_string().contains(API_HASH_ENV));
    }

    #[test]
    fn missing_secret_and_unknown_keys_are_clear_errors() {
        let file: FileConfig = toml::from_str("[backend]\nurl = \"http://x\"\n").unwrap();
        let err = Config::resolve(file, |_| None).unwrap_err().to_string();
        assert!(err.contains(BACKEND_SECRET_ENV), "{err}");
        let err = toml::from_str::<FileConfig>("[backend]\nsecret = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("secret"), "{err}");
        let file: FileConfig = toml::from_str("[parser]\naccount_pattern = \"([0-9\"\n").unwrap();
        let err = file.parser.parser_config().unwrap_err().to_string();
        assert!(err.contains("account_pattern"), "{err}");
    }

    #[test]
    fn localised_labels_extend_the_defaults() {
        let file: FileConfig = toml::from_str(
            "[parser]\nheaders = [\"Заказ цифрового товара\"]\ncustomer_labels = [\"Покупатель\"]\n\
             product_labels = [\"Товар\"]\nprice_labels = [\"Цена\"]\ndetails_labels = [\"Детали заказа\"]\n",
        )
        .unwrap();
        let cfg = file.parser.parser_config().unwrap();
        let ru = "🆕 Заказ цифрового товара\nПокупатель: Иван\nТовар: VIP\nЦена: ₽500\nДетали заказа:\nID 123456";
        let order = crate::tribute::parse_order(ru, &[], &cfg).unwrap();
        assert_eq!(order.product, "VIP");
        assert_eq!(order.price.amount_minor(), 50_000);
        let en = "🆕 Custom Product Order\nCustomer: Ann\nProduct: VIP\nPrice: $5\nOrder Details:\nID 123456";
        assert!(crate::tribute::parse_order(en, &[], &cfg).is_ok(), "English still parses");
    }

    #[test]
    fn ops_and_webhook_sections_resolve() {
        let parse = |v: &str| parse_listen("[ops] listen", v);
        assert_eq!(parse("9184").unwrap().to_string(), "127.0.0.1:9184");
        assert_eq!(parse(":9200").unwrap().to_string(), "127.0.0.1:9200");
        assert_eq!(parse("0.0.0.0:1").unwrap().to_string(), "0.0.0.0:1");
        assert!(parse("localhost:x").unwrap_err().to_string().contains("[ops] listen"));
        let off = FileConfig::default().ops_settings(&|_| None).unwrap();
        assert!(off.listen.is_none() && off.webhook.is_none());

        let file: FileConfig =
            toml::from_str("[ops]\nlisten = \"127.0.0.1:0\"\n[webhook]\nenabled = true\nlisten = \"9185\"\n").unwrap();
        let err = file.ops_settings(&|_| None).unwrap_err().to_string();
        assert!(err.contains(TRIBUTE_API_KEY_ENV), "{err}");
        let env = |k: &str| (k == TRIBUTE_API_KEY_ENV).then(|| "tribute-key-123".to_owned());
        let on = file.ops_settings(&env).unwrap();
        let w = on.webhook.expect("enabled");
        assert_eq!(w.reconcile.match_window, Duration::from_secs(3600));
        assert_eq!(w.listen.to_string(), "127.0.0.1:9185");
        assert!(!format!("{w:?}").contains("tribute-key-123"), "key leaked");

        // The webhook no longer needs the ops listener, but it needs its own.
        let webhook_only: FileConfig = toml::from_str("[webhook]\nenabled = true\nlisten = \"9185\"\n").unwrap();
        assert!(webhook_only.ops_settings(&env).unwrap().listen.is_none());
        let no_listener: FileConfig = toml::from_str("[ops]\nlisten = \"9184\"\n[webhook]\nenabled = true\n").unwrap();
        assert!(no_listener.ops_settings(&env).unwrap_err().to_string().contains("[webhook] listen"));
    }

    #[test]
    fn the_webhook_never_shares_the_ops_listener() {
        let env = |k: &str| (k == TRIBUTE_API_KEY_ENV).then(|| "tribute-key-123".to_owned());
        for (ops, webhook) in
            [("9184", "9184"), ("127.0.0.1:9184", "127.0.0.1:9184"), ("0.0.0.0:9184", "9184"), ("9184", "0.0.0.0:9184")]
        {
            let text = format!("[ops]\nlisten = {ops:?}\n[webhook]\nenabled = true\nlisten = {webhook:?}\n");
            let err = toml::from_str::<FileConfig>(&text).unwrap().ops_settings(&env).unwrap_err().to_string();
            assert!(err.contains("[webhook] listen") && err.contains("overlap"), "{ops} / {webhook}: {err}");
        }
        for (ops, webhook) in [("9184", "9185"), ("127.0.0.1:9184", "10.0.0.5:9184"), ("127.0.0.1:0", "127.0.0.1:0")] {
            let text = format!("[ops]\nlisten = {ops:?}\n[webhook]\nenabled = true\nlisten = {webhook:?}\n");
            assert!(toml::from_str::<FileConfig>(&text).unwrap().ops_settings(&env).is_ok(), "{ops} / {webhook}");
        }
    }

    #[test]
    fn retention_resolves_with_defaults_and_its_deadline_leaves_the_webhook_time_to_match() {
        let env = |k: &str| (k == BACKEND_SECRET_ENV).then(|| "s".to_owned());
        let cfg = |extra: &str| {
            Config::resolve(toml::from_str(&format!("[backend]\nurl = \"http://x\"\n{extra}")).unwrap(), env)
        };
        assert_eq!(cfg("").unwrap().retention, crate::retention::RetentionSettings::default());
        let err = cfg("[retention]\ninbox_days = 0").unwrap_err().to_string();
        assert!(err.contains("[retention] inbox_days"), "{err}");
        let err = cfg("[retention]\nunmatched_purchase_hours = 2\n[webhook]\nmatch_window_secs = 7200")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unmatched_purchase_hours") && err.contains("match_window_secs"), "{err}");
        assert!(cfg("[retention]\nunmatched_purchase_hours = 2").is_ok(), "1 h window + 30 min grace fit in 2 h");
    }

    #[test]
    fn contact_and_moderator_sections_parse_with_defaults_and_clear_errors() {
        let empty: FileConfig = toml::from_str("").unwrap();
        let c = empty.contact.contact_config().unwrap().expect("contact is on by default");
        assert_eq!((c.reminder_after.as_secs(), c.escalate_after.as_secs()), (3600, 86400));
        assert_eq!((c.max_messages_per_day, c.default_language), (10, Language::Ru));
        assert!(empty.moderator.moderators.is_empty());

        let f: FileConfig = toml::from_str(
            "[contact]\nreminder_after_secs = 60\nescalate_after_secs = 120\nlanguage = \"en\"\n\
             prompts_dir = \"/etc/ta/prompts\"\n[moderator]\nmoderators = [1, 2]",
        )
        .unwrap();
        let c = f.contact.contact_config().unwrap().unwrap();
        assert_eq!((c.reminder_after.as_secs(), c.default_language), (60, Language::En));
        assert_eq!(f.moderator.moderators, vec![1, 2]);

        let off: FileConfig = toml::from_str("[contact]\nenabled = false").unwrap();
        assert!(off.contact.contact_config().unwrap().is_none());
        let bad: FileConfig = toml::from_str("[contact]\nlanguage = \"de\"").unwrap();
        assert!(format!("{:#}", bad.contact.contact_config().unwrap_err()).contains("language"));
        let bad: FileConfig = toml::from_str("[contact]\nreminder_after_secs = 100\nescalate_after_secs = 50").unwrap();
        assert!(bad.contact.contact_config().is_err());
        assert!(toml::from_str::<FileConfig>("[moderator]\nmods = [1]").is_err(), "unknown keys are errors");
    }
}
