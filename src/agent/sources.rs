//! What the agent reads: the knowledge base and the customer's own orders.
//! Both are traits so the daemon wires the real ones (the knowledge-base
//! module, the store) and tests can use small real implementations.

use async_trait::async_trait;

use super::Lang;
use crate::domain::{OrderRef, OrderState};

/// One knowledge-base hit: the same fields as the knowledge base's
/// `SearchHit`, so wrapping it is a field-by-field copy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    /// Stable id; the model cites it in `sources`.
    pub id: String,
    /// Where it came from (file path, `conversation:<id>`, …).
    pub source: String,
    pub title: String,
    pub text: String,
    /// The curated answer (FAQ entries, approved conversations): what
    /// retrieval-only mode sends as is.
    pub answer: Option<String>,
    /// faq | doc | conversation | …
    pub kind: String,
    pub language: Option<String>,
    /// Higher is better; thresholds in `[agent]` are on this scale.
    pub score: f64,
    /// The embedding model's cosine, when the dense retriever found the hit
    /// (`kb eval` measures where this model's cosines can be trusted).
    #[serde(default)]
    pub similarity: Option<f64>,
    /// What `score` must reach on the corpus it came from, measured there
    /// ([`crate::knowledge::calibration::Calibration::bar`]); `None`: an
    /// uncalibrated score, judged by the fixed bars.
    #[serde(default)]
    pub bar: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
#[error("knowledge base search failed: {0}")]
pub struct RetrieverError(pub String);

/// Searches the knowledge base. Object-safe: the agent holds an
/// `Arc<dyn Retriever>`.
#[async_trait]
pub trait Retriever: Send + Sync {
    /// Best hits first; `language` prefers (not requires) hits in that language.
    async fn search(&self, query: &str, language: Option<Lang>, limit: usize) -> Result<Vec<Hit>, RetrieverError>;
}

/// One of the customer's own orders as the agent may see it: status only —
/// no account ID, no order details, nothing about anyone else.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CustomerOrder {
    pub order_ref: OrderRef,
    pub product: String,
    pub state: OrderState,
    /// Unix ms.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("order status lookup failed: {0}")]
pub struct OrderStatusError(pub String);

/// The orders of one customer. The agent passes the customer id of the
/// conversation, never one the model asked for.
#[async_trait]
pub trait OrderStatusSource: Send + Sync {
    async fn customer_orders(&self, customer_id: i64) -> Result<Vec<CustomerOrder>, OrderStatusError>;
}

/// No orders (the `ask` command without a customer).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOrders;

#[async_trait]
impl OrderStatusSource for NoOrders {
    async fn customer_orders(&self, _customer_id: i64) -> Result<Vec<CustomerOrder>, OrderStatusError> {
        Ok(vec![])
    }
}

#[async_trait]
impl OrderStatusSource for crate::store::Store {
    async fn customer_orders(&self, customer_id: i64) -> Result<Vec<CustomerOrder>, OrderStatusError> {
        let rows = self.recent_customer_orders(customer_id).await.map_err(|e| OrderStatusError(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|o| CustomerOrder {
                order_ref: o.order_ref,
                product: o.product,
                state: o.state,
                created_at: o.created_at,
                updated_at: o.updated_at,
            })
            .collect())
    }
}
