//! A live knowledge base: while the daemon runs it holds the embedded
//! index, and `kb ingest`, `kb search`, `kb stats`, `kb eval` and `ask` go
//! through it; its customers' answers follow an ingest without a restart.
//! When a command cannot reach the index, the error says who holds it.

use std::path::Path;
use std::process::Output;

use tribute_assistant::knowledge::ingest::IngestInput;
use tribute_assistant::knowledge::live::{self, Endpoint, IngestRequest, SearchRequest};
use tribute_assistant::knowledge::{KnowledgeBase, KnowledgeError, KnowledgeSection, SourceText};
use tribute_testbed::serve::Testbed;

use crate::support::wait::{try_eventually, SETTLE};

const EXE: &str = env!("CARGO_BIN_EXE_tribute-assistant");

/// A FAQ section no starter document resembles.
const ZORBLAX_FAQ: &str = "# Payment\n\n## Can I pay with a Zorblax gift card?\n\n\
    Yes: Zorblax gift cards are accepted at checkout. Enter the code from the back of the card \
    in the gift card field before you pay.\n";
const ZORBLAX_QUESTION: &str = "Can I pay with a Zorblax gift card?";
const ZORBLAX_ANSWER: &str = "Zorblax gift cards are accepted at checkout";

fn config() -> tribute_assistant::knowledge::KnowledgeConfig {
    KnowledgeSection::default().resolve(&|_| None).unwrap()
}

/// Runs the real binary off the runtime's threads.
async fn cli(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(EXE)
            .args(["--log", "warn"])
            .args(&args)
            .env_remove("TRIBUTE_ASSISTANT_DATA_DIR")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn args(parts: &[&str], tail: &[&Path]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).chain(tail.iter().map(|p| p.display().to_string())).collect()
}

#[tokio::test]
async fn a_second_open_of_the_embedded_index_is_busy_and_names_the_dir() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(dir.path(), &config()).await.unwrap();
    let second = KnowledgeBase::open(dir.path(), &config()).await.expect_err("one open at a time");
    assert!(matches!(second, KnowledgeError::Busy { .. }), "{second}");
    let message = second.to_string();
    assert!(message.contains(&dir.path().join("knowledge").display().to_string()), "{message}");
    assert!(message.contains("a running daemon"), "{message}");
    drop(kb);
    KnowledgeBase::open(dir.path(), &config()).await.expect("free again once the first is closed");
}

