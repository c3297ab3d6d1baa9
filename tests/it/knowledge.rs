//! The knowledge base against real components: Qdrant Edge on disk in a
//! temp dir, SQLite through the Store, a scripted OpenAI-compatible
//! embeddings server on loopback, and the real binary for the `kb` commands.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::openai_embeddings::{EmbeddingServer, Script};
use tribute_assistant::knowledge::confidence::FoundBy;
use tribute_assistant::knowledge::embed::Roles;
use tribute_assistant::knowledge::{
    starter, ChunkKind, EmbeddingConfig, IngestInput, KnowledgeBase, KnowledgeConfig, KnowledgeError, SearchFilter,
    SearchHit, SourceText,
};
use tribute_assistant::store::{NewApprovedPair, Store};

fn docs(sources: Vec<SourceText>) -> IngestInput {
    IngestInput { documents: Some(sources), conversations: None }
}

async fn starter_kb(dir: &Path) -> KnowledgeBase {
    let kb = KnowledgeBase::open(dir, &KnowledgeConfig::default()).await.unwrap();
    let report = kb.ingest(docs(starter::sources()), false, None).await.unwrap();
    assert!(report.added > 20, "{report}");
    kb
}

fn titles(hits: &[SearchHit]) -> Vec<String> {
    hits.iter().map(|h| format!("{} / {}", h.source, h.title)).collect()
}

/// Paraphrases (not the headings' words) → the section they should find.
const QUESTIONS: &[(&str, &str)] = &[
    ("how can I buy diamonds with my card", "How do I pay for diamonds?"),
    ("where is my account id in the game", "Where do I find my account ID?"),
    ("I didn't write my account number in the order", "I forgot to enter my account ID or entered a wrong one"),
    ("how many minutes until I get the diamonds", "How long does delivery take?"),
    ("I want my money back", "Can I get a refund?"),
    ("can I pay with a card from Germany, I live abroad", "Can I pay from another country?"),
    ("my payment went through but nothing arrived", "I paid but the diamonds have not arrived"),
    ("как заплатить за алмазы картой", "Как оплатить алмазы?"),
    ("где посмотреть айди аккаунта в игре", "Где найти ID аккаунта?"),
    ("не указал id при оплате, что делать", "Я забыл указать ID аккаунта или указал неправильный"),
    ("как долго ждать алмазы после оплаты", "Сколько ждать зачисления алмазов?"),
    ("верните деньги пожалуйста", "Можно ли вернуть деньги?"),
    ("я живу за границей, можно платить зарубежной картой?", "Можно ли оплатить из другой страны?"),
    ("оплатил, а алмазов нет", "Я оплатил, но алмазы не пришли"),
];

async fn assert_questions_in_top3(kb: &KnowledgeBase) {
    let mut misses = Vec::new();
    for (q, want) in QUESTIONS {
        let hits = kb.search(q, &SearchFilter::default(), 3).await.unwrap();
        if !hits.iter().any(|h| h.title == *want) {
            misses.push(format!("{q:?} → want {want:?}, got {:?}", titles(&hits)));
        }
    }
    assert!(misses.is_empty(), "{} of {} missed:\n{}", misses.len(), QUESTIONS.len(), misses.join("\n"));
}

#[tokio::test]
async fn paraphrased_russian_and_english_questions_find_the_right_section_in_top_3() {
    let dir = tempfile::tempdir().unwrap();
    let kb = starter_kb(dir.path()).await;
    assert_questions_in_top3(&kb).await;
    // Hits carry a ready answer for retrieval-only replies, and a language.
    let hits = kb.search("refund", &SearchFilter::default(), 1).await.unwrap();
    assert_eq!(hits[0].kind, ChunkKind::Doc);
    assert_eq!(hits[0].language.as_deref(), Some("en"));
    assert!(hits[0].answer.as_deref().unwrap().contains("full refund"));
    assert!(hits[0].score > 0.0);
    // Language filter.
    let ru = kb
        .search("refund возврат", &SearchFilter { language: Some("ru".into()), ..Default::default() }, 5)
        .await
        .unwrap();
    assert!(!ru.is_empty() && ru.iter().all(|h| h.language.as_deref() == Some("ru")), "{:?}", titles(&ru));
    // Nothing matches → nothing returned.
    assert!(kb.search("zzzqqq xyzzy", &SearchFilter::default(), 3).await.unwrap().is_empty());
}

