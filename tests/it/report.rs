//! `tribute-assistant report` on a store seeded with a known history (rows
//! inserted with sqlx into a store migrated by `Store::open`), run through
//! the real binary: every figure of the JSON against a hand count, the
//! content gaps of planted near-duplicate questions, the HTML page in
//! headless Chromium; and `/report` and `/learn G…` in the simulated
//! moderator chat, refused for anyone who is not a moderator.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tribute_assistant::report::weekly::{self, Outcome, WEEK};
use tribute_assistant::report::{ReportSettings, Weekly};
use tribute_assistant::store::Store;
use tribute_assistant::telegram::MessengerError;
use tribute_testbed::sandbox::{Sandbox, SandboxOptions};
use tribute_testbed::sim::{FaultLevel, FaultPlan, FaultRates, SimConfig, SimWorld};

use crate::support::wait::eventually;

const S: i64 = 1000;
const MIN: i64 = 60 * S;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

struct Seeded {
    _dir: tempfile::TempDir,
    data_dir: PathBuf,
    /// Midnight UTC seven days before today: the range's first day.
    d0: i64,
    /// Agent turn ids by name (T1…T9).
    turns: std::collections::HashMap<&'static str, i64>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%d").to_string()
}

async fn exec(c: &mut SqliteConnection, sql: &str, args: &[Value]) -> i64 {
    let mut q = sqlx::query(sql);
    for a in args {
        q = match a {
            Value::Null => q.bind(None::<i64>),
            Value::Number(n) => q.bind(n.as_i64().unwrap()),
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.to_string()),
        };
    }
    q.execute(&mut *c).await.unwrap_or_else(|e| panic!("{sql}: {e}")).last_insert_rowid()
}

/// An order received at `at` in `state`; `send_after` puts its `confirmed` event that long after.
async fn order(c: &mut SqliteConnection, id: i64, state: &str, at: i64, send_after: Option<i64>) {
    exec(
        c,
        "INSERT INTO tribute_messages (chat_id, message_id, sender_id, outgoing, date, text, entities_json, buttons_json, kind, received_at) \
         VALUES (93372553, ?, 93372553, 0, ?, 'order', '[]', '[]', 'order', ?)",
        &[id.into(), (at / 1000).into(), at.into()],
    )
    .await;
    exec(
        c,
        "INSERT INTO orders (id, order_ref, chat_id, message_id, customer_name, customer_id, product, amount_minor, currency, \
         details, account_candidates, state, created_at, updated_at) \
         VALUES (?, ?, 93372553, ?, 'Customer', ?, '100 Diamonds', 500, 'EUR', 'ID 48213', '[\"48213\"]', ?, ?, ?)",
        &[id.into(), format!("TA-93372553-{id}").into(), id.into(), (5000 + id).into(), state.into(), at.into(), at.into()],
    )
    .await;
    exec(
        c,
        "INSERT INTO order_events (order_id, at, from_state, to_state, note) VALUES (?, ?, NULL, 'received', 'parsed')",
        &[id.into(), at.into()],
    )
    .await;
    if let Some(after) = send_after {
        exec(
            c,
            "INSERT INTO order_events (order_id, at, from_state, to_state, note) VALUES (?, ?, 'replied', 'confirmed', 'Send pressed')",
            &[id.into(), (at + after).into()],
        )
        .await;
    }
}

async fn conversation(c: &mut SqliteConnection, id: i64, at: i64) {
    exec(
        c,
        "INSERT INTO conversations (id, customer_id, customer_name, language, state, state_json, created_at, updated_at) \
         VALUES (?, ?, 'Customer', 'en', 'idle', '{\"state\":\"idle\"}', ?, ?)",
        &[id.into(), (7000 + id).into(), at.into(), at.into()],
    )
    .await;
}

async fn link(c: &mut SqliteConnection, conv: i64, order: i64, at: i64) {
    exec(
        c,
        "INSERT INTO conversation_orders (conversation_id, order_id, status, reason, linked_at, updated_at) \
         VALUES (?, ?, 'done', 'missing_account', ?, ?)",
        &[conv.into(), order.into(), at.into(), at.into()],
    )
    .await;
}

async fn message(c: &mut SqliteConnection, conv: i64, at: i64, dir: &str, author: &str, text: &str) {
    exec(
        c,
        "INSERT INTO conversation_messages (conversation_id, at, direction, author, author_id, text) VALUES (?, ?, ?, ?, ?, ?)",
        &[
            conv.into(),
            at.into(),
            dir.into(),
            author.into(),
            if author == "moderator" { 555.into() } else { Value::Null },
            text.into(),
        ],
    )
    .await;
}

/// An agent turn taking a second; `reasons` non-empty = escalated.
async fn turn(c: &mut SqliteConnection, conv: Option<i64>, at: i64, question: &str, reasons: &[&str]) -> i64 {
    let reasons_json =
        serde_json::to_string(&reasons.iter().map(|r| json!({"code": r, "detail": "seeded"})).collect::<Vec<_>>())
            .unwrap();
    exec(
        c,
        "INSERT INTO agent_turns (conversation_id, customer_id, question, answer, reply, language, confidence, sources_json, \
         reasons_json, escalated, mode, latency_ms, at) VALUES (?, ?, ?, NULL, 'reply', 'en', 0.5, '[]', ?, ?, 'llm', 1000, ?)",
        &[
            conv.map_or(Value::Null, Value::from),
            conv.map_or(Value::Null, |c| (7000 + c).into()),
            question.into(),
            reasons_json.into(),
            i64::from(!reasons.is_empty()).into(),
            at.into(),
        ],
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn case(
    c: &mut SqliteConnection,
    id: i64,
    reason: &str,
    order: Option<i64>,
    conv: Option<i64>,
    opened: i64,
    closed: Option<i64>,
) {
    exec(
        c,
        "INSERT INTO cases (id, short_id, reason, order_id, conversation_id, status, outcome, opened_at, closed_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            id.into(),
            format!("C{id}").into(),
            reason.into(),
            order.map_or(Value::Null, Value::from),
            conv.map_or(Value::Null, Value::from),
            if closed.is_some() { "closed" } else { "open" }.into(),
            closed.map_or(Value::Null, |_| "done".into()),
            opened.into(),
            closed.map_or(Value::Null, Value::from),
        ],
    )
    .await;
}

async fn audit(c: &mut SqliteConnection, at: i64, moderator: i64, case: Option<i64>, action: &str, allowed: bool) {
    exec(
        c,
        "INSERT INTO moderator_audit (at, moderator_id, case_id, action, detail, allowed, chat_id, message_id) \
         VALUES (?, ?, ?, ?, 'seeded', ?, -100, 1)",
        &[at.into(), moderator.into(), case.map_or(Value::Null, Value::from), action.into(), i64::from(allowed).into()],
    )
    .await;
}

async fn open_store() -> (tempfile::TempDir, PathBuf, SqliteConnection) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    let db = data_dir.join(tribute_assistant::DATABASE_FILE);
    Store::open(&db).await.unwrap().close().await;
    let c =
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&db).foreign_keys(true)).await.unwrap();
    (dir, data_dir, c)
}

