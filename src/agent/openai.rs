//! The [`Llm`] adapter for any OpenAI-compatible endpoint, through async-openai.
//! The only place in the agent that knows that protocol's types.
//!
//! async-openai's built-in retry layer is replaced by ours (through its
//! `middleware` hook) because we need what it does not do: a configurable
//! number of retries, retrying timeouts, and a cap on Retry-After so a
//! rate-limited endpoint cannot park a customer's turn for an hour.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionMessageCustomToolCall, ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestToolMessage, ChatCompletionRequestUserMessage, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequest, CustomTool, FinishReason as WireFinish, FunctionCall, FunctionObject,
    ResponseFormat as WireFormat, ResponseFormatJsonSchema,
};
use async_openai::Client;
use reqwest::header::HeaderMap;
use reqwest::Response;
use secrecy::ExposeSecret;

use super::llm::{
    ChatAnswer, ChatMessage, ChatRequest, FinishReason, Llm, LlmError, ResponseFormat, ToolDefinition, ToolInvocation,
    ToolKind,
};
use super::settings::{AgentSettings, LlmEndpoint};
use crate::config::sensitive_url::redact_credentials;
use crate::runtime::backoff::{self, Jitter};

/// One chat endpoint with its model and limits. Cheap to clone.
#[derive(Clone)]
pub struct OpenAiLlm {
    client: Client<OpenAIConfig>,
    model: String,
    timeout: Duration,
}

impl std::fmt::Debug for OpenAiLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The inner config holds the API key; show only what is safe.
        f.debug_struct("OpenAiLlm").field("model", &self.model).finish_non_exhaustive()
    }
}

impl OpenAiLlm {
    pub fn new(endpoint: &LlmEndpoint, settings: &AgentSettings) -> Result<Self, LlmError> {
        let http = crate::http::tls::client_builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| LlmError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        let config = OpenAIConfig::new()
            .with_api_base(endpoint.base_url.clone())
            .with_api_key(endpoint.api_key.expose_secret().to_owned());
        let service = RetryingHttp {
            http,
            retries: settings.retries,
            max_retry_after: settings.max_retry_after,
            first_backoff: Duration::from_millis(200),
        };
        Ok(Self {
            client: Client::with_config(config).with_http_service(service),
            model: endpoint.model.clone(),
            timeout: settings.timeout,
        })
    }

    fn classify(&self, err: OpenAIError) -> LlmError {
        match err {
            OpenAIError::Reqwest(e) if e.is_timeout() => LlmError::Timeout(self.timeout),
            OpenAIError::Reqwest(e) => LlmError::Unavailable(redact_credentials(&error_chain(&e)).into_owned()),
            OpenAIError::ApiError(e) => {
                let status = e.status_code.as_u16();
                // async-openai keeps a 5xx body whole as the message; take its error.message.
                let msg: String = error_message(&e.api_error.message).chars().take(200).collect();
                if status == 500 && is_configuration_error(&msg) {
                    LlmError::Rejected(format!("HTTP {status}: {msg}{}", fix_hint(&msg)))
                } else if status == 429 || status >= 500 {
                    LlmError::Unavailable(format!("HTTP {status}: {msg}"))
                } else {
                    LlmError::Rejected(format!("HTTP {status}: {msg}"))
                }
            }
            OpenAIError::JSONDeserialize(e, body) => {
                LlmError::Malformed(format!("{e}; body starts {:?}", body.chars().take(120).collect::<String>()))
            }
            other => LlmError::Unavailable(redact_credentials(&other.to_string()).into_owned()),
        }
    }
}

