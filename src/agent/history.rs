//! What of the conversation reaches the LLM: the newest messages within a
//! count and a character budget, each customer message cut to a limit. A
//! long chat (or one pasted wall of text) would otherwise grow every
//! request, push the rules out of a small model's context and make a turn
//! slow and expensive.

use super::{HistoryMessage, Speaker};

/// Marks where a message was cut, so the model knows it is incomplete.
pub const CUT_MARK: &str = " […]";

/// `text` cut to at most `max_chars` characters (plus [`CUT_MARK`]).
pub fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}{CUT_MARK}", &text[..end]),
        None => text.to_owned(),
    }
}

/// The newest messages of `history` (oldest first, as given) that fit in
/// `max_messages` and `max_chars`, customer messages cut to
/// `max_message_chars` first. An older message that does not fit ends the
/// selection: the model never sees a gap in the middle of the conversation.
pub fn capped(
    history: &[HistoryMessage],
    max_messages: usize,
    max_chars: usize,
    max_message_chars: usize,
) -> Vec<HistoryMessage> {
    let mut kept = Vec::new();
    let mut chars = 0;
    for m in history.iter().rev().take(max_messages) {
        let text = if m.speaker == Speaker::Customer { cut(&m.text, max_message_chars) } else { m.text.clone() };
        chars += text.chars().count();
        if chars > max_chars {
            break;
        }
        kept.push(HistoryMessage { speaker: m.speaker, text });
    }
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(speaker: Speaker, text: &str) -> HistoryMessage {
        HistoryMessage { speaker, text: text.into() }
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(cut("алмазы", 3), format!("алм{CUT_MARK}"));
        assert_eq!(cut("short", 10), "short");
    }

    #[test]
    fn the_newest_messages_within_both_budgets_are_kept_in_order() {
        let h = vec![
            msg(Speaker::Customer, "one"),
            msg(Speaker::Agent, "two"),
            msg(Speaker::Customer, "three"),
            msg(Speaker::Moderator, "four"),
        ];
        let texts = |v: Vec<HistoryMessage>| v.into_iter().map(|m| m.text).collect::<Vec<_>>();
        assert_eq!(texts(capped(&h, 2, 1000, 1000)), ["three", "four"]);
        // 4 + 5 fit in 10 characters, "two" would make 12.
        assert_eq!(texts(capped(&h, 10, 10, 1000)), ["three", "four"]);
        // A wall of customer text is cut, then counted.
        let wall = vec![msg(Speaker::Customer, &"x".repeat(10_000))];
        let kept = capped(&wall, 10, 100, 50);
        assert_eq!(kept[0].text.chars().count(), 50 + CUT_MARK.chars().count());
    }
}
