//! The card of an outage: which dependency fails, since when, and the
//! orders waiting on it with why (`orders::outage` decides when there is
//! one). Nothing to do for a moderator unless it lasts: the orders are
//! retried by themselves, and the case closes by itself when it is over.

use super::super::sizing;
use super::View;
use crate::orders::outage::span;
use crate::store::{OutageMember, OutageRecord};

/// UTF-16 units the list of orders may take on a card, so the card fits
/// one Telegram message; `/case` lists them all.
const CARD_LIST_UNITS: usize = 3200;
/// Longest "why" shown per order (its newest history line).
const NOTE_CHARS: usize = 90;

/// The card of `outage` (case `case`) at `now` (unix ms). The card lists
/// the orders that waited when the outage was reported (those that joined
/// later are named in follow-ups); `/case` lists every order it held up
/// and where each is now.
pub fn outage_card(case: &str, outage: &OutageRecord, members: &[OutageMember], now: i64, view: View) -> String {
    let listed: Vec<&OutageMember> = match view {
        View::Card => members.iter().filter(|m| m.in_card).collect(),
        View::Full => members.iter().collect(),
    };
    let mut lines = Vec::new();
    let mut units = 0;
    for m in &listed {
        let line = line(m, now);
        units += sizing::utf16_len(&line) + 1;
        if view == View::Card && units > CARD_LIST_UNITS {
            break;
        }
        lines.push(line);
    }
    if listed.len() > lines.len() {
        lines.push(format!("  … and {} more — /case {case} lists them all", listed.len() - lines.len()));
    }
    let status = match outage.recovered_at {
        Some(at) => format!("Over: it answered again after {}.", span(at - outage.since)),
        None => format!("Waiting since {} ({} ago).", time(outage.since), span(now - outage.since)),
    };
    format!(
        "⏳ Case {case} · {trouble}: {n} order(s) wait\n\
         {status}\n\
         \n\
         Orders waiting:\n{lines}\n\
         \n\
         Nothing is lost: every order stays in the store and is retried by itself. A follow-up here names \
         orders that join, and one says when {name} answers again (the case then closes). \
         Reply /note <text> to leave a note.",
        trouble = outage.cause.trouble(),
        n = listed.len(),
        lines = lines.join("\n"),
        name = outage.cause.name(),
    )
}

fn line(m: &OutageMember, now: i64) -> String {
    let now_where = match m.waiting_since {
        Some(since) => format!("waiting {}", span(now - since)),
        None => format!("now {}", m.state),
    };
    let why = cut(&m.last_note.replace('\n', " "), NOTE_CHARS);
    format!("  • {} · {} · {} · {now_where} · {why}", m.order_ref, m.product, m.customer_name)
}

fn time(ms: i64) -> impl std::fmt::Display {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d %H:%M UTC")
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrderRef, OrderState};
    use crate::moderator::sizing;
    use crate::store::OutageCause;

    fn member(i: i64, in_card: bool) -> OutageMember {
        OutageMember {
            order_id: i,
            order_ref: OrderRef::for_message(93372553, i as i32),
            product: "100 Diamonds".into(),
            customer_name: "Иван Петров".into(),
            state: OrderState::ActivationRequested,
            in_card,
            announced: in_card,
            left_at: None,
            waiting_since: Some(1_700_000_000_000),
            activated: false,
            last_note: format!("backend unavailable (HTTP 503 {}); retrying in 240s", "x".repeat(200)),
        }
    }

    #[test]
    fn the_card_lists_the_orders_it_was_opened_with_and_fits_telegram() {
        let outage = OutageRecord {
            id: 1,
            cause: OutageCause::Backend,
            since: 1_700_000_000_000,
            opened_at: 1_700_000_900_000,
            case_id: 12,
            last_update_at: None,
            recovered_at: None,
        };
        let mut members: Vec<_> = (1..=40).map(|i| member(i, true)).collect();
        members.push(member(41, false));
        let now = 1_700_001_020_000;
        let card = outage_card("C12", &outage, &members, now, View::Card);
        assert!(card.starts_with("⏳ Case C12 · the backend is unreachable: 40 order(s) wait"), "{card}");
        assert!(card.contains("(17 min ago)"), "{card}");
        assert!(card.contains(&format!(
            "• {} · 100 Diamonds · Иван Петров · waiting 17 min · backend unavailable",
            members[0].order_ref
        )));
        let shown = (1..=40).filter(|i| card.contains(&format!("{} ·", OrderRef::for_message(93372553, *i)))).count();
        assert!((15..40).contains(&shown), "{shown}");
        assert!(card.contains(&format!("… and {} more — /case C12 lists them all", 40 - shown)), "{card}");
        assert!(!card.contains(&format!("{} ·", members[40].order_ref)), "a later order is a follow-up's");
        assert!(sizing::utf16_len(&card) <= sizing::TELEGRAM_LIMIT, "{}", sizing::utf16_len(&card));

        let full = outage_card("C12", &outage, &members, now, View::Full);
        assert!((1..=41).all(|i| full.contains(&format!("{} ·", OrderRef::for_message(93372553, i)))));
    }
}
