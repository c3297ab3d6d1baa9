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
    assert!(r["thresholds"]["min_curated_score"].is_null(), "not configured: the corpus's bar (lexical: 0.4)");

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
    let root = crate::support::repo();
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

/// Hybrid search: `kb ingest` calibrates the corpus (its dense scale and its
/// bar from its own pseudo-questions), `kb eval` shows how well the
/// confidence separates right from wrong and suggests a bar from the
/// questions, `--learn` refits the weights on them (stored, and the bar moves
/// with them), and the old hand-set cosine settings are refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_eval_shows_the_separation_and_learns_the_weights_from_the_publishers_questions() {
    use super::support::openai_embeddings::{EmbeddingServer, Script};
    let server = EmbeddingServer::start(Script { dimension: 64, ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let embedding = format!(
        "[knowledge.embedding]\nbase_url = \"{}\"\nmodel = \"scripted-hash\"\ndimension = 64\n",
        server.base_url()
    );
    std::fs::write(&config, &embedding).unwrap();
    let set = crate::support::repo().join("knowledge/eval.jsonl");
    let run = |args: Vec<String>| {
        let (data, config) = (dir.path().to_owned(), config.clone());
        tokio::task::spawn_blocking(move || bin(&data).arg("--config").arg(&config).args(&args).output().unwrap())
    };
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };
    ok(run(vec!["kb".into(), "ingest".into()]).await.unwrap());
    let stored = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.path().join("knowledge/calibration.json")).unwrap()).unwrap()
    };
    let before = stored();
    assert_eq!(before["dense_model"], "scripted-hash");
    assert!(before["questions"].as_u64().unwrap() > before["sections"].as_u64().unwrap(), "{before}");
    assert!(before["model"]["learnt_from"].as_str().unwrap().contains("starter FAQ"), "the shipped prior");

    let eval = |learn: bool| {
        let mut args: Vec<String> = vec!["kb".into(), "eval".into(), "--json".into()];
        if learn {
            args.push("--learn".into());
        }
        args.push(set.display().to_string());
        run(args)
    };
    let r: serde_json::Value = serde_json::from_slice(&ok(eval(false).await.unwrap()).stdout).unwrap();
    assert_eq!(r["dense_fallbacks"], 0);
    assert_eq!(r["wrong"], 0, "{r}");
    let sep = &r["separation"];
    let curve = sep["curve"].as_array().unwrap();
    assert!(!curve.is_empty());
    // Best first, and the counts only grow as the threshold falls.
    for pair in curve.windows(2) {
        assert!(pair[0]["threshold"].as_f64() > pair[1]["threshold"].as_f64());
        assert!(pair[0]["resolved"].as_u64() <= pair[1]["resolved"].as_u64());
        assert!(pair[0]["wrong"].as_u64() <= pair[1]["wrong"].as_u64());
    }
    let auc = sep["auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc), "{sep}");
    if let Some(t) = sep["suggested_min_curated_score"].as_f64() {
        let step = curve.iter().find(|s| s["threshold"].as_f64() == Some(t)).unwrap();
        assert_eq!(step["wrong"], 0, "no wrong answer from the suggested bar up: {sep}");
    }

    let learnt = ok(eval(true).await.unwrap());
    assert!(String::from_utf8_lossy(&learnt.stderr).contains("weights learnt from 24 answerable questions"));
    let after = stored();
    assert!(after["model"]["learnt_from"].as_str().unwrap().contains("24 questions"), "{}", after["model"]);
    assert_ne!(after["model"]["weights"], before["model"]["weights"]);
    let taught = after["learnt"].as_object().unwrap();
    assert_eq!(taught.len(), 24, "every answerable question, with its labelled candidates");
    assert!(taught.values().all(|c| c.as_array().unwrap().iter().any(|s| s[1] == true)), "{taught:?}");
    // The same set again replaces its questions: still 24, not 48.
    ok(eval(true).await.unwrap());
    assert_eq!(stored()["learnt"].as_object().unwrap().len(), 24);

    std::fs::write(&config, format!("{embedding}min_similarity = 0.8\nsure_similarity = 0.9\n")).unwrap();
    let bad = run(vec!["kb".into(), "search".into(), "x".into()]).await.unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("min_similarity") && err.contains("calibrated"), "{err}");
}
