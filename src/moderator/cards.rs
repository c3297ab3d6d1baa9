//! The texts moderators read: case cards (why, the order with the customer's
//! profile link, product, price, raw details, the conversation so far, what
//! they can do) and the `/cases` list.

use crate::domain::{Direction, EscalationReason};
use crate::orders::{order_card, ORDER_ACTIONS};
use crate::store::{CaseRecord, CaseStatus, ConversationMessage, ConversationRecord, OrderRecord, CASE_PLACEHOLDER};

/// How many of the newest conversation messages a card shows.
const CARD_MESSAGES: usize = 12;
/// Longest message text shown on a card (the store keeps all of it).
const CARD_TEXT: usize = 400;

/// An order's case card; `{case}` in it becomes the case's short id when stored.
pub fn order_case_card(
    order: &OrderRecord,
    reason: EscalationReason,
    detail: &str,
    raw: &str,
    messages: &[ConversationMessage],
) -> String {
    let base = order_card(order, reason, detail, raw);
    let head = base.strip_suffix(ORDER_ACTIONS).unwrap_or(&base).trim_end();
    if messages.is_empty() {
        return format!("{head}\n\n{ORDER_ACTIONS}");
    }
    format!("{head}\n\nConversation so far:\n{}\n\n{ORDER_ACTIONS}", excerpt(messages))
}

/// A customer's question that no one automatic answered.
pub fn question_card(
    conv: &ConversationRecord,
    why: &str,
    open_orders: &[OrderRecord],
    messages: &[ConversationMessage],
) -> String {
    let orders = if open_orders.is_empty() {
        "none".to_owned()
    } else {
        open_orders
            .iter()
            .map(|o| format!("\n  • {} — {} {} ({})", o.order_ref, o.product, o.price, o.state))
            .collect::<String>()
    };
    format!(
        "❓ Case {CASE_PLACEHOLDER} · a question from {name} (tg://user?id={id})\n\
         Why: {explain} ({why})\n\
         Language: {lang}\n\
         Open orders: {orders}\n\
         \n\
         Conversation so far:\n{talk}\n\
         \n\
         Reply to this message with:\n\
         • text → sent to the customer as the team's answer\n\
         • /done (answered) · /note <text> (internal)",
        name = conv.customer_name,
        id = conv.customer_id,
        explain = EscalationReason::CustomerQuestion.explain(),
        lang = conv.language,
        talk = excerpt(messages),
    )
}

/// The newest messages, one line each: time, who, text.
pub fn excerpt(messages: &[ConversationMessage]) -> String {
    let skip = messages.len().saturating_sub(CARD_MESSAGES);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("  … {skip} earlier message(s)\n"));
    }
    for m in &messages[skip..] {
        let time = chrono::DateTime::from_timestamp_millis(m.at).unwrap_or_default().format("%m-%d %H:%M");
        let arrow = match m.direction {
            Direction::In => "←",
            Direction::Out => "→",
            Direction::Internal => "✎",
        };
        let text = truncate(&m.text.replace('\n', " "), CARD_TEXT);
        out.push_str(&format!("  {time} {arrow} {}: {text}\n", m.author.as_str()));
    }
    out.trim_end().to_owned()
}

/// One line of `/cases`.
pub fn case_line(case: &CaseRecord, order: Option<&OrderRecord>, customer: Option<&str>) -> String {
    let opened = chrono::DateTime::from_timestamp_millis(case.opened_at).unwrap_or_default().format("%m-%d %H:%M");
    let what = match order {
        Some(o) => format!("order {} · {} · {} {} · {}", o.order_ref, o.customer_name, o.product, o.price, o.state),
        None => format!("question · {}", customer.unwrap_or("unknown customer")),
    };
    let status = match case.status {
        CaseStatus::Open => String::new(),
        CaseStatus::Closed => format!(" · closed: {}", case.outcome.as_deref().unwrap_or("")),
    };
    format!("{} · {} · {what} · opened {opened}{status}", case.short_id, case.reason)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
