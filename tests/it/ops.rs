//! The ops listener and `check`: `/metrics` scraped over real HTTP from the
//! sandbox daemon and parsed by a strict Prometheus text parser, `/healthz`
//! through a Telegram disconnect, and the real binary's `check` against the
//! reference backend with a wrong and a right HMAC secret.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use tribute_assistant::ops::{Kind, MetricSource, Sample, CUSTOMER_MESSAGES};
use tribute_testbed::backend::ReferenceBackend;
use tribute_testbed::sandbox::SandboxOptions;

use crate::support::app::TestApp;
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::{eventually, SETTLE};

// ---- a strict parser for the Prometheus text format (0.0.4) ----------------

/// A series: metric name and its sorted labels.
type SeriesKey = (String, Vec<(String, String)>);
/// Labels without `le` → the (bound, cumulative count) of each bucket.
type Buckets = BTreeMap<Vec<(String, String)>, Vec<(f64, f64)>>;

/// One parsed exposition: family name → type, and every series → value.
#[derive(Debug, Default)]
struct Exposition {
    types: HashMap<String, String>,
    series: BTreeMap<SeriesKey, f64>,
}

impl Exposition {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut labels: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        labels.sort();
        self.series.get(&(name.to_owned(), labels)).copied()
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or_else(|| panic!("no series {name} {labels:?}"))
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
    }
}

/// Parses `{a="x",b="y"}` at the start of `s`; returns the labels and the rest.
type Labels = Vec<(String, String)>;

fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    let mut labels = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("newline in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// The family a sample belongs to (histogram samples carry suffixes).
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| t == "histogram" || t == "summary") {
                return Some(base);
            }
        }
    }
    None
}

fn parse_exposition(text: &str) -> Result<Exposition, String> {
    if !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    let mut exp = Exposition::default();
    let mut helped = HashSet::new();
    let mut families_with_samples_done = HashSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !is_metric_name(name) || !helped.insert(name.to_owned()) {
                return Err(err("bad or repeated HELP".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            if parts.next().is_some() || !is_metric_name(name) {
                return Err(err("bad TYPE line".into()));
            }
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(err(format!("unknown type {kind:?}")));
            }
            if exp.types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(err("TYPE repeated".into()));
            }
            if let Some(prev) = current.replace(name.to_owned()) {
                families_with_samples_done.insert(prev);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(err(format!("bad metric name {name:?}")));
        }
        let (mut labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(err)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let mut fields =
            rest.strip_prefix(' ').ok_or_else(|| err("expected a space before the value".into()))?.split(' ');
        let value = parse_value(fields.next().unwrap_or_default()).map_err(err)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing fields".into()));
        }
        let family = family_of(name, &exp.types).ok_or_else(|| err("sample without a TYPE".into()))?;
        if current.as_deref() != Some(family) || families_with_samples_done.contains(family) {
            return Err(err("samples of a family must follow its TYPE line, together".into()));
        }
        let mut names = HashSet::new();
        if !labels.iter().all(|(k, _)| names.insert(k.clone())) {
            return Err(err("repeated label".into()));
        }
        labels.sort();
        if exp.series.insert((name.to_owned(), labels), value).is_some() {
            return Err(err("duplicate series".into()));
        }
    }
    check_histograms(&exp)?;
    Ok(exp)
}

/// Buckets are cumulative, end in +Inf, and +Inf equals _count.
fn check_histograms(exp: &Exposition) -> Result<(), String> {
    for (family, _) in exp.types.iter().filter(|(_, t)| *t == "histogram") {
        let bucket = format!("{family}_bucket");
        let mut by_series: Buckets = BTreeMap::new();
        for ((name, labels), v) in &exp.series {
            if *name != bucket {
                continue;
            }
            let le = labels.iter().find(|(k, _)| k == "le").ok_or("bucket without le")?;
            let rest: Vec<_> = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
            by_series.entry(rest).or_default().push((parse_value(&le.1)?, *v));
        }
        for (labels, mut buckets) in by_series {
            buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            if buckets.last().map(|b| b.0) != Some(f64::INFINITY) {
                return Err(format!("{family} {labels:?} has no +Inf bucket"));
            }
            if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(format!("{family} {labels:?} buckets are not cumulative"));
            }
            let count =
                exp.series.get(&(format!("{family}_count"), labels.clone())).ok_or("histogram without _count")?;
            if *count != buckets.last().unwrap().1 {
                return Err(format!("{family} {labels:?}: +Inf bucket != _count"));
            }
        }
    }
    Ok(())
}

