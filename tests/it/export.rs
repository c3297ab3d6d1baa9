//! `tribute-assistant export` on a real SQLite store (migrated by `Store::open`,
//! rows inserted with sqlx), run through the real binary in each format.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tribute_assistant::store::Store;

const DAY: i64 = 86_400_000;
/// 2026-01-10T00:00:00Z
const JAN_10: i64 = 1_768_003_200_000;

const AGENT_REPLY: &str = "Hello,\nyou get 100 diamonds, \"fast\" delivery";
const XSS: &str = "<script>alert('x')</script> & <b>bold</b>";

struct Seeded {
    _dir: tempfile::TempDir,
    data_dir: PathBuf,
}

async fn exec(c: &mut SqliteConnection, sql: &str, args: &[Value]) {
    let mut q = sqlx::query(sql);
    for a in args {
        q = match a {
            Value::Null => q.bind(None::<i64>),
            Value::Bool(b) => q.bind(*b),
            Value::Number(n) if n.is_i64() => q.bind(n.as_i64().unwrap()),
            Value::Number(n) => q.bind(n.as_f64().unwrap()),
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.to_string()),
        };
    }
    q.execute(&mut *c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A conversation row; `created` is unix ms, it stays active for an hour.
async fn conversation(c: &mut SqliteConnection, id: i64, customer: i64, name: &str, created: i64) {
    exec(
        c,
        "INSERT INTO conversations (id, customer_id, customer_name, language, state, state_json, created_at, updated_at) \
         VALUES (?, ?, ?, 'en', 'idle', '{\"state\":\"idle\"}', ?, ?)",
        &[id.into(), customer.into(), name.into(), created.into(), (created + 3_600_000).into()],
    )
    .await;
}

async fn message(c: &mut SqliteConnection, conv: i64, at: i64, dir: &str, author: &str, text: &str, orders: &str) {
    exec(
        c,
        "INSERT INTO conversation_messages (conversation_id, at, direction, author, author_id, text, order_ids) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            conv.into(),
            at.into(),
            dir.into(),
            author.into(),
            if author == "moderator" { 555.into() } else { Value::Null },
            text.into(),
            orders.into(),
        ],
    )
    .await;
}

