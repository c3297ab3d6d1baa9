//! Incremental, idempotent ingestion.
//!
//! Every chunk's point id is derived from its source and content hash, so
//! re-ingesting unchanged text finds the same ids and does nothing (nothing
//! is re-embedded); a changed chunk gets a new id (added) and its old id is
//! deleted; sources that vanished are removed with `prune`. Writes go in
//! batches: new points first, then deletions, so a crash in between leaves
//! stale extras rather than holes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::chunk::{chunk_file, Chunk};
use super::index::{uuid_from_digest, ChunkPayload, IndexPoint, StoredKey};
use super::{ChunkKind, KnowledgeBase, KnowledgeError};
use crate::domain::Language;
use crate::store::ApprovedPair;

/// Points written per index request.
const UPSERT_BATCH: usize = 256;

/// A file's text and its source name (path relative to the ingested root).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SourceText {
    pub source: String,
    pub text: String,
}

/// What to ingest in one run.
#[derive(Debug, Clone, Default)]
pub struct IngestInput {
    /// Documents; `None` = no documents in this run (their sources are not pruned).
    pub documents: Option<Vec<SourceText>>,
    /// Approved conversation pairs; `None` = not part of this run.
    pub conversations: Option<Vec<ApprovedPair>>,
}

/// Counts for the summary line. Chunk-level: a changed chunk counts as
/// updated when its source had a chunk removed in the same run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IngestReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Chunks sent to the embedding provider / lexical embedder.
    pub embedded: usize,
    pub elapsed: Duration,
}

impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "added {}, updated {}, unchanged {}, removed {} chunks in {:.2}s",
            self.added,
            self.updated,
            self.unchanged,
            self.removed,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Called with (done, total) chunks to embed; drawn by the CLI on a terminal.
pub type ProgressFn<'a> = &'a mut (dyn FnMut(usize, usize) + Send);

/// Reads Markdown, text and JSONL files from files and folders. Source names
/// are relative to the folder given (a file given directly: its file name),
/// with `/` separators, so the same tree gives the same names anywhere.
///
/// Symbolic links inside a folder never lead out of it: a link to a
/// directory is not followed at all (outside the folder it is not ours to
/// read; inside, the walk reaches it anyway, and a link to an ancestor
/// would loop), and a link to a file is read only when the file lies inside
/// the folder. Skipped links are logged.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<SourceText>, KnowledgeError> {
    let mut out = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(|source| KnowledgeError::Io { path: root.clone(), source })?;
        if meta.is_file() {
            let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.push(SourceText { source: name, text: read(root)? });
        } else {
            let real_root =
                std::fs::canonicalize(root).map_err(|source| KnowledgeError::Io { path: root.clone(), source })?;
            walk(root, &real_root, root, &mut out)?;
        }
    }
    out.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(out)
}

fn read(path: &Path) -> Result<String, KnowledgeError> {
    std::fs::read_to_string(path).map_err(|source| KnowledgeError::Io { path: path.to_owned(), source })
}

/// `root` as given (source names are relative to it), `real_root` its
/// canonical form (what links are checked against).
fn walk(root: &Path, real_root: &Path, dir: &Path, out: &mut Vec<SourceText>) -> Result<(), KnowledgeError> {
    let entries = std::fs::read_dir(dir).map_err(|source| KnowledgeError::Io { path: dir.to_owned(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| KnowledgeError::Io { path: dir.to_owned(), source })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // `DirEntry::file_type` does not follow links, unlike `Path::is_dir`.
        let file_type = entry.file_type().map_err(|source| KnowledgeError::Io { path: path.clone(), source })?;
        if file_type.is_symlink() && !is_file_inside(&path, real_root) {
            tracing::warn!(path = %path.display(), "skipped a symbolic link: it leads to a directory or out of the folder");
            continue;
        }
        if file_type.is_dir() {
            walk(root, real_root, &path, out)?;
        } else if is_knowledge_file(&name) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let source = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            out.push(SourceText { source, text: read(&path)? });
        }
    }
    Ok(())
}

/// Whether the link at `link` resolves to a regular file under `real_root`.
fn is_file_inside(link: &Path, real_root: &Path) -> bool {
    std::fs::canonicalize(link).is_ok_and(|target| target.starts_with(real_root) && target.is_file())
}

