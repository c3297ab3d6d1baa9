//! The agent's port to a chat model: its own message, tool and answer types
//! and one trait. The turn logic speaks only this vocabulary, so it can be
//! tested with an in-memory model and the wire protocol (async-openai, in
//! [`super::openai`]) stays in one adapter.

use std::time::Duration;

/// One message of the chat sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatMessage {
    /// Our rules and context.
    System(String),
    /// The customer's words (already wrapped as data by the caller).
    User(String),
    /// The model's earlier message: text, or the tool calls it asked for.
    Assistant { content: Option<String>, tool_calls: Vec<ToolInvocation> },
    /// The result of one tool call, answering the call with that id.
    Tool { call_id: String, content: String },
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: serde_json::Value,
    /// Ask the endpoint to hold the arguments to the schema exactly.
    pub strict: bool,
}

/// Whether a tool call names one of the functions we defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    Function,
    /// A free-form ("custom") tool call; we define none, so it is misuse.
    Custom,
}

/// A tool call as the model wrote it; nothing in it is validated yet.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInvocation {
    pub id: String,
    pub kind: ToolKind,
    pub name: String,
    /// The arguments as JSON text (the input text for a custom call).
    pub arguments: String,
}

/// The shape the final answer must have.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Whatever the model writes.
    None,
    /// Any JSON object.
    JsonObject,
    /// An object matching `schema`; `strict` asks the endpoint to enforce it.
    JsonSchema { name: String, description: Option<String>, schema: serde_json::Value, strict: bool },
}

/// One chat completion request. The model and endpoint belong to the [`Llm`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolDefinition>,
    pub response_format: ResponseFormat,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
}

/// Why the model stopped writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    /// Cut at `max_tokens`: the content is incomplete.
    Length,
    ToolCalls,
    ContentFilter,
}

/// The model's message (the first choice).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatAnswer {
    pub content: Option<String>,
    /// The model declined to answer (OpenAI's `refusal`).
    pub refusal: Option<String>,
    pub tool_calls: Vec<ToolInvocation>,
    /// `None` when the endpoint did not say.
    pub finish_reason: Option<FinishReason>,
}

/// Why a chat call produced no usable message. Each maps to a policy reason.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM did not answer within {0:?} (after retries)")]
    Timeout(Duration),
    /// Transient: the endpoint is down, overloaded or rate limited.
    #[error("the LLM is unavailable: {0}")]
    Unavailable(String),
    /// Deterministic: this request or this server's configuration is wrong
    /// (a 4xx, or a 500 such as llama.cpp's "tools param requires --jinja
    /// flag"); sending it again cannot help.
    #[error("the LLM rejected the request: {0}")]
    Rejected(String),
    #[error("the LLM answered something malformed: {0}")]
    Malformed(String),
    #[error(
        "the LLM's answer was cut at max_tokens = {0} (finish_reason \"length\"); raise [agent] max_tokens or use a model that answers briefly"
    )]
    Truncated(u32),
}

/// A chat model. Retries and timeouts are the implementation's business.
#[async_trait::async_trait]
pub trait Llm: Send + Sync + std::fmt::Debug {
    async fn complete(&self, request: ChatRequest) -> Result<ChatAnswer, LlmError>;
}
