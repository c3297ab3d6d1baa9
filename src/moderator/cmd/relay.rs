//! Free text in reply to a card: the team's answer, relayed to the
//! customer through the contact side's port.

use crate::contact::{unreachable_reason, Sent};
use crate::moderator::{sizing, ModeratorDesk, Result};
use crate::store::CaseRecord;
use crate::telegram::{Message, UserId};

impl ModeratorDesk {
    /// Free text: the team's answer to the customer.
    pub(in crate::moderator) async fn relay(
        &self,
        m: &Message,
        from: UserId,
        case: &CaseRecord,
        text: &str,
    ) -> Result<()> {
        self.audit(m, from, Some(case), "relay", text, true).await?;
        let Some(conv) = self.conversation(case).await? else {
            self.answer(m, &format!("{} has no customer to write to.", case.short_id)).await?;
            return Ok(());
        };
        let body = self.customers.team_answer(&conv, text);
        let units = sizing::utf16_len(&body);
        if units > sizing::TELEGRAM_LIMIT {
            // Telegram would refuse it; the moderator still has the text to split.
            let over = units - sizing::TELEGRAM_LIMIT;
            let reply = format!(
                "❌ {}: not sent: with the greeting it is {units} characters, {over} more than one Telegram \
                 message holds ({}). Send it in two replies.",
                case.short_id,
                sizing::TELEGRAM_LIMIT
            );
            self.answer(m, &reply).await?;
            return Ok(());
        }
        let order_ids: Vec<i64> = case.order_id.into_iter().collect();
        let reply = match self.customers.relay_from_moderator(&conv, from, &body, &order_ids).await? {
            Sent::Delivered(_) => format!("✉️ {}: sent to {}.", case.short_id, conv.customer_name),
            Sent::Unreachable(e) => format!("❌ {}: not delivered: {}", case.short_id, unreachable_reason(&e)),
            Sent::CapReached => {
                format!("❌ {}: not sent: today's message limit for this customer is reached.", case.short_id)
            }
            Sent::Queued(e) => format!(
                "⏳ {}: Telegram did not take it yet ({e}); it goes out to {} automatically.",
                case.short_id, conv.customer_name
            ),
            Sent::Expired => format!("❌ {}: not delivered in time.", case.short_id),
        };
        self.answer(m, &reply).await?;
        Ok(())
    }
}