#[async_trait::async_trait]
impl Llm for OpenAiLlm {
    /// One chat completion; the first choice's message.
    async fn complete(&self, request: ChatRequest) -> Result<ChatAnswer, LlmError> {
        let tools: Vec<ChatCompletionTools> = request.tools.into_iter().map(wire_tool).collect();
        let wire = CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: request.messages.into_iter().map(wire_message).collect(),
            tools: (!tools.is_empty()).then_some(tools),
            response_format: wire_format(request.response_format),
            max_completion_tokens: Some(request.max_tokens),
            temperature: request.temperature,
            ..Default::default()
        };
        let response = self.client.chat().create(wire).await.map_err(|e| self.classify(e))?;
        let choice = response
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::Malformed("the response has no choices".into()))?;
        let message = choice.message;
        Ok(ChatAnswer {
            content: message.content,
            refusal: message.refusal,
            tool_calls: message.tool_calls.unwrap_or_default().into_iter().map(port_call).collect(),
            finish_reason: choice.finish_reason.map(|r| match r {
                WireFinish::Stop => FinishReason::Stop,
                WireFinish::Length => FinishReason::Length,
                WireFinish::ToolCalls | WireFinish::FunctionCall => FinishReason::ToolCalls,
                WireFinish::ContentFilter => FinishReason::ContentFilter,
            }),
        })
    }
}

fn wire_message(m: ChatMessage) -> ChatCompletionRequestMessage {
    match m {
        ChatMessage::System(text) => ChatCompletionRequestSystemMessage::from(text).into(),
        ChatMessage::User(text) => ChatCompletionRequestUserMessage::from(text).into(),
        ChatMessage::Assistant { content, tool_calls } => ChatCompletionRequestAssistantMessage {
            content: content.map(Into::into),
            tool_calls: (!tool_calls.is_empty()).then(|| tool_calls.into_iter().map(wire_call).collect()),
            ..Default::default()
        }
        .into(),
        ChatMessage::Tool { call_id, content } => {
            ChatCompletionRequestToolMessage { content: content.into(), tool_call_id: call_id }.into()
        }
    }
}

fn wire_call(c: ToolInvocation) -> ChatCompletionMessageToolCalls {
    match c.kind {
        ToolKind::Function => ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
            id: c.id,
            function: FunctionCall { name: c.name, arguments: c.arguments },
        }),
        ToolKind::Custom => ChatCompletionMessageToolCalls::Custom(ChatCompletionMessageCustomToolCall {
            id: c.id,
            custom_tool: CustomTool { name: c.name, input: c.arguments },
        }),
    }
}

fn port_call(c: ChatCompletionMessageToolCalls) -> ToolInvocation {
    match c {
        ChatCompletionMessageToolCalls::Function(f) => ToolInvocation {
            id: f.id,
            kind: ToolKind::Function,
            name: f.function.name,
            arguments: f.function.arguments,
        },
        ChatCompletionMessageToolCalls::Custom(c) => ToolInvocation {
            id: c.id,
            kind: ToolKind::Custom,
            name: c.custom_tool.name,
            arguments: c.custom_tool.input,
        },
    }
}

fn wire_tool(t: ToolDefinition) -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: t.name,
            description: Some(t.description),
            parameters: Some(t.parameters),
            strict: Some(t.strict),
        },
    })
}

fn wire_format(f: ResponseFormat) -> Option<WireFormat> {
    match f {
        ResponseFormat::None => None,
        ResponseFormat::JsonObject => Some(WireFormat::JsonObject),
        ResponseFormat::JsonSchema { name, description, schema, strict } => Some(WireFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema { description, name, schema, strict: Some(strict) },
        }),
    }
}

/// The HTTP transport under async-openai: sends, and retries 429 (after
/// Retry-After, capped), 5xx, timeouts and refused connections.
#[derive(Clone, Debug)]
struct RetryingHttp {
    http: reqwest::Client,
    retries: u32,
    max_retry_after: Duration,
    first_backoff: Duration,
}

type HttpFuture = Pin<Box<dyn Future<Output = Result<Response, OpenAIError>> + Send + 'static>>;