/// The daemon's side in-process: the endpoint file (private, gone after
/// shutdown), requests run on the very index the daemon searches, and a
/// request without the token is refused.
#[tokio::test]
async fn the_knowledge_listener_runs_requests_on_the_daemons_index_for_its_token_holder_only() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(dir.path(), &config()).await.unwrap();
    let server = live::serve(kb.clone(), dir.path()).await.unwrap();
    let endpoint = Endpoint::read(dir.path()).unwrap().expect("the endpoint file is written");
    assert_eq!(Some(endpoint.url.as_str()), server.url().as_deref());
    assert_eq!(endpoint.pid, std::process::id());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(Endpoint::path(dir.path())).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the token is the owner's");
    assert!(!format!("{endpoint:?}").contains(&endpoint.token), "the token stays out of Debug");

    let client = live::Client::new(endpoint.clone()).unwrap();
    let request = IngestRequest {
        documents: Some(vec![SourceText { source: "gift.md".into(), text: ZORBLAX_FAQ.into() }]),
        conversations: None,
        prune: false,
    };
    let done = client.ingest(&request).await.unwrap();
    assert_eq!((done.report.added, done.report.unchanged), (1, 0), "{done:?}");
    assert!(done.backend.starts_with("qdrant-edge"), "{}", done.backend);
    // The daemon's own handle sees it at once: one index.
    let own = kb.search(ZORBLAX_QUESTION, &Default::default(), 3).await.unwrap();
    assert_eq!(own.first().map(|h| h.source.as_str()), Some("gift.md"));
    let search = SearchRequest {
        query: ZORBLAX_QUESTION.into(),
        kind: None,
        language: Some("en".into()),
        limit: 3,
        prefer: true,
    };
    let hits = client.search(&search).await.unwrap();
    assert_eq!(hits.first().map(|h| h.title.as_str()), Some("Can I pay with a Zorblax gift card?"), "{hits:?}");
    assert_eq!(hits[0].confidence, own[0].confidence, "the same search, the same evidence");
    let pair = tribute_assistant::store::ApprovedPair {
        id: 1,
        conversation_id: 42,
        question: "Do you sell Zorblax gift cards?".into(),
        answer: "No, only the shops of Zorblax sell them.".into(),
        language: Some("en".into()),
        approved_by: 7001,
        approved_at: 0,
    };
    let pairs = IngestRequest { documents: None, conversations: Some(vec![pair]), prune: false };
    assert_eq!(client.ingest(&pairs).await.unwrap().report.added, 1);
    let stats = client.stats().await.unwrap().stats;
    assert_eq!((stats.doc_chunks, stats.conversation_chunks), (1, 1), "{stats:?}");
    let again = client.ingest(&request).await.unwrap();
    assert_eq!((again.report.added, again.report.unchanged, again.optimized_secs), (0, 1, None));

    let stranger = live::Client::new(Endpoint { token: "0".repeat(64), ..endpoint }).unwrap();
    let refused = stranger.stats().await.expect_err("a wrong token is refused");
    assert!(refused.to_string().contains("401"), "{refused}");
    assert!(stranger.search(&search).await.is_err());
    let refused = stranger.ping().await.expect_err("a ping without the token is refused too");
    assert!(refused.to_string().contains("401"), "{refused}");
    client.ping().await.unwrap();

    server.shutdown().await;
    assert!(Endpoint::read(dir.path()).unwrap().is_none(), "the endpoint file goes with the listener");
    assert!(client.ping().await.is_err(), "nobody listens any more");
}

/// What a command says when the index is held and it cannot go through
/// the daemon: by a process that takes no requests, and by a daemon that
/// does not answer; and that a stale endpoint file of a killed daemon does
/// not stand in the way once the index is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_says_who_holds_the_index_when_it_cannot_go_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let kb = KnowledgeBase::open(data, &config()).await.unwrap();
    let input = IngestInput { documents: Some(tribute_assistant::knowledge::starter::sources()), conversations: None };
    kb.ingest(input, false, None).await.unwrap();

    let out = cli(args(&["kb", "search", "how do I pay", "--data-dir"], &[data])).await;
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is open in another process that takes no requests"), "{err}");
    assert!(err.contains(&data.join("knowledge").display().to_string()), "names the dir: {err}");
    assert!(!err.contains("WouldBlock"), "Edge's own words are not the message: {err}");

    // A daemon's endpoint at a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let stale = serde_json::json!({"url": format!("http://{closed}"), "token": "ab".repeat(32), "pid": 4242});
    std::fs::write(Endpoint::path(data), stale.to_string()).unwrap();
    for command in [&["kb", "stats"][..], &["kb", "ingest"], &["ask", "how do I pay"]] {
        let mut a: Vec<&str> = command.to_vec();
        a.push("--data-dir");
        let out = cli(args(&a, &[data])).await;
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("the daemon (pid 4242) holds the knowledge base"), "{command:?}: {err}");
        assert!(err.contains("does not answer") && err.contains("kill 4242"), "{command:?}: {err}");
    }

    // The holder is gone (a killed daemon): its file is no obstacle.
    drop(kb);
    let out = cli(args(&["kb", "stats", "--json", "--data-dir"], &[data])).await;
    assert!(out.status.success(), "{}", text(&out));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(stats["doc_chunks"].as_u64().unwrap() > 0, "{stats}");
}

