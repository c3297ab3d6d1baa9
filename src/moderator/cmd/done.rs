//! `/done` on a card: the case was handled by hand and closes; its order's
//! customer link closes with it.

use tracing::info;

use crate::domain::LinkStatus;
use crate::moderator::{ModeratorDesk, Result};
use crate::runtime::clock::now_ms;
use crate::store::CaseRecord;
use crate::telegram::{Message, UserId};

impl ModeratorDesk {
    pub(in crate::moderator) async fn done(&self, m: &Message, from: UserId, case: &CaseRecord) -> Result<()> {
        let store = &self.store;
        self.audit(m, from, Some(case), "done", "handled by hand", true).await?;
        let outcome = format!("handled by hand by moderator {from}");
        let closed =
            store.close_case(case.id, &outcome, &format!("☑️ {}: closed, handled by hand.", case.short_id)).await?;
        if let Some(order_id) = case.order_id {
            if store.order_link(order_id).await?.is_some() {
                store.set_link_status(order_id, LinkStatus::Closed, false, now_ms()).await?;
            }
        }
        if !closed {
            self.answer(m, &format!("{} was already closed.", case.short_id)).await?;
        }
        self.flush_cards();
        info!(case = %case.short_id, "closed by hand");
        Ok(())
    }
}
