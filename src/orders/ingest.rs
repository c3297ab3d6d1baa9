//! Classifies a Tribute chat message and stores it with what it leads to.

use crate::domain::{EscalationReason, OrderRef};
use crate::store::{MessageKind, NewOrder, Recorded, Store, StoreResult};
use crate::telegram::Message;
use crate::tribute::{parse_order, AccountExtraction, ParseError, ParserConfig};

/// What ingestion needs to know.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub parser: ParserConfig,
    /// The Tribute bot's user id: only its messages can be orders.
    pub tribute_bot: i64,
}

/// Stores one message of the Tribute chat: an order, a malformed order
/// (with a moderator card, so its raw text reaches a person), a follow-up
/// with buttons, or anything else. Idempotent on (chat, message id).
pub async fn ingest(store: &Store, cfg: &IngestConfig, msg: &Message) -> StoreResult<Recorded> {
    if msg.outgoing || msg.sender_id != Some(cfg.tribute_bot) {
        return store.record_tribute_message(msg, MessageKind::Outgoing, None, None, None).await;
    }
    match parse_order(&msg.text, &msg.entities, &cfg.parser) {
        Ok(order) => {
            let account_candidates = match order.account {
                AccountExtraction::Found(a) => vec![a],
                AccountExtraction::Missing => vec![],
                AccountExtraction::Ambiguous(v) => v,
            };
            let new = NewOrder {
                order_ref: OrderRef::for_message(msg.chat_id, msg.id),
                customer_name: order.customer.name,
                customer_id: order.customer.user_id,
                customer_username: order.customer.username,
                product: order.product,
                price: order.price,
                details: order.details,
                account_candidates,
            };
            store.record_tribute_message(msg, MessageKind::Order, None, Some(&new), None).await
        }
        Err(err @ ParseError::Malformed { .. }) => {
            let error = err.to_string();
            tracing::warn!(message_id = msg.id, %error, "malformed Tribute order; sending it to the moderator");
            let card = Some(EscalationReason::MalformedOrder);
            store.record_tribute_message(msg, MessageKind::Malformed, Some(&error), None, card).await
        }
        // Stored, it makes the order waiting for it due now (migration 0021's trigger).
        Err(ParseError::NotAnOrder(_)) if !msg.buttons.is_empty() => {
            store.record_tribute_message(msg, MessageKind::FollowUp, None, None, None).await
        }
        // The bot answering one of our messages ("already completed", ...).
        Err(ParseError::NotAnOrder(_)) if msg.reply_to.is_some() => {
            store.record_tribute_message(msg, MessageKind::Other, None, None, None).await
        }
        Err(err @ ParseError::NotAnOrder(_)) => {
            // Donations, subscriptions, or a format we do not know yet: a person should see it.
            let why = err.to_string();
            let card = Some(EscalationReason::UnrecognisedMessage);
            store.record_tribute_message(msg, MessageKind::Other, Some(&why), None, card).await
        }
    }
}