/// Knowledge files by extension, except `kb eval` question sets
/// (`eval.jsonl`, `*.eval.jsonl`): they sit next to the documents they test
/// but are questions, not answers, and a folder ingest must not index them.
fn is_knowledge_file(name: &str) -> bool {
    let n = name.to_lowercase();
    let question_set = n == "eval.jsonl" || n.ends_with(".eval.jsonl");
    !question_set && [".md", ".markdown", ".txt", ".jsonl"].iter().any(|e| n.ends_with(e))
}

/// The source name of an approved conversation pair.
pub fn conversation_source(conversation_id: i64) -> String {
    format!("conversation:{conversation_id}")
}

pub(crate) fn pair_chunk(pair: &ApprovedPair) -> Chunk {
    let language = pair
        .language
        .clone()
        .or_else(|| Language::detect(&format!("{} {}", pair.question, pair.answer)).map(|l| l.as_str().to_owned()));
    Chunk {
        title: pair.question.trim().to_owned(),
        phrasings: vec![],
        text: pair.question.trim().to_owned(),
        answer: Some(pair.answer.trim().to_owned()),
        kind: ChunkKind::Conversation,
        language,
    }
}

pub(crate) fn content_hash(c: &Chunk) -> String {
    let mut h = Sha256::new();
    for part in [
        c.kind.as_str(),
        &c.title,
        &c.text,
        c.answer.as_deref().unwrap_or("\u{0}"),
        c.language.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    // Only when present, so chunks without phrasings keep their old hash
    // (and are not re-embedded after an upgrade).
    for p in &c.phrasings {
        h.update(b"phrasing\0");
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// The id of the `n`-th chunk with this hash in this source (`n` > 0 only
/// for repeated identical sections).
pub(crate) fn point_id(source: &str, hash: &str, n: usize) -> String {
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update([0u8]);
    h.update(hash.as_bytes());
    h.update([0u8]);
    h.update(n.to_le_bytes());
    uuid_from_digest(&h.finalize())
}

/// A chunk ready to write, before vectors.
pub(crate) struct Planned {
    pub id: String,
    pub search_text: String,
    pub payload: ChunkPayload,
}

impl KnowledgeBase {
    /// Splits, redacts and hashes every source; returns source → chunks.
    fn prepare(&self, input: &IngestInput) -> Result<BTreeMap<String, (ChunkKind, Vec<Chunk>)>, KnowledgeError> {
        let mut by_source: BTreeMap<String, (ChunkKind, Vec<Chunk>)> = BTreeMap::new();
        for doc in input.documents.iter().flatten() {
            let chunks = chunk_file(&doc.source, &doc.text, self.limits)?;
            by_source.insert(doc.source.clone(), (ChunkKind::Doc, chunks));
        }
        for pair in input.conversations.iter().flatten() {
            by_source
                .entry(conversation_source(pair.conversation_id))
                .or_insert_with(|| (ChunkKind::Conversation, Vec::new()))
                .1
                .push(pair_chunk(pair));
        }
        for (_, chunks) in by_source.values_mut() {
            for c in chunks.iter_mut() {
                self.redact_chunk(c);
            }
        }
        Ok(by_source)
    }

    pub(crate) fn redact_chunk(&self, c: &mut Chunk) {
        c.title = self.redactor.redact(&c.title);
        c.phrasings = c.phrasings.iter().map(|p| self.redactor.redact(p)).collect();
        c.text = self.redactor.redact(&c.text);
        c.answer = c.answer.as_deref().map(|a| self.redactor.redact(a));
    }

    pub(crate) fn plan(source: &str, chunks: Vec<Chunk>, now: &str) -> Vec<Planned> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        chunks
            .into_iter()
            .map(|c| {
                let hash = content_hash(&c);
                let n = seen.entry(hash.clone()).or_default();
                let id = point_id(source, &hash, *n);
                *n += 1;
                Planned {
                    id,
                    search_text: c.search_text(),
                    payload: ChunkPayload {
                        source: source.to_owned(),
                        title: c.title,
                        phrasings: c.phrasings,
                        text: c.text,
                        answer: c.answer,
                        language: c.language,
                        kind: c.kind,
                        content_hash: hash,
                        ingested_at: now.to_owned(),
                    },
                }
            })
            .collect()
    }

    /// Computes vectors for planned chunks and writes them in batches.
    pub(crate) async fn write(
        &self,
        planned: Vec<Planned>,
        mut progress: Option<ProgressFn<'_>>,
    ) -> Result<usize, KnowledgeError> {
        let total = planned.len();
        let mut done = 0;
        let mut iter = planned.into_iter().peekable();
        while iter.peek().is_some() {
            let batch: Vec<Planned> = iter.by_ref().take(UPSERT_BATCH).collect();
            let dense = match &self.embedder {
                Some(e) => {
                    let texts: Vec<String> = batch.iter().map(|p| p.search_text.clone()).collect();
                    Some(e.embed(&texts).await?)
                }
                None => None,
            };
            let mut dense = dense.map(|d| d.into_iter());
            let points: Vec<IndexPoint> = batch
                .into_iter()
                .map(|p| IndexPoint {
                    sparse: self.lexical.embed_document(&p.search_text),
                    dense: dense.as_mut().and_then(|d| d.next()),
                    id: p.id,
                    payload: p.payload,
                })
                .collect();
            done += points.len();
            self.index.upsert(points).await?;
            if let Some(p) = progress.as_mut() {
                p(done, total);
            }
        }
        Ok(total)
    }

    /// Ingests documents and/or approved conversations; see the module docs.
    /// With `prune`, sources of the kinds in `input` that are no longer
    /// present are removed.
    pub async fn ingest(
        &self,
        input: IngestInput,
        prune: bool,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<IngestReport, KnowledgeError> {
        let started = Instant::now();
        let by_source = self.prepare(&input)?;
        let existing = self.index.keys().await?;
        let mut stored: HashMap<&str, Vec<&StoredKey>> = HashMap::new();
        for k in &existing {
            stored.entry(k.source.as_str()).or_default().push(k);
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut report = IngestReport::default();
        let mut to_write = Vec::new();
        let mut to_delete = Vec::new();
        for (source, (_, chunks)) in by_source.iter().map(|(s, v)| (s, v.clone())) {
            let planned = Self::plan(source, chunks, &now);
            let old: HashSet<&str> = stored.get(source.as_str()).into_iter().flatten().map(|k| k.id.as_str()).collect();
            let new: HashSet<String> = planned.iter().map(|p| p.id.clone()).collect();
            let gone: Vec<String> = old.iter().filter(|id| !new.contains(**id)).map(|id| (*id).to_owned()).collect();
            let fresh: Vec<Planned> = planned.into_iter().filter(|p| !old.contains(p.id.as_str())).collect();
            report.unchanged += new.len() - fresh.len();
            let updated = fresh.len().min(gone.len());
            report.updated += updated;
            report.added += fresh.len() - updated;
            report.removed += gone.len() - updated;
            to_write.extend(fresh);
            to_delete.extend(gone);
        }
        if prune {
            let kinds: Vec<ChunkKind> = [
                input.documents.is_some().then_some(ChunkKind::Doc),
                input.conversations.is_some().then_some(ChunkKind::Conversation),
            ]
            .into_iter()
            .flatten()
            .collect();
            for k in &existing {
                if kinds.contains(&k.kind) && !by_source.contains_key(&k.source) {
                    to_delete.push(k.id.clone());
                    report.removed += 1;
                }
            }
        }
        report.embedded = self.write(to_write, progress).await?;
        let changed = report.embedded > 0 || !to_delete.is_empty();
        self.index.delete(to_delete).await?;
        if changed {
            // Not optimised here: that is seconds to minutes on Edge for large
            // sets; the caller runs `optimize()` when it suits (the CLI right
            // after ingesting, the daemon on a schedule).
            self.index.flush().await?;
        }
        if changed || self.calibration().is_none() {
            self.recalibrate().await;
        }
        report.elapsed = started.elapsed();
        tracing::info!(%report, backend = %self.index.backend(), "knowledge ingested");
        Ok(report)
    }
}
