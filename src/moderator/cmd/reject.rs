//! `/reject <reason>` on a card: the order is given up (it fails), the case
//! closes with the reason.

use crate::domain::{LinkStatus, OrderState};
use crate::moderator::{ModeratorDesk, Result};
use crate::runtime::clock::now_ms;
use crate::store::{CaseRecord, CaseStatus, StoreError, Transition};
use crate::telegram::{Message, UserId};

impl ModeratorDesk {
    pub(in crate::moderator) async fn reject(
        &self,
        m: &Message,
        from: UserId,
        case: &CaseRecord,
        reason: &str,
    ) -> Result<()> {
        let store = &self.store;
        if reason.is_empty() {
            self.answer(m, "Say why: /reject <reason>").await?;
            return Ok(());
        }
        self.audit(m, from, Some(case), "reject", reason, true).await?;
        if case.status == CaseStatus::Closed {
            // Its order moved on meanwhile (completed, or a newer case has it).
            let outcome = case.outcome.as_deref().unwrap_or("closed");
            self.answer(m, &format!("{} was already closed ({outcome}); nothing rejected.", case.short_id)).await?;
            return Ok(());
        }
        if let Some(order_id) = case.order_id {
            let order = store.order(order_id).await?;
            if matches!(order.state, OrderState::Escalated | OrderState::NeedsCustomer) {
                let note = format!("rejected by moderator {from}: {reason}");
                match store.transition(order_id, order.state, Transition::to(OrderState::Failed, note)).await {
                    Ok(()) | Err(StoreError::StateChanged { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if store.order_link(order_id).await?.is_some() {
                store.set_link_status(order_id, LinkStatus::Closed, false, now_ms()).await?;
            }
        }
        let text = format!("⛔ {}: rejected by the moderator: {reason}", case.short_id);
        if !store.close_case(case.id, &format!("rejected: {reason}"), &text).await? {
            self.answer(m, &format!("{} was already closed.", case.short_id)).await?;
        }
        self.flush_cards();
        Ok(())
    }
}
