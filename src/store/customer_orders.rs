//! One customer's orders, status only, for the agent's `order_status()`.

use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::domain::{OrderRef, OrderState};
use crate::runtime::clock::now_ms;

/// How long a finished (confirmed or failed) order still counts as the
/// customer's current business: "did my diamonds arrive?" comes after.
pub const RECENT_FINISHED_MS: i64 = 14 * 24 * 3600 * 1000;
/// At most this many orders are shown to the agent.
pub const MAX_CUSTOMER_ORDERS: i64 = 10;

/// The status of one order, without account IDs or details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerOrderStatus {
    pub order_ref: OrderRef,
    pub product: String,
    pub state: OrderState,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// The customer's open orders plus the ones finished in the last two
    /// weeks, newest first. Filtered by `customer_id` in SQL: no other
    /// customer's row ever leaves the database here.
    pub async fn recent_customer_orders(&self, customer_id: i64) -> StoreResult<Vec<CustomerOrderStatus>> {
        let rows = sqlx::query(
            "SELECT order_ref, product, state, created_at, updated_at FROM orders
             WHERE customer_id = ?1 AND (state NOT IN ('confirmed', 'failed') OR updated_at >= ?2)
             ORDER BY id DESC LIMIT ?3",
        )
        .bind(customer_id)
        .bind(now_ms() - RECENT_FINISHED_MS)
        .bind(MAX_CUSTOMER_ORDERS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let order_ref: String = row.get("order_ref");
                Ok(CustomerOrderStatus {
                    order_ref: order_ref
                        .clone()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt(format!("order {order_ref}: order_ref")))?,
                    product: row.get("product"),
                    state: OrderState::parse(row.get("state"))
                        .ok_or_else(|| StoreError::Corrupt(format!("order {order_ref}: state")))?,
                    created_at: row.get("created_at"),
                    updated_at: row.get("updated_at"),
                })
            })
            .collect()
    }
}