/// An order (with its Tribute message) linked to the conversation, plus its history.
async fn order(c: &mut SqliteConnection, id: i64, conv: i64, customer: i64, name: &str, state: &str, at: i64) {
    exec(
        c,
        "INSERT INTO tribute_messages (chat_id, message_id, sender_id, outgoing, date, text, entities_json, buttons_json, kind, received_at) \
         VALUES (93372553, ?, 93372553, 0, ?, 'order', '[]', '[]', 'order', ?)",
        &[id.into(), (at / 1000).into(), at.into()],
    )
    .await;
    exec(
        c,
        "INSERT INTO orders (id, order_ref, chat_id, message_id, customer_name, customer_id, customer_username, product, \
         amount_minor, currency, details, account_candidates, state, created_at, updated_at) \
         VALUES (?, ?, 93372553, ?, ?, ?, 'secret_handle', '100 Diamonds', 500, 'EUR', 'Мой ID: 48213', '[\"48213\"]', ?, ?, ?)",
        &[
            id.into(),
            format!("TA-93372553-{id}").into(),
            id.into(),
            name.into(),
            customer.into(),
            state.into(),
            at.into(),
            (at + 60_000).into(),
        ],
    )
    .await;
    exec(
        c,
        "INSERT INTO order_events (order_id, at, from_state, to_state, note) VALUES (?, ?, NULL, 'received', 'parsed')",
        &[id.into(), at.into()],
    )
    .await;
    exec(
        c,
        "INSERT INTO order_events (order_id, at, from_state, to_state, note) VALUES (?, ?, 'received', ?, 'moved')",
        &[id.into(), (at + 60_000).into(), state.into()],
    )
    .await;
    exec(
        c,
        "INSERT INTO conversation_orders (conversation_id, order_id, status, reason, account, linked_at, updated_at) \
         VALUES (?, ?, 'done', 'missing_account', '48213', ?, ?)",
        &[conv.into(), id.into(), at.into(), at.into()],
    )
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn agent_turn(
    c: &mut SqliteConnection,
    conv: i64,
    customer: i64,
    at: i64,
    q: &str,
    reply: &str,
    conf: f64,
    escalated: bool,
) {
    let reasons = if escalated { r#"[{"code":"refund","detail":"refund request"}]"# } else { "[]" };
    exec(
        c,
        "INSERT INTO agent_turns (conversation_id, customer_id, question, answer, reply, language, confidence, sources_json, \
         reasons_json, escalated, mode, latency_ms, at) VALUES (?, ?, ?, ?, ?, 'en', ?, '[\"faq-1\"]', ?, ?, 'llm', 420, ?)",
        &[conv.into(), customer.into(), q.into(), reply.into(), reply.into(), conf.into(), reasons.into(), (escalated as i64).into(), at.into()],
    )
    .await;
}

/// Five conversations, one of each kind:
/// 1 answered by the agent (Jan 10), 2 escalated by the agent (Jan 15),
/// 3 finished by a moderator (Feb 1), 4 failed (Feb 10), 5 still open (Mar 1).
async fn seed() -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    let db = data_dir.join(tribute_assistant::DATABASE_FILE);
    Store::open(&db).await.unwrap().close().await;
    let mut c =
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&db).foreign_keys(true)).await.unwrap();

    let t1 = JAN_10;
    conversation(&mut c, 1, 1001, "Иван Петров", t1).await;
    order(&mut c, 1, 1, 1001, "Иван Петров", "confirmed", t1).await;
    message(&mut c, 1, t1 + 1000, "in", "customer", "How many diamonds? Mail me at ivan.petrov@mail.ru", "[1]").await;
    agent_turn(&mut c, 1, 1001, t1 + 2000, "How many diamonds?", AGENT_REPLY, 0.91, false).await;
    message(&mut c, 1, t1 + 2000, "out", "agent", AGENT_REPLY, "[1]").await;

    let t2 = JAN_10 + 5 * DAY;
    conversation(&mut c, 2, 1002, "Maria", t2).await;
    order(&mut c, 2, 2, 1002, "Maria", "escalated", t2).await;
    message(&mut c, 2, t2 + 1000, "in", "customer", "Refund please, my ID: 48213, call +7 (912) 345-67-89", "[2]")
        .await;
    agent_turn(&mut c, 2, 1002, t2 + 2000, "Refund please", "A moderator will answer you soon.", 0.3, true).await;
    message(&mut c, 2, t2 + 2000, "out", "agent", "A moderator will answer you soon.", "[2]").await;

    let t3 = JAN_10 + 22 * DAY; // Feb 1
    conversation(&mut c, 3, 1003, "Oleg", t3).await;
    order(&mut c, 3, 3, 1003, "Oleg", "confirmed", t3).await;
    message(&mut c, 3, t3 + 1000, "in", "customer", "Which account? write to @oleg_shop", "[3]").await;
    exec(
        &mut c,
        "INSERT INTO cases (id, short_id, reason, order_id, conversation_id, status, outcome, pending_account, opened_at, closed_at) \
         VALUES (1, 'C1', 'ambiguous_account', 3, 3, 'closed', 'done', '77665544', ?, ?)",
        &[(t3 + 1500).into(), (t3 + 9000).into()],
    )
    .await;
    message(&mut c, 3, t3 + 5000, "internal", "moderator", "checked, account 77665544 is right", "[3]").await;
    message(&mut c, 3, t3 + 6000, "out", "moderator", "Done, thank you!", "[3]").await;
    exec(
        &mut c,
        "INSERT INTO moderator_audit (at, moderator_id, case_id, action, detail, allowed, chat_id, message_id) \
         VALUES (?, 555, 1, 'done', 'done with account 77665544', 1, -100, 42)",
        &[(t3 + 8000).into()],
    )
    .await;

    let t4 = JAN_10 + 31 * DAY; // Feb 10
    conversation(&mut c, 4, 1004, "Anna", t4).await;
    order(&mut c, 4, 4, 1004, "Anna", "failed", t4).await;
    message(&mut c, 4, t4 + 1000, "out", "assistant", "Please send your account ID.", "[4]").await;
    message(&mut c, 4, t4 + 2000, "in", "customer", "it is 99887766", "[4]").await;

    // What a month of orders leaves behind: a €9.00 order, an activation
    // number in the history, a case closed with the account it was
    // activated for, a four-digit account ID (too short for any pattern)
    // given in the chat.
    exec(&mut c, "UPDATE orders SET amount_minor = 900 WHERE id = 2", &[]).await;
    exec(&mut c, "UPDATE orders SET activation_id = 'act-000042' WHERE id = 1", &[]).await;
    exec(
        &mut c,
        "UPDATE order_events SET note = 'backend activated it (activation act-000042); Send pressed' \
         WHERE order_id = 1 AND to_state = 'confirmed'",
        &[],
    )
    .await;
    exec(
        &mut c,
        "UPDATE cases SET outcome = 'completed: 100 Diamonds activated for account 77665544' WHERE id = 1",
        &[],
    )
    .await;
    exec(&mut c, "UPDATE conversation_orders SET account = '4821' WHERE order_id = 4", &[]).await;
    message(&mut c, 4, t4 + 3000, "in", "customer", "or maybe 4821", "[4]").await;

    let t5 = JAN_10 + 50 * DAY; // Mar 1
    conversation(&mut c, 5, 1005, "Petr", t5).await;
    message(&mut c, 5, t5 + 1000, "in", "customer", XSS, "[]").await;
    c.close().await.unwrap();
    Seeded { _dir: dir, data_dir }
}

