//! The texts moderators read: case cards (why, the order with the customer's
//! profile link, product, price, raw details, the conversation so far, what
//! they can do), the whole case for `/case` and the `/cases` list.
//!
//! Pure functions of the facts: [`super::render`] reads the facts from the
//! store and picks the card. One function renders both the card and the
//! whole case ([`View`]), so `/case` shows the same case as its card.
//!
//! A card must fit one Telegram message (see `sizing`), so it shows the
//! newest part of the conversation within a budget and says what it left
//! out; `/case` shows everything, in pages.

pub mod outage;
pub mod purchase;
pub mod question_queue;

use super::sizing;
use crate::domain::{Decider, Direction, EscalationReason, Verdict};
use crate::store::{
    AccountStatus, CaseRecord, CaseStatus, ConversationMessage, ConversationRecord, InboundRecord, InboxKind,
    OrderRecord,
};
use crate::tribute::RawNotification;

/// How many of the newest conversation messages a card shows.
const CARD_MESSAGES: usize = 12;
/// Longest message text shown on a card (the store keeps all of it).
const CARD_TEXT: usize = 400;
/// UTF-16 units the conversation may take on a card, so the card (with a
/// raw order text next to it) still fits one Telegram message.
const CARD_TALK_UNITS: usize = 1800;

/// What a moderator can do with an order's case, the last lines of its card.
pub const ORDER_ACTIONS: &str = "Reply to this message with:\n\
     • the account ID → we activate it and finish the order\n\
     • any other text → sent to the customer as the team's answer\n\
     • /retry (activate again) · /done (handled by hand) · /reject <reason> · /note <text> (internal)";

/// How much of a case a text shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The card posted to the chat: the newest part of the conversation.
    Card,
    /// `/case`: every message, whole.
    Full,
}

/// A question's verdict as one line: who did not answer and why, then the
/// draft that was not sent and the FAQ sections it came from, by title.
pub fn verdict_in_words(reason: EscalationReason, v: &Verdict) -> String {
    let why = v.reasons.join("; ");
    let mut s = match v.by {
        Decider::Agent => format!("the agent did not answer: {why}"),
        Decider::Assistant if why.is_empty() => reason.explain().to_owned(),
        Decider::Assistant => format!("{} ({why})", reason.explain()),
    };
    if let Some(draft) = &v.draft {
        s.push_str(&format!(". Draft, not sent: «{}»", draft.split_whitespace().collect::<Vec<_>>().join(" ")));
        if !v.sources.is_empty() {
            let titles: Vec<String> = v.sources.iter().map(|t| format!("“{t}”")).collect();
            s.push_str(&format!(" — from {}", titles.join(", ")));
        }
    }
    s
}

/// `Why: …` with the reason's explanation and the detail, if any.
fn why(reason: EscalationReason, detail: &str) -> String {
    match detail {
        "" => format!("Why: {}", reason.explain()),
        d => format!("Why: {} ({d})", reason.explain()),
    }
}

/// The conversation block of a card: the excerpt or (for `/case`) all of it.
fn talk(case: &str, messages: &[ConversationMessage], view: View) -> String {
    match view {
        View::Card => format!("Conversation so far:\n{}", excerpt(messages, case)),
        View::Full => format!("Conversation ({} messages):\n{}", messages.len(), conversation_full(messages)),
    }
}

/// An order's case: why, the order's facts, its raw Tribute text, the
/// conversation with its customer (if any) and what a moderator can do.
pub fn order_card(
    case: &str,
    order: &OrderRecord,
    reason: EscalationReason,
    detail: &str,
    raw: &str,
    messages: &[ConversationMessage],
    view: View,
) -> String {
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
    let talk = if messages.is_empty() { String::new() } else { format!("\n\n{}", talk(case, messages, view)) };
    format!(
        "🚨 Case {case} · order {order_ref} needs a person\n\
         {why}\n\
         Customer: {customer}\n\
         Product: {product}\n\
         Price: {price}\n\
         Account ID: {account}\n\
         State: {state}\n\
         \n\
         Raw order:\n{raw}{talk}\n\
         \n\
         {ORDER_ACTIONS}",
        order_ref = order.order_ref,
        why = why(reason, detail),
        product = order.product,
        price = order.price,
        state = order.state,
    )
}

