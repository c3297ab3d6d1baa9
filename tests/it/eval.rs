//! `kb eval` through the real binary on a tiny knowledge base, with every
//! figure computed by hand from the question set below.

use std::path::Path;
use std::process::Command;

fn bin(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"));
    c.env_remove("RUST_LOG").env_remove("TRIBUTE_ASSISTANT_CONFIG").env("TRIBUTE_ASSISTANT_DATA_DIR", data_dir);
    c.current_dir(std::env::temp_dir());
    c
}

/// Three one-question documents, the way a publisher writes them.
fn write_kb(root: &Path) {
    std::fs::create_dir_all(root.join("faq")).unwrap();
    std::fs::write(
        root.join("faq/pay.md"),
        "# How do I pay for diamonds?\n\nPay with a bank card in the Tribute bot.\n",
    )
    .unwrap();
    std::fs::write(
        root.join("faq/delivery.md"),
        "# How long does delivery take?\n\nDiamonds usually arrive within a few minutes.\n",
    )
    .unwrap();
    std::fs::write(root.join("faq/refunds.md"), "# Refunds\n\nRefunds go back to the same card in 3–10 days.\n")
        .unwrap();
    // A question set beside the documents is not ingested as knowledge.
    std::fs::write(root.join("faq/eval.jsonl"), "{\"q\":\"x\",\"expect\":\"escalate\"}\n").unwrap();
}

const QUESTIONS: &str = r#"{"q": "How do I pay for diamonds?", "expect": "pay.md#How do I pay for diamonds?"}
{"q": "how long does delivery take", "expect": "delivery.md"}

{"q": "I want a refund", "expect": "escalate", "note": "hard topic"}
{"q": "how long does delivery take", "expect": "pay.md"}
{"q": "zzzqqq xyzzy", "expect": "refunds.md"}
"#;

#[test]
fn kb_eval_figures_match_a_hand_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_kb(dir.path());
    let out = bin(&data).args(["kb", "ingest"]).arg(dir.path().join("faq")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin(&data).args(["kb", "stats", "--json"]).output().unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["sources"], 3, "eval.jsonl is not knowledge: {stats}");

    let set = dir.path().join("questions.jsonl");
    std::fs::write(&set, QUESTIONS).unwrap();
    let out = bin(&data).args(["kb", "eval", "--json"]).arg(&set).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    // 5 questions, 4 answerable (all but the refund). Found first: pay and
    // delivery; `pay.md` shares no word with the delivery question and
    // nothing matches the nonsense, so neither is retrieved at all.
    assert_eq!(r["questions"], 5);
    assert_eq!(r["answerable"], 4);
    assert_eq!(r["recall_at_1"], 0.5);
    assert_eq!(r["recall_at_3"], 0.5);
    assert_eq!(r["mrr"], 0.5);
    // Resolved: pay, delivery. Escalated: the refund (hard topic), the
    // nonsense (nothing found). Wrong: the delivery answer where pay.md was expected.
    assert_eq!(r["resolved"], 2, "{r}");
    assert_eq!(r["escalated"], 2, "{r}");
    assert_eq!(r["wrong"], 1, "{r}");
    assert_eq!(r["escalated_as_expected"], 1);
    assert_eq!(r["thresholds"]["mode"], "retrieval");
    assert_eq!(r["thresholds"]["min_curated_score"], 0.4, "the defaults, on a three-document corpus");

    let details = r["details"].as_array().unwrap();
    assert_eq!(details.len(), 5);
    assert_eq!(details[0]["verdict"], "resolved");
    assert_eq!(details[0]["rank"], 1);
    assert_eq!(details[0]["answered_from"][0], "pay.md#How do I pay for diamonds?");
    assert_eq!(details[2]["verdict"], "escalated");
    assert!(details[2]["reasons"][0].as_str().unwrap().starts_with("hard_topic"), "{}", details[2]);
    assert_eq!(details[3]["verdict"], "wrong");
    assert_eq!(details[3]["answered_from"][0], "delivery.md#How long does delivery take?");
    assert!(details[3]["rank"].is_null());

    // Nothing is stored: the evaluation never opens the daemon's database.
    assert!(!data.join(tribute_assistant::DATABASE_FILE).exists());
    let text = bin(&data).args(["kb", "eval"]).arg(&set).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("recall@1 0.50  recall@3 0.50  MRR 0.50"), "{text}");
    assert!(text.contains("resolved 2  escalated 2  wrong 1"), "{text}");
    assert!(text.contains("✘ WRONG"), "{text}");

    std::fs::write(&set, "{\"q\": \"no expectation\"}\n").unwrap();
    let out = bin(&data).args(["kb", "eval"]).arg(&set).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The retrieval-only targets on the starter FAQ, on the set the defaults
