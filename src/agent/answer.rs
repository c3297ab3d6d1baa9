//! The model's final output: one JSON object, enforced by a JSON schema in
//! the request where the server can, and checked again here (endpoints that
//! ignore `response_format` exist; a malformed answer is never sent).
//!
//! Servers differ in what they accept: a strict JSON schema (OpenAI, vLLM,
//! llama.cpp), only a JSON object, or neither. [`AnswerFormat`] is the ladder
//! the agent steps down when a server rejects the format it was sent; on
//! the lower steps the schema travels in the instructions and the object is
//! read out of whatever text surrounds it.

use serde::Deserialize;

use super::llm::ResponseFormat;
use super::Lang;

/// What the model proposes. Nothing here is trusted: the policy checks it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAnswer {
    pub answer: String,
    pub language: Lang,
    /// 0..1, the model's own estimate.
    pub confidence: f64,
    pub escalate: bool,
    /// Ids of the knowledge-base hits the answer is based on.
    pub sources: Vec<String>,
    /// Sentences copied verbatim from the cited hits that the answer relies
    /// on. Missing on a server that ignores the schema: then it is empty, and
    /// the policy escalates an answer without evidence.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// The JSON schema of [`ModelAnswer`] (strict structured output).
pub fn schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "answer": {"type": "string", "description": "The reply to the customer, in their language."},
            "language": {"type": "string", "enum": ["ru", "en"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "escalate": {"type": "boolean", "description": "true when a person must answer."},
            "sources": {"type": "array", "items": {"type": "string"}, "description": "Ids of the hits used."},
            "evidence": {"type": "array", "items": {"type": "string"},
                "description": "Sentences copied word for word from the cited hits that the answer relies on."}
        },
        "required": ["answer", "language", "confidence", "escalate", "sources", "evidence"],
        "additionalProperties": false
    })
}

/// How the answer's shape is asked for, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnswerFormat {
    /// `response_format: json_schema` with `strict: true`.
    StrictSchema,
    /// `response_format: json_object`, the schema in the instructions.
    JsonObject,
    /// No `response_format`; the schema in the instructions only.
    Instructions,
}

impl AnswerFormat {
    pub const ALL: [AnswerFormat; 3] =
        [AnswerFormat::StrictSchema, AnswerFormat::JsonObject, AnswerFormat::Instructions];

    /// The next step down, if any.
    pub fn weaker(self) -> Option<Self> {
        match self {
            AnswerFormat::StrictSchema => Some(AnswerFormat::JsonObject),
            AnswerFormat::JsonObject => Some(AnswerFormat::Instructions),
            AnswerFormat::Instructions => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AnswerFormat::StrictSchema => "strict JSON schema",
            AnswerFormat::JsonObject => "JSON object",
            AnswerFormat::Instructions => "instructions only",
        }
    }

    pub fn response_format(self) -> ResponseFormat {
        match self {
            AnswerFormat::StrictSchema => ResponseFormat::JsonSchema {
                name: "agent_answer".into(),
                description: Some("The assistant's final answer to the customer".into()),
                schema: schema(),
                strict: true,
            },
            AnswerFormat::JsonObject => ResponseFormat::JsonObject,
            AnswerFormat::Instructions => ResponseFormat::None,
        }
    }

    /// What the instructions must add on this step: the schema itself,
    /// since the server no longer carries it.
    pub fn instructions(self) -> Option<String> {
        (self != AnswerFormat::StrictSchema).then(|| {
            format!(
                "Write your final message as one JSON object and nothing else, with exactly these fields (JSON schema): {}",
                schema()
            )
        })
    }
}

/// Whether a server's refusal is about the answer format (so a weaker
/// [`AnswerFormat`] may work) rather than about the request as a whole.
/// Matched on the words servers use: OpenAI's "'response_format' of type
/// 'json_schema' is not supported with this model", vLLM's and LiteLLM's
/// "response_format" errors, "structured output(s)" in proxies.
pub fn rejects_format(error: &str) -> bool {
    let e = error.to_lowercase();
    ["response_format", "response format", "json_schema", "json_object", "structured output"]
        .iter()
        .any(|w| e.contains(w))
}

/// Parses the final message content: the object alone, in a Markdown code
/// fence, or inside surrounding text (servers without a response format
/// add prose). Anything that is not the object is an error naming what came.
pub fn parse(content: &str) -> Result<ModelAnswer, String> {
    let t = content.trim();
    let t = fenced(t).or_else(|| outermost_object(t)).unwrap_or(t).trim();
    let a: ModelAnswer = serde_json::from_str(t).map_err(|e| {
        format!("not the answer object ({e}); content starts {:?}", t.chars().take(80).collect::<String>())
    })?;
    if !(0.0..=1.0).contains(&a.confidence) {
        return Err(format!("confidence {} is outside 0..1", a.confidence));
    }
    Ok(a)
}

/// The body of the first ```` ``` ```` / ```` ```json ```` fence.
fn fenced(t: &str) -> Option<&str> {
    let start = t.find("```")?;
    let body = &t[start + 3..];
    let body = body.strip_prefix("json").unwrap_or(body);
    let end = body.find("```")?;
    Some(&body[..end])
}

/// From the first `{` to the last `}`: the object inside surrounding prose.
fn outermost_object(t: &str) -> Option<&str> {
    let (start, end) = (t.find('{')?, t.rfind('}')?);
    (start < end).then(|| &t[start..=end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_object_and_rejects_anything_else() {
        let ok = r#"{"answer":"Hi","language":"en","confidence":0.9,"escalate":false,"sources":["faq-1"]}"#;
        assert_eq!(parse(ok).unwrap().sources, vec!["faq-1"]);
        assert_eq!(parse(&format!("```json\n{ok}\n```")).unwrap().confidence, 0.9);
        assert!(parse("Sure! The diamonds arrive in 5 minutes.").is_err());
        assert!(parse(r#"{"answer":"x","language":"en","confidence":1.5,"escalate":false,"sources":[]}"#)
            .unwrap_err()
            .contains("confidence"));
        assert!(parse(r#"{"answer":"x","language":"de","confidence":0.5,"escalate":false,"sources":[]}"#).is_err());
        assert!(parse(r#"{"answer":"x","confidence":0.5,"escalate":false,"sources":[]}"#).is_err());
        // Prose around the object, as servers without a response format write it.
        assert_eq!(parse(&format!("Here is my answer:\n{ok}\nHope this helps.")).unwrap().answer, "Hi");
        assert_eq!(parse(&format!("Sure.\n```json\n{ok}\n```\nDone")).unwrap().answer, "Hi");
        assert!(parse("I think {the diamonds} arrive soon").is_err());
    }

    #[test]
    fn format_refusals_are_told_apart_from_other_errors() {
        assert!(rejects_format(
            "HTTP 400: Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."
        ));
        assert!(rejects_format("HTTP 400: This model does not support Structured Outputs"));
        assert!(!rejects_format("HTTP 500: tools param requires --jinja flag"));
        assert!(!rejects_format("HTTP 404: The model `gpt-5` does not exist"));
        let steps: Vec<AnswerFormat> =
            std::iter::successors(Some(AnswerFormat::StrictSchema), |f| f.weaker()).collect();
        assert_eq!(steps, AnswerFormat::ALL);
        assert!(AnswerFormat::StrictSchema.instructions().is_none());
        assert!(AnswerFormat::Instructions.instructions().unwrap().contains("\"confidence\""));
        assert_eq!(AnswerFormat::Instructions.response_format(), ResponseFormat::None);
    }
}
