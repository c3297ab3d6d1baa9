//! Texts of the case messages a moderator reads. Plain text, one fact per
//! line, the raw Tribute message last so nothing the customer wrote is lost.

use crate::domain::EscalationReason;
use crate::store::{AccountStatus, OrderRecord};
use crate::tribute::RawNotification;

/// What a moderator can do with an order's case, the last lines of its card.
pub const ORDER_ACTIONS: &str = "Reply to this message with:\n\
     • the account ID → we activate it and finish the order\n\
     • any other text → sent to the customer as the team's answer\n\
     • /retry (activate again) · /done (handled by hand) · /reject <reason> · /note <text> (internal)";

pub fn order_card(order: &OrderRecord, reason: EscalationReason, detail: &str, raw: &str) -> String {
    let customer = match (order.customer_id, &order.customer_username) {
        (Some(id), _) => format!("{} (tg://user?id={id})", order.customer_name),
        (None, Some(u)) => format!("{} (https://t.me/{u})", order.customer_name),
        (None, None) => order.customer_name.clone(),
    };
    let account = match &order.account {
        AccountStatus::Found(a) => a.to_string(),
        AccountStatus::Missing => "— none found".to_owned(),
        AccountStatus::Ambiguous(v) => {
            format!("— several: {}", v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "))
        }
    };
    let detail = if detail.is_empty() { String::new() } else { format!(" ({detail})") };
    format!(
        "🚨 Case {case} · order {order_ref} needs a person\n\
         Why: {why}{detail}\n\
         Customer: {customer}\n\
         Product: {product}\n\
         Price: {price}\n\
         Account ID: {account}\n\
         State: {state}\n\
         \n\
         Raw order:\n{raw}\n\
         \n\
         {actions}",
        case = crate::store::CASE_PLACEHOLDER,
        actions = ORDER_ACTIONS,
        order_ref = order.order_ref,
        why = reason.explain(),
        product = order.product,
        price = order.price,
        state = order.state,
    )
}

pub fn malformed_card(message_id: i32, error: &str, raw: &str) -> String {
    format!(
        "🚨 Case {case} · Tribute message {message_id} needs a person\n\
         Why: {error}\n\
         Nothing was activated. Check the order in Tribute and finish it by hand.\n\
         \n\
         Raw message:\n{raw}\n\
         \n\
         Reply /done to this message once it is handled.",
        case = crate::store::CASE_PLACEHOLDER,
    )
}

/// A bot message we do not understand: shown with its raw JSON so the
/// operator can replay it through `tribute-assistant order parse`.
pub fn unrecognised_card(message_id: i32, raw: &RawNotification) -> String {
    let json = serde_json::to_string(raw).expect("raw message serialises");
    format!(
        "📨 Case {case} · Tribute message {message_id} was not recognised\n\
         Why: {why}\n\
         Nothing was done with it. If it is an order in a new format, add its words to [parser] \
         and check them with `tribute-assistant order parse` on the JSON below.\n\
         \n\
         {text}\n\
         \n\
         Raw JSON:\n{json}",
        case = crate::store::CASE_PLACEHOLDER,
        why = EscalationReason::UnrecognisedMessage.explain(),
        text = raw.text,
    )
}
