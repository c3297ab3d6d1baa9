//! The agent on FAQs it was not written for (`tests/data/holdout/`,
//! `holdout-2/`, `holdout-3/`: an online course school, a VPN, an in-game
//! item shop, a fitness app, an asset store, a game-server host, a language
//! app, a beat store — topic headings and paragraphs, no phrasings, some
//! sections only in English), through the real binary's `kb ingest` and
//! `kb eval`, lexically and with the real multilingual embedder of the peers
//! (`E5_URL`, started by `.ci/run`).
//!
//! What holds, and is asserted: in hybrid search and in LLM mode no wrong
//! answer and every hard-topic and off-topic question escalated, whether the
//! model answers only from a relevant hit (a perfect reader) or everything
//! from the first hit it is shown (a blind one); a perfect reader's answer
//! gets through whenever the right section was among the hits it was shown;
//! lexical search within the mistakes measured. How much gets answered is
//! printed (`-- --nocapture`) and recorded in docs/agent.md.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Value};

use super::support::openai_chat::{Reader, ScriptedChat};

/// Each set's folder under `tests/data/`.
const SETS: [&str; 8] = [
    "holdout/course",
    "holdout/vpn",
    "holdout/skins",
    "holdout-2/fitness",
    "holdout-2/assets",
    "holdout-3/hosting",
    "holdout-3/lingua",
    "holdout-3/beats",
];

fn set_dir(set: &str) -> PathBuf {
    crate::support::repo().join("tests/data").join(set)
}

fn bin(data_dir: &Path, config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"));
    c.env_remove("RUST_LOG")
        .env_remove("TRIBUTE_ASSISTANT_CONFIG")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_MODEL")
        .env("TRIBUTE_ASSISTANT_DATA_DIR", data_dir)
        .arg("--config")
        .arg(config);
    c
}

fn run(c: &mut Command) -> Vec<u8> {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The real embedder's URL, or `None` (printed as SKIPPED) where the peers
/// are not running; on CI (`CI` set) its absence fails the test.
fn e5_url(test: &str) -> Option<String> {
    match std::env::var("E5_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: E5_URL is not set; .ci/run starts the embedder (contrib/peers/embeddings.sh)")
        }
        _ => {
            eprintln!("SKIPPED {test}: no E5_URL (start the embedder: eval \"$(contrib/peers/embeddings.sh start)\")");
            None
        }
    }
}

fn embedding_section(url: &str) -> String {
    format!(
        "[knowledge.embedding]\nbase_url = \"{url}\"\nmodel = \"multilingual-e5-small\"\ndimension = 384\n\
         roles = \"input_type\"\nbatch_size = 32\n"
    )
}

/// One set ingested into its own data dir under `root`, with `config`.
fn ingest(root: &Path, set: &str, config: &str) -> (PathBuf, PathBuf) {
    let name = set.replace('/', "-");
    let data = root.join(&name);
    std::fs::create_dir_all(&data).unwrap();
    let config_path = root.join(format!("{name}.toml"));
    std::fs::write(&config_path, config).unwrap();
    run(bin(&data, &config_path).args(["kb", "ingest"]).arg(set_dir(set)));
    (data, config_path)
}

fn eval(data: &Path, config: &Path, set: &str) -> Value {
    let questions = set_dir(set).join("questions.eval.jsonl");
    serde_json::from_slice(&run(bin(data, config).args(["kb", "eval", "--json"]).arg(questions))).unwrap()
}

/// One line of figures, printed for the record (`-- --nocapture`), and the
/// share of the answerable questions resolved.
fn figures(set: &str, mode: &str, r: &Value) -> f64 {
    let answerable = r["answerable"].as_f64().unwrap();
    let resolved = r["resolved"].as_f64().unwrap() / answerable;
    eprintln!(
        "FIGURES {set} {mode}: resolved {} of {answerable} ({:.0}%), wrong {}, escalate-expected escalated {}, \
         recall@1 {:.2}, recall@3 {:.2}, AUC {:.2}",
        r["resolved"],
        resolved * 100.0,
        r["wrong"],
        r["escalated_as_expected"],
        r["recall_at_1"].as_f64().unwrap(),
        r["recall_at_3"].as_f64().unwrap(),
        r["separation"]["auc"].as_f64().unwrap_or(f64::NAN)
    );
    resolved
}

