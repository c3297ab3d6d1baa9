//! The testbed as a publisher and the chaos run use it: the stand-in world
//! in one place, a control API, a config the real daemon runs with — and
//! the real binary's `run`, killed with SIGKILL at chosen moments, losing
//! and doubling nothing.

use std::path::Path;

use tribute_testbed::chaos::{chaos, summary, ChaosArgs, KillMoment};
use tribute_testbed::serve::Testbed;

use crate::support::testbed::{args, TestbedProcess};
use crate::support::wait::{try_eventually, SETTLE};

#[tokio::test]
async fn the_control_api_posts_orders_and_messages_and_reports_what_the_world_saw() {
    let dir = tempfile::tempdir().unwrap();
    let tb = Testbed::start(&args(dir.path())).await.unwrap();
    let http = crate::support::http();
    let url = |p: &str| format!("{}{p}", tb.ready.control);

    // The files a daemon needs, secrets private.
    let config = std::fs::read_to_string(&tb.ready.config).unwrap();
    assert!(config.contains(&tb.ready.backend) && config.contains("session_file"), "{config}");
    use std::os::unix::fs::PermissionsExt;
    for f in ["backend.secret", "testbed.session", "api_hash"] {
        let mode = std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    tribute_assistant::app::config::FileConfig::load(Path::new(&tb.ready.config)).expect("the written config loads");

    let r = http
        .post(url("/backend/pending"))
        .json(&serde_json::json!({"account_id": "123456", "product": "100 Diamonds"}));
    assert_eq!(r.send().await.unwrap().status(), 204);
    let order = serde_json::json!({"customer_id": 501, "customer_name": "Иван", "product": "100 Diamonds",
        "price": "€5.00", "details": "ID 123456"});
    let posted: serde_json::Value = http.post(url("/orders")).json(&order).send().await.unwrap().json().await.unwrap();
    let id = posted["message_id"].as_i64().unwrap();
    assert_eq!(posted["order_ref"], format!("TA-93372553-{id}"));
    let bad = http.post(url("/orders")).json(&serde_json::json!({"customer_id": 1})).send().await.unwrap();
    assert!(bad.status().is_client_error(), "a clear refusal for a malformed order: {}", bad.status());

    let r = http.post(url("/customers/777/messages")).json(&serde_json::json!({"text": "привет"}));
    assert_eq!(r.send().await.unwrap().status(), 200);
    let chat: Vec<serde_json::Value> = http.get(url("/chats/777/messages")).send().await.unwrap().json().await.unwrap();
    assert_eq!(chat.len(), 1);
    assert_eq!((chat[0]["text"].as_str(), chat[0]["outgoing"].as_bool()), (Some("привет"), Some(false)));

    let entry: serde_json::Value = http.get(url(&format!("/orders/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!((entry["tribute_replies"].as_u64(), entry["send_presses"].as_u64()), (Some(0), Some(0)));
    assert_eq!(entry["activations"].as_u64(), Some(0), "no daemon runs: nothing happened");
    let stats: serde_json::Value = http.get(url("/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["totals"]["orders"], 1);
    assert_eq!(http.get(url("/orders/999")).send().await.unwrap().status(), 404);
    tb.shutdown().await;
}

/// The short form of `tribute-assistant chaos`: the real binary, SIGKILLed
/// at every kind of moment, nothing lost, nothing doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_daemon_killed_with_sigkill_at_chosen_moments_loses_and_doubles_nothing() {
    let _alone = super::support::cpu_heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let args = ChaosArgs {
        seed: 11,
        orders: 36,
        kills: 8,
        faults: "none".parse().unwrap(),
        dir: Some(dir.path().to_path_buf()),
        json: false,
    };
    let report = chaos(&args, Path::new(env!("CARGO_BIN_EXE_tribute-assistant"))).await.unwrap();
    let text = summary(&report);
    assert!(report.violations.is_empty(), "{text}");
    assert_eq!(report.kills, 8, "{text}");
    for moment in [KillMoment::BackendCall, KillMoment::ReplyBeforePress, KillMoment::CustomerDialogue] {
        assert!(report.kills_by_moment.get(&moment).copied().unwrap_or(0) >= 1, "{moment:?}: {text}");
    }
    assert!(report.delivered >= 18, "most orders are delivered, not handed over: {text}");
    assert_eq!(report.backend_activations, report.delivered, "{text}");
    assert_eq!(report.delivered + report.with_case_card, 36, "{text}");
}

/// A publisher's session, with processes only: the `testbed` command, its
/// ready line, the daemon `run` with the config it wrote, orders through
/// the control API, a SIGKILL of the daemon between them, and SIGTERM
/// stopping the testbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testbed_process_serves_the_real_daemon_which_survives_sigkill() {
    use std::process::Stdio;
    use tokio::process::Command;

    let exe = env!("CARGO_BIN_EXE_tribute-assistant");
    let dir = tempfile::tempdir().unwrap();
    let mut tb = TestbedProcess::start(&[], dir.path(), &[], Stdio::null()).await;
    let [_, control, _, config] = ["mtproto", "control", "backend", "config"].map(|key| tb.field(key));
    let run = || {
        Command::new(exe)
            .args(["--config", &config, "--log", "warn", "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let http = crate::support::http();
    let post = |path: &str, body: serde_json::Value| http.post(format!("{control}{path}")).json(&body).send();
    let stats = || async {
        let s: serde_json::Value = http.get(format!("{control}/stats")).send().await.unwrap().json().await.unwrap();
        s
    };
    let wait_delivered = |n: u64| async move {
        let delivered = try_eventually(|| async {
            let s = stats().await;
            (s["totals"]["delivered"].as_u64() == Some(n)).then_some(s)
        });
        match delivered.await {
            Some(s) => s,
            None => panic!("{n} order(s) not delivered in {SETTLE:?}: {}", stats().await),
        }
    };

    let mut daemon = run();
    for (customer, account) in [(501, "111111"), (502, "222222")] {
        post("/backend/pending", serde_json::json!({"account_id": account, "product": "100 Diamonds"})).await.unwrap();
        let order = serde_json::json!({"customer_id": customer, "customer_name": "Иван", "product": "100 Diamonds",
            "price": "€5.00", "details": format!("ID {account}")});
        assert!(post("/orders", order).await.unwrap().status().is_success());
        if customer == 501 {
            wait_delivered(1).await;
            daemon.start_kill().unwrap(); // SIGKILL
            daemon.wait().await.unwrap();
        }
    }
    // The second order arrived while no daemon ran.
    let mut daemon = run();
    let s = wait_delivered(2).await;
    let t = &s["totals"];
    assert_eq!((t["activations"].as_u64(), t["double_activations"].as_u64()), (Some(2), Some(0)), "{s}");
    assert_eq!((t["duplicate_tribute_replies"].as_u64(), t["duplicate_send_presses"].as_u64()), (Some(0), Some(0)));
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();

    // SIGTERM stops the testbed cleanly.
    unsafe { libc::kill(tb.child.id().unwrap() as i32, libc::SIGTERM) };
    let status = tokio::time::timeout(SETTLE, tb.child.wait()).await.expect("the testbed exits in time").unwrap();
    assert!(status.success(), "{status}");
}

/// `--backend URL` where nothing answers: the testbed starts anyway, and
/// says so on stderr and in its ready line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testbed_warns_when_the_backend_does_not_answer_and_starts_anyway() {
    use std::process::Stdio;
    use tokio::io::AsyncReadExt;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend = format!("http://{closed}/api/tribute");
    let env = [("TRIBUTE_ASSISTANT_BACKEND_SECRET", "staging-secret")];
    let TestbedProcess { child: mut testbed, ready, .. } =
        TestbedProcess::start(&["--backend", &backend], dir.path(), &env, Stdio::piped()).await;
    let warning = ready["backend_warning"].as_str().unwrap_or_else(|| panic!("a warning in {ready}"));
    assert!(warning.contains("does not answer") && warning.contains(&closed.to_string()), "{warning}");
    // It serves all the same.
    let stats = crate::support::http().get(format!("{}/stats", ready["control"].as_str().unwrap())).send();
    assert!(stats.await.unwrap().status().is_success());

    unsafe { libc::kill(testbed.id().unwrap() as i32, libc::SIGTERM) };
    let mut stderr = String::new();
    testbed.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    let status = tokio::time::timeout(SETTLE, testbed.wait()).await.expect("the testbed exits in time").unwrap();
    assert!(status.success(), "{status}");
    assert!(stderr.contains(&format!("warning: {warning}")), "{stderr}");
    assert!(!stderr.contains("staging-secret"), "{stderr}");
}

/// The probe passes against a backend with the same secret and names the
/// problem against one with another.
#[tokio::test]
async fn the_backend_probe_passes_with_the_same_secret_only() {
    use secrecy::SecretString;
    use tribute_testbed::backend::ReferenceBackend;
    use tribute_testbed::backend_probe::{probe, SecretSource};

    let backend = ReferenceBackend::start(SecretString::from("the-shared-secret")).await.unwrap();
    let env = SecretSource::Env;
    assert_eq!(probe(&backend.url(), SecretString::from("the-shared-secret"), &env).await, None);
    let file = SecretSource::Generated(std::path::PathBuf::from("/tmp/x/backend.secret"));
    let warning = probe(&backend.url(), SecretString::from("another-secret"), &file).await.expect("a warning");
    assert!(warning.contains("refused our signature") && warning.contains("/tmp/x/backend.secret"), "{warning}");
    backend.shutdown().await;
}

/// `case_card` means a card names this order: a card about order …-10 is
/// not one about order …-1.
#[tokio::test]
async fn a_card_about_order_ten_is_not_a_card_about_order_one() {
    use tribute_assistant::telegram::{Messenger, RandomId};

    let dir = tempfile::tempdir().unwrap();
    let tb = Testbed::start(&args(dir.path())).await.unwrap();
    let http = crate::support::http();
    let url = |p: &str| format!("{}{p}", tb.ready.control);
    let mut refs = Vec::new();
    for i in 0..10 {
        let order = serde_json::json!({"customer_id": 600 + i, "customer_name": "Иван", "product": "100 Diamonds",
            "price": "€5.00", "details": "оплатил"});
        let posted: serde_json::Value =
            http.post(url("/orders")).json(&order).send().await.unwrap().json().await.unwrap();
        refs.push((posted["message_id"].as_i64().unwrap(), posted["order_ref"].as_str().unwrap().to_owned()));
    }
    let (first, tenth) = (&refs[0], &refs[9]);
    assert!(tenth.1.starts_with(&first.1), "the case this test is about: {} and {}", first.1, tenth.1);
    // Our account posts a card about the tenth order only.
    let card = format!("🚨 Case C1 · order {} needs a person\nWhy: the customer wrote no account ID", tenth.1);
    tb.state.world.connect().send_message(tb.state.moderator_chat, &card, None, RandomId::fresh()).await.unwrap();

    let entry = |id: i64| {
        let http = http.clone();
        let u = url(&format!("/orders/{id}"));
        async move { http.get(u).send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    assert_eq!(entry(tenth.0).await["case_card"], true);
    assert_eq!(entry(first.0).await["case_card"], false, "{}", first.1);
    let stats: serde_json::Value = http.get(url("/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["totals"]["with_card"], 1, "{stats}");
    tb.shutdown().await;
}
