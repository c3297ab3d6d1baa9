//! The live intake: what an arriving message becomes in the store. A
//! Tribute chat message is stored with its parsed order; a message in the
//! moderator chat or a customer's private chat goes to the inbox; the rest
//! is nobody's. The re-read ([`super::reread`]) hands what it finds in the
//! history to the same three steps, so a message is stored the same way
//! whichever way it came.

use anyhow::Context;
use tracing::debug;

use super::reread::Resync;
use crate::orders::ingest;
use crate::store::{InboxKind, Recorded};
use crate::telegram::Message;

/// Telegram's own account (login codes, security notices).
pub const TELEGRAM_SERVICE_USER: i64 = 777000;

impl Resync {
    pub(super) async fn ingest_one(&self, m: &Message) -> anyhow::Result<()> {
        match ingest(&self.store, &self.ingest, m).await.context("Failed to store a Tribute message")? {
            // A new order, or a follow-up that made its order due.
            Recorded::NewOrder(_) | Recorded::Stored => {
                self.orders_wake.wake();
                // A malformed order's card.
                if self.store.take_card_hint() {
                    self.cards_wake.wake();
                }
            }
            Recorded::Duplicate => {}
        }
        Ok(())
    }

    /// Who handles a message outside the Tribute chat: the moderator desk,
    /// customer contact, or nobody (Telegram's service account, groups and
    /// channels we do not serve, our own messages).
    pub(super) fn route(&self, m: &Message) -> Option<InboxKind> {
        if !self.contact || m.outgoing {
            return None;
        }
        if m.sender_id == Some(TELEGRAM_SERVICE_USER) || m.chat_id == TELEGRAM_SERVICE_USER {
            // Login codes and security notices: never a customer, never stored or answered.
            debug!(chat = m.chat_id, "ignored a message from Telegram's service account");
            return None;
        }
        if Some(m.chat_id) == self.workflow.moderator_chat {
            return Some(InboxKind::Moderator);
        }
        if m.chat_id > 0 && m.sender_id == Some(m.chat_id) && !m.sender_is_bot {
            return Some(InboxKind::Customer);
        }
        debug!(chat = m.chat_id, "ignored a message outside the Tribute, moderator and customer chats");
        None
    }

    pub(super) async fn enqueue(&self, kind: InboxKind, m: &Message, handled: bool) -> anyhow::Result<()> {
        if self.store.enqueue_inbound(kind, m, handled).await.context("Failed to store an incoming message")?
            && !handled
        {
            self.inbox_wake.wake();
        }
        Ok(())
    }
}
