//! `tribute-assistant check`: validates the configuration and reaches
//! every configured dependency, then prints one line per check (✔ / ✘ /
//! – for "not configured") and, under each ✘, how to fix it. Exit code 1
//! when anything failed, so it can gate a deployment or a systemd
//! `ExecStartPre=`.
//!
//! Nothing here changes state: the backend gets a signed `GET /health`,
//! the LLM endpoint a `GET /models` and three small chat completions
//! ([`crate::agent::probe`]), the embedding endpoint one tiny
//! embedding (its vector size is what search will rely on), Qdrant a TCP connect; the Telegram
//! session is read from its file without going to the network (`login
//! --check` asks Telegram).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::app::config::{Config, FileConfig};
use crate::backend::{BackendClient, HealthError};
use crate::backend::{BACKEND_SECRET_ENV, BACKEND_URL_ENV};
use crate::config::sensitive_url::redact_credentials;
use crate::telegram::grammers::session::{open_existing_session, stored_self_id};
use crate::telegram::TelegramApi;
use crate::webhook::TRIBUTE_API_KEY_ENV;

/// Environment variables naming an OpenAI-compatible endpoint and its key.
pub const OPENAI_BASE_URL_ENV: &str = "OPENAI_BASE_URL";
pub const OPENAI_API_KEY_ENV: &str = "OPENAI_API_KEY";
/// Environment variable naming a Qdrant server.
pub use crate::knowledge::config::QDRANT_URL_ENV;

/// How long any one network check may take (not the LLM's chat probes:
/// [`crate::agent::probe::probe_timeout`]).
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// Works, but should be fixed (a secret file others can read): does
    /// not fail the check.
    Warn,
    /// Not configured, so not checked.
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✔",
            Status::Fail => "✘",
            Status::Warn => "!",
            Status::Skip => "–",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct CheckLine {
    pub status: Status,
    pub name: &'static str,
    pub detail: String,
    /// What to do about a ✘.
    pub fix: Option<String>,
}

impl CheckLine {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self { status: Status::Pass, name, detail: detail.into(), fix: None }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { status: Status::Fail, name, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { status: Status::Warn, name, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self { status: Status::Skip, name, detail: detail.into(), fix: None }
    }
}

/// Where the LLM endpoint and the Qdrant server are configured: the same
/// precedence as the agent and the knowledge base use (environment first,
/// then `[agent] base_url` / `[knowledge] qdrant_url`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyUrls {
    pub llm_base_url: Option<String>,
    pub qdrant_url: Option<String>,
}

impl DependencyUrls {
    pub fn from_config(file: &FileConfig, env: &impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        Self {
            llm_base_url: non_empty(env(OPENAI_BASE_URL_ENV))
                .or_else(|| non_empty(file.agent.base_url.as_ref().map(|u| u.expose().to_owned()))),
            qdrant_url: non_empty(env(QDRANT_URL_ENV))
                .or_else(|| non_empty(file.knowledge.qdrant_url.as_ref().map(|u| u.expose().to_owned()))),
        }
    }
}