#[tokio::test]
async fn reingesting_unchanged_sources_embeds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let kb = starter_kb(dir.path()).await;
    let before = kb.chunk_keys().await.unwrap();
    let again = kb.ingest(docs(starter::sources()), true, None).await.unwrap();
    assert_eq!((again.added, again.updated, again.removed, again.embedded), (0, 0, 0, 0), "{again}");
    assert_eq!(again.unchanged, before.len());
    assert_eq!(kb.chunk_keys().await.unwrap(), before);
}

/// Neutral filler sections (no FAQ words), 100 per file.
fn filler(sections: usize) -> Vec<SourceText> {
    const WORDS: &[&str] = &["lorem", "ipsum", "dolor", "amet", "consectetur", "adipiscing", "elit", "tempor"];
    (0..sections.div_ceil(100))
        .map(|f| {
            let text = (0..100.min(sections - f * 100))
                .map(|s| {
                    let n = f * 100 + s;
                    let body: Vec<&str> = (0..24).map(|k| WORDS[(n * 7 + k * 3) % WORDS.len()]).collect();
                    format!("## Lorem section {}\n\n{}.\n\n", n, body.join(" "))
                })
                .collect::<String>();
            SourceText { source: format!("filler/{f:03}.md"), text }
        })
        .collect()
}

/// More points than one appendable segment takes (5,000): ingestion rolls
/// segments on the way; results, idempotency, pruning and reopening must
/// be the same as for a small collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_ingestion_rolls_segments_and_stays_correct() {
    let dir = tempfile::tempdir().unwrap();
    let mut sources = starter::sources();
    sources.extend(filler(11_000));
    let starter_chunks = {
        let kb = starter_kb(&dir.path().join("small")).await;
        kb.chunk_keys().await.unwrap().len()
    };
    let kb = KnowledgeBase::open(dir.path(), &KnowledgeConfig::default()).await.unwrap();
    let report = kb.ingest(docs(sources.clone()), false, None).await.unwrap();
    assert_eq!(report.added, 11_000 + starter_chunks, "{report}");
    assert_questions_in_top3(&kb).await;
    let lorem = kb.search("lorem ipsum", &SearchFilter::default(), 5).await.unwrap();
    assert_eq!(lorem.len(), 5);
    assert!(lorem.iter().all(|h| h.source.starts_with("filler/")), "{:?}", titles(&lorem));

    let again = kb.ingest(docs(sources.clone()), true, None).await.unwrap();
    assert_eq!((again.added, again.embedded, again.unchanged), (0, 0, 11_000 + starter_chunks), "{again}");
    kb.optimize().await.unwrap();
    assert_questions_in_top3(&kb).await;
    kb.flush().await.unwrap();
    drop(kb);

    let kb = KnowledgeBase::open(dir.path(), &KnowledgeConfig::default()).await.unwrap();
    assert_questions_in_top3(&kb).await;
    let pruned = kb.ingest(docs(starter::sources()), true, None).await.unwrap();
    assert_eq!(pruned.removed, 11_000, "{pruned}");
    assert_eq!(kb.chunk_keys().await.unwrap().len(), starter_chunks);
    assert!(kb.search("lorem ipsum", &SearchFilter::default(), 5).await.unwrap().is_empty());
    assert_questions_in_top3(&kb).await;
}

fn write_tree(root: &Path) {
    for (name, text) in starter::FILES {
        std::fs::write(root.join(name), text).unwrap();
    }
    std::fs::create_dir_all(root.join("extra")).unwrap();
    std::fs::write(
        root.join("extra/qa.jsonl"),
        "{\"question\":\"Do you sell gold coins?\",\"answer\":\"No, only diamonds.\"}\n",
    )
    .unwrap();
    std::fs::write(root.join("extra/notes.txt"), "Gift cards are not sold in this shop.\n").unwrap();
}

fn by_source(keys: &[tribute_assistant::knowledge::StoredKey]) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for k in keys {
        m.entry(k.source.clone()).or_default().insert(k.id.clone());
    }
    m
}

