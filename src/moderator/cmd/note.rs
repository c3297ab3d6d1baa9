//! `/note <text>` on a card: an internal note in the case's conversation,
//! never sent to the customer.

use crate::domain::{Author, Direction};
use crate::moderator::{ModeratorDesk, Result};
use crate::runtime::clock::now_ms;
use crate::store::{CaseRecord, NewConversationMessage};
use crate::telegram::{Message, UserId};

impl ModeratorDesk {
    pub(in crate::moderator) async fn note(
        &self,
        m: &Message,
        from: UserId,
        case: &CaseRecord,
        text: &str,
    ) -> Result<()> {
        self.audit(m, from, Some(case), "note", text, true).await?;
        if let Some(conv) = self.conversation(case).await? {
            self.store
                .record_conversation_message(&NewConversationMessage {
                    conversation_id: conv.id,
                    at: now_ms(),
                    direction: Direction::Internal,
                    author: Author::Moderator,
                    author_id: Some(from),
                    text: text.to_owned(),
                    template: None,
                    telegram: Some((m.chat_id, m.id)),
                    order_ids: case.order_id.into_iter().collect(),
                })
                .await?;
        }
        self.answer(m, &format!("📝 {}: noted.", case.short_id)).await?;
        Ok(())
    }
}
