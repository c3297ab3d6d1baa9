//! `/cases`: the open cases, one line each.

use crate::moderator::{cards, ModeratorDesk, Result};
use crate::telegram::{Message, UserId};

impl ModeratorDesk {
    pub(in crate::moderator) async fn list_cases(&self, m: &Message, from: UserId) -> Result<()> {
        self.audit(m, from, None, "cases", "", true).await?;
        let store = &self.store;
        let open = store.open_cases().await?;
        let mut lines = vec![format!("Open cases: {}", open.len())];
        for case in open.iter().take(30) {
            let order = match case.order_id {
                Some(id) => Some(store.order(id).await?),
                None => None,
            };
            let customer = match case.conversation_id {
                Some(c) => Some(store.conversation(c).await?.customer_name),
                None => None,
            };
            lines.push(cards::case_line(case, order.as_ref(), customer.as_deref()));
        }
        if open.len() > 30 {
            lines.push(format!("… and {} more", open.len() - 30));
        }
        self.answer(m, &lines.join("\n")).await?;
        Ok(())
    }
}
