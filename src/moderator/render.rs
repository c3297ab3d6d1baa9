//! Renders a case's card from the store: callers store only a typed
//! [`Escalation`] (reason, what it is about, a detail), and the desk turns
//! it into text here when it posts the card ([`View::Card`]) or when a
//! moderator asks for the whole case with `/case` ([`View::Full`]). Facts
//! are read as they are then: the order record, the raw Tribute text, the
//! conversation so far, the case's short id.

use super::cards::{self, outage::outage_card, purchase::purchase_card, question_queue::question_queue_card, View};
use crate::domain::{EscalationReason, LinkStatus};
use crate::runtime::clock::now_ms;
use crate::store::{CardBody, CardSubject, CaseRecord, Escalation, OrderRecord, Store, StoreError, StoreResult};
use crate::tribute::RawNotification;

/// The text of `case`'s card for `escalation`.
pub async fn card(store: &Store, case: &CaseRecord, escalation: &Escalation, view: View) -> StoreResult<String> {
    let (reason, detail) = (escalation.reason, escalation.detail.as_str());
    let id = case.short_id.as_str();
    match &escalation.subject {
        CardSubject::Order(order_id) => order_case(store, case, *order_id, reason, detail, view).await,
        CardSubject::Conversation(conversation_id) => {
            let conv = store.conversation(*conversation_id).await?;
            let open = open_orders(store, conv.id).await?;
            let messages = store.conversation_messages(conv.id).await?;
            Ok(cards::question_card(id, &conv, reason, detail, &open, &messages, view))
        }
        CardSubject::TributeMessage { chat_id, message_id } => {
            let raw = store.raw_notification(*chat_id, *message_id).await?.unwrap_or_else(|| RawNotification {
                text: format!("(message {message_id} of chat {chat_id} is not stored)"),
                entities: vec![],
            });
            Ok(cards::tribute_message_card(id, *message_id, reason, detail, &raw))
        }
        CardSubject::Purchase { purchase_id, order_id } => {
            let purchase = store
                .purchase(purchase_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("case {id}: purchase {purchase_id} is not stored")))?;
            let order = match order_id {
                Some(o) => Some(store.order(*o).await?),
                None => None,
            };
            let text = purchase_card(id, reason, detail, &purchase, order.as_ref());
            match (view, order_id) {
                // The whole case: the purchase and its order with everything the order's case shows.
                (View::Full, Some(o)) => {
                    Ok(format!("{text}\n\n{}", order_case(store, case, *o, reason, "", view).await?))
                }
                _ => Ok(text),
            }
        }
        CardSubject::InboxMessage { chat_id, message_id } => {
            let record = store.inbound(*chat_id, *message_id).await?;
            Ok(cards::unhandled_message_card(id, record.as_ref(), detail))
        }
        CardSubject::WebhookBody(key) => {
            let raw = store.invalid_webhook_body(key).await?.unwrap_or_else(|| format!("(body {key} is not stored)"));
            Ok(cards::webhook_body_card(id, detail, &raw))
        }
        CardSubject::Outage(outage_id) => {
            let outage = store
                .outage(*outage_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("case {id}: outage {outage_id} is not stored")))?;
            let members = store.outage_members(*outage_id).await?;
            Ok(outage_card(id, &outage, &members, now_ms(), view))
        }
        CardSubject::QuestionQueue => {
            let figures = store.queue_figures(case.opened_at).await?;
            Ok(question_queue_card(id, detail, &figures))
        }
    }
}

/// The whole case for `/case`: its card's escalation rendered in full. A
/// card stored as text (before migration 0011) is rebuilt from the case
/// when the case is about an order or a conversation, else shown as stored.
pub async fn case_text(store: &Store, case: &CaseRecord) -> StoreResult<String> {
    let stored = store.card_of_case(case.id).await?.map(|c| c.body);
    let escalation = match stored {
        Some(CardBody::Escalation(e)) => e,
        stored => match (case.order_id, case.conversation_id) {
            (Some(order), _) => Escalation::order(order, case.reason, ""),
            (None, Some(conv)) => Escalation::question(conv, &crate::domain::Verdict::unstated()),
            _ => {
                return Ok(match stored {
                    Some(CardBody::Text(text)) => text,
                    _ => format!("Case {}: {}", case.short_id, case.reason),
                })
            }
        },
    };
    card(store, case, &escalation, View::Full).await
}

/// An order's case: the order, its raw Tribute text and the conversation
/// with its customer (the case's, or the order's once it has one).
async fn order_case(
    store: &Store,
    case: &CaseRecord,
    order_id: i64,
    reason: EscalationReason,
    detail: &str,
    view: View,
) -> StoreResult<String> {
    let order = store.order(order_id).await?;
    let raw = store.raw_text(order.chat_id, order.message_id).await?.unwrap_or_default();
    let conversation = match case.conversation_id {
        Some(c) => Some(c),
        None => store.order_link(order_id).await?.map(|l| l.conversation_id),
    };
    let messages = match conversation {
        Some(c) => store.conversation_messages(c).await?,
        None => vec![],
    };
    Ok(cards::order_card(&case.short_id, &order, reason, detail, &raw, &messages, view))
}

/// The customer's orders still in progress (a question card lists them).
async fn open_orders(store: &Store, conversation_id: i64) -> StoreResult<Vec<OrderRecord>> {
    let mut out = Vec::new();
    for link in store.conversation_orders(conversation_id).await? {
        if !matches!(link.status, LinkStatus::Done | LinkStatus::Closed) {
            out.push(store.order(link.order_id).await?);
        }
    }
    Ok(out)
}