/// The history the figures below are counted from by hand. The range is
/// the last eight UTC days (`d0` to the end of today); `now` is the real
/// clock, as the binary reads it.
async fn seed() -> Seeded {
    let (dir, data_dir, mut c) = open_store().await;
    let now = now_ms();
    let d0 = now - now.rem_euclid(DAY) - 7 * DAY;
    let c = &mut c;

    // Orders. Payment → Send: 30 s, 90 s, 10 min, ~1 h, 2 h.
    order(c, 1, "confirmed", d0 + HOUR, Some(30 * S)).await; // automatically
    order(c, 2, "confirmed", d0 + DAY + HOUR, Some(90 * S)).await; // automatically
    order(c, 3, "confirmed", d0 + DAY + 2 * HOUR, Some(10 * MIN)).await; // after contact
    order(c, 4, "confirmed", d0 + DAY + 3 * HOUR, Some(3700 * S)).await; // by a moderator
    order(c, 5, "confirmed", d0 + DAY + 4 * HOUR, Some(2 * HOUR)).await; // after contact, a case nobody acted on
    order(c, 6, "refunded", d0 + DAY + 5 * HOUR, None).await;
    order(c, 7, "failed", d0 + DAY + 6 * HOUR, None).await;
    order(c, 8, "escalated", d0 + 2 * DAY + HOUR, None).await;
    order(c, 9, "needs_customer", d0 + 6 * DAY, None).await;
    // Today, whatever the time of day (two hours ago was yesterday before 02:00 UTC).
    let today = d0 + 7 * DAY;
    order(c, 10, "replied", today + (now - today) / 2, None).await;
    order(c, 11, "confirmed", d0 - DAY, Some(S)).await; // before the range

    for id in 1..=7 {
        conversation(c, id, d0).await;
    }
    link(c, 1, 3, d0 + DAY + 2 * HOUR).await;
    link(c, 2, 5, d0 + DAY + 4 * HOUR).await;
    link(c, 2, 9, d0 + 6 * DAY).await;

    // Questions (agent turns of one second each).
    let mut turns = std::collections::HashMap::new();
    let t1 = d0 + DAY;
    turns.insert("T1", turn(c, Some(3), t1, "Which payment methods do you take?", &[]).await);
    message(c, 3, t1 + 500, "out", "agent", "Cards and PayPal.").await;
    let t2 = d0 + 3 * DAY;
    turns.insert("T2", turn(c, Some(3), t2, "How long does delivery take?", &[]).await);
    message(c, 3, t2 + S, "out", "agent", "A few minutes.").await;
    let t3 = t2 + 2 * HOUR; // asked again within the window: T2 is reopened
    turns.insert("T3", turn(c, Some(3), t3, "And on weekends?", &[]).await);
    message(c, 3, t3 + S, "out", "agent", "The same.").await;
    let t4 = d0 + 2 * DAY;
    turns.insert("T4", turn(c, Some(4), t4, "Can I change my order?", &[]).await);
    message(c, 4, t4 + S, "out", "agent", "Yes, before it is paid.").await;
    let t5 = d0 + 4 * DAY;
    turns.insert("T5", turn(c, Some(5), t5, "How do I get a refund?", &["refund"]).await);
    message(c, 5, t5 + 30 * MIN, "out", "moderator", "Refunds go through Tribute: open the receipt and tap Refund.")
        .await;
    let t6 = t5 + HOUR;
    turns.insert(
        "T6",
        turn(c, Some(5), t6, "How can I get a refund for the diamonds?", &["low_confidence", "refund"]).await,
    );
    message(c, 5, t6 + 2 * HOUR, "out", "moderator", "Same as before: the receipt in Tribute.").await;
    let t8 = d0 + 5 * DAY + 2 * HOUR;
    turns.insert("T8", turn(c, Some(6), t8, "Do you sell gift cards?", &["low_confidence"]).await);
    let t7 = now - HOUR; // the window has not ended: pending
    turns.insert("T7", turn(c, Some(6), t7, "Is there a discount?", &[]).await);
    message(c, 6, t7 + 800, "out", "agent", "Not at the moment.").await;
    let t9 = d0 + 5 * DAY + 3 * HOUR;
    message(c, 7, t9 - S, "in", "customer", "Do you deliver to Brazil?").await;
    turns.insert("T9", turn(c, Some(7), t9, "Do you deliver to Brazil?", &[]).await);
    message(c, 7, t9 + 1500, "out", "agent", "Yes, everywhere.").await;
    message(c, 7, t9 + MIN, "in", "customer", "Thanks!").await;
    message(c, 7, t9 + 2 * MIN, "internal", "moderator", "nice one").await;
    turn(c, None, d0 + DAY, "ask on the command line", &[]).await;
    turn(c, Some(7), d0 - 2 * DAY, "before the range", &["refund"]).await;

    // Cases and moderator actions.
    let o = |id: i64| {
        [
            0,
            d0 + HOUR,
            d0 + DAY + HOUR,
            d0 + DAY + 2 * HOUR,
            d0 + DAY + 3 * HOUR,
            d0 + DAY + 4 * HOUR,
            d0 + DAY + 5 * HOUR,
            d0 + DAY + 6 * HOUR,
            d0 + 2 * DAY + HOUR,
        ][id as usize]
    };
    case(c, 1, "missing_account", Some(4), None, o(4) + MIN, Some(o(4) + HOUR)).await;
    audit(c, o(4) + 5 * MIN, 555, Some(1), "account", true).await;
    case(c, 2, "customer_silent", Some(5), Some(2), o(5) + MIN, Some(o(5) + 2 * HOUR)).await;
    audit(c, o(5) + MIN + S, 555, Some(2), "case", true).await; // a look, not an action
    audit(c, o(5) + 2 * MIN, 555, Some(2), "relay", true).await;
    case(c, 3, "backend_rejected", Some(7), None, o(7) + MIN, Some(o(7) + 30 * MIN)).await;
    audit(c, o(7) + 30 * MIN, 556, Some(3), "reject", true).await;
    case(c, 4, "button_never_came", Some(8), None, o(8) + MIN, None).await;
    case(c, 5, "customer_question", None, Some(5), t5 + 100, Some(t6 + 3 * HOUR)).await;
    audit(c, t5 + 30 * MIN, 555, Some(5), "relay", true).await;
    audit(c, t6 + 2 * HOUR, 555, Some(5), "relay", true).await;
    audit(c, t6 + 3 * HOUR, 555, Some(5), "done", true).await;
    case(c, 6, "customer_question", None, Some(4), t4 + HOUR, None).await; // T4 reopened
    case(c, 7, "unrecognised_message", None, None, d0 - 10 * DAY, None).await;
    case(c, 8, "unrecognised_message", None, None, now - 30 * MIN, None).await;
    case(c, 9, "malformed_order", None, None, now - 5 * HOUR, None).await;
    case(c, 10, "missing_account", Some(11), None, d0 - 3 * DAY, Some(d0 + HOUR)).await;
    audit(c, d0 + 3 * DAY, 555, None, "cases", true).await;
    audit(c, d0 + 3 * DAY, 8001, None, "refused", false).await;
    audit(c, d0 - 2 * DAY, 555, Some(10), "note", true).await;
    Seeded { _dir: dir, data_dir, d0, turns }
}

