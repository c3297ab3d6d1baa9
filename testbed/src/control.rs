//! The testbed's control API (JSON on loopback): what a test, a script or
//! a publisher with curl does to the simulated world — the Tribute bot
//! posts an order, a customer or a moderator writes, the reference backend
//! gets a pending order — and what they read back: per order, how many
//! Tribute replies, Send presses and backend activations it got, and any
//! chat's messages. Documented in docs/staging.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::backend::ReferenceBackend;
use super::sim::{SimOrder, SimWorld};
use tribute_assistant::domain::OrderRef;
use tribute_assistant::telegram::{ChatId, MessageId, UserId};

/// What the control API acts on.
pub struct ControlState {
    pub world: SimWorld,
    /// `None` when the testbed plays only Telegram for the publisher's backend.
    pub backend: Option<ReferenceBackend>,
    pub moderator_chat: ChatId,
    /// Orders posted through the API, oldest first.
    orders: Mutex<Vec<PostedOrder>>,
}

#[derive(Debug, Clone, Copy)]
struct PostedOrder {
    message_id: MessageId,
    customer_id: UserId,
}

impl ControlState {
    pub fn new(world: SimWorld, backend: Option<ReferenceBackend>, moderator_chat: ChatId) -> Self {
        Self { world, backend, moderator_chat, orders: Mutex::new(Vec::new()) }
    }

    /// The Tribute bot posts `order`; its figures are tracked from now on.
    pub fn post_order(&self, order: &SimOrder) -> MessageId {
        let message_id = self.world.post_order(order);
        let posted = PostedOrder { message_id, customer_id: order.customer_id };
        self.orders.lock().unwrap_or_else(|e| e.into_inner()).push(posted);
        message_id
    }

    fn posted(&self) -> Vec<PostedOrder> {
        self.orders.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every order's figures, with the Tribute chat read once.
    pub fn stats(&self) -> Stats {
        let tribute = self.world.tribute_chat();
        let mut replies: HashMap<MessageId, u32> = HashMap::new();
        for m in self.world.messages(tribute) {
            if let (true, Some(to)) = (m.outgoing, m.reply_to) {
                *replies.entry(to).or_default() += 1;
            }
        }
        let orders: Vec<OrderEntry> =
            self.posted().iter().map(|o| self.entry(o, replies.get(&o.message_id).copied().unwrap_or(0))).collect();
        let mut totals = Totals { orders: orders.len() as u64, ..Totals::default() };
        for o in &orders {
            totals.tribute_replies += u64::from(o.tribute_replies);
            totals.send_presses += u64::from(o.send_presses);
            totals.duplicate_tribute_replies += u64::from(o.tribute_replies.saturating_sub(1));
            totals.duplicate_send_presses += u64::from(o.send_presses.saturating_sub(1));
            if let Some(a) = o.activations {
                *totals.activations.get_or_insert(0) += u64::from(a);
                *totals.double_activations.get_or_insert(0) += u64::from(a.saturating_sub(1));
            }
            totals.delivered += u64::from(o.send_presses > 0);
            totals.with_card += u64::from(o.case_card);
        }
        totals.moderator_messages = self.world.messages(self.moderator_chat).len() as u64;
        Stats { orders, totals }
    }

    fn entry(&self, o: &PostedOrder, tribute_replies: u32) -> OrderEntry {
        let order_ref = OrderRef::for_message(self.world.tribute_chat(), o.message_id);
        let case_card =
            self.world.messages(self.moderator_chat).iter().any(|m| m.outgoing && names(&m.text, order_ref.as_str()));
        OrderEntry {
            message_id: o.message_id,
            order_ref: order_ref.to_string(),
            customer_id: o.customer_id,
            tribute_replies,
            send_presses: self.world.send_presses(o.message_id),
            activations: self.backend.as_ref().map(|b| b.activations_for(order_ref.as_str())),
            case_card,
        }
    }
}

/// Whether `text` names `order_ref` itself, not a longer reference that
/// starts with it (`TA-1-1` is not named by a card about `TA-1-10`).
fn names(text: &str, order_ref: &str) -> bool {
    let part_of_a_ref = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(order_ref).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + order_ref.len()..].chars().next();
        !before.is_some_and(part_of_a_ref) && !after.is_some_and(part_of_a_ref)
    })
}

