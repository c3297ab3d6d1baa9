//! Export throughput and memory: 10k then 100k seeded conversations (three
//! messages, one order with two events, one agent turn each) exported as
//! JSONL to /dev/null. Prints conversations/s and the peak RSS (VmHWM) after
//! each run: a flat peak between 10k and 100k shows the export streams.

use std::time::Instant;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tribute_assistant::export::export_to;
use tribute_assistant::export::formats::Format;
use tribute_assistant::export::reader::Pii;
use tribute_assistant::knowledge::redact::Redactor;
use tribute_assistant::store::export::ExportQuery;
use tribute_assistant::store::Store;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn seed(db: &std::path::Path, from: i64, to: i64) {
    let mut c = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(db)).await.unwrap();
    let mut tx = c.begin().await.unwrap();
    let t0 = 1_768_003_200_000i64;
    for id in from..to {
        let at = t0 + id * 1000;
        sqlx::query("INSERT INTO conversations (id, customer_id, customer_name, language, state, state_json, created_at, updated_at) VALUES (?, ?, 'Иван Петров', 'ru', 'idle', '{\"state\":\"idle\"}', ?, ?)")
            .bind(id).bind(100_000 + id).bind(at).bind(at + 60_000).execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO tribute_messages (chat_id, message_id, sender_id, outgoing, date, text, entities_json, buttons_json, kind, received_at) VALUES (1, ?, 1, 0, ?, 'order', '[]', '[]', 'order', ?)")
            .bind(id).bind(at / 1000).bind(at).execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO orders (id, order_ref, chat_id, message_id, customer_name, customer_id, product, amount_minor, currency, details, account_candidates, state, created_at, updated_at) VALUES (?, ?, 1, ?, 'Иван Петров', ?, '100 Diamonds', 500, 'EUR', 'Мой ID: 48213', '[]', 'confirmed', ?, ?)")
            .bind(id).bind(format!("TA-1-{id}")).bind(id).bind(100_000 + id).bind(at).bind(at).execute(&mut *tx).await.unwrap();
        for (state, dt) in [("received", 0), ("confirmed", 5000)] {
            sqlx::query(
                "INSERT INTO order_events (order_id, at, from_state, to_state, note) VALUES (?, ?, NULL, ?, 'step')",
            )
            .bind(id)
            .bind(at + dt)
            .bind(state)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        sqlx::query("INSERT INTO conversation_orders (conversation_id, order_id, status, reason, account, linked_at, updated_at) VALUES (?, ?, 'done', 'missing_account', '48213', ?, ?)")
            .bind(id).bind(id).bind(at).bind(at).execute(&mut *tx).await.unwrap();
        for (i, (dir, author, text)) in [
            ("out", "assistant", "Пришлите, пожалуйста, ID аккаунта."),
            ("in", "customer", "мой id 48213, почта ivan@mail.ru"),
            ("out", "agent", "Готово, алмазы начислены.\nСпасибо!"),
        ]
        .into_iter()
        .enumerate()
        {
            sqlx::query("INSERT INTO conversation_messages (conversation_id, at, direction, author, text, order_ids) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(id).bind(at + i as i64 * 1000).bind(dir).bind(author).bind(text).bind(format!("[{id}]"))
                .execute(&mut *tx).await.unwrap();
        }
        sqlx::query("INSERT INTO agent_turns (conversation_id, customer_id, question, answer, reply, language, confidence, sources_json, reasons_json, escalated, mode, latency_ms, at) VALUES (?, ?, 'q', 'a', 'Готово, алмазы начислены.\nСпасибо!', 'ru', 0.9, '[\"faq-1\"]', '[]', 0, 'llm', 300, ?)")
            .bind(id).bind(100_000 + id).bind(at + 2000).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    c.close().await.unwrap();
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.sqlite");
    Store::open(&db).await.unwrap().close().await;
    let mut seeded = 1i64;
    for n in [10_000i64, 100_000] {
        let t = Instant::now();
        seed(&db, seeded, n + 1).await;
        seeded = n + 1;
        let seed_s = t.elapsed().as_secs_f64();
        let store = Store::open(&db).await.unwrap();
        let mut sink = std::fs::OpenOptions::new().write(true).open("/dev/null").unwrap();
        let t = Instant::now();
        let summary =
            export_to(&store, ExportQuery::default(), Pii::redact_with(Redactor::default()), Format::Jsonl, &mut sink)
                .await
                .unwrap();
        let secs = t.elapsed().as_secs_f64();
        store.close().await;
        println!(
            "export jsonl {:>6} conversations ({} messages): {:.2}s, {:.0} conversations/s, peak RSS (VmHWM) {} KiB (seeding took {:.1}s)",
            summary.conversations,
            summary.messages,
            secs,
            summary.conversations as f64 / secs,
            vm_hwm_kib(),
            seed_s
        );
    }
}
