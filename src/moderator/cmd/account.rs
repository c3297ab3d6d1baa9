//! An account ID in reply to a card: the same activation call as a
//! customer's (the backend is the validation); the case closes when the
//! order completes.

use tracing::info;

use crate::domain::{LinkStatus, OrderState};
use crate::moderator::{ModeratorDesk, Result};
use crate::store::{CaseRecord, CaseStatus, StoreError};
use crate::telegram::{Message, UserId};

impl ModeratorDesk {
    /// An account ID from the moderator: the same activation call (the
    /// backend is the validation); the workflow finishes the order and the
    /// case closes when it completes.
    pub(in crate::moderator) async fn account(
        &self,
        m: &Message,
        from: UserId,
        case: &CaseRecord,
        id: crate::domain::AccountId,
    ) -> Result<()> {
        let store = &self.store;
        self.audit(m, from, Some(case), "account", id.as_str(), true).await?;
        let Some(order_id) = case.order_id else {
            return self.relay(m, from, case, &m.text).await;
        };
        let order = store.order(order_id).await?;
        if let Some(activation) = &order.activation_id {
            let activated_for = order.account_candidates().first().map(|a| a.to_string()).unwrap_or_default();
            if activated_for == id.as_str() && order.state == OrderState::Escalated {
                return self.resume_activated(m, from, case, order_id).await;
            }
            let text = format!(
                "{}: the product is already activated for account {activated_for} (activation {activation}); \
                 the account cannot change. /retry finishes the Tribute side, /done if it was handled by hand.",
                case.short_id
            );
            self.answer(m, &text).await?;
            return Ok(());
        }
        if !matches!(order.state, OrderState::Escalated | OrderState::NeedsCustomer) || case.status != CaseStatus::Open
        {
            self.answer(
                m,
                &format!("{}: the order is {}; an account ID cannot be applied now.", case.short_id, order.state),
            )
            .await?;
            return Ok(());
        }
        let link = store.order_link(order_id).await?.map(|_| LinkStatus::Moderator);
        let note = format!("moderator {from} gave account ID {id}; asking the backend");
        match store.give_account(order_id, order.state, &id, link, &note).await {
            Ok(()) => {}
            Err(StoreError::StateChanged { .. }) => {
                self.answer(
                    m,
                    &format!(
                        "{}: the order changed meanwhile; look again with /case {}.",
                        case.short_id, case.short_id
                    ),
                )
                .await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        store.set_case_pending_account(case.id, Some(id.as_str())).await?;
        self.wake_orders();
        info!(case = %case.short_id, account = %id, "moderator gave an account ID");
        self.answer(m, &format!("⏳ {}: activating {} for account {id}…", case.short_id, order.product)).await?;
        Ok(())
    }
}