/// One order as the world saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderEntry {
    pub message_id: MessageId,
    /// The payment number the daemon uses (`TA-<chat>-<message>`).
    pub order_ref: String,
    pub customer_id: UserId,
    /// Our replies to the order in the Tribute chat.
    pub tribute_replies: u32,
    /// Send presses the Tribute bot accepted (1: the product was delivered).
    pub send_presses: u32,
    /// Activations the reference backend made (`null` with another backend).
    pub activations: Option<u32>,
    /// A moderator card names this order.
    pub case_card: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Totals {
    pub orders: u64,
    pub tribute_replies: u64,
    pub send_presses: u64,
    pub delivered: u64,
    pub with_card: u64,
    pub activations: Option<u64>,
    pub double_activations: Option<u64>,
    pub duplicate_tribute_replies: u64,
    pub duplicate_send_presses: u64,
    pub moderator_messages: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub orders: Vec<OrderEntry>,
    pub totals: Totals,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    customer_id: UserId,
    customer_name: String,
    product: String,
    /// As Tribute shows it, e.g. "€5.00".
    price: String,
    #[serde(default)]
    details: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerMessage {
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeratorMessage {
    from: UserId,
    text: String,
    #[serde(default)]
    reply_to: Option<MessageId>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    account_id: String,
    product: String,
}

#[derive(Debug, Serialize)]
struct ChatMessage {
    id: MessageId,
    from: Option<UserId>,
    outgoing: bool,
    text: String,
    reply_to: Option<MessageId>,
}

/// A refused request: its status and a message naming what was wrong.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

type Shared = Arc<ControlState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/orders", post(post_order))
        .route("/orders/{message_id}", get(get_order))
        .route("/stats", get(get_stats))
        .route("/customers/{id}/messages", post(customer_writes))
        .route("/moderator/messages", post(moderator_writes))
        .route("/backend/pending", post(add_pending))
        .route("/chats/{id}/messages", get(chat_messages))
        .with_state(state)
}

async fn post_order(State(s): State<Shared>, Json(o): Json<NewOrder>) -> Result<Json<serde_json::Value>, Refused> {
    if o.customer_id <= 0 || o.customer_name.trim().is_empty() || o.product.trim().is_empty() {
        return Err(Refused(StatusCode::BAD_REQUEST, "customer_id, customer_name and product are required".into()));
    }
    let order = SimOrder {
        customer_id: o.customer_id,
        customer_name: o.customer_name,
        product: o.product,
        price: o.price,
        details: o.details,
    };
    let message_id = s.post_order(&order);
    let order_ref = OrderRef::for_message(s.world.tribute_chat(), message_id);
    Ok(Json(serde_json::json!({ "message_id": message_id, "order_ref": order_ref.as_str() })))
}

async fn get_order(State(s): State<Shared>, Path(message_id): Path<MessageId>) -> Result<Json<OrderEntry>, Refused> {
    let o = s.posted().into_iter().find(|o| o.message_id == message_id).ok_or_else(|| {
        Refused(StatusCode::NOT_FOUND, format!("no order was posted as Tribute message {message_id}"))
    })?;
    let replies = s
        .world
        .messages(s.world.tribute_chat())
        .iter()
        .filter(|m| m.outgoing && m.reply_to == Some(message_id))
        .count() as u32;
    Ok(Json(s.entry(&o, replies)))
}

async fn get_stats(State(s): State<Shared>) -> Json<Stats> {
    Json(s.stats())
}

async fn customer_writes(
    State(s): State<Shared>,
    Path(id): Path<UserId>,
    Json(m): Json<CustomerMessage>,
) -> Result<Json<serde_json::Value>, Refused> {
    if id <= 0 {
        return Err(Refused(StatusCode::BAD_REQUEST, format!("{id} is not a user id")));
    }
    if s.world.user_info(id).is_none() {
        s.world.add_user(id, &format!("Customer {id}"), None);
    }
    let message_id = s.world.post_as_user(id, id, &m.text, None);
    Ok(Json(serde_json::json!({ "message_id": message_id })))
}

async fn moderator_writes(
    State(s): State<Shared>,
    Json(m): Json<ModeratorMessage>,
) -> Result<Json<serde_json::Value>, Refused> {
    if s.world.user_info(m.from).is_none() {
        s.world.add_user(m.from, &format!("Moderator {}", m.from), None);
    }
    let message_id = s.world.post_as_user(s.moderator_chat, m.from, &m.text, m.reply_to);
    Ok(Json(serde_json::json!({ "message_id": message_id })))
}

async fn add_pending(State(s): State<Shared>, Json(p): Json<Pending>) -> Result<StatusCode, Refused> {
    let backend = s.backend.as_ref().ok_or_else(|| {
        Refused(StatusCode::CONFLICT, "the testbed plays only Telegram here: add the order to your own backend".into())
    })?;
    backend.add_pending(&p.account_id, &p.product);
    Ok(StatusCode::NO_CONTENT)
}

async fn chat_messages(State(s): State<Shared>, Path(id): Path<ChatId>) -> Json<Vec<ChatMessage>> {
    Json(
        s.world
            .messages(id)
            .into_iter()
            .map(|m| ChatMessage {
                id: m.id,
                from: m.sender_id,
                outgoing: m.outgoing,
                text: m.text,
                reply_to: m.reply_to,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn an_order_ref_is_named_only_as_a_whole() {
        assert!(names("🚨 Case C1 · order TA-9-1 needs a person", "TA-9-1"));
        assert!(names("• TA-9-1 — 100 Diamonds\n", "TA-9-1"));
        assert!(names("order TA-9-1.", "TA-9-1"));
        assert!(names("TA-9-10 and TA-9-1", "TA-9-1"), "a later whole occurrence counts");
        assert!(!names("🚨 Case C1 · order TA-9-10 needs a person", "TA-9-1"));
        assert!(!names("XTA-9-1", "TA-9-1"));
        assert!(!names("TA-9-1-2", "TA-9-1"));
    }
}
