//! The commands' side: requests to the daemon that holds the index.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{Endpoint, ErrorBody, IngestRequest, IngestResponse, SearchRequest, StatsResponse};
use crate::knowledge::{KnowledgeError, SearchHit};

/// How long [`Client::ping`] waits: a daemon that holds the index answers at once.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// A search waits for the daemon's embedding provider at most this long.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to the daemon of one data dir.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
    http: reqwest::Client,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Result<Self, KnowledgeError> {
        let http = crate::http::tls::client_builder()
            // Loopback: a proxy from the environment must not see the token.
            .no_proxy()
            .connect_timeout(PING_TIMEOUT)
            .build()
            .map_err(|e| KnowledgeError::Config(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { endpoint, http })
    }

    /// The daemon's process id, as it wrote it.
    pub fn pid(&self) -> u32 {
        self.endpoint.pid
    }

    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// Whether the daemon answers, and takes the token.
    pub async fn ping(&self) -> Result<(), KnowledgeError> {
        self.send(self.http.get(self.at("/kb/ping")).timeout(PING_TIMEOUT)).await.map(drop)
    }

    pub async fn stats(&self) -> Result<StatsResponse, KnowledgeError> {
        self.call(self.http.get(self.at("/kb/stats")).timeout(SEARCH_TIMEOUT)).await
    }

    /// Runs an ingest in the daemon; no timeout (embedding a large corpus takes long).
    pub async fn ingest(&self, req: &IngestRequest) -> Result<IngestResponse, KnowledgeError> {
        self.call(self.http.post(self.at("/kb/ingest")).json(req)).await
    }

    pub async fn search(&self, req: &SearchRequest) -> Result<Vec<SearchHit>, KnowledgeError> {
        self.call(self.http.post(self.at("/kb/search")).json(req).timeout(SEARCH_TIMEOUT)).await
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.url)
    }

    fn fail(&self, message: String) -> KnowledgeError {
        KnowledgeError::Daemon { url: self.endpoint.url.clone(), message }
    }

    async fn call<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, KnowledgeError> {
        let resp = self.send(req).await?;
        resp.json().await.map_err(|e| self.fail(format!("unreadable answer: {e}")))
    }

    /// Sends with the token; a refusal is an error with the daemon's words.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, KnowledgeError> {
        let resp = req
            .bearer_auth(&self.endpoint.token)
            .send()
            .await
            .map_err(|e| self.fail(format!("no answer: {}", chain(&e))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&body).map(|b| b.error).unwrap_or(body);
        Err(self.fail(format!("{status}: {message}")))
    }
}

/// An error and its causes ("error sending request" alone says nothing).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