#[tokio::test]
async fn editing_one_file_replaces_only_its_changed_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kbsrc");
    std::fs::create_dir_all(&root).unwrap();
    write_tree(&root);
    let files = || tribute_assistant::knowledge::ingest::collect_files(std::slice::from_ref(&root)).unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("data"), &KnowledgeConfig::default()).await.unwrap();
    kb.ingest(docs(files()), false, None).await.unwrap();
    let before = by_source(&kb.chunk_keys().await.unwrap());
    assert_eq!(
        before.keys().cloned().collect::<Vec<_>>(),
        ["extra/notes.txt", "extra/qa.jsonl", "faq.en.md", "faq.ru.md"]
    );

    let en = root.join("faq.en.md");
    let text = std::fs::read_to_string(&en).unwrap();
    std::fs::write(&en, text.replace("within 14 days", "within 30 days")).unwrap();
    let report = kb.ingest(docs(files()), false, None).await.unwrap();
    assert_eq!((report.added, report.updated, report.removed, report.embedded), (0, 1, 0, 1), "{report}");
    let after = by_source(&kb.chunk_keys().await.unwrap());
    for source in ["extra/notes.txt", "extra/qa.jsonl", "faq.ru.md"] {
        assert_eq!(before[source], after[source], "{source} changed");
    }
    assert_eq!(before["faq.en.md"].len(), after["faq.en.md"].len());
    assert_eq!(before["faq.en.md"].difference(&after["faq.en.md"]).count(), 1);
    let hits = kb.search("refund within 30 days", &SearchFilter::default(), 1).await.unwrap();
    assert!(hits[0].text.contains("within 30 days"), "{:?}", hits[0]);
}

#[tokio::test]
async fn deleting_a_file_and_pruning_removes_its_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kbsrc");
    std::fs::create_dir_all(&root).unwrap();
    write_tree(&root);
    let files = || tribute_assistant::knowledge::ingest::collect_files(std::slice::from_ref(&root)).unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("data"), &KnowledgeConfig::default()).await.unwrap();
    kb.ingest(docs(files()), false, None).await.unwrap();
    std::fs::remove_file(root.join("extra/qa.jsonl")).unwrap();

    // Without --prune the deleted file's chunk stays.
    kb.ingest(docs(files()), false, None).await.unwrap();
    assert!(by_source(&kb.chunk_keys().await.unwrap()).contains_key("extra/qa.jsonl"));
    let report = kb.ingest(docs(files()), true, None).await.unwrap();
    assert_eq!(report.removed, 1, "{report}");
    let keys = by_source(&kb.chunk_keys().await.unwrap());
    assert!(!keys.contains_key("extra/qa.jsonl"), "{keys:?}");
    let hits = kb.search("gold coins", &SearchFilter::default(), 5).await.unwrap();
    assert!(hits.iter().all(|h| h.source != "extra/qa.jsonl"), "{:?}", titles(&hits));
}

#[tokio::test]
async fn reopening_from_disk_gives_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let queries = ["how do I pay", "где найти ID аккаунта", "refund", "доставка алмазов"];
    let mut first = Vec::new();
    {
        let kb = starter_kb(dir.path()).await;
        for q in queries {
            first.push(kb.search(q, &SearchFilter::default(), 5).await.unwrap());
        }
        kb.flush().await.unwrap();
    }
    let kb = KnowledgeBase::open(dir.path(), &KnowledgeConfig::default()).await.unwrap();
    for (q, before) in queries.iter().zip(first) {
        let after = kb.search(q, &SearchFilter::default(), 5).await.unwrap();
        let set =
            |h: &[SearchHit]| h.iter().map(|h| (h.id.clone(), (h.score * 1e4).round() as i64)).collect::<BTreeSet<_>>();
        assert_eq!(set(&before), set(&after), "{q}");
    }
    assert_eq!(kb.stats().await.unwrap().sources, 2);
}