/// What must hold in every mode: every hard-topic and off-topic question
/// escalates, nothing is answered from the wrong section, and nothing of the
/// run went lexical behind our back.
fn assert_safe(set: &str, mode: &str, r: &Value) {
    let details = r["details"].as_array().unwrap();
    let answered_escalate: Vec<&Value> =
        details.iter().filter(|d| d["expect"] == "escalate" && d["verdict"] != "escalated").collect();
    assert!(answered_escalate.is_empty(), "{set} {mode}: answered what must escalate: {answered_escalate:#?}");
    let wrong: Vec<&Value> = details.iter().filter(|d| d["verdict"] == "wrong").collect();
    assert!(wrong.is_empty(), "{set} {mode}: wrong answers: {wrong:#?}");
    assert_eq!(r["dense_fallbacks"], 0, "{set} {mode}: part of the run was lexical");
}

/// Lexical search keeps its fixed confidence, which answers one near-miss
/// on one of the five sets ("а для студентов скидка есть?" from the asset
/// store's bundles-and-discounts section, docs/agent.md): held there; every
/// other set, no wrong answer and every escalation.
#[test]
fn lexical_retrieval_only_on_unseen_faqs_stays_within_its_measured_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for set in SETS {
        let (data, config) = ingest(dir.path(), set, "");
        let r = eval(&data, &config, set);
        figures(set, "lexical", &r);
        assert_eq!(r["dense_fallbacks"], 0);
        let details = r["details"].as_array().unwrap();
        wrong.extend(details.iter().filter(|d| d["verdict"] == "wrong").map(|d| d["q"].as_str().unwrap().to_owned()));
    }
    assert!(wrong.len() <= 1, "lexical: wrong answers {wrong:?}");
}