#[test]
fn the_strict_parser_refuses_broken_expositions() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n";
    assert!(parse_exposition(good).is_ok());
    for bad in [
        "a_total 1\n",                                                                    // no TYPE
        "# TYPE a_total counter\na_total{x=\"1} 2\n",                                     // unterminated
        "# TYPE a_total counter\na_total{x=\"1\"} two\n",                                 // bad value
        "# TYPE a_total counter\na_total 1\na_total 2\n",                                 // duplicate series
        "# TYPE a_total counter\na_total 1",                                              // no final newline
        "# TYPE a_total counter\n# TYPE a_total gauge\na_total 1\n",                      // TYPE twice
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", // not cumulative
        "# TYPE 1bad counter\n",
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

// ---- the listener ------------------------------------------------------------

async fn scrape(base: &str) -> Exposition {
    let resp = crate::support::http().get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = resp.text().await.unwrap();
    parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

struct Fixed(Vec<Sample>);

#[async_trait::async_trait]
impl MetricSource for Fixed {
    async fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_when_orders_flow() {
    let app = TestApp::spawn_with(SandboxOptions { ops_listener: true, ..SandboxOptions::default() }).await;
    app.backend.add_pending("654321", "100 Diamonds");
    let base = app.ops_url().expect("the listener runs");

    let before = scrape(&base).await;
    assert_eq!(before.get("tribute_assistant_up", &[]), 1.0);
    assert_eq!(before.get("tribute_assistant_orders", &[("state", "confirmed")]), 0.0);
    assert_eq!(before.get("tribute_assistant_activations_total", &[]), 0.0);
    assert_eq!(
        before.types.get(CUSTOMER_MESSAGES).map(String::as_str),
        Some("counter"),
        "the seam's family is declared"
    );

    app.world.flood_wait_next_sends(1, Duration::from_millis(50));
    app.post_order(&order(601).by("Anna"));
    app.post_order(&order(602).by("Anna").details("ID 654321"));
    app.post_order(&order(603).by("Anna").details("no id here"));
    app.wait_settled(3, SETTLE).await.unwrap();

    let after = scrape(&base).await;
    assert_eq!(after.get("tribute_assistant_orders", &[("state", "confirmed")]), 2.0);
    // No ID: the assistant asks the customer (contact flow) rather than a moderator.
    assert_eq!(after.get("tribute_assistant_orders", &[("state", "needs_customer")]), 1.0);
    assert_eq!(after.get("tribute_assistant_activations_total", &[]), 2.0);
    eventually("the question to the customer counted", || async {
        let now = scrape(&base).await;
        (now.get("tribute_assistant_customer_messages_total", &[("direction", "out")]) == 1.0).then_some(())
    })
    .await;
    assert_eq!(after.get("tribute_assistant_queue_depth", &[("queue", "moderator_outbox")]), 0.0);
    assert_eq!(after.get("tribute_assistant_queue_depth", &[("queue", "orders_unfinished")]), 0.0);
    let calls = after.get("tribute_assistant_backend_request_duration_seconds_count", &[("endpoint", "activate")]);
    assert_eq!(calls, 2.0);
    assert_eq!(
        after.get("tribute_assistant_backend_requests_total", &[("endpoint", "activate"), ("result", "ok")]),
        2.0
    );
    assert!(after.get("tribute_assistant_telegram_updates_total", &[]) >= 3.0);
    assert_eq!(after.get("tribute_assistant_telegram_flood_waits_total", &[]), 1.0);
    assert!(after.get("tribute_assistant_telegram_last_update_timestamp_seconds", &[]) > 1.7e9);
    assert_eq!(after.get("tribute_assistant_telegram_connected", &[]), 1.0);

    // The seam: a source wired later shows up in the next scrape.
    let sample = Sample { labels: vec![("direction".into(), "in".into())], value: 4.0 };
    app.ops_state().unwrap().set_source(CUSTOMER_MESSAGES, "", Kind::Counter, Arc::new(Fixed(vec![sample])));
    assert_eq!(scrape(&base).await.get(CUSTOMER_MESSAGES, &[("direction", "in")]), 4.0);
    app.shutdown().await;
}

#[tokio::test]
async fn healthz_is_ok_and_turns_503_while_telegram_is_disconnected() {
    let app = TestApp::spawn_with(SandboxOptions { ops_listener: true, ..SandboxOptions::default() }).await;
    let url = format!("{}/healthz", app.ops_url().unwrap());
    let get = || async {
        let r = crate::support::http().get(&url).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    app.post_order(&order(701).by("Anna").details("no id"));
    app.wait_settled(1, SETTLE).await.unwrap();
    let (status, body) = get().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"]["ok"], true);
    assert_eq!(body["telegram"]["connected"], true);
    assert!(body["updates"]["last_update_at"].is_string(), "{body}");

    app.world.disconnect();
    let body = eventually("/healthz to turn 503", || async {
        let (status, body) = get().await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["telegram"]["connected"], false);
    assert_eq!(body["database"]["ok"], true, "only the failing check fails: {body}");

    app.world.reconnect();
    eventually("/healthz to recover", || async { (get().await.0 == 200).then_some(()) }).await;
    app.shutdown().await;
}

// ---- check, as the real binary ------------------------------------------------------

/// A config for `check` with everything present: a data dir, an authorised
/// session file (seeded as `login` leaves it), a moderator chat, the backend.
async fn check_setup(dir: &std::path::Path, backend_url: &str) -> std::path::PathBuf {
    use grammers_session::types::PeerInfo;
    use grammers_session::Session;
    let data = dir.join("data");
    let session =
        tribute_assistant::telegram::grammers::session::open_session(&data.join("telegram.session")).await.unwrap();
    session.cache_peer(PeerInfo::User { id: 4242, auth: None, bot: Some(false), is_self: Some(true) }).await.unwrap();
    session.close().await;
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[telegram]\napi_id = 12345\nmoderator_chat = -1001\n[backend]\nurl = {backend_url:?}\n"
        ),
    )
    .unwrap();
    config
}

async fn run_check(config: &std::path::Path, secret: &str) -> (i32, String) {
    let (config, secret) = (config.to_owned(), secret.to_owned());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"))
            .args(["check", "--config"])
            .arg(&config)
            .env("TRIBUTE_ASSISTANT_BACKEND_SECRET", secret)
            .env("TRIBUTE_ASSISTANT_API_HASH", "0123456789abcdef0123456789abcdef")
            .env_remove("TRIBUTE_ASSISTANT_BACKEND_URL")
            .env_remove("TRIBUTE_ASSISTANT_DATA_DIR")
            .env_remove("TRIBUTE_ASSISTANT_API_ID")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("TRIBUTE_ASSISTANT_QDRANT_URL")
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await
    .unwrap()
}

fn line_of<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("no {name} line in\n{out}"))
}

#[tokio::test]
async fn check_reports_a_wrong_hmac_secret_as_failed_with_the_fix_and_the_right_one_as_passed() {
    let backend = ReferenceBackend::start(SecretString::from("the-right-secret")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = check_setup(dir.path(), &backend.url()).await;

    let (code, out) = run_check(&config, "a-wrong-secret").await;
    assert_eq!(code, 1, "{out}");
    let line = line_of(&out, "backend handshake");
    assert!(line.contains('✘') && line.contains("bad_signature"), "{out}");
    let fix = out.lines().skip_while(|l| !l.contains("backend handshake")).nth(1).unwrap();
    assert!(fix.contains("fix:") && fix.contains("HMAC secrets differ"), "{out}");
    assert!(!out.contains("a-wrong-secret"), "the secret is never printed");

    let (code, out) = run_check(&config, "the-right-secret").await;
    assert_eq!(code, 0, "{out}");
    assert!(line_of(&out, "backend handshake").contains('✔'), "{out}");
    assert!(line_of(&out, "telegram session").contains("user id 4242"), "{out}");
    assert!(line_of(&out, "LLM endpoint").contains('–'), "{out}");
    assert!(out.contains("All checks passed."), "{out}");

    // A backend that is down is a ✘ that says so.
    let url = backend.url();
    backend.shutdown().await;
    let (code, out) = run_check(&config, "the-right-secret").await;
    assert_eq!(code, 1);
    assert!(line_of(&out, "backend handshake").contains(&format!("cannot reach {url}/health")), "{out}");
}

/// `PRAGMA data_version` seen from a connection of our own: it changes
/// exactly when another connection commits to the file.
async fn data_version(conn: &mut sqlx::SqliteConnection) -> i64 {
    sqlx::query_scalar("PRAGMA data_version").fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn healthz_never_writes_to_the_database() {
    use sqlx::Connection;
    use tribute_assistant::ops::{Metrics, OpsState, TelegramStats};
    use tribute_assistant::store::Store;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("health.sqlite");
    let store = Store::open(&path).await.unwrap();
    let state = OpsState::new(store.clone(), Arc::new(Metrics::default()), Arc::new(TelegramStats::default()), None);
    let server = tribute_assistant::ops::start_ops_server(([127, 0, 0, 1], 0).into(), Arc::new(state)).await.unwrap();
    let mut watcher = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let before = data_version(&mut watcher).await;
    for _ in 0..20 {
        let answer: Value =
            crate::support::http().get(format!("{}/healthz", server.url())).send().await.unwrap().json().await.unwrap();
        assert_eq!(answer["database"]["ok"], true, "{answer}");
        assert!(answer["database"]["query_ms"].is_u64(), "{answer}");
    }
    assert_eq!(data_version(&mut watcher).await, before, "a /healthz probe committed to the database");
    // The watcher does see a commit by the store, so the check above means something.
    store.store_invalid_webhook("key", "{", "not JSON").await.unwrap();
    assert_ne!(data_version(&mut watcher).await, before);
    server.shutdown().await;
    store.close().await;
}
