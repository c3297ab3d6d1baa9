//! The tools the model may call — read-only, scoped to this conversation.
//! There is deliberately no tool that activates, credits, refunds or
//! changes an account: a model talked into "credit 1000 diamonds" has
//! nothing to call, and a call to any other name is refused and escalated.

use serde::Deserialize;

use super::llm::ToolDefinition;

pub const SEARCH_KNOWLEDGE: &str = "search_knowledge";
pub const ORDER_STATUS: &str = "order_status";
pub const ESCALATE: &str = "escalate";

/// A tool call after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    /// Another knowledge-base search, with the model's own query.
    SearchKnowledge { query: String },
    /// This customer's orders. Takes no arguments: whatever customer the
    /// model names, it gets the conversation's own customer.
    OrderStatus,
    /// Hand over to a person.
    Escalate { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool {0:?}")]
    Unknown(String),
    #[error("bad arguments for {tool}: {detail}")]
    BadArguments { tool: String, detail: String },
}

impl ToolCall {
    pub fn parse(name: &str, arguments: &str) -> Result<Self, ToolError> {
        #[derive(Deserialize)]
        struct Query {
            query: String,
        }
        #[derive(Deserialize)]
        struct Reason {
            reason: String,
        }
        let bad = |e: serde_json::Error| ToolError::BadArguments { tool: name.to_owned(), detail: e.to_string() };
        let args = if arguments.trim().is_empty() { "{}" } else { arguments };
        match name {
            SEARCH_KNOWLEDGE => {
                let q: Query = serde_json::from_str(args).map_err(bad)?;
                if q.query.trim().is_empty() {
                    return Err(ToolError::BadArguments { tool: name.to_owned(), detail: "empty query".into() });
                }
                Ok(ToolCall::SearchKnowledge { query: q.query.chars().take(500).collect() })
            }
            ORDER_STATUS => Ok(ToolCall::OrderStatus),
            ESCALATE => {
                let r: Reason = serde_json::from_str(args).map_err(bad)?;
                Ok(ToolCall::Escalate { reason: r.reason.chars().take(500).collect() })
            }
            other => Err(ToolError::Unknown(other.chars().take(64).collect())),
        }
    }
}

fn tool(name: &str, description: &str, parameters: serde_json::Value) -> ToolDefinition {
    ToolDefinition { name: name.into(), description: description.into(), parameters, strict: true }
}

/// The three tool definitions sent with every request.
pub fn definitions() -> Vec<ToolDefinition> {
    vec![
        tool(
            SEARCH_KNOWLEDGE,
            "Search the knowledge base (FAQ, product docs, approved answers). Returns hits with ids to cite.",
            serde_json::json!({
                "type": "object",
                "properties": {"query": {"type": "string", "description": "What to look for."}},
                "required": ["query"],
                "additionalProperties": false
            }),
        ),
        tool(
            ORDER_STATUS,
            "The status of this customer's own recent orders (reference, product, state). No arguments.",
            serde_json::json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false}),
        ),
        tool(
            ESCALATE,
            "Hand the conversation to a human moderator. Use when unsure or for refunds, disputes, chargebacks, \
             wrong accounts, requests for a person, threats.",
            serde_json::json!({
                "type": "object",
                "properties": {"reason": {"type": "string"}},
                "required": ["reason"],
                "additionalProperties": false
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_tools_exist_and_order_status_ignores_arguments() {
        assert_eq!(
            ToolCall::parse(SEARCH_KNOWLEDGE, r#"{"query":"оплата из Казахстана"}"#).unwrap(),
            ToolCall::SearchKnowledge { query: "оплата из Казахстана".into() }
        );
        assert_eq!(ToolCall::parse(ORDER_STATUS, r#"{"customer_id": 777}"#).unwrap(), ToolCall::OrderStatus);
        assert_eq!(ToolCall::parse(ORDER_STATUS, "").unwrap(), ToolCall::OrderStatus);
        assert!(matches!(ToolCall::parse("activate_order", "{}"), Err(ToolError::Unknown(n)) if n == "activate_order"));
        assert!(matches!(ToolCall::parse(SEARCH_KNOWLEDGE, "{}"), Err(ToolError::BadArguments { .. })));
        assert_eq!(definitions().len(), 3);
    }
}