fn export(data_dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"))
        .env_remove("RUST_LOG")
        .env_remove("TRIBUTE_ASSISTANT_CONFIG")
        .env_remove("TRIBUTE_ASSISTANT_DATA_DIR")
        .arg("export")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "export {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn jsonl(data_dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = export(data_dir, &[&["--format", "jsonl"], args].concat());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line is not JSON ({e}): {l}")))
        .collect()
}

fn ids(convs: &[Value]) -> Vec<i64> {
    convs.iter().map(|c| c["id"].as_i64().unwrap()).collect()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> =
        v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(|k| k.as_str()).collect();
    k.sort();
    k
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort();
    v
}

#[tokio::test]
async fn jsonl_carries_every_documented_field() {
    let s = seed().await;
    let out = export(&s.data_dir, &["--format", "jsonl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exported 5 conversations, 11 messages"), "summary line: {stderr}");
    let convs = jsonl(&s.data_dir, &[]);
    assert_eq!(ids(&convs), [1, 2, 3, 4, 5]);

    for c in &convs {
        assert_eq!(
            keys(c),
            sorted(vec![
                "schema_version",
                "id",
                "customer",
                "language",
                "state",
                "created_at",
                "updated_at",
                "redacted",
                "flags",
                "outcome",
                "messages",
                "orders",
                "agent_turns",
                "cases",
                "moderator_actions",
            ])
        );
        assert_eq!(c["schema_version"], 1);
        assert_eq!(keys(&c["customer"]), ["name", "telegram_id"]);
        assert_eq!(keys(&c["flags"]), ["answered_by_agent", "escalated", "failed", "moderator"]);
        for m in c["messages"].as_array().unwrap() {
            assert_eq!(
                keys(m),
                sorted(vec![
                    "id",
                    "at",
                    "direction",
                    "author",
                    "author_id",
                    "text",
                    "template",
                    "order_refs",
                    "agent_turn_id"
                ])
            );
            chrono::DateTime::parse_from_rfc3339(m["at"].as_str().unwrap()).expect("message time is RFC 3339");
        }
        for o in c["orders"].as_array().unwrap() {
            assert_eq!(
                keys(o),
                sorted(vec![
                    "order_ref",
                    "state",
                    "product",
                    "amount_minor",
                    "currency",
                    "customer_name",
                    "customer_username",
                    "details",
                    "account",
                    "link_status",
                    "link_reason",
                    "account_rejections",
                    "escalation_reason",
                    "activation_id",
                    "created_at",
                    "updated_at",
                    "history",
                ])
            );
            let history = o["history"].as_array().unwrap();
            assert_eq!(history.len(), 2);
            assert_eq!(keys(&history[0]), ["at", "from_state", "note", "to_state"]);
            assert_eq!(history[1]["to_state"], o["state"]);
        }
        for t in c["agent_turns"].as_array().unwrap() {
            assert_eq!(
                keys(t),
                sorted(vec![
                    "id",
                    "at",
                    "question",
                    "answer",
                    "reply",
                    "language",
                    "confidence",
                    "sources",
                    "reasons",
                    "escalated",
                    "mode",
                    "latency_ms",
                ])
            );
        }
        for k in c["cases"].as_array().unwrap() {
            assert_eq!(
                keys(k),
                sorted(vec![
                    "id",
                    "short_id",
                    "reason",
                    "order_ref",
                    "status",
                    "outcome",
                    "pending_account",
                    "opened_at",
                    "closed_at",
                ])
            );
        }
        for a in c["moderator_actions"].as_array().unwrap() {
            assert_eq!(keys(a), sorted(vec!["id", "at", "moderator_id", "case_id", "action", "detail", "allowed"]));
        }
    }

    let outcomes: Vec<&str> = convs.iter().map(|c| c["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["completed", "escalated", "closed_by_moderator", "failed", "open"]);

    // The agent's reply is tied to its turn, with confidence, sources and reasons.
    let a = &convs[0];
    let turn = &a["agent_turns"][0];
    assert_eq!(a["messages"][1]["agent_turn_id"], turn["id"]);
    assert_eq!(a["messages"][1]["text"], AGENT_REPLY);
    assert_eq!(a["messages"][1]["order_refs"], serde_json::json!(["TA-93372553-1"]));
    assert_eq!(turn["confidence"], 0.91);
    assert_eq!(turn["sources"], serde_json::json!(["faq-1"]));
    assert_eq!(turn["escalated"], false);
    let b = &convs[1]["agent_turns"][0];
    assert_eq!(b["escalated"], true);
    assert_eq!(b["reasons"][0]["code"], "refund");
    let c = &convs[2];
    assert_eq!(c["cases"][0]["short_id"], "C1");
    assert_eq!(c["cases"][0]["order_ref"], "TA-93372553-3");
    assert_eq!(c["moderator_actions"][0]["action"], "done");
    assert_eq!(c["messages"][1]["direction"], "internal");
    assert_eq!(c["messages"][1]["author_id"], 555);
}

#[tokio::test]
async fn filters_select_exactly_the_right_conversations() {
    let s = seed().await;
    let d = &s.data_dir;
    assert_eq!(ids(&jsonl(d, &["--only", "answered-by-agent"])), [1]);
    assert_eq!(ids(&jsonl(d, &["--only", "escalated"])), [2, 3]);
    assert_eq!(ids(&jsonl(d, &["--only", "moderator"])), [3]);
    assert_eq!(ids(&jsonl(d, &["--only", "failed"])), [4]);
    assert_eq!(ids(&jsonl(d, &["--customer", "1004"])), [4]);
    assert_eq!(ids(&jsonl(d, &["--order", "TA-93372553-3"])), [3]);
    assert_eq!(ids(&jsonl(d, &["--order", "TA-93372553-99"])), Vec::<i64>::new());
    assert_eq!(ids(&jsonl(d, &["--since", "2026-02-01"])), [3, 4, 5]);
    assert_eq!(ids(&jsonl(d, &["--until", "2026-01-31"])), [1, 2]);
    assert_eq!(ids(&jsonl(d, &["--since", "2026-01-12T00:00:00Z", "--until", "2026-02-05"])), [2, 3]);
    assert_eq!(ids(&jsonl(d, &["--since", "2026-01-01", "--only", "escalated", "--customer", "1002"])), [2]);
    // Flags in the output agree with the SQL filters.
    for c in jsonl(d, &[]) {
        let id = c["id"].as_i64().unwrap();
        assert_eq!(c["flags"]["escalated"], [2, 3].contains(&id), "conversation {id}");
        assert_eq!(c["flags"]["moderator"], id == 3, "conversation {id}");
    }

    // Bad input names what was wrong.
    let out = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"))
        .args(["export", "--data-dir"])
        .arg(d)
        .args(["--since", "last tuesday"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--since") && err.contains("last tuesday"), "{err}");
}

#[tokio::test]
async fn pii_is_redacted_unless_no_redact() {
    let s = seed().await;
    let secrets = [
        "Иван Петров",
        "ivan.petrov@mail.ru",
        "48213",
        "912",
        "oleg_shop",
        "77665544",
        "99887766",
        "secret_handle",
        "maybe 4821",
    ];
    for format in ["jsonl", "csv", "html"] {
        let out = export(&s.data_dir, &["--format", format]);
        let text = String::from_utf8(out.stdout).unwrap();
        for s in secrets {
            assert!(!text.contains(s), "{format}: {s} leaked");
        }
        assert!(text.contains("[EMAIL]") && text.contains("[NAME]"), "{format}: placeholders missing");
        // Telegram ids are pseudonymous and kept.
        assert!(text.contains("1001"), "{format}: customer id missing");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
    }
    let out = export(&s.data_dir, &["--format", "jsonl", "--no-redact"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for s in secrets {
        assert!(text.contains(s), "--no-redact: {s} missing");
    }
    assert!(text.contains("\"redacted\":false"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning") && stderr.contains("personal data"), "{stderr}");
}

/// RFC 4180 reader (quoted fields may hold commas, quotes and line breaks).
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '"') => panic!("stray quote in an unquoted field: {field}"),
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field");
    assert!(field.is_empty() && row.is_empty(), "last row not terminated");
    rows
}

#[tokio::test]
async fn csv_has_one_row_per_message_with_proper_quoting() {
    let s = seed().await;
    let out = export(&s.data_dir, &["--format", "csv"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"Hello,\nyou get 100 diamonds, \"\"fast\"\" delivery\""), "raw quoting: {text}");
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0],
        [
            "conversation_id",
            "customer_telegram_id",
            "customer_name",
            "message_id",
            "at",
            "direction",
            "author",
            "text",
            "orders",
            "agent_confidence",
            "agent_escalated",
        ]
    );
    let rows = &rows[1..];
    assert_eq!(rows.len(), 11, "one row per message");
    assert!(rows.iter().all(|r| r.len() == 11), "every row has 11 fields");
    let agent = rows.iter().find(|r| r[7] == AGENT_REPLY).expect("the multi-line agent reply parses back intact");
    assert_eq!(agent[0], "1");
    assert_eq!(agent[1], "1001");
    assert_eq!(agent[6], "agent");
    assert_eq!(agent[8], "TA-93372553-1");
    assert_eq!(agent[9], "0.91");
    assert_eq!(agent[10], "false");
    let escalated = rows.iter().find(|r| r[0] == "2" && r[6] == "agent").unwrap();
    assert_eq!((escalated[9].as_str(), escalated[10].as_str()), ("0.30", "true"));
    let customer = rows.iter().find(|r| r[0] == "1" && r[6] == "customer").unwrap();
    assert_eq!((customer[9].as_str(), customer[10].as_str()), ("", ""));
    chrono::DateTime::parse_from_rfc3339(&customer[4]).expect("RFC 3339 time");
    assert!(rows.iter().any(|r| r[7] == XSS), "text kept verbatim in CSV");
}

fn check_html_structure(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<section class=\"conv").count(), 5);
    assert_eq!(html.matches("<section").count(), html.matches("</section>").count());
    assert_eq!(html.matches("<script>").count(), 1, "only our own script; message text is escaped");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"));
    for external in ["src=\"http", "href=\"http", "src='http", "@import", "url(http"] {
        assert!(!html.contains(external), "external asset: {external}");
    }
    assert!(html.contains("class=\"conf high\">confidence 91%"));
    assert!(html.contains("agent-escalated"));
    assert!(html.contains("data-flags=\"escalated moderator\""));
}

/// Exports the seeded store as HTML to a file; returns the file.
fn export_html(s: &Seeded) -> PathBuf {
    let page = s.data_dir.join("review.html");
    let out = export(&s.data_dir, &["--format", "html", "--output", page.to_str().unwrap()]);
    assert!(out.stdout.is_empty(), "--output writes the file, not stdout");
    assert!(String::from_utf8_lossy(&out.stderr).contains("exported 5 conversations"));
    page
}

#[tokio::test]
async fn html_is_self_contained() {
    let s = seed().await;
    let page = export_html(&s);
    check_html_structure(&std::fs::read_to_string(&page).unwrap());
}

#[tokio::test]
async fn html_renders_in_chromium() {
    let Some(chromium) = crate::support::chromium("export::html_renders_in_chromium") else { return };
    let s = seed().await;
    let page = export_html(&s);
    let dom = crate::support::chromium::dump_dom(chromium, &page);
    // The inline script ran: it counts the conversations it can filter.
    assert!(dom.contains("5 of 5 shown"), "filter script did not run: {dom}");
    assert_eq!(dom.matches("<section class=\"conv").count(), 5);
    // The message with markup stays text: no <b> element was created from it.
    assert!(!dom.contains("<b>bold</b>"), "message text became markup");
    assert!(dom.contains("&lt;b&gt;bold&lt;/b&gt;"));
}

#[tokio::test]
async fn the_output_file_is_private_and_replaced_files_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let s = seed().await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let fresh = s.data_dir.join("fresh.jsonl");
    export(&s.data_dir, &["--output", fresh.to_str().unwrap()]);
    assert_eq!(mode(&fresh), 0o600, "a new export file is owner-only");
    let old = s.data_dir.join("old.jsonl");
    std::fs::write(&old, "stale").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    export(&s.data_dir, &["--output", old.to_str().unwrap()]);
    assert_eq!(mode(&old), 0o600, "an existing file is tightened");
    assert!(std::fs::read_to_string(&old).unwrap().contains("\"schema_version\""), "and replaced");
}

/// Runs `export --output <output>`, which is expected to fail.
fn export_failing(data_dir: &Path, output: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"))
        .env_remove("RUST_LOG")
        .env_remove("TRIBUTE_ASSISTANT_CONFIG")
        .env_remove("TRIBUTE_ASSISTANT_DATA_DIR")
        .arg("export")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--output")
        .arg(output)
        .output()
        .unwrap();
    assert!(!out.status.success(), "export --output {} succeeded", output.display());
    out
}

#[tokio::test]
async fn a_symlink_as_output_is_refused_and_its_target_untouched() {
    let s = seed().await;
    let target = s.data_dir.join("elsewhere.txt");
    std::fs::write(&target, "keep me").unwrap();
    let link = s.data_dir.join("export.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = export_failing(&s.data_dir, &link);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("symbolic link") && stderr.contains("export.jsonl"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    // A dangling link is refused too (it would create the file where it points).
    let dangling = s.data_dir.join("dangling.jsonl");
    std::os::unix::fs::symlink(s.data_dir.join("nowhere.jsonl"), &dangling).unwrap();
    export_failing(&s.data_dir, &dangling);
    assert!(!s.data_dir.join("nowhere.jsonl").exists());
}

/// Every account ID the store holds (given in the chat, on cases, by
/// moderators, found in Order Details) and every payment number.
async fn store_facts(data_dir: &Path) -> (Vec<String>, Vec<String>) {
    let db = data_dir.join(tribute_assistant::DATABASE_FILE);
    let mut c = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&db)).await.unwrap();
    let strings = |rows: Vec<(Option<String>,)>| rows.into_iter().filter_map(|(v,)| v).collect::<Vec<_>>();
    let mut accounts = Vec::new();
    for sql in [
        "SELECT account FROM conversation_orders",
        "SELECT pending_account FROM cases",
        "SELECT detail FROM moderator_audit WHERE action = 'account'",
    ] {
        accounts.extend(strings(sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()));
    }
    let candidates: Vec<(String,)> =
        sqlx::query_as("SELECT account_candidates FROM orders").fetch_all(&mut c).await.unwrap();
    for (json,) in candidates {
        accounts.extend(serde_json::from_str::<Vec<String>>(&json).unwrap());
    }
    accounts.sort();
    accounts.dedup();
    let refs: Vec<(String,)> = sqlx::query_as("SELECT order_ref FROM orders").fetch_all(&mut c).await.unwrap();
    (accounts, refs.into_iter().map(|(r,)| r).collect())
}

