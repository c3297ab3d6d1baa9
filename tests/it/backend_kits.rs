//! The starter kits in `contrib/backend/` (Python, Node.js) against the
//! published contract and the real daemon, so docs, kits and daemon cannot
//! drift apart: each kit's own signature self-test on
//! `docs/signature-test-vectors.json`; the signed `/health` handshake and
//! `/deactivate` through the daemon's client; then the kit as a child
//! process behind the `testbed` process (`--backend URL`) with the real
//! `run`: valid orders activated once (one of them across a SIGKILL of the
//! daemon), an unknown account, nothing pending, and a second payment —
//! checked from the world's side and in the kit's own store.
//!
//! The testbed cannot add pending orders to an external backend (`POST
//! /backend/pending` answers 409), so they are added the kit's own way.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tribute_assistant::backend::{BackendClient, BackendConfig, DeactivationOutcome, DeactivationRequest};
use tribute_assistant::domain::OrderRef;

use crate::support::wait::{eventually, within};

const EXE: &str = env!("CARGO_BIN_EXE_tribute-assistant");
const PRODUCT: &str = "100 Diamonds";
/// Served under a prefix, so the `v2` signature's path is the full one.
const BASE_PATH: &str = "/api/tribute";

#[derive(Clone, Copy)]
enum Kit {
    Python,
    Node,
}

impl Kit {
    fn command(self, dir: &Path) -> Command {
        let (program, script) = match self {
            Kit::Python => ("python3", "contrib/backend/python/backend.py"),
            Kit::Node => ("node", "contrib/backend/node/backend.mjs"),
        };
        let mut c = Command::new(program);
        c.arg(crate::support::repo().join(script)).arg("--db").arg(dir.join("store"));
        // No __pycache__ in the source tree.
        c.env("PYTHONDONTWRITEBYTECODE", "1").stdin(Stdio::null()).kill_on_drop(true);
        c
    }