#[tokio::test]
async fn redaction_removes_ids_phones_and_emails_from_stored_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
    let pair = |conversation_id, question: &str, answer: &str| NewApprovedPair {
        conversation_id,
        question: question.into(),
        answer: answer.into(),
        language: None,
        approved_by: 42,
    };
    store
        .add_approved_pair(&pair(
            7,
            "Я оплатил на аккаунт 48213377, мой телефон +7 912 345-67-89, почта ivan@mail.ru — где алмазы?",
            "Алмазы для аккаунта 48213377 зачислены, напишите @ivan_petrov если что.",
        ))
        .await
        .unwrap();
    let again = store
        .add_approved_pair(&pair(
            7,
            "Я оплатил на аккаунт 48213377, мой телефон +7 912 345-67-89, почта ivan@mail.ru — где алмазы?",
            "Алмазы для аккаунта 48213377 зачислены, напишите @ivan_petrov если что.",
        ))
        .await
        .unwrap();
    store
        .add_approved_pair(&pair(8, "Can I pay with card 4111 1111 1111 1111?", "Yes, any card works in Tribute."))
        .await
        .unwrap();
    let pairs = store.approved_pairs().await.unwrap();
    assert_eq!(pairs.len(), 2, "approving the same pair twice stores it once");
    assert_eq!(again.id, pairs[0].id);

    let kb = KnowledgeBase::open(dir.path(), &KnowledgeConfig::default()).await.unwrap();
    let report = kb.ingest(IngestInput { documents: None, conversations: Some(pairs) }, true, None).await.unwrap();
    assert_eq!(report.added, 2);
    let filter = SearchFilter { kind: Some(ChunkKind::Conversation), ..Default::default() };
    let mut stored = String::new();
    for q in ["где алмазы оплатил", "pay with card"] {
        for h in kb.search(q, &filter, 5).await.unwrap() {
            assert!(h.source.starts_with("conversation:"), "{}", h.source);
            stored.push_str(&format!("{} | {} | {}\n", h.title, h.text, h.answer.unwrap_or_default()));
        }
    }
    for leak in ["48213377", "912", "345-67-89", "ivan@mail.ru", "@ivan_petrov", "4111"] {
        assert!(!stored.contains(leak), "{leak} stored: {stored}");
    }
    for placeholder in ["[ACCOUNT_ID]", "[PHONE]", "[EMAIL]", "[USERNAME]", "[CARD]"] {
        assert!(stored.contains(placeholder), "{placeholder} missing: {stored}");
    }
    // Nor anywhere in the index files on disk.
    let mut raw = Vec::new();
    for entry in walk(&dir.path().join("knowledge")) {
        // Qdrant Edge may replace a file between the listing and the read
        // (its optimizer runs in the background): one gone is not a leak.
        match std::fs::read(&entry) {
            Ok(bytes) => raw.extend(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{}: {e}", entry.display()),
        }
    }
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("[ACCOUNT_ID]"), "payload is not where we looked");
    for leak in ["48213377", "ivan@mail.ru", "ivan_petrov"] {
        assert!(!raw.contains(leak), "{leak} found in the index files");
    }
}

/// Every file under `dir`; a folder removed while we walk (Qdrant Edge's
/// optimizer) has none. The caller checks that the payload was found.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn an_approved_pair_is_searchable_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let kb = starter_kb(dir.path()).await;
    let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
    let pair = store
        .add_approved_pair(&NewApprovedPair {
            conversation_id: 99,
            question: "Do diamonds expire if I don't use them?".into(),
            answer: "No, diamonds never expire.".into(),
            language: Some("en".into()),
            approved_by: 1,
        })
        .await
        .unwrap();
    kb.add_approved_pair(&pair).await.unwrap();
    let hits = kb.search("do my diamonds expire", &SearchFilter::default(), 3).await.unwrap();
    assert_eq!(hits[0].source, "conversation:99", "{:?}", titles(&hits));
    assert_eq!(hits[0].kind, ChunkKind::Conversation);
    assert_eq!(hits[0].answer.as_deref(), Some("No, diamonds never expire."));
    // Adding it again changes nothing; a re-ingest of conversations keeps it.
    kb.add_approved_pair(&pair).await.unwrap();
    let convs = kb.chunk_keys().await.unwrap().into_iter().filter(|k| k.kind == ChunkKind::Conversation).count();
    assert_eq!(convs, 1);
    let report = kb
        .ingest(IngestInput { documents: None, conversations: Some(store.approved_pairs().await.unwrap()) }, true, None)
        .await
        .unwrap();
    assert_eq!((report.unchanged, report.added, report.removed), (1, 0, 0), "{report}");
}