/// Whether `id` occurs in `text` as a whole token (not inside a longer number or word).
fn occurs(text: &str, id: &str) -> bool {
    text.match_indices(id).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + id.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[tokio::test]
async fn no_account_id_leaves_the_store_and_payment_facts_stay() {
    let s = seed().await;
    let (accounts, refs) = store_facts(&s.data_dir).await;
    assert!(accounts.len() >= 3, "{accounts:?}");
    for format in ["jsonl", "csv", "html"] {
        let text = String::from_utf8(export(&s.data_dir, &["--format", format]).stdout).unwrap();
        for a in &accounts {
            assert!(!occurs(&text, a), "{format}: account ID {a} leaked");
        }
        for r in &refs {
            assert!(text.contains(r.as_str()), "{format}: payment number {r} missing");
        }
        if format != "csv" {
            assert!(text.contains("act-000042"), "{format}: the activation number was taken for an account ID");
            assert!(!text.contains("act-[ACCOUNT_ID]"), "{format}: over-redacted");
        }
    }
    let convs = jsonl(&s.data_dir, &[]);
    assert_eq!(convs[2]["cases"][0]["outcome"], "completed: 100 Diamonds activated for account [ACCOUNT_ID]");
    let four = convs[3]["messages"].as_array().unwrap().last().unwrap()["text"].clone();
    assert_eq!(four, "or maybe [ACCOUNT_ID]", "a short account ID the store knows is hidden too");
}

/// The page in words: amounts with their sign, how each conversation
/// stands without codes or contradicting chips, times short under one
/// named time zone.
#[tokio::test]
async fn the_html_page_says_codes_amounts_and_times_in_words() {
    let s = seed().await;
    let out = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"))
        .env_remove("RUST_LOG")
        .env_remove("TRIBUTE_ASSISTANT_CONFIG")
        .env_remove("TRIBUTE_ASSISTANT_DATA_DIR")
        .env("TZ", "Asia/Yerevan") // UTC+04:00 all year
        .args(["export", "--format", "html", "--data-dir"])
        .arg(&s.data_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = String::from_utf8(out.stdout).unwrap();
    let text = crate::report::visible_text(&html);

    assert!(text.contains("€9.00") && text.contains("€5.00"), "amounts with their sign: {text}");
    assert!(!text.contains("900 EUR") && !text.contains("500 EUR"), "minor units shown as the amount");

    let code = regex::Regex::new(r"\b[a-z]+_[a-z_]+\b").unwrap();
    let codes: Vec<&str> = code.find_iter(&text).map(|m| m.as_str()).collect();
    assert!(codes.is_empty(), "codes on the page: {codes:?}");
    for words in ["several account IDs in the order", "completed (Send pressed)", "a moderator took part"] {
        assert!(text.contains(words), "{words:?} missing");
    }

    // One chip says how it stands; the others only add to it.
    let chips = |id: i64| -> Vec<String> {
        let at = html.find(&format!("id=\"conv-{id}\"")).unwrap();
        let section = &html[at..at + html[at..].find("</section>").unwrap()];
        let chips = &section[section.find("<div class=\"chips\">").unwrap()..];
        let chips = &chips[..chips.find("</div>").unwrap()];
        regex::Regex::new(r"<span class=.tag[^>]*>([^<]*)</span>")
            .unwrap()
            .captures_iter(chips)
            .map(|c| c[1].to_owned())
            .collect()
    };
    assert_eq!(chips(1), ["Orders completed", "the agent answered"]);
    assert_eq!(chips(2), ["Handed to a person, no case yet"]);
    assert_eq!(chips(3), ["Its case is closed"]);
    assert_eq!(chips(4), ["An order failed"]);
    assert_eq!(chips(5), ["Still open"]);

    // The time zone once, in the header; each bubble its time alone, under a line for its day.
    assert_eq!(text.matches("UTC+04:00").count(), 1, "{text}");
    assert!(text.contains("Times are UTC+04:00"), "{text}");
    assert!(text.contains("Saturday, 10 January 2026"), "the day above its first bubble: {text}");
    let first = html.find("class=\"msg ").unwrap();
    let meta = &html[first..];
    let meta = &meta[meta.find("<span class=\"meta\">").unwrap() + 19..];
    assert!(meta.starts_with("04:00 · Customer</span>"), "{}", &meta[..60]);
}

/// On a 390-pixel phone each filter's checkbox stays beside its words.
#[tokio::test]
async fn the_filters_keep_each_checkbox_beside_its_label_on_a_phone() {
    let Some(chromium) = crate::support::chromium("export::filters") else { return };
    let s = seed().await;
    let page = export_html(&s);
    for width in [390, 1280] {
        let boxes = crate::report::measure(
            chromium,
            &page,
            width,
            "return Array.from(document.querySelectorAll('input[type=checkbox]')).map(function(i){\
               var l=i.closest('label'); if(!l) return {label:null};\
               var r=document.createRange(); r.selectNodeContents(l); r.setStartAfter(i);\
               var t=r.getClientRects()[0], b=i.getBoundingClientRect();\
               return {viewport:window.innerWidth,label:l.textContent.trim(),gap:t.left-b.right,dy:Math.abs((t.top+t.bottom)/2-(b.top+b.bottom)/2)};});",
        );
        let boxes = boxes.as_array().unwrap();
        assert_eq!(boxes.len(), 4, "{boxes:?}");
        for b in boxes {
            assert!(!b["label"].is_null(), "a checkbox outside a label: {b}");
            assert_eq!(b["viewport"], width, "the page is laid out {width} pixels wide");
            let (gap, dy) = (b["gap"].as_f64().unwrap(), b["dy"].as_f64().unwrap());
            assert!((0.0..=16.0).contains(&gap) && dy < 6.0, "at {width}px the checkbox is apart from its words: {b}");
        }
    }
}

/// A store the real daemon filled (four simulated days, sixty orders: IDs
/// asked for and given in the chat, cases closed when the customer came
/// back, activations; no faults, they add nothing here): no account ID of it in any format, every activation
/// number kept.
#[tokio::test]
async fn a_simulated_store_exports_without_an_account_id() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("sim");
    let out = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"))
        .env_remove("RUST_LOG")
        .env_remove("TRIBUTE_ASSISTANT_CONFIG")
        .env_remove("TRIBUTE_ASSISTANT_DATA_DIR")
        .args(["simulate", "--seed", "5", "--days", "4", "--orders", "60", "--restarts", "0", "--faults", "none"])
        .args(["--log", "error", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    // The store is what this test reads: a run whose invariants did not all
    // hold (exit 1, the simulate tests' business) still left one behind.
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() || (out.status.code() == Some(1) && said.contains("INVARIANTS VIOLATED")),
        "simulate failed: {said}"
    );
    let (accounts, _) = store_facts(&data_dir).await;
    assert!(accounts.len() >= 10, "the simulation gave account IDs: {accounts:?}");
    for format in ["jsonl", "csv", "html"] {
        let text = String::from_utf8(export(&data_dir, &["--format", format]).stdout).unwrap();
        let leaked: Vec<&String> = accounts.iter().filter(|a| occurs(&text, a)).collect();
        assert!(leaked.is_empty(), "{format}: account IDs leaked: {leaked:?}");
        assert!(!text.contains("act-[ACCOUNT_ID]"), "{format}: activation numbers taken for account IDs");
    }
    let convs = jsonl(&data_dir, &[]);
    let activations: Vec<&str> = convs
        .iter()
        .flat_map(|c| c["orders"].as_array().unwrap())
        .filter_map(|o| o["activation_id"].as_str())
        .collect();
    assert!(!activations.is_empty());
    let text = String::from_utf8(export(&data_dir, &["--format", "html"]).stdout).unwrap();
    for a in activations {
        assert!(text.contains(&format!("(activation {a})")), "{a} missing from the order's history");
    }
    assert!(text.contains("activated for account [ACCOUNT_ID]"), "a case outcome, redacted");
}