    /// The kit's `selftest` on the published vectors: exit 0, no failure listed.
    async fn selftest(self, dir: &Path) {
        let vectors = crate::support::repo().join("docs/signature-test-vectors.json");
        let out = self.command(dir).arg("selftest").arg(vectors).output().await.expect("the kit's interpreter runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && !stdout.contains("FAIL"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("signature checks passed"), "{stdout}");
    }

    /// `serve` on a free loopback port, v2 only; the URL from its ready line.
    async fn serve(self, dir: &Path) -> (Child, String) {
        let log = std::fs::File::create(dir.join("kit.log")).unwrap();
        let mut child = self
            .command(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--base-path", BASE_PATH, "--require-v2"])
            .arg("--secret-file")
            .arg(dir.join("secret"))
            .arg("--admin-token-file")
            .arg(dir.join("admin-token"))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the kit starts");
        let ready = ready_line(&mut child, "the kit").await;
        let url = ready["url"].as_str().expect("the ready line has the url").to_owned();
        assert!(url.ends_with(BASE_PATH), "{url}");
        (child, url)
    }

    /// One pending order the kit's own admin way: the Python CLI writes the
    /// SQLite file; the Node CLI asks the running server, which owns its file.
    async fn add(self, dir: &Path, url: &str, what: &[&str]) {
        let mut c = self.command(dir);
        if let Kit::Node = self {
            c.arg("--url").arg(url).arg("--admin-token-file").arg(dir.join("admin-token"));
        }
        let out = c.args(what).output().await.unwrap();
        assert!(out.status.success(), "{what:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    async fn dump(self, dir: &Path) -> Value {
        let out = self.command(dir).arg("dump").output().await.unwrap();
        assert!(out.status.success(), "dump: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("dump prints JSON")
    }
}

/// The first stdout line of a child that announces itself with one JSON line.
async fn ready_line(child: &mut Child, what: &str) -> Value {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = within(&format!("{what}'s ready line"), lines.next_line()).await.unwrap().expect("a ready line");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}'s ready line {line:?}: {e}"))
}

fn sigterm(child: &Child) {
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id().expect("still running") as i32, libc::SIGTERM) };
}

/// The daemon's `run` with the testbed's config, its log kept in `dir`.
fn run_daemon(config: &str, dir: &Path, n: usize) -> Child {
    Command::new(EXE)
        .args(["--config", config, "--log", "info,qdrant_edge=error", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("run-{n}.log"))).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The testbed's control API: the world's side of every order.
struct World {
    http: reqwest::Client,
    control: String,
}

impl World {
    /// The Tribute bot posts a paid order → (message id, order reference).
    async fn post(&self, customer: i64, details: &str) -> (i64, String) {
        let order = json!({"customer_id": customer, "customer_name": "Иван", "product": PRODUCT,
            "price": "€5.00", "details": details});
        let r = self.http.post(format!("{}/orders", self.control)).json(&order).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let posted: Value = r.json().await.unwrap();
        (posted["message_id"].as_i64().unwrap(), posted["order_ref"].as_str().unwrap().to_owned())
    }

    async fn get(&self, path: &str) -> Value {
        self.http.get(format!("{}{path}", self.control)).send().await.unwrap().json().await.unwrap()
    }

    async fn order(&self, id: i64) -> Value {
        self.get(&format!("/orders/{id}")).await
    }

    async fn delivered(&self, id: i64, order_ref: &str) {
        eventually(&format!("{order_ref} delivered"), || async {
            (self.order(id).await["send_presses"] == 1).then_some(())
        })
        .await;
    }

    /// What the daemon wrote to a customer.
    async fn sent_to(&self, customer: i64) -> Vec<String> {
        let chat = self.get(&format!("/chats/{customer}/messages")).await;
        let chat = chat.as_array().unwrap().iter().filter(|m| m["outgoing"] == true);
        chat.filter_map(|m| m["text"].as_str().map(str::to_owned)).collect()
    }

    /// The first message to `customer` that names `account`.
    async fn asked(&self, customer: i64, account: &str) -> String {
        eventually(&format!("customer {customer} asked about {account}"), || async {
            self.sent_to(customer).await.into_iter().find(|t| t.contains(account))
        })
        .await
    }
}

/// The kit's activations by order reference.
fn activations(store: &Value) -> HashMap<String, Value> {
    let all = store["activations"].as_array().unwrap().iter();
    all.map(|a| (a["order_ref"].as_str().unwrap().to_owned(), a.clone())).collect()
}

/// The test, the same for each kit.
async fn the_kit_serves_the_real_daemon(kit: Kit) {
    let _alone = crate::support::cpu_heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    kit.selftest(dir).await;
    let secret = format!("kit-{:032x}", fastrand::u128(..));
    std::fs::write(dir.join("secret"), format!("{secret}\n")).unwrap();
    std::fs::write(dir.join("admin-token"), format!("{:032x}", fastrand::u128(..))).unwrap();
    let (kit_process, url) = kit.serve(dir).await;

    // The handshake `tribute-assistant check` makes: the kit signs its answer.
    let client = BackendClient::new(BackendConfig::new(url.clone(), SecretString::from(secret.clone()))).unwrap();
    client.health().await.expect("the signed /health handshake");
    let wrong = BackendClient::new(BackendConfig::new(url.clone(), SecretString::from("another secret"))).unwrap();
    assert!(wrong.health().await.is_err(), "another secret must not pass the handshake");

    // The world, playing Telegram only; the kit gets the daemon's calls.
    let mut testbed = Command::new(EXE)
        .args(["--log", "warn", "testbed", "--backend", &url, "--dir"])
        .arg(dir.join("testbed"))
        .env("TRIBUTE_ASSISTANT_BACKEND_SECRET", &secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ready = ready_line(&mut testbed, "the testbed").await;
    assert_eq!(ready["backend"], url.as_str());
    let config = ready["config"].as_str().unwrap().to_owned();
    let world = World { http: crate::support::http(), control: ready["control"].as_str().unwrap().to_owned() };
    let pending = json!({"account_id": "111111", "product": PRODUCT});
    let r = world.http.post(format!("{}/backend/pending", world.control)).json(&pending).send().await.unwrap();
    assert_eq!(r.status(), 409, "the testbed adds pending orders only to its reference backend");
    for account in ["111111", "222222", "300001", "300002", "300003"] {
        kit.add(dir, &url, &["add-pending", account, PRODUCT, "5.00 EUR"]).await;
    }
    kit.add(dir, &url, &["add-account", "444444"]).await;

    let mut daemon = run_daemon(&config, dir, 0);
    let mut valid = vec![world.post(501, "ID 111111").await, world.post(502, "мой ID 222222").await];
    let (unknown, unknown_ref) = world.post(503, "ID 999999").await;
    let (nothing, nothing_ref) = world.post(504, "ID 444444").await;
    world.delivered(valid[0].0, &valid[0].1).await;
    // The same customer pays again for the order the first payment fulfilled.
    let (again, again_ref) = world.post(501, "ID 111111").await;

    // SIGKILL the daemon as soon as the kit has seen its first call for the next orders.
    for (customer, account) in [(601, "300001"), (602, "300002"), (603, "300003")] {
        valid.push(world.post(customer, &format!("ID {account}")).await);
    }
    let first_call = format!("activate {} ", valid[2].1);
    eventually("the kit's first call for the orders posted before the kill", || async {
        std::fs::read_to_string(dir.join("kit.log")).unwrap().contains(&first_call).then_some(())
    })
    .await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    let mut daemon = run_daemon(&config, dir, 1);
    for (id, order_ref) in &valid {
        world.delivered(*id, order_ref).await;
    }

    // "Maybe a typo" only for the account that does not exist.
    let to_unknown = world.asked(503, "999999").await;
    assert!(to_unknown.contains("ошибкой"), "{to_unknown}");
    let to_nothing = world.asked(504, "444444").await;
    assert!(!to_nothing.contains("ошибкой") && to_nothing.contains("есть на сайте"), "{to_nothing}");
    // The second payment: told the truth, a moderator has it, nobody asks for the ID again.
    eventually("the second payment on a case card", || async {
        (world.order(again).await["case_card"] == true).then_some(())
    })
    .await;
    let told = eventually("the customer told about the second payment", || async {
        let texts = world.sent_to(501).await;
        texts.iter().any(|t| t.contains("повторная оплата")).then_some(texts)
    })
    .await;
    assert!(told.iter().all(|t| !t.contains("ошибкой")), "{told:?}");

    // From the world's side: one reply and one Send press per valid order, nothing for the others.
    let stats = world.get("/stats").await;
    let t = &stats["totals"];
    assert_eq!((t["duplicate_tribute_replies"].as_u64(), t["duplicate_send_presses"].as_u64()), (Some(0), Some(0)));
    assert_eq!(t["delivered"].as_u64(), Some(valid.len() as u64), "{stats}");
    for id in [unknown, nothing, again] {
        assert_eq!(world.order(id).await["send_presses"], 0, "order {id}");
    }

    // The kit's store agrees: one activation per valid order, each its own pending order.
    let store = kit.dump(dir).await;
    let activated = activations(&store);
    let mut expected: Vec<&str> = valid.iter().map(|(_, r)| r.as_str()).collect();
    let mut got: Vec<&str> = activated.keys().map(String::as_str).collect();
    expected.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, expected, "{store}");
    for unfinished in [&unknown_ref, &nothing_ref, &again_ref] {
        assert!(!activated.contains_key(unfinished.as_str()), "{unfinished}: {store}");
    }
    let pending = store["pending"].as_array().unwrap().iter();
    let fulfilled: Vec<&str> = pending.filter_map(|p| p["fulfilled_by"].as_str()).collect();
    assert_eq!(fulfilled.len(), valid.len(), "one pending order consumed per activation: {store}");
    assert!(fulfilled.iter().all(|r| expected.contains(r)), "{store}");
    // ...and it activated each once: a repeat after the kill is `already_activated`.
    let log = std::fs::read_to_string(dir.join("kit.log")).unwrap();
    for order_ref in &expected {
        let call = format!("activate {order_ref} ");
        let times = log.lines().filter(|l| l.contains(&call) && l.contains("-> activated")).count();
        assert_eq!(times, 1, "{order_ref} activated {times} times:\n{log}");
    }
    let second = format!("activate {again_ref} ");
    assert!(log.lines().any(|l| l.contains(&second) && l.ends_with("-> already_fulfilled")), "{log}");
    assert!(!log.contains(&secret), "the secret is never logged");
    assert!(!log.contains("internal error") && !log.contains("Traceback"), "{log}");

    // A refund takes the product back once.
    let (a_ref, b_ref) = (valid[0].1.clone(), valid[1].1.clone());
    let refund = DeactivationRequest {
        order_ref: OrderRef::try_from(a_ref.clone()).unwrap(),
        activation_id: activated[&a_ref]["activation_id"].as_str().unwrap().to_owned(),
        reason: "refund".into(),
        detail: None,
        purchase_id: None,
        refunded_at: chrono::Utc::now(),
    };
    assert_eq!(client.deactivate(&refund).await.unwrap(), DeactivationOutcome::Deactivated);
    assert_eq!(client.deactivate(&refund).await.unwrap(), DeactivationOutcome::AlreadyDeactivated);
    let other =
        DeactivationRequest { order_ref: OrderRef::try_from(b_ref).unwrap(), activation_id: "act-x".into(), ..refund };
    assert_eq!(client.deactivate(&other).await.unwrap(), DeactivationOutcome::NotActivated);
    let store = kit.dump(dir).await;
    let deactivated: Vec<String> =
        activations(&store).into_iter().filter(|(_, a)| a["deactivated"] == true).map(|(r, _)| r).collect();
    assert_eq!(deactivated, vec![a_ref], "{store}");

    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    for (mut child, what) in [(testbed, "the testbed"), (kit_process, "the kit")] {
        sigterm(&child);
        let status = within(&format!("{what} stopping"), child.wait()).await.unwrap();
        assert!(status.success(), "{what} stopped with {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_kit_passes_the_vectors_and_serves_the_real_daemon_across_a_sigkill() {
    the_kit_serves_the_real_daemon(Kit::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_kit_passes_the_vectors_and_serves_the_real_daemon_across_a_sigkill() {
    the_kit_serves_the_real_daemon(Kit::Node).await;
}