fn report(data_dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"))
        .env_remove("RUST_LOG")
        .env_remove("TRIBUTE_ASSISTANT_CONFIG")
        .env_remove("TRIBUTE_ASSISTANT_DATA_DIR")
        .arg("report")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "report failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn range_args(s: &Seeded) -> [String; 4] {
    ["--since".into(), date(s.d0), "--until".into(), date(now_ms())]
}

fn json_report(s: &Seeded, extra: &[&str]) -> Value {
    let range = range_args(s);
    let mut args: Vec<&str> = range.iter().map(String::as_str).collect();
    args.extend_from_slice(&["--format", "json"]);
    args.extend_from_slice(extra);
    serde_json::from_slice(&report(&s.data_dir, &args).stdout).unwrap()
}

#[tokio::test]
async fn every_figure_of_the_json_matches_the_hand_count() {
    let s = seed().await;
    let r = json_report(&s, &[]);
    assert_eq!(r["range"]["since"], format!("{}T00:00:00.000Z", date(s.d0)));
    assert_eq!(r["range"]["until"], format!("{}T00:00:00.000Z", date(s.d0 + 8 * DAY)));
    assert_eq!(
        (r["range"]["bucket"].as_str(), r["range"]["resolution_window_secs"].as_i64()),
        (Some("day"), Some(86_400))
    );

    let o = &r["orders"];
    let oldest = o["oldest_open_age_secs"].as_i64().unwrap();
    let expected_oldest = (now_ms() - (s.d0 + 2 * DAY + HOUR)) / 1000;
    assert!((oldest - expected_oldest).abs() <= 60, "the oldest open order is order 8: {oldest} vs {expected_oldest}");
    let mut o = o.clone();
    o.as_object_mut().unwrap().remove("oldest_open_age_secs");
    assert_eq!(
        o,
        json!({
            "paid": 10, "completed": 5, "completed_automatically": 2, "completed_after_contact": 2,
            "completed_by_moderator": 1, "refunded": 1, "failed": 1, "open": 3, "open_escalated": 1,
            "open_needs_customer": 1, "automation_rate": 0.4,
            // 30 s, 90 s, 600 s, 3700 s, 7200 s: nearest rank 3 and 5 of 5.
            "payment_to_send_ms": {"count": 5, "p50": 600_000, "p90": 7_200_000, "max": 7_200_000}
        })
    );

    assert_eq!(
        r["questions"],
        json!({
            "asked": 9, "resolved_by_agent": 3, "reopened": 2, "escalated": 3, "pending": 1,
            "resolution_rate": 0.375,
            "escalated_by_reason": {"low_confidence": 2, "refund": 2},
            "answered_by_moderator": 2,
            // 1.8 s, 2 s ×3, 2.5 s ×2, 30 min + 1 s, 2 h + 1 s; T8 was never answered.
            "first_answer_ms": {"count": 8, "p50": 2000, "p90": 7_201_000, "max": 7_201_000},
            "resolved_conversations": 1,
            "messages_per_resolved_conversation": 3.0
        })
    );

    assert_eq!(
        r["moderators"],
        json!({
            "cases_opened": 8, "cases_closed": 5,
            "cases_opened_by_reason": {"backend_rejected": 1, "button_never_came": 1, "customer_question": 2,
                                       "customer_silent": 1, "malformed_order": 1, "missing_account": 1,
                                       "unrecognised_message": 1},
            // 1 min, 4 min, 29 min, 30 min − 0.1 s.
            "first_action_ms": {"count": 4, "p50": 240_000, "p90": 1_799_900, "max": 1_799_900},
            "cases_without_action": 4,
            "open_cases_by_age": {"under_1h": 1, "1h_to_24h": 1, "1d_to_7d": 2, "over_7d": 1},
            "actions": [
                {"moderator_id": 555, "total": 7, "by_action": {"account": 1, "case": 1, "cases": 1, "done": 1, "relay": 3}},
                {"moderator_id": 556, "total": 1, "by_action": {"reject": 1}}
            ],
            "refused": 1
        })
    );

    let trend = r["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 8, "one point per day of the range");
    let column = |key: &str| trend.iter().map(|p| p[key].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(column("paid"), [1, 6, 1, 0, 0, 0, 1, 1]);
    assert_eq!(column("completed"), [1, 4, 0, 0, 0, 0, 0, 0]);
    assert_eq!(column("completed_automatically"), [1, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(column("completed_after_contact"), [0, 2, 0, 0, 0, 0, 0, 0]);
    assert_eq!(column("completed_by_moderator"), [0, 1, 0, 0, 0, 0, 0, 0]);
    let questions = column("questions");
    assert_eq!(&questions[..6], [0, 1, 1, 2, 2, 2]);
    // T7, an hour ago: today, or yesterday when the test runs before 01:00 UTC.
    assert_eq!(questions[6] + questions[7], 1, "{questions:?}");
    assert_eq!(column("resolved_by_agent"), [0, 1, 0, 1, 0, 1, 0, 0]);
    assert_eq!(column("escalated"), [0, 0, 0, 0, 2, 1, 0, 0]);
    let cases = column("cases_opened");
    assert_eq!(&cases[..6], [0, 3, 2, 0, 1, 0]);
    // Cases 8 and 9 opened in the last hours: today, or yesterday when the test runs before 05:00 UTC.
    assert_eq!(cases[6] + cases[7], 2, "{cases:?}");
    assert_eq!(cases.iter().sum::<i64>(), 8);
    assert_eq!(trend[1]["payment_to_send_p50_ms"], json!(600_000), "90 s, 600 s, 3700 s, 7200 s: rank 2 of 4");
    assert_eq!(trend[0]["start"], format!("{}T00:00:00.000Z", date(s.d0)));

    let gaps = r["content_gaps"].as_array().unwrap();
    let (t5, t8) = (s.turns["T5"], s.turns["T8"]);
    assert_eq!(
        gaps[0],
        json!({
            "id": format!("G{t5}"), "size": 2,
            "questions": ["How do I get a refund?", "How can I get a refund for the diamonds?"],
            "answers": ["Refunds go through Tribute: open the receipt and tap Refund.", "Same as before: the receipt in Tribute."],
            "suggested": {"question": "How do I get a refund?", "answer": "Refunds go through Tribute: open the receipt and tap Refund."},
            "approve": format!("/learn G{t5}")
        })
    );
    assert_eq!(
        gaps[1],
        json!({"id": format!("G{t8}"), "size": 1, "questions": ["Do you sell gift cards?"], "answers": [],
               "suggested": null, "approve": null})
    );
    assert_eq!(gaps.len(), 2);
    assert_eq!(r["content_gap_summary"], json!({"questions": 3, "groups": 2, "unclustered": 0}));

    // A shorter window: T2 is asked again after 2 h, so with a 1-hour window it is resolved.
    let config = s.data_dir.join("config.toml");
    std::fs::write(&config, "[report]\nresolution_window_hours = 1\n").unwrap();
    let range = range_args(&s);
    let mut args: Vec<&str> = range.iter().map(String::as_str).collect();
    args.extend_from_slice(&["--format", "json"]);
    let out = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"))
        .env_remove("TRIBUTE_ASSISTANT_DATA_DIR")
        .args(["--config", config.to_str().unwrap(), "report", "--data-dir", s.data_dir.to_str().unwrap()])
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let short: Value = serde_json::from_slice(&out.stdout).unwrap();
    let q = &short["questions"];
    // T2 resolved; T4's case came after 1 h exactly, outside the window; T7's hour has passed.
    assert_eq!(
        (q["resolved_by_agent"].as_i64(), q["reopened"].as_i64(), q["pending"].as_i64()),
        (Some(6), Some(0), Some(0)),
        "{q}"
    );
}

#[tokio::test]
async fn text_output_is_a_table_with_trend_bars() {
    let s = seed().await;
    let range = range_args(&s);
    let args: Vec<&str> = range.iter().map(String::as_str).collect();
    let text = String::from_utf8(report(&s.data_dir, &args).stdout).unwrap();
    // Compared with runs of spaces as one: the columns' widths are not the point.
    let flat: Vec<String> = text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    for needle in [
        "Orders (received in the range, where they are now)",
        "paid 10",
        "automatically 2 40%",
        "resolved by the agent 3 resolution rate 38%",
        "payment → Send p50 10m 00s · p90 2h 00m · max 2h 00m (5 orders)",
        "moderator 555 7 relay 3, account 1, case 1, cases 1, done 1",
        "open cases now 5 <1h 1 · 1–24h 1 · 1–7d 2 · >7d 1",
        "Content gaps: 3 escalated questions in 2 groups",
        "? How do I get a refund?",
    ] {
        assert!(flat.iter().any(|l| l == needle || l.starts_with(needle)), "{needle:?} missing in:\n{text}");
    }
    let day1 = format!("  {} ", date(s.d0 + DAY));
    let line = text.lines().find(|l| l.starts_with(&day1)).unwrap_or_else(|| panic!("no trend line {day1}:\n{text}"));
    // The day with the most orders has the full bar: 4 of 6 completed.
    assert!(line.contains(&format!("{}{}", "█".repeat(16), "░".repeat(8))), "{line}");
}

#[tokio::test]
async fn the_html_page_is_self_contained_and_renders_its_charts() {
    let s = seed().await;
    let page = s.data_dir.join("report.html");
    let range = range_args(&s);
    let mut args: Vec<&str> = range.iter().map(String::as_str).collect();
    args.extend_from_slice(&["--format", "html", "--output", page.to_str().unwrap()]);
    let out = report(&s.data_dir, &args);
    assert!(out.stdout.is_empty(), "--output writes the file, not stdout");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&page).unwrap().permissions().mode() & 0o777, 0o600);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(html.contains("name=\"viewport\""), "readable on a phone");
    for external in ["src=", "href=", "@import", "url(", "<script"] {
        assert!(!html.contains(external), "external asset or script: {external}");
    }
    for chart in ["trend-orders", "trend-questions"] {
        assert!(html.contains(&format!("<svg class=\"chart\" id=\"{chart}\"")), "{chart}");
    }

    let Some(chromium) = crate::support::chromium("report::html") else { return };
    let dom = crate::support::chromium::dump_dom(chromium, &page);
    // The browser built both charts: 8 columns each, a rect per non-zero part.
    for chart in ["trend-orders", "trend-questions"] {
        let start = dom.find(&format!("id=\"{chart}\"")).unwrap_or_else(|| panic!("{chart} not in the DOM"));
        let svg = &dom[start..start + dom[start..].find("</svg>").unwrap()];
        assert!(svg.contains("data-points=\"8\""), "{svg}");
        assert_eq!(svg.matches("<g class=\"col\">").count(), 8, "{svg}");
        assert!(svg.matches("<rect").count() >= 4, "{svg}");
    }
    let orders = &dom[dom.find("id=\"trend-orders\"").unwrap()..];
    // Day 1: 1 automatically, 2 after contact, 1 by a moderator, 2 not completed; the tallest column.
    assert!(orders.contains("automatically 1, after contact 2, by a moderator 1, not completed (yet) 2"), "{orders}");
    for (tile, value) in [("paid", "10"), ("completed", "5"), ("automation", "40%"), ("resolution", "38%")] {
        let needle = format!("id=\"tile-{tile}\"><div class=\"v\">{value}</div>");
        assert!(dom.contains(&needle), "{needle} not in the DOM");
    }
    assert!(dom.contains("<tr data-key=\"completed_by_moderator\"><td>— by a moderator</td><td class=\"n\">1</td>"));
    assert!(dom.contains(&format!("id=\"gap-G{}\" data-size=\"2\"", s.turns["T5"])));
    println!("Chromium rendered the report");
}

/// Escalated questions planted in three groups of near-duplicates (two
/// languages) and two questions unlike any other.
#[tokio::test]
async fn near_duplicate_questions_fall_into_the_right_content_gaps() {
    let (_dir, data_dir, mut c) = open_store().await;
    let c = &mut c;
    let now = now_ms();
    let planted: [(&str, &[&str]); 5] = [
        (
            "refund",
            &[
                "How do I get a refund?",
                "How can I get a refund for my order?",
                "I want a refund, how do I get it?",
                "refund please, how to get my refund",
            ],
        ),
        (
            "diamonds",
            &[
                "Когда придут алмазы?",
                "Алмазы до сих пор не пришли, когда придут?",
                "Почему алмазы не пришли?",
                "Я оплатил, а алмазы не пришли",
                "алмазы не пришли!!",
            ],
        ),
        ("promo", &["Где ввести промокод?", "Куда ввести промокод при оплате?", "Промокод — где его ввести?"]),
        ("gift", &["Do you sell gift cards?"]),
        ("vip", &["Можно ли перенести VIP статус на другой аккаунт?"]),
    ];
    let mut expected: Vec<(usize, &str)> = Vec::new();
    let mut conv = 0;
    let mut by_id = std::collections::HashMap::new();
    // Interleaved, so grouping does not depend on the order they were asked in.
    let longest = planted.iter().map(|(_, qs)| qs.len()).max().unwrap();
    for i in 0..longest {
        for (topic, questions) in &planted {
            if let Some(q) = questions.get(i) {
                conv += 1;
                conversation(c, conv, now - 2 * DAY).await;
                let id = turn(c, Some(conv), now - DAY + conv * MIN, q, &["low_confidence"]).await;
                by_id.insert(id, *topic);
            }
        }
    }
    for (topic, questions) in &planted {
        expected.push((questions.len(), topic));
    }
    expected.sort_by_key(|e| std::cmp::Reverse(e.0));
    let out = report(&data_dir, &["--since", "7d", "--format", "json"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let gaps = r["content_gaps"].as_array().unwrap();
    let mut got = Vec::new();
    for gap in gaps {
        let id: i64 = gap["id"].as_str().unwrap()[1..].parse().unwrap();
        let topic = by_id[&id];
        let questions: Vec<&str> = gap["questions"].as_array().unwrap().iter().map(|q| q.as_str().unwrap()).collect();
        let planted_here = planted.iter().find(|(t, _)| *t == topic).unwrap().1;
        assert!(questions.iter().all(|q| planted_here.contains(q)), "{topic}: {questions:?}");
        got.push((gap["size"].as_u64().unwrap() as usize, topic));
    }
    assert_eq!(got, expected, "{gaps:#?}");
    assert_eq!(r["content_gap_summary"], json!({"questions": 14, "groups": 5, "unclustered": 0}));
    assert_eq!(r["questions"]["escalated"], 14);
}

#[tokio::test]
async fn a_moderator_gets_the_report_and_approves_a_content_gap_and_anyone_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut sb = Sandbox::new(dir.path(), SandboxOptions { agent: true, ..Default::default() }).await.unwrap();
    sb.start_daemon(None).await.unwrap();
    let chat = |needle: &'static str| {
        let sb = &sb;
        async move {
            eventually(&format!("{needle:?} in the moderator chat"), || async {
                sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.outgoing && m.text.contains(needle))
            })
            .await
        }
    };
    // A question the FAQ does not cover: escalated, then answered by the moderator.
    sb.world.add_user(811, "Игорь", None);
    sb.world.post_as_user(811, 811, "Есть ли у вас скидки для оптовых покупателей?", None);
    let card = chat("оптовых").await;
    let team = "Да: от 10 000 алмазов скидка 10%, промокод WHOLESALE.";
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, team, Some(card.id));
    chat("sent to").await;

    // Someone who is not a moderator: refused, logged, no report.
    sb.world.add_user(8001, "Random member", None);
    let intruder = sb.world.post_as_user(sb.moderator_chat, 8001, "/report", None);
    let refusal = chat("only the moderators").await;
    assert_eq!(refusal.reply_to, Some(intruder));

    // The escalated, answered question is not a gap the report listed yet: refused.
    let turn = sb.store().agent_turns_since(0, 10).await.unwrap().into_iter().find(|t| t.escalated).unwrap();
    let early = sb.world.post_as_user(sb.moderator_chat, sb.moderator, &format!("/learn G{}", turn.id), None);
    let refused = chat("is not a content gap the report listed").await;
    assert_eq!(refused.reply_to, Some(early));

    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/report", None);
    let summary = chat("📊 Report").await;
    assert!(
        !sb.world.messages(sb.moderator_chat).iter().any(|m| m.outgoing && m.id < summary.id && m.text.contains("📊")),
        "the refused /report posted nothing"
    );
    assert!(tribute_assistant::telegram::utf16_len(&summary.text) <= 4096);
    assert!(summary.text.contains("💬 Questions: 1 asked · 0 resolved by the agent"), "{}", summary.text);
    assert!(summary.text.contains("1 escalated · 1 answered by a moderator"), "{}", summary.text);
    let gap = summary.text.lines().find(|l| l.starts_with("• G")).unwrap_or_else(|| panic!("{}", summary.text));
    assert!(gap.contains("оптовых"), "{gap}");
    let approve = gap.split("→ ").nth(1).unwrap_or_else(|| panic!("no approve command: {gap}")).trim();
    assert!(approve.starts_with("/learn G"), "{approve}");

    assert_eq!(approve, format!("/learn G{}", turn.id));
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, approve, None);
    let preview = chat("add this pair to the knowledge base").await;
    assert!(preview.text.contains("оптовых") && preview.text.contains(team), "{}", preview.text);
    assert!(sb.store().approved_pairs().await.unwrap().is_empty(), "nothing is stored before the confirmation");
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/learn yes", Some(preview.id));
    chat("answer approved").await;
    let pairs = sb.store().approved_pairs().await.unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].approved_by, sb.moderator);
    assert!(pairs[0].answer.contains(team), "the team's answer as the customer got it: {}", pairs[0].answer);
    assert!(pairs[0].question.contains("оптовых"));

    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/report someday", None);
    chat("Usage: /report").await;
    let audit = sb.store().audit_log(None).await.unwrap();
    let refused: Vec<_> = audit.iter().filter(|a| !a.allowed).map(|a| (a.moderator_id, a.detail.as_str())).collect();
    assert_eq!(refused, [(8001, "/report")]);
    assert!(audit.iter().any(|a| a.action == "report" && a.allowed && a.moderator_id == sb.moderator));
    sb.shutdown().await.unwrap();
}