/// The publisher's session: the real `run` against the testbed holds the
/// index, empty at its start; the starter FAQ and then a new FAQ file are ingested, searched, counted and asked about
/// while it runs, and a customer's question is answered from it without a
/// restart. A rebuild is refused with the way to do it; a graceful stop
/// takes the endpoint file along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_daemon_runs_kb_commands_go_through_it_and_its_answers_follow_an_ingest() {
    use tokio::process::Command;
    let _alone = crate::support::cpu_heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let tb = Testbed::start(&crate::support::testbed::args(dir.path())).await.unwrap();
    let config = tb.ready.config.clone();
    let data = dir.path().join("data");
    let kb = |parts: &[&str]| {
        let mut a = vec!["--config".to_owned(), config.clone()];
        a.extend(parts.iter().map(|s| s.to_string()));
        cli(a)
    };

    let mut daemon = Command::new(EXE)
        .args(["--config", &config, "--log", "warn", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let endpoint = try_eventually(|| async { Endpoint::read(&data).ok().flatten() })
        .await
        .unwrap_or_else(|| panic!("the daemon wrote no endpoint file in {SETTLE:?}"));
    assert_eq!(Some(endpoint.pid), daemon.id());

    // A fresh install: the daemon started on an empty knowledge base and fills it while it runs.
    let out = kb(&["kb", "ingest"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("through the running daemon"), "{}", text(&out));
    let starter: serde_json::Value = serde_json::from_slice(&kb(&["kb", "stats", "--json"]).await.stdout).unwrap();
    let starter_chunks = starter["doc_chunks"].as_u64().unwrap();
    assert!(starter_chunks > 10, "{starter}");

    let faq_dir = dir.path().join("more");
    std::fs::create_dir_all(&faq_dir).unwrap();
    std::fs::write(faq_dir.join("gift.md"), ZORBLAX_FAQ).unwrap();
    let out = kb(&["kb", "ingest", &faq_dir.display().to_string()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("added 1,") && stdout.contains("through the running daemon"), "{stdout}");

    let out = kb(&["kb", "search", ZORBLAX_QUESTION, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits[0]["source"], "gift.md", "{hits}");

    let out = kb(&["kb", "stats", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["doc_chunks"].as_u64(), Some(starter_chunks + 1), "{stats}");

    let out = kb(&["ask", ZORBLAX_QUESTION, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["escalate"], false, "{answer}");
    assert!(answer["answer"].as_str().unwrap().contains(ZORBLAX_ANSWER), "{answer}");

    let set = dir.path().join("gift.eval.jsonl");
    std::fs::write(&set, format!("{}\n", serde_json::json!({"q": ZORBLAX_QUESTION, "expect": "gift.md"}))).unwrap();
    let out = kb(&["kb", "eval", &set.display().to_string(), "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resolved"], 1, "{report}");
    let out = kb(&["kb", "eval", &set.display().to_string(), "--learn"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop the daemon, run `kb eval --learn`"), "{}", text(&out));

    // A customer asks the daemon itself.
    let http = crate::support::http();
    let control = tb.ready.control.clone();
    let asked = std::time::Instant::now();
    let r = http
        .post(format!("{control}/customers/777/messages"))
        .json(&serde_json::json!({"text": ZORBLAX_QUESTION}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let reply = try_eventually(|| async {
        let chat: Vec<serde_json::Value> =
            http.get(format!("{control}/chats/777/messages")).send().await.ok()?.json().await.ok()?;
        chat.into_iter().find(|m| m["outgoing"] == true)
    })
    .await;
    let chat: serde_json::Value =
        http.get(format!("{control}/chats/777/messages")).send().await.unwrap().json().await.unwrap();
    let reply = reply.unwrap_or_else(|| panic!("no answer to the customer in {SETTLE:?}: {chat}"));
    assert!(reply["text"].as_str().unwrap_or_default().contains(ZORBLAX_ANSWER), "answered from the new FAQ: {chat}");
    eprintln!("live kb: the customer's answer from the new section came {:?} after the question", asked.elapsed());

    let out = kb(&["kb", "ingest", "--rebuild"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds the knowledge base") && err.contains("stop the daemon, run `kb ingest --rebuild`"),
        "{err}"
    );

    // A graceful stop removes the endpoint file; the commands open the index directly again.
    unsafe { libc::kill(daemon.id().unwrap() as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(SETTLE, daemon.wait()).await.expect("the daemon stops in time").unwrap();
    assert!(status.success(), "{status}");
    assert!(Endpoint::read(&data).unwrap().is_none());
    let out = kb(&["kb", "search", ZORBLAX_QUESTION, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    tb.shutdown().await;
}
