//! The real binary, as a publisher would run it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"));
    c.env_remove("RUST_LOG").env_remove("TRIBUTE_ASSISTANT_CONFIG").env_remove("TRIBUTE_ASSISTANT_DATA_DIR");
    c
}

fn parse_stdin(text: &str) -> Output {
    let mut child = bin()
        .args(["order", "parse"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn order_parse_prints_one_json_object() {
    let out = parse_stdin(
        "🆕 Custom Product Order\r\n\r\nCustomer:  Иван Петров \r\nProduct: 100 Diamonds\r\nPrice: €1,500.00\r\nOrder Details:\r\nМой ID: 000123456\r\nPrice: €0.01\r\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["kind"], "custom_product_order");
    assert_eq!(v["customer"], "Иван Петров");
    assert_eq!(v["product"], "100 Diamonds");
    assert_eq!(v["price"]["amount_minor"], 150_000);
    assert_eq!(v["price"]["currency"], "EUR");
    assert_eq!(v["account_id"], "000123456");
    assert_eq!(v["account_problem"], serde_json::Value::Null);
    assert!(v["details"].as_str().unwrap().contains("Price: €0.01"));
}

#[test]
fn order_parse_accepts_a_stored_raw_message_with_entities() {
    // "🆕 " is 3 UTF-16 units, then the header (20) and two newlines; the name follows "Customer: ".
    let text = "🆕 Custom Product Order\n\nCustomer: Иван Петров\nProduct: VIP\nPrice: ₽500\nOrder Details:\nid 424242";
    let offset = "🆕 Custom Product Order\n\nCustomer: ".encode_utf16().count();
    let raw = serde_json::json!({
        "text": text,
        "entities": [{"offset": offset, "length": "Иван Петров".encode_utf16().count(),
                      "kind": {"type": "mention_name", "user_id": 777}}],
    });
    let out = parse_stdin(&raw.to_string());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["customer_id"], 777);
    assert_eq!(v["customer"], "Иван Петров");
    assert_eq!(v["account_id"], "424242");

    let out = parse_stdin("{\"txt\": 1}");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stored message"));
}

#[test]
fn order_parse_from_a_file_reports_missing_and_ambiguous_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("order.txt");
    std::fs::write(
        &path,
        "🆕 Custom Product Order\nCustomer: Ann\nProduct: VIP\nPrice: $10\nOrder Details:\nid 1111 and id 2222\n",
    )
    .unwrap();
    let out = bin().args(["order", "parse"]).arg(&path).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["account_id"], serde_json::Value::Null);
    assert_eq!(v["account_problem"], "ambiguous");
    assert_eq!(v["price"]["currency"], "USD");
}

#[test]
fn order_parse_rejects_non_orders_and_malformed_orders_with_a_clear_error() {
    let out = parse_stdin("💰 New donation\nFrom: Sergey\nAmount: €3.00");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an order"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let out = parse_stdin("🆕 Custom Product Order\nCustomer: Ann\nProduct: VIP\nOrder Details:\nid 1111");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("malformed"), "{err}");
    assert!(err.contains("Price"), "names the field: {err}");
}

#[test]
fn demo_runs_the_whole_flow_and_its_numbers_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let summary = dir.path().join("summary.json");
    let out = bin().arg("demo").arg("--data-dir").arg(&data).arg("--summary-json").arg(&summary).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {v}"));
    assert_eq!(n("orders"), 9, "{v}");
    assert_eq!(n("completed") + n("waiting_for_customer") + n("with_moderator") + n("failed"), n("orders"));
    assert_eq!(n("backend_activations"), n("completed"), "exactly once: {v}");
    assert_eq!(n("completed"), 6, "{v}");
    // Two IDs and an unknown ID wait for the customer; the second payment is with a moderator.
    assert_eq!((n("waiting_for_customer"), n("with_moderator")), (2, 1), "{v}");
    assert_eq!(n("malformed"), 1, "{v}");
    // A malformed message gets a card, but it is not an order's case.
    assert_eq!((n("order_cards"), n("malformed_cards")), (2, 1), "{v}");
    assert_eq!(
        n("moderator_cards"),
        n("order_cards") + n("malformed_cards") + n("unrecognised_cards") + n("question_cards")
    );
    assert!(stdout.contains("waiting for the customer's answer 2, with a moderator 1"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "malformed Tribute messages (not orders): 1"), "its own line: {stdout}");
    // Issue 4: one order finished by talking to the customer, one by a moderator's reply.
    assert!(n("completed_after_contact") >= 1, "{v}");
    assert!(n("completed_by_moderator") >= 1, "{v}");
    assert!(n("agent_answers") >= 1, "the agent answers the follow-up question from the starter FAQ: {v}");
    assert!(stdout.contains("confirmed") && stdout.contains("escalated"), "{stdout}");
    assert!(stdout.contains("← customer") && stdout.contains("→ assistant"), "the dialogue is narrated: {stdout}");
    assert!(stdout.contains("moderator (reply to #"), "the moderator's reply is narrated: {stdout}");

    // The kept data dir is a real store the other commands can read.
    let out = bin().args(["orders", "list", "--json", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 9);
    let confirmed = lines.iter().find(|o| o["state"] == "confirmed").unwrap();
    let r = confirmed["order_ref"].as_str().unwrap();
    let out = bin().args(["orders", "show", r, "--data-dir"]).arg(&data).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains(r) && text.contains("pressed Send"), "{text}");
    let out = bin().args(["orders", "show", "TA-1-999999", "--data-dir"]).arg(&data).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn help_explains_each_command() {
    let out = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["demo", "order", "orders"] {
        assert!(help.contains(cmd), "{help}");
    }
    let out = bin().args(["orders", "list", "--data-dir", "/nonexistent/dir"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No database"));
}

#[test]
fn demo_over_mtproto_runs_the_same_flow_through_the_grammers_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let summary = dir.path().join("summary.json");
    let out = bin()
        .args(["demo", "--transport", "mtproto", "--data-dir"])
        .arg(&data)
        .arg("--summary-json")
        .arg(&summary)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().next().unwrap_or_default().contains("mtproto"), "the header names the transport: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {v}"));
    assert_eq!(n("orders"), 9, "{v}");
    assert_eq!(n("completed"), 6, "{v}");
    assert_eq!((n("waiting_for_customer"), n("with_moderator")), (2, 1), "{v}");
    assert!(n("completed_after_contact") >= 1 && n("completed_by_moderator") >= 1, "{v}");
    assert_eq!(n("failed"), 0, "{v}");
    assert_eq!(n("malformed"), 1, "{v}");
    assert_eq!(n("backend_activations"), n("completed"), "exactly once: {v}");
    assert_eq!(n("deliveries"), n("completed"), "{v}");
    // It really went over MTProto: replies and button presses are API calls the server answered.
    assert_eq!(v["transport"], "mtproto", "{v}");
    let calls = |m: &str| v["mtproto_calls"][m].as_u64().unwrap_or(0);
    assert!(calls("messages.sendMessage") >= 4, "{v}");
    assert_eq!(calls("messages.getBotCallbackAnswer"), 6, "{v}");
    // The sandbox's session is private and is not the production session file.
    assert!(!data.join("telegram.session").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("sandbox-telegram.session")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn demo_rejects_an_unknown_transport() {
    let out = bin().args(["demo", "--transport", "carrier-pigeon"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sim") && err.contains("mtproto"), "{err}");
}

/// Opening the embedded index used to warn "MULTI_MMAP_SUPPORT_CHECK_RESULT
/// should be initialized…" on every start (Qdrant Edge's mmap check, which
/// only the Qdrant server's own start fills in): not with the default filter.
#[test]
fn opening_the_knowledge_base_does_not_warn_about_qdrants_mmap_check() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = bin().args(["kb", "ingest", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin().args(["ask", "how do I pay for diamonds?", "--data-dir"]).arg(&data).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).is_empty(), "an answer or a reason: {stderr}");
    assert!(!stderr.contains("MULTI_MMAP"), "{stderr}");
    assert!(stderr.contains("INFO"), "the default filter still logs: {stderr}");
}

/// The subcommands a `--help` lists (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    let section = help.split("\nCommands:\n").nth(1).unwrap_or_default();
    let section = section.split("\n\n").next().unwrap_or_default();
    section
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The argument lines of a help section (`Options:` or `Arguments:`) with
/// the line after each, where its description is.
fn entries<'a>(help: &'a str, section: &str) -> Vec<(&'a str, Option<&'a str>)> {
    let Some(body) = help.split(&format!("\n{section}:\n")).nth(1) else { return vec![] };
    let lines: Vec<&str> = body.lines().take_while(|l| !(!l.is_empty() && !l.starts_with(' '))).collect();
    let is_entry = |l: &str| {
        let t = l.trim_start();
        let indent = l.len() - t.len();
        (2..=6).contains(&indent) && (t.starts_with('-') || t.starts_with('<') || t.starts_with('['))
    };
    (0..lines.len())
        .filter(|&i| is_entry(lines[i]))
        .map(|i| (lines[i], lines.get(i + 1).copied().filter(|next| !is_entry(next))))
        .collect()
}

/// Every option and argument of every subcommand says what it is for, on
/// the line under it — one layout for all commands, `-h` and `--help`.
#[test]
fn every_option_of_every_subcommand_has_a_description() {
    let help = |path: &[String], flag: &str| {
        let out = bin().args(path).arg(flag).output().unwrap();
        assert!(out.status.success(), "{path:?} {flag}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    let mut missing = Vec::new();
    while let Some(path) = todo.pop() {
        let long = help(&path, "--help");
        for sub in subcommands(&long) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        for flag in ["--help", "-h"] {
            let text = if flag == "--help" { long.clone() } else { help(&path, flag) };
            // One layout: a command's own options first, then the global ones, help and version.
            let names: Vec<&str> = entries(&text, "Options")
                .iter()
                .filter_map(|(e, _)| e.split_whitespace().find(|w| w.starts_with("--")))
                .collect();
            let tail = ["--config", "--log-format", "--log", "--help", "--version"];
            assert!(names.ends_with(&tail), "{} {flag}: {names:?}", path.join(" "));
            for section in ["Arguments", "Options"] {
                for (entry, next) in entries(&text, section) {
                    seen += 1;
                    let name = entry
                        .split_whitespace()
                        .take_while(|w| {
                            w.starts_with('-') || w.ends_with(',') || w.starts_with('<') || w.starts_with('[')
                        })
                        .count();
                    let rest = entry.split_whitespace().skip(name).collect::<Vec<_>>();
                    let described = next
                        .map(str::trim)
                        .is_some_and(|d| !d.is_empty() && !d.starts_with('[') && !d.starts_with("Possible values"));
                    if !described || !rest.is_empty() {
                        missing.push(format!("{} {flag}: {entry:?} then {next:?}", path.join(" ")));
                    }
                }
            }
        }
    }
    assert!(seen > 100, "the walk found the options: {seen}");
    assert!(missing.is_empty(), "options without a description on the line under them:\n{}", missing.join("\n"));
}
