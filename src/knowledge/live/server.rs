//! The daemon's side: a loopback listener that runs the commands' requests
//! on the knowledge base the daemon answers customers from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{CalibrationSummary, Endpoint, ErrorBody, IngestRequest, IngestResponse, SearchRequest, StatsResponse};
use crate::http::ServerHandle;
use crate::knowledge::{IngestInput, KnowledgeBase, KnowledgeError, SearchFilter};

/// A knowledge base's documents can be large; the default 2 MiB is not enough.
const MAX_BODY: usize = 256 << 20;

struct Live {
    kb: KnowledgeBase,
    token: String,
    /// One ingest at a time: each reads the stored keys, then writes.
    ingesting: tokio::sync::Mutex<()>,
}

/// The running listener. Stopping it (or dropping it) removes the endpoint file.
pub struct LiveServer {
    server: Option<ServerHandle>,
    data_dir: PathBuf,
    file: PathBuf,
    token: String,
}

impl std::fmt::Debug for LiveServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveServer").field("file", &self.file).finish_non_exhaustive()
    }
}

/// Serves `kb` on `127.0.0.1:0` and says so in `<data_dir>/knowledge/daemon.json`.
pub async fn serve(kb: KnowledgeBase, data_dir: &Path) -> Result<LiveServer, KnowledgeError> {
    let io = |path: PathBuf| move |source| KnowledgeError::Io { path, source };
    std::fs::create_dir_all(data_dir.join(crate::knowledge::KNOWLEDGE_DIR))
        .map_err(io(data_dir.join(crate::knowledge::KNOWLEDGE_DIR)))?;
    let token = fresh_token()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(io("127.0.0.1:0".into()))?;
    let state = Arc::new(Live { kb, token: token.clone(), ingesting: tokio::sync::Mutex::new(()) });
    let app = Router::new()
        .route("/kb/ingest", post(ingest))
        .route("/kb/search", post(search))
        .route("/kb/stats", get(stats))
        .route("/kb/ping", get(ping))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    let server = ServerHandle::serve(listener, app, "the knowledge listener").map_err(io("127.0.0.1:0".into()))?;
    let endpoint = Endpoint { url: server.url(), token: token.clone(), pid: std::process::id() };
    let file = endpoint.write(data_dir)?;
    tracing::info!(addr = %server.addr(), file = %file.display(), "the knowledge base takes `kb` commands");
    Ok(LiveServer { server: Some(server), data_dir: data_dir.to_owned(), file, token })
}

impl LiveServer {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> Option<String> {
        self.server.as_ref().map(ServerHandle::url)
    }

    /// Removes the endpoint file, then stops the listener (waiting for a request in flight).
    pub async fn shutdown(mut self) {
        self.remove_file();
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Only our own file: another daemon of this data dir may have replaced it.
    fn remove_file(&self) {
        if let Ok(Some(e)) = Endpoint::read(&self.data_dir) {
            if e.token == self.token {
                let _ = std::fs::remove_file(&self.file);
            }
        }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        if self.server.is_some() {
            self.remove_file();
        }
    }
}

/// 32 random bytes from the kernel, hex.
fn fresh_token() -> Result<String, KnowledgeError> {
    use std::io::Read;
    let path = PathBuf::from("/dev/urandom");
    let mut bytes = [0u8; 32];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| KnowledgeError::Io { path, source })?;
    Ok(hex::encode(bytes))
}

fn failure(status: StatusCode, error: impl std::fmt::Display) -> Response {
    (status, Json(ErrorBody { error: error.to_string() })).into_response()
}

/// Refuses a request without the bearer token (compared in constant time).
fn refused(live: &Live, headers: &HeaderMap) -> Option<Response> {
    use subtle::ConstantTimeEq;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let known = bool::from(given.as_bytes().ct_eq(live.token.as_bytes()));
    (!known)
        .then(|| failure(StatusCode::UNAUTHORIZED, "missing or wrong token: read it from the daemon's endpoint file"))
}

async fn ingest(State(live): State<Arc<Live>>, headers: HeaderMap, Json(req): Json<IngestRequest>) -> Response {
    if let Some(r) = refused(&live, &headers) {
        return r;
    }
    // Its own task: a command interrupted half-way (Ctrl-C) does not cut the
    // ingest short; it finishes, optimised and calibrated, for the customers.
    let task = tokio::spawn(async move {
        let _one = live.ingesting.lock().await;
        let input = IngestInput { documents: req.documents, conversations: req.conversations };
        let report = live.kb.ingest(input, req.prune, None).await.map_err(|e| format!("ingestion failed: {e}"))?;
        let optimized_secs = if report.embedded > 0 || report.removed > 0 || report.updated > 0 {
            let t = std::time::Instant::now();
            live.kb.optimize().await.map_err(|e| format!("failed to optimise the index: {e}"))?;
            Some(t.elapsed().as_secs_f64())
        } else {
            None
        };
        tracing::info!(%report, "kb ingest through the daemon");
        Ok::<_, String>(IngestResponse {
            report,
            optimized_secs,
            backend: live.kb.backend(),
            calibration: live.kb.calibration().map(|c| CalibrationSummary::of(&c)),
        })
    });
    match task.await {
        Ok(Ok(done)) => Json(done).into_response(),
        Ok(Err(message)) => failure(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, format!("the ingest task failed: {e}")),
    }
}

async fn search(State(live): State<Arc<Live>>, headers: HeaderMap, Json(req): Json<SearchRequest>) -> Response {
    if let Some(r) = refused(&live, &headers) {
        return r;
    }
    let hits = match (req.prefer, req.language) {
        (true, Some(lang)) => live.kb.search_preferring(&req.query, &lang, req.kind, req.limit).await,
        (_, language) => {
            live.kb
                .search(&req.query, &SearchFilter { kind: req.kind, language, ..Default::default() }, req.limit)
                .await
        }
    };
    match hits {
        Ok(h) => Json(h).into_response(),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, format!("search failed: {e}")),
    }
}

/// Whether the daemon answers: cheap (stats scroll the whole index), and every command asks it first.
async fn ping(State(live): State<Arc<Live>>, headers: HeaderMap) -> Response {
    refused(&live, &headers).unwrap_or_else(|| StatusCode::NO_CONTENT.into_response())
}

async fn stats(State(live): State<Arc<Live>>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&live, &headers) {
        return r;
    }
    match live.kb.stats().await {
        Ok(stats) => Json(StatsResponse { stats, dense_fallbacks: live.kb.dense_fallbacks() }).into_response(),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the index: {e}")),
    }
}