pub async fn run(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let lines = checks(config, &env).await;
    print!("{}", render(config, &lines));
    Ok(if lines.iter().any(|l| l.status == Status::Fail) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Runs every check; never fails itself (a failure is a ✘ line).
pub async fn checks(config: Option<&Path>, env: &impl Fn(&str) -> Option<String>) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    let file = match config {
        None => {
            lines.push(CheckLine::pass("config file", "none given: defaults and the environment"));
            FileConfig::default()
        }
        Some(path) if std::fs::metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) => {
            lines.push(CheckLine::fail(
                "config file",
                format!("{} does not exist", path.display()),
                "create it (the example in README.md, Configuration, is a start; docs/deployment.md says where it \
                 goes), or point --config / TRIBUTE_ASSISTANT_CONFIG at the one you have",
            ));
            return lines;
        }
        Some(path) => match FileConfig::load(path) {
            Ok(file) => {
                lines.push(CheckLine::pass("config file", path.display().to_string()));
                file
            }
            Err(e) => {
                lines.push(CheckLine::fail(
                    "config file",
                    format!("{e:#}"),
                    "correct the file; the keys are listed in README.md (Configuration) and docs/deployment.md",
                ));
                return lines;
            }
        },
    };
    match file.parser.parser_config() {
        Ok(_) => lines.push(CheckLine::pass("parser", "account pattern and labels are valid")),
        Err(e) => lines.push(CheckLine::fail("parser", format!("{e:#}"), "fix the regex in [parser] account_pattern")),
    }
    lines.push(data_dir_line(&file.resolved_data_dir(env)));
    let cfg = match Config::resolve(file.clone(), env) {
        Ok(cfg) => {
            lines.push(CheckLine::pass(
                "settings",
                "backend URL and secret, Telegram, ops and webhook settings resolve",
            ));
            Some(cfg)
        }
        Err(e) => {
            lines.push(CheckLine::fail(
                "settings",
                format!("{e:#}"),
                format!("the message says what is missing; secrets come from the environment ({BACKEND_SECRET_ENV}, {TRIBUTE_API_KEY_ENV}, …) or from files named in the config"),
            ));
            None
        }
    };
    lines.extend(secret_file_lines(&secret_files(&file, env)));
    match &cfg {
        Some(cfg) => lines.push(backend_line(cfg).await),
        None => lines.push(CheckLine::fail(
            "backend handshake",
            "not tried: the settings above are incomplete",
            format!("set [backend] url (or {BACKEND_URL_ENV}) and {BACKEND_SECRET_ENV} (or [backend] secret_file)"),
        )),
    }
    if let Some(cfg) = &cfg {
        lines.push(match &cfg.ops.listen {
            None => CheckLine::skip("ops listener", "off ([ops] listen is not set): no /healthz, /metrics"),
            Some(addr) => CheckLine::pass("ops listener", format!("http://{addr}/healthz and /metrics")),
        });
        if let Some(w) = &cfg.ops.webhook {
            let url = format!("http://{}{}", w.listen, crate::webhook::WEBHOOK_PATH);
            lines.push(CheckLine::pass("webhook listener", format!("{url} (the webhook alone)")));
        }
    }
    let urls = DependencyUrls::from_config(&file, env);
    let agent = crate::agent::AgentSettings::resolve(&file.agent, env).ok();
    let model = agent.as_ref().and_then(|s| s.llm.as_ref()).map(|e| e.model.clone());
    let line = llm_line(urls.llm_base_url.as_deref(), model.as_deref(), env).await;
    let listed = line.status == Status::Pass;
    lines.push(line);
    if let (true, Some(agent)) = (listed, agent) {
        lines.extend(llm_probe_lines(agent).await);
    }
    lines.push(embedding_line(&file, env).await);
    lines.push(qdrant_line(urls.qdrant_url.as_deref()).await);
    lines.push(match TelegramApi::resolve(&file.telegram, env) {
        Ok(Some(api)) => CheckLine::pass("telegram credentials", format!("api_id {}", api.api_id)),
        Ok(None) => CheckLine::fail(
            "telegram credentials",
            "no api_id / api_hash",
            "create an application at https://my.telegram.org, set [telegram] api_id and TRIBUTE_ASSISTANT_API_HASH (or [telegram] api_hash_file)",
        ),
        Err(e) => CheckLine::fail("telegram credentials", format!("{e:#}"), "see README.md, Running on a real account"),
    });
    lines.push(session_line(&file.session_path(env)).await);
    lines.push(match file.telegram.moderator_chat {
        Some(chat) => CheckLine::pass("moderator chat", format!("cases go to chat {chat}")),
        None => CheckLine::fail(
            "moderator chat",
            "not set: cases are stored but never posted",
            "set [telegram] moderator_chat to the id of the group (or private chat) that receives cases",
        ),
    });
    lines
}

/// The files the config names that hold a secret, with what names them.
fn secret_files(file: &FileConfig, env: &impl Fn(&str) -> Option<String>) -> Vec<(&'static str, PathBuf)> {
    let named = [
        ("[backend] secret_file", file.backend.as_ref().and_then(|b| b.secret_file.clone())),
        ("[telegram] api_hash_file", file.telegram.api_hash_file.clone()),
        ("[webhook] api_key_file", file.webhook.api_key_file.clone()),
        ("[agent] api_key_file", file.agent.api_key_file.clone()),
        ("[knowledge] qdrant_api_key_file", file.knowledge.qdrant_api_key_file.clone()),
        ("[knowledge.embedding] api_key_file", file.knowledge.embedding.as_ref().and_then(|e| e.api_key_file.clone())),
        ("the Telegram session", Some(file.session_path(env))),
    ];
    named.into_iter().filter_map(|(key, path)| Some((key, path?))).collect()
}

