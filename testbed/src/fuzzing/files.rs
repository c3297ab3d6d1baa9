//! Files the publisher gives us: knowledge-base sources and the config.
//! Not hostile, but written by hand: a typo must give an error, never a
//! panic at start-up or during ingestion.

use std::collections::HashSet;

use regex::Regex;

use tribute_assistant::agent::AgentSettings;
use tribute_assistant::app::config::{Config, FileConfig};
use tribute_assistant::knowledge::chunk::{chunk_file, split_with_overlap};
use tribute_assistant::knowledge::{ChunkLimits, Redactor};
use tribute_assistant::test_support::knowledge_point_ids;

/// Byte 0 picks the file type, bytes 1 and 2 the chunk limits; the rest is
/// the file's text.
pub(super) fn knowledge_file(data: &[u8]) {
    let [kind, max, overlap, rest @ ..] = data else {
        return;
    };
    let name = ["faq.md", "pairs.jsonl", "notes.txt"][usize::from(*kind) % 3];
    let limits = ChunkLimits { max_chars: usize::from(*max) * 8, overlap_chars: usize::from(*overlap) * 4 };
    let text = super::text(rest);
    let pieces = split_with_overlap(&text, limits);
    let longest = limits.max_chars.max(50);
    assert!(pieces.iter().all(|p| p.chars().count() <= longest), "a piece is longer than {longest} characters");
    let Ok(mut chunks) = chunk_file(name, &text, limits) else {
        return;
    };
    let redactor = Redactor::new(Some(Regex::new("(?i)acc-[a-z0-9]+").expect("valid pattern")));
    for c in &mut chunks {
        c.title = redactor.redact(&c.title);
        c.text = redactor.redact(&c.text);
        c.answer = c.answer.as_deref().map(|a| redactor.redact(a));
    }
    let count = chunks.len();
    let planned = knowledge_point_ids(name, chunks, "2026-01-01T00:00:00Z");
    let ids: HashSet<&str> = planned.iter().map(String::as_str).collect();
    assert_eq!(ids.len(), count, "every chunk gets its own point id");
}

/// A config file, resolved as `run` does, with every secret and the
/// Telegram api_id in the environment (so no file named in the config is
/// read, and resolving gets past the credentials).
pub(super) fn config(data: &[u8]) {
    let env = |name: &str| match name {
        tribute_assistant::telegram::API_ID_ENV => Some("12345".to_owned()),
        _ => ["SECRET", "KEY", "HASH"].iter().any(|s| name.contains(s)).then(|| "fuzz-secret".to_owned()),
    };
    let Ok(file) = toml::from_str::<FileConfig>(&super::text(data)) else {
        return;
    };
    let _ = file.parser.parser_config();
    let _ = file.contact.contact_config();
    let _ = file.knowledge.resolve(&env);
    let _ = AgentSettings::resolve(&file.agent, &env);
    let Ok(config) = Config::resolve(file, env) else {
        return;
    };
    let _ = config.contact.contact_config();
    let _ = config.backend_config();
    let _ = config.workflow_config();
    let _ = config.ingest_config();
    let _ = config.telegram.grammers_config(config.telegram_api.as_ref());
    let _ = config.session_path();
}