/// A customer's question that no one automatic answered: who asks, their
/// open orders and the conversation.
pub fn question_card(
    case: &str,
    conv: &ConversationRecord,
    reason: EscalationReason,
    detail: &str,
    open_orders: &[OrderRecord],
    messages: &[ConversationMessage],
    view: View,
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
        "❓ Case {case} · a question from {name} (tg://user?id={id})\n\
         Why: {why}\n\
         Language: {lang}\n\
         Open orders: {orders}\n\
         \n\
         {talk}\n\
         \n\
         Reply to this message with:\n\
         • text → sent to the customer as the team's answer\n\
         • /done (answered) · /note <text> (internal)",
        name = conv.customer_name,
        id = conv.customer_id,
        why = verdict_in_words(reason, &Verdict::from_detail(detail)),
        lang = conv.language,
        talk = talk(case, messages, view),
    )
}

/// A Tribute message that led to no order: a malformed order (its raw
/// text) or a message the parser does not recognise (with its raw JSON, so
/// the operator can replay it through `tribute-assistant order parse`).
pub fn tribute_message_card(
    case: &str,
    message_id: i32,
    reason: EscalationReason,
    detail: &str,
    raw: &RawNotification,
) -> String {
    if reason != EscalationReason::UnrecognisedMessage {
        return format!(
            "🚨 Case {case} · Tribute message {message_id} needs a person\n\
             Why: {why}\n\
             Nothing was activated. Check the order in Tribute and finish it by hand.\n\
             \n\
             Raw message:\n{raw}\n\
             \n\
             Reply /done to this message once it is handled.",
            why = if detail.is_empty() { reason.explain() } else { detail },
            raw = raw.text,
        );
    }
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
        why = reason.explain(),
        text = raw.text,
    )
}

/// A signed Tribute webhook we could not read, with its raw body.
pub fn webhook_body_card(case: &str, detail: &str, raw_body: &str) -> String {
    format!(
        "⚠️ Case {case} · a signed Tribute webhook could not be read\nWhy: {detail}\n\
         Nothing was done with it. Check the purchase in Tribute and finish it by hand.\n\nRaw body:\n{raw_body}"
    )
}

/// A message the contact task gave up on after its retries: who sent it,
/// why it failed, its text (cut), so a person can act on it instead.
pub fn unhandled_message_card(case: &str, record: Option<&InboundRecord>, detail: &str) -> String {
    let Some(r) = record else {
        return format!(
            "⚠️ Case {case} · a message could not be handled\nWhy: {detail}\n(The message is no longer stored.)"
        );
    };
    let m = &r.message;
    let from = match (r.kind, m.sender_id) {
        (InboxKind::Moderator, Some(s)) => format!("moderator {s} in the moderator chat"),
        (InboxKind::Moderator, None) => "the moderator chat".to_owned(),
        (InboxKind::Customer, _) => format!("customer {} (private chat)", m.chat_id),
    };
    let text = if m.text.trim().is_empty() { "(no text)".to_owned() } else { truncate(&m.text, CARD_TEXT * 4) };
    format!(
        "⚠️ Case {case} · a message from {from} could not be handled\n\
         Why: {detail}\n\
         Tried {attempts} time(s); nothing more will be done with it automatically. \
         Answer the sender by hand if it needs an answer, then reply /done.\n\
         \n\
         Message {id}:\n{text}",
        attempts = r.attempts,
        id = m.id,
    )
}

/// The newest messages, one line each: time, who, text; at most
/// [`CARD_MESSAGES`] of them within [`CARD_TALK_UNITS`], each cut at
/// [`CARD_TEXT`] characters, and a line saying how many earlier ones
/// `/case` shows.
pub fn excerpt(messages: &[ConversationMessage], case: &str) -> String {
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
        lines.push(format!("  … {skip} earlier message(s) — /case {case} shows all"));
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
        let talk = excerpt(&messages, "C1");
        assert!(sizing::utf16_len(&talk) <= CARD_TALK_UNITS + 80, "{}", sizing::utf16_len(&talk));
        assert!(talk.contains("m30 "), "the newest is shown");
        let shown = (1..=30).filter(|i| talk.contains(&format!("m{i:02} "))).count();
        assert!(talk.starts_with(&format!("  … {} earlier message(s) — /case C1 shows all", 30 - shown)), "{talk}");
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
