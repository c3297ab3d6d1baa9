//! The texts moderators read: case cards (why, the order with the customer's
//! profile link, product, price, raw details, the conversation so far, what
//! they can do), the whole case for `/case` and the `/cases` list.
//!
//! A card must fit one Telegram message (see `sizing`), so it shows the
//! newest part of the conversation within a budget and says what it left
//! out; `/case` shows everything, in pages.

use super::sizing;
use crate::domain::{Direction, EscalationReason};
use crate::orders::{order_card, ORDER_ACTIONS};
use crate::store::{CaseRecord, CaseStatus, ConversationMessage, ConversationRecord, OrderRecord, CASE_PLACEHOLDER};

/// How many of the newest conversation messages a card shows.
const CARD_MESSAGES: usize = 12;
/// Longest message text shown on a card (the store keeps all of it).
const CARD_TEXT: usize = 400;
/// UTF-16 units the conversation may take on a card, so the card (with a
/// raw order text next to it) still fits one Telegram message.
const CARD_TALK_UNITS: usize = 1800;

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
    question_text(conv, why, open_orders, &excerpt(messages))
}

/// A question case with the whole conversation (for `/case`).
pub fn question_case_full(
    conv: &ConversationRecord,
    open_orders: &[OrderRecord],
    messages: &[ConversationMessage],
) -> String {
    question_text(conv, "", open_orders, &conversation_full(messages))
}

fn question_text(conv: &ConversationRecord, why: &str, open_orders: &[OrderRecord], talk: &str) -> String {
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
    )
}

/// The newest messages, one line each: time, who, text; at most
/// [`CARD_MESSAGES`] of them within [`CARD_TALK_UNITS`], each cut at
/// [`CARD_TEXT`] characters, and a line saying how many earlier ones
/// `/case` shows.
pub fn excerpt(messages: &[ConversationMessage]) -> String {
    let mut lines = Vec::new();
    let mut units = 0;
    for m in messages.iter().rev().take(CARD_MESSAGES) {
        let text = truncate(&m.text.replace('\n', " "), CARD_TEXT);
        let line = format!("  {} {} {}: {text}", time(m.at), arrow(m.direction), m.author.as_str());
        let len = sizing::utf16_len(&line) + 1;
        if units + len > CARD_TALK_UNITS && !lines.is_empty() {
            break;
        }
        units += len;
        lines.push(line);
    }
    let skip = messages.len() - lines.len();
    if skip > 0 {
        lines.push(format!("  … {skip} earlier message(s) — /case {CASE_PLACEHOLDER} shows all"));
    }
    lines.reverse();
    lines.join("\n")
}

/// Every message of a conversation with its whole text (for `/case`).
pub fn conversation_full(messages: &[ConversationMessage]) -> String {
    let mut out = String::new();
    for m in messages {
        let text = m.text.replace('\n', "\n      ");
        out.push_str(&format!("  {} {} {}: {text}\n", time(m.at), arrow(m.direction), m.author.as_str()));
    }
    out.trim_end().to_owned()
}

/// An order's case with all of it: the raw text and the whole conversation.
pub fn order_case_full(
    order: &OrderRecord,
    reason: EscalationReason,
    raw: &str,
    messages: &[ConversationMessage],
) -> String {
    let base = order_card(order, reason, "", raw);
    let head = base.strip_suffix(ORDER_ACTIONS).unwrap_or(&base).trim_end();
    if messages.is_empty() {
        return format!("{head}\n\n{ORDER_ACTIONS}");
    }
    format!("{head}\n\nConversation ({} messages):\n{}\n\n{ORDER_ACTIONS}", messages.len(), conversation_full(messages))
}

fn time(at: i64) -> impl std::fmt::Display {
    chrono::DateTime::from_timestamp_millis(at).unwrap_or_default().format("%m-%d %H:%M")
}

fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::In => "←",
        Direction::Out => "→",
        Direction::Internal => "✎",
    }
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

/// Room a `/case` page keeps for its header and footer.
const PAGE_FRAME: usize = 120;

/// Page `page` (1-based) of a whole case for `/case`: the text itself when it
/// fits one message, otherwise a "page i/n" header and a pointer to the next
/// page; every page at most [`sizing::TELEGRAM_LIMIT`] units. `Err(n)` when
/// the case has only `n` pages.
pub fn case_page(text: &str, case: &str, page: usize) -> Result<String, usize> {
    if sizing::utf16_len(text) <= sizing::TELEGRAM_LIMIT {
        return if page == 1 { Ok(text.to_owned()) } else { Err(1) };
    }
    let pages = sizing::pages(text, sizing::TELEGRAM_LIMIT - PAGE_FRAME);
    let n = pages.len();
    let Some(body) = page.checked_sub(1).and_then(|i| pages.get(i)) else { return Err(n) };
    let next = if page < n { format!("\n\n➡️ /case {case} {} for the next page", page + 1) } else { String::new() };
    Ok(format!("📄 {case} · page {page}/{n}\n{}{next}", body.trim_end_matches('\n')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Author;

    fn message(i: i64, text: &str) -> ConversationMessage {
        ConversationMessage {
            id: i,
            conversation_id: 1,
            at: 1_700_000_000_000 + i * 60_000,
            direction: Direction::In,
            author: Author::Customer,
            author_id: Some(7),
            text: text.into(),
            template: None,
            telegram_chat_id: None,
            telegram_message_id: None,
            order_ids: vec![],
        }
    }

    #[test]
    fn the_card_excerpt_keeps_the_newest_messages_within_its_budget() {
        let messages: Vec<_> = (1..=30).map(|i| message(i, &format!("m{i:02} {}", "ж".repeat(600)))).collect();
        let talk = excerpt(&messages);
        assert!(sizing::utf16_len(&talk) <= CARD_TALK_UNITS + 80, "{}", sizing::utf16_len(&talk));
        assert!(talk.contains("m30 "), "the newest is shown");
        let shown = (1..=30).filter(|i| talk.contains(&format!("m{i:02} "))).count();
        assert!(
            talk.starts_with(&format!("  … {} earlier message(s) — /case {{case}} shows all", 30 - shown)),
            "{talk}"
        );
        assert!(!talk.contains("m01 "));
        // `/case` has every message, whole.
        let full = conversation_full(&messages);
        assert!((1..=30).all(|i| full.contains(&format!("m{i:02} {}", "ж".repeat(600)))));
    }

    #[test]
    fn case_pages_are_numbered_within_the_limit_and_point_to_the_next() {
        assert_eq!(case_page("short case", "C1", 1), Ok("short case".into()));
        assert_eq!(case_page("short case", "C1", 2), Err(1));
        let text: String = (0..2000).map(|i| format!("строка {i}\n")).collect();
        let first = case_page(&text, "C7", 1).unwrap();
        let n: usize = first["📄 C7 · page 1/".len()..].split('\n').next().unwrap().parse().unwrap();
        assert!(n >= 2);
        assert!(first.ends_with("➡️ /case C7 2 for the next page"));
        let mut all = String::new();
        for p in 1..=n {
            let page = case_page(&text, "C7", p).unwrap();
            assert!(sizing::utf16_len(&page) <= sizing::TELEGRAM_LIMIT);
            assert!(page.starts_with(&format!("📄 C7 · page {p}/{n}\n")));
            all.push_str(page.split_once('\n').unwrap().1.split("\n\n➡️").next().unwrap());
            all.push('\n');
        }
        assert_eq!(all, text);
        assert_eq!(case_page(&text, "C7", n + 1), Err(n));
    }
}
