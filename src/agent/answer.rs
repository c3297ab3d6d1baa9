//! The model's final output: one JSON object, enforced by a JSON schema in
//! the request and checked again here (endpoints that ignore
//! `response_format` exist; a malformed answer is never sent).

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
            "sources": {"type": "array", "items": {"type": "string"}, "description": "Ids of the hits used."}
        },
        "required": ["answer", "language", "confidence", "escalate", "sources"],
        "additionalProperties": false
    })
}

pub fn response_format() -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "agent_answer".into(),
        description: Some("The assistant's final answer to the customer".into()),
        schema: schema(),
        strict: true,
    }
}

/// Parses the final message content; tolerates a Markdown code fence
/// around the object, nothing else.
pub fn parse(content: &str) -> Result<ModelAnswer, String> {
    let t = content.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|s| s.trim_end().strip_suffix("```"))
        .unwrap_or(t)
        .trim();
    let a: ModelAnswer = serde_json::from_str(t).map_err(|e| {
        format!("not the answer object ({e}); content starts {:?}", t.chars().take(80).collect::<String>())
    })?;
    if !(0.0..=1.0).contains(&a.confidence) {
        return Err(format!("confidence {} is outside 0..1", a.confidence));
    }
    Ok(a)
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
    }
}