fn embedding_config(server: &EmbeddingServer, dimension: usize) -> KnowledgeConfig {
    KnowledgeConfig {
        embedding: Some(EmbeddingConfig {
            base_url: server.base_url(),
            model: "scripted-hash".into(),
            dimension,
            batch_size: 8,
            timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(2),
            max_retries: 2,
            api_key: Some("sk-test-key".to_owned().into()),
            roles: Roles::None,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn embedder_on_loopback_gives_hybrid_results_and_reingest_embeds_nothing() {
    let server = EmbeddingServer::start(Script { dimension: 64, fail_first: 1, ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(dir.path(), &embedding_config(&server, 64)).await.unwrap();
    let report = kb.ingest(docs(starter::sources()), false, None).await.unwrap();
    let chunks = report.added;
    let calibration = kb.calibration().expect("an embedded corpus is calibrated at ingest");
    assert_eq!(
        server.texts(),
        chunks + calibration.questions,
        "every chunk embedded once (after one scripted 500, retried), then the calibration's pseudo-questions"
    );
    assert_eq!(calibration.dense_model, "scripted-hash");
    assert!(server.requests() > chunks.div_ceil(8));
    assert_eq!(server.counters.last_auth.lock().unwrap().as_deref(), Some("Bearer sk-test-key"));

    // Hybrid: RRF scores normalised to (0, 1].
    let hits = kb.search("how can I get a refund", &SearchFilter::default(), 5).await.unwrap();
    assert!(hits.iter().all(|h| h.score > 0.0 && h.score <= 1.0 + 1e-9), "{hits:?}");
    assert_eq!(hits[0].title, "Can I get a refund?", "{:?}", titles(&hits));
    // The evidence says which retrievers agreed and keeps the actual cosine.
    assert_eq!(hits[0].evidence.found_by, FoundBy::Both, "{:?}", hits[0].evidence);
    assert!(hits[0].evidence.dense_similarity.is_some_and(|c| c > 0.0 && c <= 1.0 + 1e-6), "{:?}", hits[0].evidence);
    assert_questions_in_top3(&kb).await;
    let stats = kb.stats().await.unwrap();
    assert!(stats.collection.contains("scripted-hash") && stats.collection.contains("64"), "{}", stats.collection);

    let texts = server.texts();
    let again = kb.ingest(docs(starter::sources()), false, None).await.unwrap();
    assert_eq!(again.embedded, 0);
    assert_eq!(server.texts(), texts, "nothing re-embedded");
}

#[tokio::test]
async fn dimension_and_model_mismatches_are_clear_errors() {
    let server = EmbeddingServer::start(Script { dimension: 8, ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    // The provider answers 8 dims but the config says 16.
    let kb = KnowledgeBase::open(dir.path(), &embedding_config(&server, 16)).await.unwrap();
    let err = kb.ingest(docs(starter::sources()), false, None).await.unwrap_err();
    assert!(matches!(err, KnowledgeError::DimensionMismatch { configured: 16, returned: 8, .. }), "{err}");
    assert!(err.to_string().contains("dimension = 16"), "{err}");
    drop(kb);

    // A lexical-only collection reopened with a dense model: re-ingest needed.
    let dir = tempfile::tempdir().unwrap();
    drop(starter_kb(dir.path()).await);
    let err = KnowledgeBase::open(dir.path(), &embedding_config(&server, 8)).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, KnowledgeError::ModelMismatch { .. }), "{msg}");
    assert!(msg.contains("re-ingest") && msg.contains("--rebuild") && msg.contains("scripted-hash"), "{msg}");
    // --rebuild starts over with the new layout.
    let kb = KnowledgeBase::rebuild(dir.path(), &embedding_config(&server, 8)).await.unwrap();
    assert_eq!(kb.stats().await.unwrap().doc_chunks, 0);
    kb.ingest(docs(starter::sources()), false, None).await.unwrap();
    assert!(!kb.search("refund", &SearchFilter::default(), 3).await.unwrap().is_empty());
}

/// Run it with `QDRANT_URL=http://127.0.0.1:6334 cargo test --test it -- --ignored live_qdrant`.
#[tokio::test]
#[ignore = "needs a Qdrant server: set QDRANT_URL (and QDRANT_API_KEY if it asks for one) and run with --ignored"]
async fn live_qdrant_server() {
    let url = std::env::var("QDRANT_URL").expect("QDRANT_URL: the Qdrant server to test the remote backend against");
    let dir = tempfile::tempdir().unwrap();
    let collection = format!("ta_test_{}", std::process::id());
    let config = KnowledgeConfig {
        qdrant: Some(tribute_assistant::knowledge::index::remote::QdrantServerConfig {
            url,
            api_key: std::env::var("QDRANT_API_KEY").ok().map(Into::into),
            collection,
        }),
        ..Default::default()
    };
    let kb = KnowledgeBase::rebuild(dir.path(), &config).await.unwrap();
    kb.ingest(docs(starter::sources()), false, None).await.unwrap();
    assert_questions_in_top3(&kb).await;
    let again = kb.ingest(docs(starter::sources()), true, None).await.unwrap();
    assert_eq!(again.embedded, 0);
}

#[test]
fn every_file_in_knowledge_is_built_into_the_binary() {
    let dir = crate::support::repo().join("knowledge");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "eval.jsonl")
        .collect();
    on_disk.sort();
    // The `kb eval` question set lives beside the FAQ but is not knowledge.
    let collected = tribute_assistant::knowledge::ingest::collect_files(std::slice::from_ref(&dir)).unwrap();
    let collected: Vec<&str> = collected.iter().map(|f| f.source.as_str()).collect();
    assert_eq!(collected, on_disk);
    let embedded: Vec<String> = starter::FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(on_disk, embedded);
    for (name, text) in starter::FILES {
        assert_eq!(&std::fs::read_to_string(dir.join(name)).unwrap(), text);
    }
}

fn bin(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"));
    c.env_remove("RUST_LOG").env_remove("TRIBUTE_ASSISTANT_CONFIG").env("TRIBUTE_ASSISTANT_DATA_DIR", data_dir);
    c.current_dir(std::env::temp_dir());
    c
}

#[test]
fn kb_commands_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(dir.path()).args(["kb", "ingest"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("added") && line.contains("unchanged 0") && line.contains("qdrant-edge"), "{line}");

    let out = bin(dir.path()).args(["kb", "search", "как оплатить алмазы", "--json", "--limit", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON array");
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["source"], "faq.ru.md");
    assert_eq!(arr[0]["title"], "Как оплатить алмазы?");
    assert!(arr[0]["text"].as_str().unwrap().contains("Tribute"));
    assert!(arr[0]["score"].as_f64().unwrap() > 0.0);
    let confidence = arr[0]["confidence"].as_f64().unwrap();
    assert!(confidence > arr[1]["confidence"].as_f64().unwrap() && confidence <= 1.0, "{v}");
    assert_eq!(arr[0]["evidence"]["found_by"], "lexical", "no embedding server: lexical only");
    assert_eq!(arr[0].as_object().unwrap().len(), 7);
    assert!(arr[0]["bar"].is_null(), "lexical search: the fixed bar, not a calibrated one: {v}");

    let out = bin(dir.path()).args(["kb", "ingest"]).output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains("added 0, updated 0") && line.contains("removed 0"), "{line}");

    let out = bin(dir.path()).args(["kb", "stats", "--json"]).output().unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["doc_chunks"].as_u64().unwrap() > 20);
    assert_eq!(s["conversation_chunks"], 0);
    assert!(s["backend"].as_str().unwrap().starts_with("qdrant-edge"));

    let out = bin(dir.path()).args(["kb", "search", "x", "--kind", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("doc or conversation"));
}

#[test]
fn ingest_does_not_follow_links_out_of_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (root, outside) = (dir.path().join("kb"), dir.path().join("private"));
    std::fs::create_dir_all(root.join("inside")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("faq.md"), "# Q\nA\n").unwrap();
    std::fs::write(root.join("inside/more.md"), "# More\nText\n").unwrap();
    std::fs::write(outside.join("secret.md"), "# Secret\nnot for the knowledge base\n").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("linked-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.md"), root.join("linked-file.md")).unwrap();
    std::os::unix::fs::symlink(&root, root.join("inside/loop")).unwrap();
    std::os::unix::fs::symlink(root.join("faq.md"), root.join("alias.md")).unwrap();
    std::os::unix::fs::symlink(root.join("gone.md"), root.join("dangling.md")).unwrap();

    let files = tribute_assistant::knowledge::ingest::collect_files(std::slice::from_ref(&root)).unwrap();
    let sources: Vec<&str> = files.iter().map(|f| f.source.as_str()).collect();
    assert_eq!(sources, ["alias.md", "faq.md", "inside/more.md"], "a file link inside the folder is read");
    assert!(files.iter().all(|f| !f.text.contains("Secret")));
}

/// A dead embedding provider at query time: search is lexical with the
/// same confidences as a lexical-only knowledge base (never a looser scale),
/// one request without retries, then none while the cooldown lasts.
#[tokio::test]
async fn a_dead_embedding_server_degrades_to_lexical_confidence_at_once() {
    let healthy = EmbeddingServer::start(Script { dimension: 16, ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(dir.path(), &embedding_config(&healthy, 16)).await.unwrap();
    kb.ingest(docs(starter::sources()), false, None).await.unwrap();
    kb.flush().await.unwrap();
    drop(kb);
    let lexical_dir = tempfile::tempdir().unwrap();
    let lexical = starter_kb(lexical_dir.path()).await;

    // Same model and dimension, but every request is a 500 now.
    let dead = EmbeddingServer::start(Script { dimension: 16, fail_first: usize::MAX, ..Default::default() }).await;
    let kb = KnowledgeBase::open(dir.path(), &embedding_config(&dead, 16)).await.unwrap();
    let started = std::time::Instant::now();
    for q in ["how can I get a refund", "is it safe to swim in the sea", "как оплатить алмазы"] {
        let degraded = kb.search(q, &SearchFilter::default(), 3).await.unwrap();
        let plain = lexical.search(q, &SearchFilter::default(), 3).await.unwrap();
        let pick = |hits: &[SearchHit]| hits.iter().map(|h| (h.title.clone(), h.confidence)).collect::<Vec<_>>();
        assert_eq!(pick(&degraded), pick(&plain), "{q}");
        assert!(degraded
            .iter()
            .all(|h| h.evidence.found_by == FoundBy::Lexical && h.evidence.dense_similarity.is_none()));
    }
    assert_eq!(dead.requests(), 1, "one attempt, then the cooldown skips the provider");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// Asymmetric models want queries and passages marked: either as text
/// prefixes added here or as `input_type` for a server that adds its own
/// marks — never both. Marks are part of the stored vectors, so changing
/// them is a model mismatch.
#[tokio::test]
async fn the_embedder_marks_queries_and_passages_one_way_only() {
    let server = EmbeddingServer::start(Script { dimension: 16, ..Default::default() }).await;
    let with_roles = |roles: Roles| {
        let mut c = embedding_config(&server, 16);
        c.embedding.as_mut().unwrap().roles = roles;
        c
    };
    let sent = || {
        let texts = server.counters.inputs.lock().unwrap().clone();
        let kinds = server.counters.input_types.lock().unwrap().clone();
        server.counters.inputs.lock().unwrap().clear();
        server.counters.input_types.lock().unwrap().clear();
        texts.into_iter().zip(kinds).collect::<Vec<_>>()
    };
    let prefixes = Roles::Prefixes { query: "query: ".into(), passage: "passage: ".into() };
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(dir.path(), &with_roles(prefixes.clone())).await.unwrap();
    kb.ingest(docs(starter::sources()), false, None).await.unwrap();
    let ingested = sent();
    // The chunks, then the calibration's pseudo-questions (queries) and its leave-out passages.
    assert!(
        ingested.iter().all(|(t, kind)| kind.is_none()
            && (t.starts_with("passage: ") || t.starts_with("query: "))
            && !t.starts_with("passage: passage: ")
            && !t.starts_with("query: query: ")),
        "{:?}",
        &ingested[..3]
    );
    assert!(ingested.iter().any(|(t, _)| t.starts_with("query: ")), "the calibration asks its pseudo-questions");
    kb.search("how can I get a refund", &SearchFilter::default(), 3).await.unwrap();
    assert_eq!(sent(), [("query: how can I get a refund".to_owned(), None)]);
    kb.flush().await.unwrap();
    drop(kb);
    let err = KnowledgeBase::open(dir.path(), &with_roles(Roles::InputType)).await.unwrap_err();
    assert!(matches!(err, KnowledgeError::ModelMismatch { .. }), "{err}");
    assert!(err.to_string().contains("passage prefix"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(dir.path(), &with_roles(Roles::InputType)).await.unwrap();
    kb.ingest(docs(starter::sources()), false, None).await.unwrap();
    let ingested = sent();
    assert!(ingested.iter().all(|(t, _)| !t.starts_with("passage: ") && !t.starts_with("query: ")));
    assert!(ingested.iter().any(|(_, kind)| kind.as_deref() == Some("passage")));
    kb.search("how can I get a refund", &SearchFilter::default(), 3).await.unwrap();
    assert_eq!(sent(), [("how can I get a refund".to_owned(), Some("query".to_owned()))]);
}

/// `check` embeds one query the way search will: the configured dimension
/// is verified against what the endpoint really returns.
#[tokio::test]
async fn check_verifies_the_embedding_dimension() {
    use tribute_assistant::app::check::{checks, Status};
    let server = EmbeddingServer::start(Script { dimension: 8, ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let line = |dimension: usize| {
        let config = dir.path().join(format!("config-{dimension}.toml"));
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n[knowledge.embedding]\nbase_url = {:?}\nmodel = \"m\"\ndimension = {dimension}\n",
                dir.path(),
                server.base_url()
            ),
        )
        .unwrap();
        async move {
            let lines = checks(Some(&config), &|_| None).await;
            lines.into_iter().find(|l| l.name == "embedding endpoint").expect("an embedding line")
        }
    };
    let ok = line(8).await;
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    assert!(ok.detail.contains("8-dimensional"), "{ok:?}");
    let wrong = line(16).await;
    assert_eq!(wrong.status, Status::Fail, "{wrong:?}");
    assert!(wrong.detail.contains("returned 8-dimensional"), "{wrong:?}");
    assert!(wrong.fix.as_deref().unwrap().contains("--rebuild"), "{wrong:?}");
}

/// A daemon starting on a knowledge base that still has to be calibrated
/// (ingested by an older version) does not wait for it: the calibration runs
/// in the background and applies when it is done. Commands wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_knowledge_base_calibrates_in_the_background() {
    let fast = EmbeddingServer::start(Script { dimension: 16, ..Default::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(dir.path(), &embedding_config(&fast, 16)).await.unwrap();
    kb.ingest(docs(starter::sources()), false, None).await.unwrap();
    assert!(kb.calibration().is_some());
    kb.flush().await.unwrap();
    drop(kb);
    let stored = dir.path().join("knowledge/calibration.json");
    std::fs::remove_file(&stored).unwrap();

    // Each embedding request takes a second: the calibration needs several.
    let slow =
        EmbeddingServer::start(Script { dimension: 16, delay: Duration::from_secs(1), ..Default::default() }).await;
    let kb = KnowledgeBase::open_serving(dir.path(), &embedding_config(&slow, 16)).await.unwrap();
    assert!(kb.calibration().is_none(), "open_serving returned before the calibration");
    let hits = kb.search("how do I pay", &SearchFilter::default(), 3).await.unwrap();
    assert!(hits.iter().all(|h| h.bar.is_none() && !h.evidence.calibrated), "uncalibrated meanwhile: {hits:?}");
    let started = std::time::Instant::now();
    while kb.calibration().is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "the background calibration never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored.exists(), "kept on disk for the next start");
    kb.flush().await.unwrap();
    drop(kb);

    std::fs::remove_file(&stored).unwrap();
    let kb = KnowledgeBase::open(dir.path(), &embedding_config(&slow, 16)).await.unwrap();
    assert!(kb.calibration().is_some(), "open waits for it");
}