/// The weekly summary on the simulator without the daemon, at chosen
/// instants of the program's clock: scheduled in the store, posted once
/// when due, not skipped by a "restart" after the time, not doubled by a
/// retry of a send that went through.
#[tokio::test]
async fn the_weekly_summary_is_posted_once_per_week_even_across_restarts_and_lost_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("weekly.db")).await.unwrap();
    let world = SimWorld::new(SimConfig::default());
    let chat = world.create_group("Moderators");
    let client = world.connect();
    let weekly = Weekly::parse("mon 09:00").unwrap();
    let settings = ReportSettings { weekly: Some(weekly), ..ReportSettings::default() };
    let posts = || world.messages(chat).into_iter().filter(|m| m.outgoing).count();

    // Off by default: nothing is scheduled.
    let off = ReportSettings::default();
    assert_eq!(weekly::post_due(&store, &client, chat, &off, now_ms()).await.unwrap(), Outcome::NotDue(None));
    assert_eq!(store.report_post_waiting().await.unwrap(), None);

    // Enabled: the next Monday 09:00 UTC is scheduled, nothing posted early.
    let start = now_ms();
    let first = weekly.after(start);
    assert_eq!(weekly::post_due(&store, &client, chat, &settings, start).await.unwrap(), Outcome::NotDue(Some(first)));
    assert_eq!(
        weekly::post_due(&store, &client, chat, &settings, first - 1).await.unwrap(),
        Outcome::NotDue(Some(first))
    );
    assert_eq!(posts(), 0);

    // Due: posted once; the next week is scheduled.
    assert_eq!(weekly::post_due(&store, &client, chat, &settings, first + 5).await.unwrap(), Outcome::Posted(first));
    assert_eq!(
        weekly::post_due(&store, &client, chat, &settings, first + 10).await.unwrap(),
        Outcome::NotDue(Some(first + WEEK))
    );
    assert_eq!(posts(), 1);
    let text = world.messages(chat).into_iter().find(|m| m.outgoing).unwrap().text;
    assert!(text.starts_with("📊 Report "), "{text}");
    // Read on a phone: times in words, no percentile jargon.
    assert!(!text.contains("p50") && !text.contains("p90"), "{text}");
    assert!(text.contains("Payment → Send: "), "{text}");

    // The process was down over the next Monday: the "restarted" poster
    // (a fresh call, only the store remembers) posts it late, once.
    let late = first + WEEK + 3 * DAY;
    assert_eq!(weekly::post_due(&store, &client, chat, &settings, late).await.unwrap(), Outcome::Posted(first + WEEK));
    assert_eq!(
        weekly::post_due(&store, &client, chat, &settings, late + 1).await.unwrap(),
        Outcome::NotDue(Some(first + 2 * WEEK))
    );
    assert_eq!(posts(), 2);

    // The send goes through but its answer is lost: retried later with the same random_id, not posted twice.
    world.set_fault_plan(
        FaultPlan::new(7, FaultLevel::Hostile).with_rates(FaultRates { send_timeout: 1000, ..Default::default() }),
    );
    let third = first + 2 * WEEK;
    let Outcome::Retrying(again) = weekly::post_due(&store, &client, chat, &settings, third).await.unwrap() else {
        panic!("a lost answer is retried")
    };
    assert!(again > third);
    world.set_fault_plan(FaultPlan::none());
    assert_eq!(weekly::post_due(&store, &client, chat, &settings, again).await.unwrap(), Outcome::Posted(third));
    assert_eq!(posts(), 3, "delivered once although sent twice");
    assert_eq!(world.refused_sends().get("RANDOM_ID_DUPLICATE"), Some(&1));

    // A failure that is not a lost answer: retried with backoff, then posted.
    world.fail_sends_to(chat, MessengerError::Other("INTERNAL".into()));
    let fourth = first + 3 * WEEK;
    let Outcome::Retrying(again) = weekly::post_due(&store, &client, chat, &settings, fourth).await.unwrap() else {
        panic!("retried")
    };
    world.clear_send_failure(chat);
    assert_eq!(weekly::post_due(&store, &client, chat, &settings, again).await.unwrap(), Outcome::Posted(fourth));

    // The schedule changes to Fridays: the waiting Monday is dropped, the next Friday scheduled.
    let friday = ReportSettings { weekly: Some(Weekly::parse("fri 17:00").unwrap()), ..ReportSettings::default() };
    let now = fourth + HOUR;
    let next_friday = Weekly::parse("fri 17:00").unwrap().after(now);
    assert_eq!(
        weekly::post_due(&store, &client, chat, &friday, now).await.unwrap(),
        Outcome::NotDue(Some(next_friday))
    );
    assert_eq!(posts(), 4);
}

