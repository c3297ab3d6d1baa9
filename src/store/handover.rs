//! An order's moves between the workflow, its customer and its case: each
//! a compare-and-set of the order's state together with its link to the
//! customer's dialogue, in one transaction, so the two never disagree.
//! (The dialogue's event for the move is written by the compare-and-set.)

use super::orders::{cas_order_state, OrderChanges};
use super::{Store, StoreError, StoreResult};
use crate::domain::{AccountId, EscalationReason, LinkStatus, OrderState};

impl Store {
    /// Moves an order to `needs_customer` (the contact flow takes it from
    /// there), recording why, only if it is still in `from`.
    pub async fn hand_to_customer(
        &self,
        order_id: i64,
        from: OrderState,
        reason: EscalationReason,
        note: &str,
    ) -> StoreResult<()> {
        let now = crate::runtime::clock::now_ms();
        let changes = OrderChanges { escalation_reason: Some(reason), ..OrderChanges::default() };
        let Some(moved) =
            cas_order_state(&self.pool, order_id, from, OrderState::NeedsCustomer, &changes, note, now).await?
        else {
            return Err(StoreError::StateChanged { order_id, expected: from });
        };
        self.hint_dialogue(moved.for_dialogue);
        Ok(())
    }

    /// An account ID for an order from the customer or a moderator: the
    /// order's account becomes `account` and it goes to
    /// `activation_requested` (the backend call is the validation), and
    /// the order's conversation link (if any) becomes `link`; one
    /// transaction, only if the order is still in `from` and was never
    /// activated (`AlreadyActivated` otherwise: an activated product is not
    /// activated again for another account).
    pub async fn give_account(
        &self,
        order_id: i64,
        from: OrderState,
        account: &AccountId,
        link: Option<LinkStatus>,
        note: &str,
    ) -> StoreResult<()> {
        let now = crate::runtime::clock::now_ms();
        let mut tx = self.pool.begin().await?;
        let candidates = serde_json::to_string(&[account.as_str()]).expect("strings serialise");
        let changes = OrderChanges {
            account_candidates: Some(&candidates),
            reset_activation_failures: true,
            unless_activated: true,
            ..OrderChanges::default()
        };
        if cas_order_state(&mut *tx, order_id, from, OrderState::ActivationRequested, &changes, note, now)
            .await?
            .is_none()
        {
            let activation: Option<Option<String>> =
                sqlx::query_scalar("SELECT activation_id FROM orders WHERE id = ?")
                    .bind(order_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Err(match activation.flatten() {
                Some(activation_id) => StoreError::AlreadyActivated { order_id, activation_id },
                None => StoreError::StateChanged { order_id, expected: from },
            });
        }
        if let Some(link) = link {
            sqlx::query("UPDATE conversation_orders SET status = ?, account = ?, updated_at = ? WHERE order_id = ?")
                .bind(link.as_str())
                .bind(account.as_str())
                .bind(now)
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An order whose account ID (from the customer) the backend refused
    /// goes back to its open case (`needs_customer` → `escalated`) and its
    /// conversation link to `moderator`, counting the refused ID against
    /// the order's three strikes; one transaction, so the count and the
    /// move cannot part, only if the order is still in `needs_customer`.
    pub async fn back_to_case(&self, order_id: i64, note: &str) -> StoreResult<()> {
        let now = crate::runtime::clock::now_ms();
        let mut tx = self.pool.begin().await?;
        let (from, to) = (OrderState::NeedsCustomer, OrderState::Escalated);
        if cas_order_state(&mut *tx, order_id, from, to, &OrderChanges::default(), note, now).await?.is_none() {
            return Err(StoreError::StateChanged { order_id, expected: from });
        }
        sqlx::query(
            "UPDATE conversation_orders SET status = 'moderator', rejections = rejections + 1, updated_at = ?
             WHERE order_id = ?",
        )
        .bind(now)
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