/// A secret file that others may read works, so it is a warning, with the
/// command that fixes it; a missing file is the settings' or the
/// session's line to report.
fn secret_file_lines(files: &[(&'static str, PathBuf)]) -> Vec<CheckLine> {
    use std::os::unix::fs::PermissionsExt;
    const NAME: &str = "secret files";
    let mut lines = Vec::new();
    let mut private = 0;
    for (key, path) in files {
        let Ok(meta) = std::fs::metadata(path) else { continue };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            private += 1;
            continue;
        }
        lines.push(CheckLine::warn(
            NAME,
            format!("{} ({key}) has mode {mode:04o}: other users of this machine can read the secret", path.display()),
            format!("chmod 600 {}", shell_quote(&path.display().to_string())),
        ));
    }
    if lines.is_empty() && private > 0 {
        lines.push(CheckLine::pass(NAME, format!("{private} file(s), each readable by its owner only (0600)")));
    }
    lines
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:@,".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn data_dir_line(dir: &Path) -> CheckLine {
    let probe = std::fs::create_dir_all(dir).and_then(|()| tempfile::NamedTempFile::new_in(dir).map(drop));
    match probe {
        Ok(()) => CheckLine::pass("data dir", format!("{} is writable", dir.display())),
        Err(e) => CheckLine::fail(
            "data dir",
            format!("{}: {e}", dir.display()),
            format!(
                "create it for the service user, e.g. `install -d -m 0700 -o tribute-assistant {}`, or set data_dir",
                dir.display()
            ),
        ),
    }
}

pub(crate) async fn backend_line(cfg: &Config) -> CheckLine {
    const NAME: &str = "backend handshake";
    let mut backend = cfg.backend_config();
    backend.timeout = backend.timeout.min(CHECK_TIMEOUT);
    let client = match BackendClient::new(backend) {
        Ok(c) => c,
        Err(e) => {
            return CheckLine::fail(NAME, e.to_string(), "correct [backend] url: an http(s) base URL without query")
        }
    };
    let url = client.health_url().into_owned();
    match client.health().await {
        Ok(report) => CheckLine::pass(
            NAME,
            format!("{url}: same HMAC secret on both sides, clocks agree ({} ms)", report.latency.as_millis()),
        ),
        Err(HealthError::Unreachable(e)) => CheckLine::fail(
            NAME,
            format!("cannot reach {url}: {e}"),
            format!("check [backend] url (or {BACKEND_URL_ENV}) and that the backend is up and reachable from this host"),
        ),
        Err(HealthError::SignatureRefused { code, message }) => {
            let fix = match code.as_str() {
                "bad_signature" => format!(
                    "the HMAC secrets differ: give the backend and the assistant the same secret ({BACKEND_SECRET_ENV} or [backend] secret_file); \
                     while rotating, the backend must accept the old and the new one (docs/backend-api.md, Rotating the secret)"
                ),
                "stale_timestamp" => "the clocks differ by more than 300 s: enable NTP on both hosts (`timedatectl set-ntp true`)".to_owned(),
                _ => "the X-Tribute-Assistant-Signature header does not reach the backend intact: check proxies in between".to_owned(),
            };
            CheckLine::fail(NAME, format!("the backend refused our signature ({code}: {message})"), fix)
        }
        Err(HealthError::Unproven(why)) => CheckLine::fail(
            NAME,
            format!("the backend did not prove it holds the secret: {why}"),
            "implement the signed answer of GET /health (docs/backend-api.md, The signature handshake); if it is implemented, the secrets differ",
        ),
        Err(HealthError::Rejected { status, body }) => CheckLine::fail(
            NAME,
            format!("{url} answered HTTP {status}: {}", body.chars().take(200).collect::<String>()),
            "[backend] url is the base URL (/activate and /health are appended); check it and the backend's routes",
        ),
    }
}

async fn llm_line(base: Option<&str>, model: Option<&str>, env: &impl Fn(&str) -> Option<String>) -> CheckLine {
    const NAME: &str = "LLM endpoint";
    let Some(base) = base else {
        return CheckLine::skip(NAME, "not configured: the agent answers from the knowledge base only");
    };
    let url = format!("{}/models", base.trim_end_matches('/'));
    let shown = redact_credentials(&url);
    let http = match crate::http::tls::client_builder().timeout(CHECK_TIMEOUT).build() {
        Ok(h) => h,
        Err(e) => return CheckLine::fail(NAME, e.to_string(), "this is a bug; please report it"),
    };
    let mut req = http.get(&url);
    if let Some(key) = env(OPENAI_API_KEY_ENV) {
        req = req.bearer_auth(key.trim());
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => {
            let ids: Option<Vec<String>> = r.json::<serde_json::Value>().await.ok().and_then(|v| {
                v["data"].as_array().map(|a| a.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect())
            });
            match (model, ids) {
                (Some(m), Some(ids)) if !ids.is_empty() && !serves(&ids, m) => CheckLine::fail(
                    NAME,
                    format!("{shown} does not serve the model {m:?} (it lists {})", ids.join(", ")),
                    format!(
                        "set [agent] model (or {}) to one of the listed models",
                        crate::agent::settings::OPENAI_MODEL_ENV
                    ),
                ),
                (m, ids) => CheckLine::pass(
                    NAME,
                    format!(
                        "{shown} answers ({} models{})",
                        ids.map_or("?".into(), |i| i.len().to_string()),
                        m.map(|m| format!(", {m} among them")).unwrap_or_default()
                    ),
                ),
            }
        }
        Ok(r) if matches!(r.status().as_u16(), 401 | 403) => CheckLine::fail(
            NAME,
            format!("{shown} refused the API key (HTTP {})", r.status().as_u16()),
            format!("set {OPENAI_API_KEY_ENV} to a key this endpoint accepts"),
        ),
        Ok(r) => CheckLine::fail(
            NAME,
            format!("{shown} answered HTTP {}", r.status().as_u16()),
            "the base URL must be the OpenAI-compatible API root (it usually ends in /v1)",
        ),
        Err(e) => CheckLine::fail(
            NAME,
            format!("cannot reach {shown}: {}", error_text(&e)),
            format!("check [agent] base_url / {OPENAI_BASE_URL_ENV} and that the endpoint is up"),
        ),
    }
}

/// The endpoint lists the model; now the probes of
/// [`crate::agent::probe`], one line each: a plain chat completion, one
/// with the agent's tools, and a turn-shaped one with the answer format, so
/// a server that rejects tools (llama.cpp without `--jinja`), a model
/// without structured outputs or a model too slow for `[agent]
/// timeout_secs` shows here, with the fix that matches, instead of as
/// escalated questions later. Each probe waits
/// [`crate::agent::probe::probe_timeout`], not [`CHECK_TIMEOUT`]: a model
/// on CPU takes seconds.
async fn llm_probe_lines(settings: crate::agent::AgentSettings) -> Vec<CheckLine> {
    use crate::agent::answer::AnswerFormat;
    use crate::agent::openai::OpenAiLlm;
    use crate::agent::probe::{self, classify, slowness, AnswerSeen, Stage, ToolsSeen};
    const CHAT: &str = "LLM chat";
    const TOOLS: &str = "LLM tools";
    const FORMAT: &str = "LLM answer format";
    let Some(endpoint) = settings.llm.clone() else { return vec![] };
    let mut probing = settings.clone();
    probing.timeout = probe::probe_timeout(settings.timeout);
    probing.retries = 0;
    let llm = match OpenAiLlm::new(&endpoint, &probing) {
        Ok(l) => l,
        Err(e) => return vec![CheckLine::fail(CHAT, e.to_string(), "fix [agent]")],
    };
    // A prompts dir that cannot be read is the daemon's error at start; probe with the built-in prompt.
    let system = crate::agent::Prompts::load(&settings.prompts_dir).unwrap_or_default().system;
    let report = probe::run(&llm, &settings, &system).await;
    let secs = |d: std::time::Duration| format!("{:.1} s", d.as_secs_f64());
    // A probe that answered: ✔, or ✘ when slower than a turn may be.
    let judged = |name, stage, latency, detail: String| match slowness(stage, latency, &settings) {
        None => CheckLine::pass(name, detail),
        Some(fault) => CheckLine::fail(name, detail, fault.fix()),
    };

    let mut lines = Vec::new();
    lines.push(match &report.chat.result {
        Ok(()) => judged(
            CHAT,
            Stage::Chat,
            report.chat.latency,
            format!(
                "a plain completion in {} (probes wait up to {} s; [agent] timeout_secs = {})",
                secs(report.chat.latency),
                report.timeout.as_secs(),
                settings.timeout.as_secs()
            ),
        ),
        Err(f) => CheckLine::fail(
            CHAT,
            format!("a plain completion failed after {}: {f}", secs(report.chat.latency)),
            classify(Stage::Chat, f).fix(),
        ),
    });
    let n_tools = crate::agent::tools::definitions().len();
    lines.push(match &report.tools {
        None if report.chat.result.is_ok() => {
            CheckLine::skip(TOOLS, "not tried: the plain completion was already slower than a turn may be")
        }
        None => CheckLine::skip(TOOLS, "not tried: the plain completion failed"),
        Some(p) => match &p.result {
            Ok(seen) => judged(
                TOOLS,
                Stage::Tools,
                p.latency,
                format!(
                    "the server takes the agent's {n_tools} tools ({}; the model {})",
                    secs(p.latency),
                    match seen {
                        ToolsSeen::Called(name) => format!("called {name}"),
                        ToolsSeen::Answered => "answered without calling one".to_owned(),
                    }
                ),
            ),
            Err(f) => CheckLine::fail(
                TOOLS,
                format!("a request with the agent's {n_tools} tools failed after {}: {f}", secs(p.latency)),
                classify(Stage::Tools, f).fix(),
            ),
        },
    });
    lines.push(match &report.answer {
        None => CheckLine::skip(FORMAT, "not tried: the probes above failed or were too slow"),
        Some(a) => {
            let tools = if a.with_tools { "with the tools" } else { "without tools (they failed above)" };
            let format = if a.accepted {
                let stepped = match a.format {
                    AnswerFormat::StrictSchema => String::new(),
                    weaker => format!(
                        " (it refused stronger ones, so the answer format steps down to {}, as turns do)",
                        weaker.as_str()
                    ),
                };
                format!("the server accepted the {} format {tools}{stepped}", a.format.as_str())
            } else {
                format!("no format accepted: the request with the {} format {tools} failed", a.format.as_str())
            };
            let took = secs(a.probe.latency);
            match &a.probe.result {
                Ok(AnswerSeen::Object) => judged(
                    FORMAT,
                    Stage::AnswerFormat,
                    a.probe.latency,
                    format!("{format}; the model wrote a valid answer object in {took}"),
                ),
                Ok(AnswerSeen::Called(name)) => judged(
                    FORMAT,
                    Stage::AnswerFormat,
                    a.probe.latency,
                    format!("{format}; the model called {name} first, as a turn may, in {took}"),
                ),
                Err(f) => CheckLine::fail(
                    FORMAT,
                    format!("{format}; after {took}: {f}"),
                    classify(Stage::AnswerFormat, f).fix(),
                ),
            }
        }
    });
    lines
}

/// Embeds one short query the way search will, so a wrong dimension, model
/// or key shows here rather than as a silently lexical search later.
async fn embedding_line(file: &FileConfig, env: &impl Fn(&str) -> Option<String>) -> CheckLine {
    use crate::knowledge::embed::Roles;
    use crate::knowledge::{Embedder, KnowledgeError, OpenAiEmbedder};
    const NAME: &str = "embedding endpoint";
    let config = match file.knowledge.resolve(env) {
        Ok(k) => k.embedding,
        Err(e) => return CheckLine::fail(NAME, e.to_string(), "fix the [knowledge] section"),
    };
    let Some(mut config) = config else {
        return CheckLine::skip(NAME, "not configured: search is lexical");
    };
    config.timeout = config.timeout.min(CHECK_TIMEOUT);
    // Nobody is waiting on this query: a busy server is not a broken one.
    config.query_timeout = config.timeout;
    let shown = redact_credentials(&config.base_url).into_owned();
    let (model, dimension) = (config.model.clone(), config.dimension);
    let roles = config.roles.clone();
    let embedder = match OpenAiEmbedder::new(config) {
        Ok(e) => e,
        Err(e) => return CheckLine::fail(NAME, e.to_string(), "fix [knowledge.embedding]"),
    };
    match embedder.embed_query("check").await {
        Ok(_) => {
            let detail = format!("{shown}: {model} returns {dimension}-dimensional vectors");
            let honours = match embedder.honours_input_type().await {
                Ok(h) => h,
                Err(e) => return CheckLine::fail(NAME, format!("{detail}, but {e}"), "check that the endpoint is up"),
            };
            match (honours, roles) {
                (true, Roles::InputType) => {
                    CheckLine::pass(NAME, format!("{detail}; it marks queries and passages itself (input_type)"))
                }
                (true, Roles::Prefixes { .. }) => CheckLine::fail(
                    NAME,
                    format!("{detail}, but the server marks queries and passages itself, so the prefixes are doubled"),
                    "set [knowledge.embedding] roles = \"input_type\", remove query_prefix/passage_prefix, then `kb ingest --rebuild`",
                ),
                (true, Roles::None) => CheckLine::fail(
                    NAME,
                    format!("{detail}, but the server embeds queries and passages differently and is told neither"),
                    "set [knowledge.embedding] roles = \"input_type\", then `kb ingest --rebuild`",
                ),
                (false, Roles::InputType) => CheckLine::fail(
                    NAME,
                    format!("{detail}, but the server ignores input_type"),
                    "for a model that wants marks (E5: \"query: \"/\"passage: \") set query_prefix and passage_prefix \
                     instead, else roles = \"none\"; then `kb ingest --rebuild`",
                ),
                (false, _) => CheckLine::pass(NAME, format!("{detail}; the server ignores input_type, marks as configured")),
            }
        }
        Err(e @ KnowledgeError::DimensionMismatch { .. }) => CheckLine::fail(
            NAME,
            e.to_string(),
            "set [knowledge.embedding] dimension to the model's, then `kb ingest --rebuild`",
        ),
        Err(e) => CheckLine::fail(
            NAME,
            e.to_string(),
            "check [knowledge.embedding] base_url, model and the API key, and that the endpoint is up",
        ),
    }
}

/// Whether `/models` lists `model`; Ollama lists `llama3:latest` for `llama3`.
fn serves(ids: &[String], model: &str) -> bool {
    ids.iter().any(|id| id == model || id.strip_suffix(":latest") == Some(model))
}

async fn qdrant_line(url: Option<&str>) -> CheckLine {
    const NAME: &str = "Qdrant server";
    let Some(url) = url else {
        return CheckLine::skip(NAME, "not configured: the embedded index (Qdrant Edge) is used");
    };
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return CheckLine::fail(
                NAME,
                format!("{:?} is not a URL: {e}", redact_credentials(url)),
                "set [knowledge] qdrant_url like http://127.0.0.1:6334",
            )
        }
    };
    let host = parsed.host_str().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = parsed.port_or_known_default().unwrap_or(6334);
    match tokio::time::timeout(CHECK_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(_)) => CheckLine::pass(NAME, format!("{host}:{port} accepts connections")),
        Ok(Err(e)) => CheckLine::fail(
            NAME,
            format!("cannot connect to {host}:{port}: {e}"),
            format!("start Qdrant or correct [knowledge] qdrant_url / {QDRANT_URL_ENV} (gRPC port, usually 6334)"),
        ),
        Err(_) => CheckLine::fail(
            NAME,
            format!("{host}:{port} did not answer within {} s", CHECK_TIMEOUT.as_secs()),
            "check the address and any firewall in between",
        ),
    }
}