/// The report's counters on `/metrics`, with the report's definitions: one
/// order completed on its own, one after the customer sent their ID, an
/// escalated order's case open.
#[tokio::test]
async fn the_report_counters_are_on_metrics() {
    use tribute_assistant::domain::OrderState;

    use crate::support::sandbox::wait_state;
    use crate::support::sim::{order, OrderBuilder};
    let dir = tempfile::tempdir().unwrap();
    let mut sb = Sandbox::new(dir.path(), SandboxOptions { ops_listener: true, ..Default::default() }).await.unwrap();
    sb.start_daemon(None).await.unwrap();
    sb.backend.add_pending("123456", "100 Diamonds");
    sb.backend.add_pending("654321", "100 Diamonds");
    let auto = sb.world.post_order(&order(901).by("Anna").details("ID 123456"));
    wait_state(&sb, auto, OrderState::Confirmed).await;
    let asked = sb.world.post_order(&order(902).by("Oleg").details("забыл ID"));
    eventually("the customer asked", || async { sb.world.messages(902).into_iter().find(|m| m.outgoing) }).await;
    sb.world.post_as_user(902, 902, "654321", None);
    wait_state(&sb, asked, OrderState::Confirmed).await;
    sb.world.add_user(903, "Ivan", None);
    sb.world.fail_sends_to(903, MessengerError::PrivacyRestricted);
    let stuck = sb.world.post_order(&order(903).by("Ivan").details("нет ID"));
    wait_state(&sb, stuck, OrderState::Escalated).await;

    // The first scrape reads the store (later ones within a minute reuse it).
    let text = reqwest::get(format!("{}/metrics", sb.ops_url().unwrap())).await.unwrap().text().await.unwrap();
    for line in [
        "# TYPE tribute_assistant_orders_completed gauge",
        "tribute_assistant_orders_completed{how=\"automatically\"} 1\n",
        "tribute_assistant_orders_completed{how=\"after_contact\"} 1\n",
        "tribute_assistant_orders_completed{how=\"by_moderator\"} 0\n",
        "# TYPE tribute_assistant_questions gauge",
        "tribute_assistant_questions{outcome=\"resolved_by_agent\"} 0\n",
        "tribute_assistant_cases_open{age=\"under_1h\"} 1\n",
        "tribute_assistant_cases_open{age=\"over_7d\"} 0\n",
    ] {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
    sb.shutdown().await.unwrap();
}

/// The weekly summary through the whole daemon: configured for two hours
/// from now, it is not posted before, and once the paused clock passes the
/// time it reaches the moderator chat, once.
#[tokio::test]
async fn the_weekly_summary_reaches_the_moderator_chat_when_its_time_comes() {
    use crate::support::sandbox::moderator_texts;
    use crate::support::wait::{advance, pause_time};
    use tribute_assistant::report::ReportSection;
    let at = chrono::Utc::now() + chrono::Duration::hours(2);
    let weekly = at.format("%a %H:%M").to_string().to_lowercase();
    let report: ReportSettings =
        ReportSection { weekly: Some(weekly.clone()), ..Default::default() }.settings().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sb = crate::support::sandbox::sandbox_with(&dir, SandboxOptions { report, ..Default::default() }).await;
    let summaries = |sb: &Sandbox| moderator_texts(sb).into_iter().filter(|t| t.starts_with("📊 Report")).count();

    let clock = pause_time().await;
    advance(std::time::Duration::from_secs(3600)).await;
    assert_eq!(summaries(&sb), 0, "not before {weekly}");
    advance(std::time::Duration::from_secs(3600 + 120)).await;
    eventually("the weekly summary", || async { (summaries(&sb) > 0).then_some(()) }).await;
    advance(std::time::Duration::from_secs(3600)).await;
    assert_eq!(summaries(&sb), 1, "{:?}", moderator_texts(&sb));
    clock.resume();
    sb.shutdown().await.unwrap();
}

/// The page as a reader sees it: the text of its elements and its tooltips
/// (`<title>`, `title="…"`), without markup, styles or scripts.
pub(crate) fn visible_text(html: &str) -> String {
    let drop = regex::Regex::new(r"(?s)<style.*?</style>|<script.*?</script>").unwrap();
    let html = drop.replace_all(html, " ");
    let titles: Vec<String> =
        regex::Regex::new(r#"title="([^"]*)""#).unwrap().captures_iter(&html).map(|c| c[1].to_owned()).collect();
    let text = regex::Regex::new(r"(?s)<[^>]*>").unwrap().replace_all(&html, " ");
    let text = format!("{text} {}", titles.join(" "));
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// Loads `page` in headless `chromium` in a frame `width` CSS pixels wide
/// (a window cannot be made narrower than 500 pixels, a frame can: its
/// media queries see the frame's width, as a phone's see the phone's), runs
/// `script` (the body of a function, with the page's `document`, `window`
/// and `getComputedStyle`) once the page is loaded, and gives back what it
/// returned.
pub(crate) fn measure(chromium: &Path, page: &Path, width: u32, script: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(page, dir.path().join("page.html")).unwrap();
    let wrapper = dir.path().join("frame.html");
    std::fs::write(
        &wrapper,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\"><iframe id=\"f\" src=\"page.html\" \
             style=\"width:{width}px;height:2000px;border:0\"></iframe><script>\
             var f=document.getElementById('f');f.onload=function(){{var w=f.contentWindow;\
             var r=(function(document,window,getComputedStyle){{{script}}})(w.document,w,w.getComputedStyle.bind(w));\
             var p=document.createElement('pre');p.id='measured';p.textContent=JSON.stringify(r);\
             document.body.appendChild(p);}};</script></body></html>"
        ),
    )
    .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--dump-dom"])
        .arg("--allow-file-access-from-files")
        .arg(format!("--window-size={},2100", width + 40))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", wrapper.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8(out.stdout).unwrap();
    let start = dom.find("<pre id=\"measured\">").unwrap_or_else(|| panic!("the probe did not run: {dom}"));
    let json = &dom[start + "<pre id=\"measured\">".len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    serde_json::from_str(&json.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")).unwrap()
}

fn html_report(s: &Seeded, since: &str, until: &str) -> (PathBuf, String) {
    let page = s.data_dir.join(format!("report-{since}-{until}.html"));
    report(&s.data_dir, &["--since", since, "--until", until, "--format", "html", "--output", page.to_str().unwrap()]);
    let html = std::fs::read_to_string(&page).unwrap();
    (page, html)
}

/// Every chart's text (scale and dates) at least 11 CSS pixels where it is
/// drawn, inside its chart, the dates apart from each other and the last
/// column's date the last one — on a 390-pixel phone and a 1280-pixel
/// screen, for a week and for a month.
#[tokio::test]
async fn the_charts_read_on_a_phone_with_a_scale_and_every_date_inside() {
    let s = seed().await;
    let today = now_ms() - now_ms().rem_euclid(DAY);
    let last = chrono::DateTime::from_timestamp_millis(today).unwrap().format("%-d %b").to_string();
    for days in [8, 31] {
        let (page, html) = html_report(&s, &date(today - (days - 1) * DAY), &date(today));
        assert!(!html.contains("viewBox"), "a viewBox scales the text down with the chart");
        for chart in ["trend-orders", "trend-questions"] {
            let svg = &html[html.find(&format!("id=\"{chart}\"")).unwrap()..];
            let svg = &svg[..svg.find("</svg>").unwrap()];
            assert!(svg.contains(&format!("data-points=\"{days}\"")), "{svg}");
            assert!(svg.contains("class=\"tick\""), "a y-scale: {svg}");
            assert!(svg.contains(&format!("text-anchor=\"end\" font-size=\"12\">{last}</text>")), "{svg}");
        }
        let Some(chromium) = crate::support::chromium("report::charts") else { continue };
        for width in [390, 1280] {
            let charts = measure(
                chromium,
                &page,
                width,
                "return Array.from(document.querySelectorAll('svg.chart')).map(function(svg){\
                   var box=svg.getBoundingClientRect();\
                   var texts=Array.from(svg.querySelectorAll('text')).filter(function(t){\
                     return getComputedStyle(t).display!='none';});\
                   return {id:svg.id,viewport:window.innerWidth,width:box.width,height:box.height,labels:texts.map(function(t){\
                     var r=t.getBoundingClientRect();\
                     return {text:t.textContent,px:parseFloat(getComputedStyle(t).fontSize)*t.getScreenCTM().a,\
                       left:r.left-box.left,right:r.right-box.left,top:r.top-box.top,bottom:r.bottom-box.top};})};});",
            );
            let charts = charts.as_array().unwrap();
            assert_eq!(charts.len(), 2, "{charts:?}");
            for c in charts {
                assert_eq!(c["viewport"], width, "the page is laid out {width} pixels wide");
                let (w, h) = (c["width"].as_f64().unwrap(), c["height"].as_f64().unwrap());
                let labels = c["labels"].as_array().unwrap();
                let f = |l: &Value, k: &str| l[k].as_f64().unwrap();
                for l in labels {
                    assert!(f(l, "px") >= 11.0, "{days} days at {width}px: {l} is drawn under 11px");
                    assert!(
                        f(l, "left") >= -0.5 && f(l, "right") <= w + 0.5,
                        "{days} days at {width}px: {l} sticks out of {w}"
                    );
                    assert!(
                        f(l, "top") >= -0.5 && f(l, "bottom") <= h + 0.5,
                        "{days} days at {width}px: {l} sticks out of {h}"
                    );
                }
                let mut dates: Vec<&Value> = labels.iter().filter(|l| f(l, "top") > h * 0.7).collect();
                dates.sort_by(|a, b| f(a, "left").total_cmp(&f(b, "left")));
                assert!(dates.len() >= 2, "{days} days at {width}px: dates {dates:?}");
                for pair in dates.windows(2) {
                    assert!(f(pair[0], "right") <= f(pair[1], "left"), "{days} days at {width}px: {pair:?} overlap");
                }
                assert_eq!(dates.last().unwrap()["text"], last.as_str(), "{days} days at {width}px: {dates:?}");
            }
        }
    }
}

/// Everything on the page in words: the time it was made, the reasons and
/// moderator commands, the medians; a figure that cannot be given says why.
#[tokio::test]
async fn the_html_page_says_everything_in_words() {
    let s = seed().await;
    let (_, html) = html_report(&s, &date(s.d0), &date(now_ms()));
    let text = visible_text(&html);
    let made = regex::Regex::new(r"Made on \d{1,2} [A-Z][a-z]+ \d{4}, \d{2}:\d{2} UTC").unwrap();
    assert!(made.is_match(&text), "the time it was made, in words: {text}");
    let rfc3339 = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}").unwrap();
    assert!(!rfc3339.is_match(&text), "a machine time on the page: {text}");
    let code = regex::Regex::new(r"\b[a-z]+_[a-z_]+\b").unwrap();
    let codes: Vec<&str> = code.find_iter(&text).map(|m| m.as_str()).collect();
    assert!(codes.is_empty(), "codes on the page: {codes:?}");
    for words in [
        "no account ID in the order",
        "the customer did not answer",
        "Tribute never showed the Send button",
        "a Tribute message we do not recognise",
        "the model was not sure",
        "moderator 555 (Telegram user)",
        "answered a customer 3 times",
        "gave an account ID once",
        "half of the orders within 10m 00s, 9 in 10 within 2h 00m, the slowest took 2h 00m (5 orders)",
        "How these times are measured",
    ] {
        assert!(text.contains(words), "{words:?} missing: {text}");
    }
    let def = html.find("<details class=\"def\">").expect("the definition, one tap away");
    assert!(html[def..].contains("median") && html[def..].contains("90th percentile"));
    // p50 and p90 only where they are explained: the definition and the rows' tooltips.
    let explained = regex::Regex::new(r#"(?s)<details class="def">.*?</details>|title="[^"]*""#).unwrap();
    let plain = visible_text(&explained.replace_all(&html, ""));
    assert!(!plain.contains("p50") && !plain.contains("p90"), "percentile jargon: {plain}");

    // A week with nothing in it: every "—" says why.
    let (_, empty) = html_report(&s, "2020-01-06", "2020-01-12");
    for (tile, why) in
        [("automation", "no orders in this period"), ("resolution", "no customer questions in this period")]
    {
        let needle = format!("id=\"tile-{tile}\"><div class=\"v\">—</div>");
        let at = empty.find(&needle).unwrap_or_else(|| panic!("{needle} missing"));
        let tile_html = &empty[at..at + empty[at..].find("</div></div>").unwrap()];
        assert!(tile_html.contains(&format!("<div class=\"why\">{why}")), "{tile_html}");
    }
    let text = visible_text(&empty);
    for why in [
        "no order was completed in this period",
        "no question was answered in this period",
        "no conversation was resolved by the agent in this period",
    ] {
        assert!(text.contains(why), "{why:?} missing: {text}");
    }
    assert!(text.contains("6 January 2020 – 12 January 2020"), "the period, its last day included: {text}");
}
