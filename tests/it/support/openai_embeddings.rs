//! A scripted OpenAI-compatible `/v1/embeddings` server on 127.0.0.1:0.
//!
//! Vectors are feature-hashed bags of word prefixes (first 5 characters,
//! lowercased), so texts sharing words are close in cosine terms — enough
//! for hybrid search to be meaningful without a model.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Default)]
pub struct Script {
    /// Dimension of the returned vectors.
    pub dimension: usize,
    /// Answer this many first requests with 500.
    pub fail_first: usize,
    /// Wait this long before each answer (a busy or slow server).
    pub delay: std::time::Duration,
}

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicUsize,
    pub texts: AtomicUsize,
    pub last_auth: std::sync::Mutex<Option<String>>,
    /// Every text received, in order.
    pub inputs: std::sync::Mutex<Vec<String>>,
    /// The request's `input_type` for each text of `inputs`.
    pub input_types: std::sync::Mutex<Vec<Option<String>>>,
}

struct Shared {
    script: Script,
    counters: Arc<Counters>,
}

pub struct EmbeddingServer {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl EmbeddingServer {
    pub async fn start(script: Script) -> Self {
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared { script, counters: counters.clone() });
        let app = Router::new().route("/v1/embeddings", post(embeddings)).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, counters, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }

    pub fn texts(&self) -> usize {
        self.counters.texts.load(Ordering::SeqCst)
    }
}

impl Drop for EmbeddingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn embed(text: &str, dimension: usize) -> Vec<f32> {
    let mut v = vec![0f32; dimension];
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() > 2) {
        let key: String = word.to_lowercase().chars().take(5).collect();
        let mut h: u64 = 0xcbf29ce484222325;
        for b in key.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        v[(h % dimension as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v[0] = 1.0;
    }
    v
}

async fn embeddings(
    State(s): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let n = s.counters.requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(s.script.delay).await;
    *s.counters.last_auth.lock().unwrap() =
        headers.get("authorization").map(|v| v.to_str().unwrap_or_default().to_owned());
    if n < s.script.fail_first {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "scripted failure", "type": "server_error"}})),
        );
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect(),
        _ => return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "bad input"}}))),
    };
    s.counters.texts.fetch_add(inputs.len(), Ordering::SeqCst);
    s.counters.inputs.lock().unwrap().extend(inputs.iter().cloned());
    let kind = body["input_type"].as_str().map(str::to_owned);
    s.counters.input_types.lock().unwrap().extend(inputs.iter().map(|_| kind.clone()));
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embed(t, s.script.dimension)}))
        .collect();
    (
        StatusCode::OK,
        Json(json!({
            "object": "list",
            "model": body["model"],
            "data": data,
            "usage": {"prompt_tokens": 1, "total_tokens": 1}
        })),
    )
}
