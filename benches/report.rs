//! Report time and memory: 10k then 100k seeded orders and as many
//! conversations (each with an agent turn — a fifth of them escalated, with
//! a case and a moderator's answer — and four messages), reported over the
//! whole range with content gaps. Prints the time of the report, of the
//! `/metrics` counters and of the moderator-chat summary, and the peak RSS
//! (VmHWM, reset after seeding) after each size: a flat peak between 10k
//! and 100k shows the figures are aggregated in SQLite, not loaded.

use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tribute_assistant::knowledge::Redactor;
use tribute_assistant::report::gaps::Vectorizer;
use tribute_assistant::report::{self, Range, ReportSettings};
use tribute_assistant::store::Store;

/// 2026-01-10T00:00:00Z.
const T0: i64 = 1_768_003_200_000;

/// A `/proc/self/status` figure in KiB (`VmHWM`: the peak RSS; `VmRSS`: now).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Starts a new peak: the seeding's own memory is not the report's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Escalated questions: a few phrasings of each topic, so content gaps form.
const QUESTIONS: [&str; 12] = [
    "Как вернуть деньги за заказ?",
    "Верните деньги, как оформить возврат?",
    "Когда придут алмазы?",
    "Алмазы не пришли, когда придут?",
    "Где ввести промокод?",
    "Куда ввести промокод при оплате?",
    "How do I get a refund?",
    "How can I get a refund for my order?",
    "Do you sell gift cards?",
    "Can I buy a gift card for a friend?",
    "Можно ли перенести VIP на другой аккаунт?",
    "Перенесите VIP статус на мой новый аккаунт",
];

