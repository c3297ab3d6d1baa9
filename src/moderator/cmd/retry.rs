//! `/retry` on a card: the backend is asked again with the order's account
//! ID, or an order activated already goes back to the Tribute side.

use crate::domain::OrderState;
use crate::moderator::{ModeratorDesk, Result};
use crate::store::{AccountStatus, CaseRecord, StoreError};
use crate::telegram::{Message, UserId};

impl ModeratorDesk {
    pub(in crate::moderator) async fn retry(&self, m: &Message, from: UserId, case: &CaseRecord) -> Result<()> {
        let store = &self.store;
        self.audit(m, from, Some(case), "retry", "", true).await?;
        let Some(order_id) = case.order_id else {
            self.answer(m, &format!("{} is not about an order.", case.short_id)).await?;
            return Ok(());
        };
        let order = store.order(order_id).await?;
        if order.state == OrderState::Escalated && order.activation_id.is_some() {
            return self.resume_activated(m, from, case, order_id).await;
        }
        let account = match (&order.account, order.state) {
            (AccountStatus::Found(a), OrderState::Escalated | OrderState::Failed) => a.clone(),
            (_, OrderState::Escalated | OrderState::Failed) => {
                self.answer(m, &format!("{}: the order has no single account ID; reply with one.", case.short_id))
                    .await?;
                return Ok(());
            }
            (_, state) => {
                self.answer(m, &format!("{}: the order is {state}; nothing to retry.", case.short_id)).await?;
                return Ok(());
            }
        };
        let note = format!("moderator {from} asked to activate again with {account}");
        store.give_account(order_id, order.state, &account, None, &note).await?;
        store.set_case_pending_account(case.id, Some(account.as_str())).await?;
        self.wake_orders();
        self.answer(m, &format!("🔁 {}: activating {account} again…", case.short_id)).await?;
        Ok(())
    }

    /// An escalated order whose product is already activated: back to the
    /// Tribute reply or the Send press, with the activated account.
    pub(in crate::moderator) async fn resume_activated(
        &self,
        m: &Message,
        from: UserId,
        case: &CaseRecord,
        order_id: i64,
    ) -> Result<()> {
        let note = format!("moderator {from} resumed the order at the Tribute side");
        let to = match self.store.resume_activated(order_id, &note).await {
            Ok(to) => to,
            Err(StoreError::StateChanged { .. }) => {
                self.answer(m, &format!("{}: the order changed meanwhile; look again with /case.", case.short_id))
                    .await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        self.wake_orders();
        let step = if to == OrderState::Replied { "pressing Send" } else { "replying to Tribute" };
        self.answer(m, &format!("🔁 {}: already activated; {step} again…", case.short_id)).await?;
        Ok(())
    }
}