async fn session_line(path: &Path) -> CheckLine {
    const NAME: &str = "telegram session";
    let fix = "run `tribute-assistant login` once, interactively, as the service user";
    let session = match open_existing_session(path).await {
        Ok(Some(s)) => s,
        Ok(None) => return CheckLine::fail(NAME, format!("no session file at {}", path.display()), fix),
        Err(e) => {
            return CheckLine::fail(NAME, format!("{e:#}"), "make the file readable by the service user (mode 0600)")
        }
    };
    let id = stored_self_id(&*session).await;
    session.close().await;
    match id {
        Some(id) => CheckLine::pass(
            NAME,
            format!("{} is authorised as user id {id} (offline check; `login --check` asks Telegram)", path.display()),
        ),
        None => CheckLine::fail(NAME, format!("{} was never logged in", path.display()), fix),
    }
}

/// The error and its causes; reqwest quotes the URL, so credentials are masked.
fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    redact_credentials(&text).into_owned()
}

/// The table: mark, name, detail; the fix indented under each ✘ and !.
pub fn render(config: Option<&Path>, lines: &[CheckLine]) -> String {
    let width = lines.iter().map(|l| l.name.chars().count()).max().unwrap_or(0);
    let mut out =
        format!("tribute-assistant check{}\n\n", config.map(|c| format!(" ({})", c.display())).unwrap_or_default());
    for l in lines {
        out.push_str(&format!("  {}  {:<width$}  {}\n", l.status.mark(), l.name, l.detail));
        if let Some(fix) = &l.fix {
            out.push_str(&format!("     {:<width$}  fix: {fix}\n", ""));
        }
    }
    let failed = lines.iter().filter(|l| l.status == Status::Fail).count();
    let warned = lines.iter().filter(|l| l.status == Status::Warn).count();
    out.push('\n');
    out.push_str(match failed {
        0 => "All checks passed",
        1 => "1 check failed",
        _ => "",
    });
    if failed > 1 {
        out.push_str(&format!("{failed} checks failed"));
    }
    match warned {
        0 => {}
        1 => out.push_str("; 1 warning"),
        n => out.push_str(&format!("; {n} warnings")),
    }
    out.push_str(".\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_urls_come_from_the_sections_or_the_environment() {
        let file: FileConfig =
            toml::from_str("[agent]\nbase_url = \"http://127.0.0.1:1/v1\"\n[knowledge]\nqdrant_url = \" \"\n").unwrap();
        let urls = DependencyUrls::from_config(&file, &|_| None);
        assert_eq!(urls.llm_base_url.as_deref(), Some("http://127.0.0.1:1/v1"));
        assert_eq!(urls.qdrant_url, None, "an empty value means off");
        let env = |k: &str| match k {
            OPENAI_BASE_URL_ENV => Some("http://llm".to_owned()),
            QDRANT_URL_ENV => Some("http://q:6334".to_owned()),
            _ => None,
        };
        let urls = DependencyUrls::from_config(&file, &env);
        assert_eq!(urls.llm_base_url.as_deref(), Some("http://llm"), "the environment wins, as in the agent");
        assert_eq!(urls.qdrant_url.as_deref(), Some("http://q:6334"));
    }

    #[test]
    fn the_table_shows_fixes_under_failures() {
        let text = render(
            None,
            &[
                CheckLine::pass("a", "fine"),
                CheckLine::fail("longer name", "broken", "do this"),
                CheckLine::skip("c", "off"),
            ],
        );
        assert!(text.contains("  ✔  a            fine\n"), "{text}");
        assert!(text.contains("  ✘  longer name  broken\n"), "{text}");
        assert!(text.contains("fix: do this\n"), "{text}");
        assert!(text.ends_with("1 check failed.\n"), "{text}");
    }
}