/// were tuned with and on two written without looking at the results: no
/// wrong answer, every hard or off-topic question escalated, recall@3 ≥ 0.9,
/// and at least 60% of the answerable questions resolved.
#[test]
fn the_starter_faq_meets_the_retrieval_only_targets_on_every_question_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(dir.path()).args(["kb", "ingest"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for set in
        ["knowledge/eval.jsonl", "tests/data/starter-holdout.eval.jsonl", "tests/data/starter-holdout-2.eval.jsonl"]
    {
        let out = bin(dir.path()).args(["kb", "eval", "--json"]).arg(root.join(set)).output().unwrap();
        assert!(out.status.success(), "{set}: {}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let details = r["details"].as_array().unwrap();
        let answerable = details.iter().filter(|d| d["expect"] != "escalate").count() as f64;
        let escalate_expected = details.len() as f64 - answerable;
        assert_eq!(r["wrong"], 0, "{set}: {r}");
        assert_eq!(
            r["escalated"].as_f64().unwrap() - (answerable - r["resolved"].as_f64().unwrap()),
            escalate_expected
        );
        assert!(r["recall_at_3"].as_f64().unwrap() >= 0.9, "{set}: {r}");
        assert!(
            r["resolved"].as_f64().unwrap() / answerable >= 0.6,
            "{set}: resolved {} of {answerable}",
            r["resolved"]
        );
    }
}

/// Hybrid search: `kb eval` says where the embedding model's cosines separate
/// the right hits from the rest, and the suggested scale, once configured,
/// raises no wrong answer and loses no resolved one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_eval_measures_the_dense_scale_and_the_measured_scale_is_safe() {
    use super::support::openai_embeddings::{EmbeddingServer, Script};
    let server = EmbeddingServer::start(Script { dimension: 64, ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let embedding = format!(
        "[knowledge.embedding]\nbase_url = \"{}\"\nmodel = \"scripted-hash\"\ndimension = 64\n",
        server.base_url()
    );
    std::fs::write(&config, &embedding).unwrap();
    let set = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge/eval.jsonl");
    let run = |args: Vec<String>| {
        let (data, config) = (dir.path().to_owned(), config.clone());
        tokio::task::spawn_blocking(move || {
            let out = bin(&data).arg("--config").arg(&config).args(&args).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        })
    };
    run(vec!["kb".into(), "ingest".into()]).await.unwrap();
    let eval = || run(vec!["kb".into(), "eval".into(), "--json".into(), set.display().to_string()]);
    let before: serde_json::Value = serde_json::from_slice(&eval().await.unwrap()).unwrap();
    let dense = &before["dense"];
    assert!(dense["right"]["n"].as_u64().unwrap() > 10, "{dense}");
    let min = dense["suggested_min_similarity"].as_f64().unwrap();
    assert_eq!(min, dense["wrong"]["max"].as_f64().unwrap(), "above every cosine that must not answer: {dense}");
    // The scripted model (hashed word prefixes) does not separate them on
    // this set; a scale starting above every wrong cosine is safe all the same.
    let sure = match dense["suggested_sure_similarity"].as_f64() {
        Some(sure) => sure,
        None => min + 0.1,
    };
    assert_eq!(before["wrong"], 0, "hybrid, cosines only recorded: {before}");

    std::fs::write(&config, format!("{embedding}min_similarity = {min}\nsure_similarity = {sure}\n")).unwrap();
    let after: serde_json::Value = serde_json::from_slice(&eval().await.unwrap()).unwrap();
    assert_eq!(after["wrong"], 0, "{after}");
    assert!(
        after["resolved"].as_u64() >= before["resolved"].as_u64(),
        "{} → {}",
        before["resolved"],
        after["resolved"]
    );
    std::fs::write(&config, format!("{embedding}min_similarity = {sure}\nsure_similarity = {min}\n")).unwrap();
    let data = dir.path().to_owned();
    let bad = tokio::task::spawn_blocking(move || {
        bin(&data).arg("--config").arg(&config).args(["kb", "search", "x"]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("min_similarity"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