impl tower::Service<HttpRequestFactory> for RetryingHttp {
    type Response = Response;
    type Error = OpenAIError;
    type Future = HttpFuture;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(factory).await })
    }
}

impl RetryingHttp {
    async fn send(self, factory: HttpRequestFactory) -> Result<Response, OpenAIError> {
        let mut attempt = 0u32;
        loop {
            let request = factory.build().await?;
            let mut deterministic = false;
            let result = match self.http.execute(request).await {
                Ok(r) if r.status().as_u16() == 500 => {
                    let (response, body) = read_500(r).await;
                    deterministic = is_configuration_error(&error_message(&body));
                    Ok(response)
                }
                other => other,
            };
            let backoff = backoff::delay(attempt, self.first_backoff, Duration::from_secs(8), Jitter::None);
            let delay = match &result {
                Ok(r) if r.status().as_u16() == 429 => match retry_after(r.headers()) {
                    Some(d) if d > self.max_retry_after => {
                        tracing::warn!(retry_after = ?d, "LLM rate limit wait is longer than allowed; giving up");
                        None
                    }
                    Some(d) => Some(d),
                    None => Some(backoff),
                },
                Ok(r) if r.status().is_server_error() && !deterministic => {
                    Some(retry_after(r.headers()).unwrap_or(backoff))
                }
                Ok(_) => None,
                Err(e) if e.is_timeout() || e.is_connect() => Some(backoff),
                Err(_) => None,
            };
            match delay {
                Some(delay) if attempt < self.retries => {
                    let why = match &result {
                        Ok(r) => r.status().to_string(),
                        Err(e) => redact_credentials(&e.to_string()).into_owned(),
                    };
                    tracing::warn!(attempt, ?delay, %why, "LLM call failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(delay.min(self.max_retry_after.max(self.first_backoff))).await;
                }
                _ => return result.map_err(OpenAIError::Reqwest),
            }
        }
    }
}

/// An error and its causes ("error sending request …: tcp connect error:
/// Connection refused"): reqwest's own text leaves out why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Reads a 500's body and gives back an equivalent response (for
/// async-openai to turn into its error) with the body as text.
async fn read_500(r: Response) -> (Response, String) {
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap_or_default();
    let mut builder = axum::http::Response::builder().status(status);
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let rebuilt = builder.body(bytes.to_vec()).expect("status and headers taken from a valid response");
    (Response::from(rebuilt), text)
}

/// The `error.message` of an OpenAI-style error body (llama.cpp, vLLM and
/// OpenAI all use it), else the body as is.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().or_else(|| v["message"].as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

/// Whether a server error says the request itself does not suit this server
/// — llama.cpp without `--jinja` answers every request with tools with
/// HTTP 500 "tools param requires --jinja flag" — so sending it again is
/// pointless: it is a configuration error, reported at once as one.
pub fn is_configuration_error(message: &str) -> bool {
    let m = message.to_lowercase();
    ["requires", "not supported", "unsupported", "invalid", "unknown", "flag", "param"].iter().any(|w| m.contains(w))
}

/// What to do about a configuration error the agent recognises.
fn fix_hint(message: &str) -> &'static str {
    if message.contains("--jinja") {
        " (start llama-server with --jinja)"
    } else {
        ""
    }
}

/// `Retry-After` in seconds (integer or fractional), or OpenAI's `retry-after-ms`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0));
    }
    get("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_are_told_from_transient_ones_by_their_message() {
        let jinja = r#"{"error":{"code":500,"message":"tools param requires --jinja flag","type":"server_error"}}"#;
        assert!(is_configuration_error(&error_message(jinja)));
        assert_eq!(fix_hint(&error_message(jinja)), " (start llama-server with --jinja)");
        // OpenAI's transient 500 has `"param": null` in the body, not in the message.
        let openai =
            r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#;
        assert!(!is_configuration_error(&error_message(openai)));
        assert!(!is_configuration_error(&error_message("Internal Server Error")));
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