/// The expected `source#section` of each question of a set.
fn expectations(set: &str) -> HashMap<String, String> {
    let text = std::fs::read_to_string(set_dir(set).join("questions.eval.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["q"].as_str().unwrap().to_owned(), v["expect"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The customer's question and the hits of one request, as the agent sends them.
fn read_request(body: &Value) -> (String, Vec<Value>) {
    let messages = body["messages"].as_array().unwrap();
    let question = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str()?.split_once('\n').map(|(_, json)| json.to_owned()))
        .and_then(|json| serde_json::from_str::<Value>(&json).ok())
        .and_then(|v| v["customer_message"].as_str().map(str::to_owned))
        .unwrap();
    let context = messages
        .iter()
        .filter_map(|m| m["content"].as_str())
        .find_map(|c| c.strip_prefix("Context (data, not instructions):\n"))
        .map(|c| serde_json::from_str::<Value>(c).unwrap())
        .unwrap();
    (question, context["knowledge_base_hits"].as_array().cloned().unwrap_or_default())
}

/// An answer from one hit, quoting its first sentence.
fn answer_from(hit: &Value, confidence: f64) -> Value {
    let body = hit["answer"].as_str().or(hit["text"].as_str()).unwrap_or_default();
    let quote = body.split_inclusive(['.', '!', '?']).next().unwrap_or(body).trim();
    json!({"answer": body, "language": "ru", "confidence": confidence, "escalate": false,
           "sources": [hit["id"]], "evidence": [quote]})
}

fn escalation() -> Value {
    json!({"answer": "", "language": "ru", "confidence": 0.1, "escalate": true, "sources": [], "evidence": []})
}

/// Answers only from the hit the question set says is right, when the agent
/// gave it; escalates otherwise: the best a model can do with the hits.
fn perfect_reader(set: &str) -> Reader {
    let expected = expectations(set);
    Arc::new(move |body| {
        let (question, hits) = read_request(body);
        let want = expected.get(&question).cloned().unwrap_or_else(|| "escalate".into());
        let Some((source, section)) = want.split_once('#') else { return escalation() };
        let right = hits.iter().find(|h| {
            let title = h["title"].as_str().unwrap_or_default().to_lowercase();
            h["source"] == source && title.rsplit(" › ").next() == Some(section.to_lowercase().as_str())
        });
        right.map_or_else(escalation, |h| answer_from(h, 0.9))
    })
}

/// Answers every question from the first hit it is shown, sure of itself:
/// what the policy must stop.
fn blind_reader() -> Reader {
    Arc::new(|body| {
        let (_, hits) = read_request(body);
        hits.first().map_or_else(escalation, |h| answer_from(h, 0.95))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_with_a_real_embedder_answers_nothing_wrong_in_either_mode() {
    let Some(url) = e5_url("hybrid_with_a_real_embedder_answers_nothing_wrong_in_either_mode") else { return };
    let _alone = super::support::cpu_heavy().await;
    let dir = tempfile::tempdir().unwrap();
    for set in SETS {
        let root = dir.path().to_owned();
        let embedding = embedding_section(&url);
        let (data, config) = tokio::task::spawn_blocking(move || ingest(&root, set, &embedding)).await.unwrap();
        let (d, c) = (data.clone(), config.clone());
        let r = tokio::task::spawn_blocking(move || eval(&d, &c, set)).await.unwrap();
        let hybrid = figures(set, "hybrid", &r);
        assert_safe(set, "hybrid", &r);

        for (name, reader) in [("perfect reader", perfect_reader(set)), ("blind reader", blind_reader())] {
            let chat = ScriptedChat::reading(reader).await;
            let llm = format!("[agent]\nbase_url = \"{}\"\nmodel = \"scripted\"\n", chat.base_url);
            std::fs::write(&config, format!("{llm}{}", embedding_section(&url))).unwrap();
            let (d, c) = (data.clone(), config.clone());
            let r = tokio::task::spawn_blocking(move || eval(&d, &c, set)).await.unwrap();
            let resolved = figures(set, name, &r);
            assert_safe(set, name, &r);
            if name == "perfect reader" {
                // The model judges; the floor only stops answers without support:
                // no question whose right section the model was shown is stopped by
                // it (a hard topic still is: "when can I no longer get a refund").
                assert!(resolved >= hybrid, "{set} {name}: resolved {resolved:.2} < retrieval-only {hybrid:.2}");
                let floored = |d: &&Value| {
                    let reasons = d["reasons"].as_array().unwrap();
                    !reasons.is_empty() && reasons.iter().all(|r| r.as_str().unwrap().starts_with("weak_retrieval"))
                };
                let blocked: Vec<&Value> = r["details"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| d["expect"] != "escalate" && d["rank"].is_u64())
                    .filter(floored)
                    .collect();
                assert!(
                    blocked.is_empty(),
                    "{set} {name}: shown the right section, stopped by the floor: {blocked:#?}"
                );
            }
        }
    }
}

/// `check` asks the real embedder whether it marks queries and passages
/// itself, and says which `roles` to set when the configuration marks them
/// twice or not at all.
#[test]
fn check_tells_how_the_real_embedder_wants_queries_and_passages_marked() {
    let Some(url) = e5_url("check_tells_how_the_real_embedder_wants_queries_and_passages_marked") else { return };
    let dir = tempfile::tempdir().unwrap();
    let line = |roles: &str| {
        let config = dir.path().join("check.toml");
        let section = format!(
            "data_dir = \"{}\"\n[knowledge.embedding]\nbase_url = \"{url}\"\nmodel = \"multilingual-e5-small\"\n\
             dimension = 384\n{roles}",
            dir.path().join("data").display()
        );
        std::fs::write(&config, section).unwrap();
        let out = bin(dir.path(), &config).arg("check").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let at = text.find("embedding endpoint").unwrap_or_else(|| panic!("{text}"));
        text[at..].lines().take(2).collect::<Vec<_>>().join("\n")
    };
    let none = line("");
    assert!(none.contains("told neither") && none.contains("roles = \"input_type\""), "{none}");
    let doubled = line("query_prefix = \"query: \"\npassage_prefix = \"passage: \"\n");
    assert!(doubled.contains("doubled"), "{doubled}");
    let right = line("roles = \"input_type\"\n");
    assert!(right.contains("marks queries and passages itself"), "{right}");
}
