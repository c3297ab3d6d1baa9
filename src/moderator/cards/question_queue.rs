//! The card of a burst of questions beyond the account-wide budget: one
//! card for the whole crowd, showing the queue as it is when posted.

use crate::contact::queue_summary;
use crate::store::QueueFigures;

/// The burst's card: how many senders wait, since when, and what happens
/// to them; `detail` is the budget in words.
pub fn question_queue_card(case: &str, detail: &str, figures: &QueueFigures) -> String {
    // The case id on the first line: it tells cards apart in the chat (see `outbox_worker`).
    format!(
        "⏳ Case {case} · questions are queued: {summary}\n\
         Why: more questions at once than the budget allows ({detail}).\n\
         They are answered oldest first as the budget has room again (agent answers, or a case each \
         for a person); nothing is dropped. Follow-ups here say how the queue goes, at most every few \
         minutes, and this case closes itself when the queue is empty.\n\
         /done closes it now (the queue goes on).",
        summary = queue_summary(figures),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_case_the_crowd_and_the_budget() {
        let f = QueueFigures { senders: 37, questions: 52, waiting: 40, first_at: Some(0), last_at: Some(570_000) };
        let card = question_queue_card("C5", "the budget is 3 new question cases a minute", &f);
        assert!(card.starts_with("⏳ Case C5 · questions are queued: 37 senders in 10 minutes"), "{card}");
        assert!(card.contains("52 questions queued; 40 still waiting"), "{card}");
        assert!(card.contains("3 new question cases a minute"), "{card}");
    }
}
