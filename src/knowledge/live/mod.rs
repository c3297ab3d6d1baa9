//! A live knowledge base: the daemon owns the index, and the `kb` commands
//! and `ask` reach it through the daemon while it runs.
//!
//! Why through the daemon rather than beside it: the embedded Qdrant Edge
//! shard can be open in one process only (its WAL is locked), the daemon's
//! answers must follow an ingest at once, and the daemon itself writes to
//! the index (`/learn`, erasures). One owner and one writer keeps all three
//! true without copies of the index or a second source of truth; a command
//! sends its request, the daemon runs it on the `KnowledgeBase` it answers
//! customers from (docs/knowledge.md, "While the daemon runs").
//!
//! The daemon listens on `127.0.0.1:0` — its own listener, not the ops one,
//! which changes nothing and may be exposed to a scraper — and writes where
//! and with which token to `<data_dir>/knowledge/daemon.json` (0600). A
//! command of the same data dir reads that file; whoever may read it may
//! change the data dir anyway.

mod client;
mod server;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use client::Client;
pub use server::{serve, LiveServer};

use super::{ChunkKind, IngestReport, KbStats, KnowledgeError, SourceText, KNOWLEDGE_DIR};
use crate::store::ApprovedPair;

/// Where the running daemon says how to reach it, under `<data_dir>/knowledge/`.
pub const ENDPOINT_FILE: &str = "daemon.json";

/// How a command reaches the daemon that holds the index.
#[derive(Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Sent as `Authorization: Bearer …`; a fresh one at every start.
    pub token: String,
    /// The daemon's process id, for the error that says which process to look at.
    pub pid: u32,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("url", &self.url).field("pid", &self.pid).finish_non_exhaustive()
    }
}

impl Endpoint {
    /// `<data_dir>/knowledge/daemon.json`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(KNOWLEDGE_DIR).join(ENDPOINT_FILE)
    }

    /// The endpoint a daemon of `data_dir` wrote, if any. A file left by a
    /// daemon that was killed is still read: the caller finds out by asking.
    pub fn read(data_dir: &Path) -> Result<Option<Self>, KnowledgeError> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(KnowledgeError::Io { path, source }),
        };
        match serde_json::from_str(&text) {
            Ok(e) => Ok(Some(e)),
            Err(e) => {
                // Half-written by a daemon killed mid-start: as good as absent.
                tracing::warn!(file = %path.display(), error = %e, "ignoring an unreadable daemon endpoint file");
                Ok(None)
            }
        }
    }

    /// Writes the file readable by its owner only, atomically (a reader never
    /// sees half of it).
    fn write(&self, data_dir: &Path) -> Result<PathBuf, KnowledgeError> {
        use std::io::Write;
        let path = Self::path(data_dir);
        let tmp = path.with_extension("json.tmp");
        let io = |p: &Path| {
            let path = p.to_owned();
            move |source| KnowledgeError::Io { path, source }
        };
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(io(&tmp))?;
        f.write_all(&serde_json::to_vec(self).expect("plain data")).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(path)
    }
}

/// `POST /kb/ingest`: what `kb ingest` read (the command reads the files
/// and the approved pairs itself, so the daemon needs neither its working
/// directory nor its permissions).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IngestRequest {
    pub documents: Option<Vec<SourceText>>,
    pub conversations: Option<Vec<ApprovedPair>>,
    pub prune: bool,
}

/// The calibration after an ingest, as `kb ingest` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CalibrationSummary {
    pub dense_model: String,
    pub questions: usize,
    pub sections: usize,
    pub bar: f64,
}

impl CalibrationSummary {
    pub fn of(c: &super::calibration::Calibration) -> Self {
        Self { dense_model: c.dense_model.clone(), questions: c.questions, sections: c.sections, bar: c.bar() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestResponse {
    pub report: IngestReport,
    /// Seconds the index optimisation took, when anything changed.
    pub optimized_secs: Option<f64>,
    pub backend: String,
    pub calibration: Option<CalibrationSummary>,
}

/// `POST /kb/search`: `prefer` searches as the agent does (the language
/// first, the others too: `KnowledgeBase::search_preferring`), otherwise a
/// plain filtered search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    pub kind: Option<ChunkKind>,
    pub language: Option<String>,
    pub limit: usize,
    pub prefer: bool,
}

/// `GET /kb/stats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsResponse {
    pub stats: KbStats,
    /// Searches of the daemon that went on lexically ([`super::KnowledgeBase::dense_fallbacks`]).
    pub dense_fallbacks: u64,
}

/// An error's body.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ErrorBody {
    error: String,
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn an_absent_or_half_written_endpoint_file_is_no_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Endpoint::read(dir.path()).unwrap().is_none());
        std::fs::create_dir_all(dir.path().join(super::KNOWLEDGE_DIR)).unwrap();
        std::fs::write(Endpoint::path(dir.path()), "{\"url\": \"http://127.0.0.1:1").unwrap();
        assert!(Endpoint::read(dir.path()).unwrap().is_none());
        let e = Endpoint { url: "http://127.0.0.1:9".into(), token: "secret-token".into(), pid: 7 };
        e.write(dir.path()).unwrap();
        let back = Endpoint::read(dir.path()).unwrap().unwrap();
        assert_eq!((back.url.as_str(), back.token.as_str(), back.pid), ("http://127.0.0.1:9", "secret-token", 7));
        assert!(!format!("{back:?}").contains("secret-token"));
    }
}