#[cfg(test)]
mod file_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn config(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("config.toml");
        std::fs::write(&path, body).unwrap();
        path
    }

    #[tokio::test]
    async fn a_config_file_that_does_not_exist_is_named_so_with_how_to_create_one() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let lines = checks(Some(&missing), &|_| None).await;
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].status, Status::Fail);
        assert!(lines[0].detail.ends_with("does not exist"), "{:?}", lines[0]);
        let fix = lines[0].fix.as_deref().unwrap();
        assert!(fix.starts_with("create it") && !fix.contains("correct"), "{fix}");
        // A file that exists but is wrong is still "correct the file".
        let broken = config(dir.path(), "data_dir = [");
        let lines = checks(Some(&broken), &|_| None).await;
        assert!(lines[0].fix.as_deref().unwrap().starts_with("correct the file"), "{:?}", lines[0]);
    }

    #[tokio::test]
    async fn a_secret_file_others_can_read_is_a_warning_with_the_chmod_command() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("backend secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let body = format!(
            "data_dir = {:?}\n[backend]\nurl = \"http://127.0.0.1:9/api\"\nsecret_file = {:?}\n",
            dir.path().join("data"),
            secret
        );
        let path = config(dir.path(), &body);
        let lines = checks(Some(&path), &|_| None).await;
        let line = lines.iter().find(|l| l.name == "secret files").expect("a secret files line");
        assert_eq!(line.status, Status::Warn, "{line:?}");
        assert!(line.detail.contains("0644") && line.detail.contains("[backend] secret_file"), "{line:?}");
        assert_eq!(line.fix.as_deref(), Some(format!("chmod 600 '{}'", secret.display()).as_str()));
        let text = render(Some(&path), &lines);
        assert!(text.lines().any(|l| l.starts_with("  !  secret files")), "{text}");
        assert!(text.contains("; 1 warning."), "{text}");
        assert!(!text.contains("s3cret"), "{text}");

        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let lines = checks(Some(&path), &|_| None).await;
        let line = lines.iter().find(|l| l.name == "secret files").unwrap();
        assert_eq!(line.status, Status::Pass, "{line:?}");
    }
}