async fn seed(db: &std::path::Path, from: i64, to: i64) {
    let mut c = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(db)).await.unwrap();
    let mut tx = c.begin().await.unwrap();
    for id in from..to {
        let at = T0 + id * 5000;
        let state = match id % 20 {
            0 => "escalated",
            1 => "failed",
            2 => "refunded",
            3 => "needs_customer",
            _ => "confirmed",
        };
        sqlx::query("INSERT INTO tribute_messages (chat_id, message_id, sender_id, outgoing, date, text, entities_json, buttons_json, kind, received_at) VALUES (1, ?, 1, 0, ?, 'order', '[]', '[]', 'order', ?)")
            .bind(id).bind(at / 1000).bind(at).execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO orders (id, order_ref, chat_id, message_id, customer_name, customer_id, product, amount_minor, currency, details, account_candidates, state, created_at, updated_at) VALUES (?, ?, 1, ?, 'Иван', ?, '100 Diamonds', 500, 'EUR', 'ID 48213', '[]', ?, ?, ?)")
            .bind(id).bind(format!("TA-1-{id}")).bind(id).bind(100_000 + id).bind(state).bind(at).bind(at).execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO order_events (order_id, at, from_state, to_state, note) VALUES (?, ?, NULL, 'received', 'step')")
            .bind(id).bind(at).execute(&mut *tx).await.unwrap();
        if state == "confirmed" {
            sqlx::query("INSERT INTO order_events (order_id, at, from_state, to_state, note) VALUES (?, ?, 'replied', 'confirmed', 'step')")
                .bind(id).bind(at + 3000 + id % 97 * 1000).execute(&mut *tx).await.unwrap();
        }
        sqlx::query("INSERT INTO conversations (id, customer_id, customer_name, language, state, state_json, created_at, updated_at) VALUES (?, ?, 'Иван', 'ru', 'idle', '{\"state\":\"idle\"}', ?, ?)")
            .bind(id).bind(100_000 + id).bind(at).bind(at).execute(&mut *tx).await.unwrap();
        if id % 4 == 0 {
            sqlx::query("INSERT INTO conversation_orders (conversation_id, order_id, status, reason, linked_at, updated_at) VALUES (?, ?, 'done', 'missing_account', ?, ?)")
                .bind(id).bind(id).bind(at).bind(at).execute(&mut *tx).await.unwrap();
        }
        let escalated = id % 5 == 0;
        let question =
            if escalated { QUESTIONS[(id / 5 % 12) as usize] } else { "Где найти ID аккаунта?" };
        let reasons = if escalated { r#"[{"code":"low_confidence","detail":"x"}]"# } else { "[]" };
        sqlx::query("INSERT INTO agent_turns (conversation_id, customer_id, question, answer, reply, language, confidence, sources_json, reasons_json, escalated, mode, latency_ms, at) VALUES (?, ?, ?, NULL, 'ok', 'ru', 0.5, '[]', ?, ?, 'llm', 800, ?)")
            .bind(id).bind(100_000 + id).bind(question).bind(reasons).bind(escalated).bind(at + 1000).execute(&mut *tx).await.unwrap();
        for (i, (dir, author, text)) in [
            ("in", "customer", question),
            ("out", if escalated { "moderator" } else { "agent" }, "Ответ: посмотрите в профиле."),
            ("in", "customer", "спасибо"),
            ("out", "assistant", "Рады помочь!"),
        ]
        .into_iter()
        .enumerate()
        {
            sqlx::query("INSERT INTO conversation_messages (conversation_id, at, direction, author, text) VALUES (?, ?, ?, ?, ?)")
                .bind(id).bind(at + 500 + i as i64 * 60_000).bind(dir).bind(author).bind(text).execute(&mut *tx).await.unwrap();
        }
        if escalated || state == "escalated" {
            let order = (!escalated).then_some(id);
            let reason = if escalated { "customer_question" } else { "missing_account" };
            let closed = id % 3 != 0;
            sqlx::query("INSERT INTO cases (id, reason, order_id, conversation_id, status, opened_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(id).bind(reason).bind(order).bind(id).bind(if closed { "closed" } else { "open" })
                .bind(at + 1100).bind(closed.then_some(at + 3_600_000)).execute(&mut *tx).await.unwrap();
            sqlx::query("INSERT INTO moderator_audit (at, moderator_id, case_id, action, detail, allowed, chat_id, message_id) VALUES (?, ?, ?, 'relay', 'x', 1, -1, 1)")
                .bind(at + 60_500).bind(500 + id % 3).bind(id).execute(&mut *tx).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    c.close().await.unwrap();
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.sqlite");
    Store::open(&db).await.unwrap().close().await;
    let settings = ReportSettings::default();
    let vectorizer = Vectorizer::new();
    let redactor = Redactor::default();
    let mut seeded = 1i64;
    for n in [10_000i64, 100_000] {
        let t = Instant::now();
        seed(&db, seeded, n + 1).await;
        seeded = n + 1;
        let seed_s = t.elapsed().as_secs_f64();
        let store = Store::open(&db).await.unwrap();
        reset_peak();
        let before = status_kib("VmRSS:");
        let now = T0 + (n + 10) * 5000;
        let range = Range::new(T0, now, None).unwrap();
        let opts = report::Options { gaps: 20, vectorizer: &vectorizer, redactor: &redactor };
        let (r, took) = timed(report::build(&store, &range, &settings, now, &opts)).await;
        let r = r.unwrap();
        let text = report::text::render(&r);
        assert_eq!(r.orders.paid, n);
        let (_, metrics) = timed(async {
            let q = range.query(now, settings.resolution_window).whole();
            store.report_orders(&q).await.unwrap();
            store.report_questions(&q).await.unwrap();
            store.report_cases(&q).await.unwrap();
        })
        .await;
        let (summary, summary_took) =
            timed(report::summary::build_text(&store, &Range::last_week(now), &settings, now)).await;
        store.close().await;
        println!(
            "report {n:>6} orders, {n:>6} conversations ({} questions, {} escalated in {} content gaps, {} text bytes): \
             {:.2}s; /metrics counters {:.2}s; weekly summary {:.2}s ({} chars); RSS {before} KiB before, peak (VmHWM) {} KiB \
             (seeding took {seed_s:.1}s)",
            r.questions.asked,
            r.questions.escalated,
            r.content_gap_summary.groups,
            text.len(),
            took.as_secs_f64(),
            metrics.as_secs_f64(),
            summary_took.as_secs_f64(),
            summary.unwrap().chars().count(),
            status_kib("VmHWM:"),
        );
    }
}
