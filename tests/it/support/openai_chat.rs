//! A scripted OpenAI-compatible chat endpoint on 127.0.0.1, port 0: each
//! request to `/v1/chat/completions` gets the next scripted reply, and
//! every request body is kept so tests can assert on what the agent sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A final message whose content is this JSON (the structured answer).
    Answer(Value),
    /// A final message with this raw content (e.g. prose instead of JSON).
    Content(String),
    /// The model calls these tools: (name, arguments).
    ToolCalls(Vec<(String, Value)>),
    /// The model refuses.
    Refusal(String),
    /// 429 with `Retry-After: <secs>`.
    RateLimited { retry_after_secs: u64 },
    /// 500.
    ServerError,
    /// Never answers (the client times out).
    Hang,
    /// 200 with a body that is not a chat completion.
    MalformedBody,
    /// A final message cut by the token limit (`finish_reason: "length"`).
    Truncated(String),
    /// This status with this exact JSON body (real servers' error bodies).
    Status(u16, Value),
}

/// A structured answer object with the sentences it says it relied on.
pub fn answer_quoting(
    text: &str,
    lang: &str,
    confidence: f64,
    escalate: bool,
    sources: &[&str],
    evidence: &[&str],
) -> Reply {
    Reply::Answer(json!({
        "answer": text, "language": lang, "confidence": confidence, "escalate": escalate, "sources": sources,
        "evidence": evidence
    }))
}

/// A model that reads each request and answers it: the answer object, from the request body.
pub type Reader = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub at: Instant,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    received: Vec<Received>,
    /// Answers every request once the script is exhausted.
    reader: Option<Reader>,
}

#[derive(Clone)]
pub struct ScriptedChat {
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for ScriptedChat {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl ScriptedChat {
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::serve(Inner { script: script.into(), ..Default::default() }).await
    }

    /// A model that answers every request with `reader(request body)`.
    pub async fn reading(reader: Reader) -> Self {
        Self::serve(Inner { reader: Some(reader), ..Default::default() }).await
    }

    async fn serve(inner: Inner) -> Self {
        let inner = Arc::new(Mutex::new(inner));
        let app = Router::new().route("/v1/chat/completions", post(handle)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base_url: format!("http://{addr}/v1"), inner, task: Arc::new(task) }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }
}

fn completion(message: Value, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1_700_000_000u32,
        "model": "scripted-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    })
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let reply = {
        let mut g = inner.lock().unwrap();
        g.received.push(Received {
            body,
            at: Instant::now(),
            authorization: headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
        });
        match g.script.pop_front() {
            Some(reply) => Some(reply),
            None => g.reader.as_ref().map(|read| Reply::Answer(read(&g.received.last().expect("just pushed").body))),
        }
    };
    let Some(reply) = reply else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "script exhausted").into_response();
    };
    match reply {
        Reply::Answer(v) => {
            Json(completion(json!({"role": "assistant", "content": v.to_string()}), "stop")).into_response()
        }
        Reply::Content(c) => Json(completion(json!({"role": "assistant", "content": c}), "stop")).into_response(),
        Reply::Refusal(r) => {
            Json(completion(json!({"role": "assistant", "content": null, "refusal": r}), "stop")).into_response()
        }
        Reply::ToolCalls(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    json!({"id": format!("call_{i}"), "type": "function",
                           "function": {"name": name, "arguments": args.to_string()}})
                })
                .collect();
            Json(completion(json!({"role": "assistant", "content": null, "tool_calls": calls}), "tool_calls"))
                .into_response()
        }
        Reply::RateLimited { retry_after_secs } => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"error": {"message": "Rate limit reached", "type": "rate_limit_error",
                                      "param": null, "code": "rate_limit_exceeded"}})),
            )
                .into_response();
            r.headers_mut().insert("retry-after", HeaderValue::from_str(&retry_after_secs.to_string()).unwrap());
            r
        }
        Reply::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "The server had an error", "type": "server_error", "param": null, "code": null}})),
        )
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Reply::MalformedBody => (StatusCode::OK, [("content-type", "application/json")], "{\"choices\": [oops").into_response(),
        Reply::Truncated(c) => Json(completion(json!({"role": "assistant", "content": c}), "length")).into_response(),
        Reply::Status(code, body) => (StatusCode::from_u16(code).unwrap(), Json(body)).into_response(),
    }
}
