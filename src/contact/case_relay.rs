//! A customer's messages to their open case reach the moderator chat
//! coalesced, at a bounded rate: one customer writing thirty messages must
//! not become thirty posts (the moderators stop reading the chat).
//!
//! The first message after a quiet spell is posted at once; what the
//! customer writes after it waits and goes out as one post, no sooner than
//! [`CASE_RELAY_EVERY`] after the previous one. Every message is stored in
//! the conversation as it arrives, so `/case` shows all of them whatever
//! the chat shows.

use std::time::Duration;

use super::{Contact, ContactError};
use crate::store::{CaseRecord, CoalescedUpdate, ConversationRecord};

/// At most one post of a customer's messages per case this often.
pub const CASE_RELAY_EVERY: Duration = Duration::from_secs(30);

impl Contact {
    /// Relays what the customer wrote to their open case, with `note` (ours)
    /// under it if given.
    pub(super) async fn relay_to_case(
        &self,
        conv: &ConversationRecord,
        case: &CaseRecord,
        text: &str,
        note: Option<&str>,
    ) -> Result<(), ContactError> {
        let more = match note {
            Some(note) => format!("{text}\n({note})"),
            None => text.to_owned(),
        };
        let start = format!("💬 {} · {} wrote:\n{more}", case.short_id, conv.customer_name);
        let update = CoalescedUpdate::Append { start: &start, more: &more };
        self.store.coalesced_case_update(case.id, update, CASE_RELAY_EVERY.as_millis() as i64, 0).await?;
        self.flush_cards();
        Ok(())
    }
}
