//! Knowledge base on Qdrant Edge: lexical ingestion throughput and search
//! latency, and the data dir's size on disk.
//!
//!     cargo bench --bench kb                       # 10k and 100k chunks
//!     BENCH_KB_SIZES=10000,50000 cargo bench --bench kb
//!     BENCH_KB_QUERIES=2000 cargo bench --bench kb
//!
//! For each size: ingest N generated FAQ-like chunks (Russian and English,
//! one Markdown section each, 100 sections per file) into a fresh data dir,
//! then time searches before and after `optimize()` (run off the async
//! runtime, as the daemon does).

use std::path::Path;
use std::time::{Duration, Instant};

use tribute_assistant::knowledge::{IngestInput, KnowledgeBase, KnowledgeConfig, SearchFilter, SourceText};

const EN: &[&str] = &[
    "payment",
    "card",
    "diamonds",
    "account",
    "refund",
    "delivery",
    "order",
    "bonus",
    "gift",
    "friend",
    "country",
    "currency",
    "bank",
    "declined",
    "minutes",
    "hours",
    "profile",
    "game",
    "password",
    "support",
    "receipt",
    "discount",
    "pack",
    "price",
    "euro",
    "dollar",
    "transfer",
    "limit",
    "verification",
    "code",
    "subscription",
    "renewal",
    "cancel",
    "wallet",
    "balance",
    "history",
    "invoice",
    "error",
    "retry",
    "message",
];
const RU: &[&str] = &[
    "оплата",
    "карта",
    "алмазы",
    "аккаунт",
    "возврат",
    "доставка",
    "заказ",
    "бонус",
    "подарок",
    "друг",
    "страна",
    "валюта",
    "банк",
    "отклонён",
    "минуты",
    "часы",
    "профиль",
    "игра",
    "пароль",
    "поддержка",
    "чек",
    "скидка",
    "пакет",
    "цена",
    "рубли",
    "перевод",
    "лимит",
    "проверка",
    "код",
    "подписка",
    "продление",
    "отмена",
    "кошелёк",
    "баланс",
    "история",
    "счёт",
    "ошибка",
    "повтор",
    "сообщение",
    "зачисление",
];

fn words(rng: &mut fastrand::Rng, n: usize) -> String {
    let vocab = if rng.bool() { EN } else { RU };
    (0..n).map(|_| vocab[rng.usize(..vocab.len())]).collect::<Vec<_>>().join(" ")
}

fn corpus(n: usize) -> Vec<SourceText> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut files = Vec::new();
    for f in 0..n.div_ceil(100) {
        let mut text = String::new();
        for s in 0..100.min(n - f * 100) {
            text.push_str(&format!("## {} {}?\n\n", words(&mut rng, 5), f * 100 + s));
            for _ in 0..3 {
                text.push_str(&words(&mut rng, 14));
                text.push_str(". ");
            }
            text.push_str("\n\n");
        }
        files.push(SourceText { source: format!("gen/{f:05}.md"), text });
    }
    files
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        dir_size(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len() - 1)]
}

async fn latency(kb: &KnowledgeBase, queries: usize) -> (Duration, Duration) {
    let mut rng = fastrand::Rng::with_seed(11);
    let mut times = Vec::with_capacity(queries);
    for _ in 0..queries {
        let q = words(&mut rng, 4);
        let t = Instant::now();
        let hits = kb.search(&q, &SearchFilter::default(), 5).await.unwrap();
        times.push(t.elapsed());
        assert!(!hits.is_empty());
    }
    times.sort();
    (pct(&times, 0.5), pct(&times, 0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn run(n: usize, queries: usize) {
    let dir = tempfile::tempdir().unwrap();
    let docs = corpus(n);
    let kb = KnowledgeBase::open(dir.path(), &KnowledgeConfig::default()).await.unwrap();
    let t = Instant::now();
    let report = kb.ingest(IngestInput { documents: Some(docs), conversations: None }, false, None).await.unwrap();
    let ingest = t.elapsed();
    assert_eq!(report.added, n);
    println!(
        "kb N={n}: ingest (lexical) {:.2}s = {:.0} chunks/s; data dir {:.1} MiB",
        ingest.as_secs_f64(),
        n as f64 / ingest.as_secs_f64(),
        dir_size(dir.path()) as f64 / 1048576.0
    );
    let (p50, p99) = latency(&kb, queries).await;
    println!("kb N={n}: search before optimize  p50 {}  p99 {}", ms(p50), ms(p99));
    let t = Instant::now();
    kb.optimize().await.unwrap();
    println!("kb N={n}: optimize {:.2}s", t.elapsed().as_secs_f64());
    let (p50, p99) = latency(&kb, queries).await;
    println!("kb N={n}: search after optimize   p50 {}  p99 {}", ms(p50), ms(p99));
    kb.flush().await.unwrap();
    println!("kb N={n}: data dir {:.1} MiB after optimize", dir_size(dir.path()) as f64 / 1048576.0);
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_KB_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BENCH_KB_SIZES: comma-separated numbers"))
        .collect();
    let queries: usize = std::env::var("BENCH_KB_QUERIES").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for n in sizes {
        rt.block_on(run(n, queries));
    }
}
