//! `/case <id> [page]`: the whole case (raw text, every message), in pages
//! when it is longer than one Telegram message.

use super::Command;
use crate::moderator::{cards, render, ModeratorDesk, Result};
use crate::store::{parse_short_id, AnswerLink, CaseStatus};
use crate::telegram::{Message, UserId};

/// `/case C12`, `/case C12 2`, `/case C12 p2`: the id, and the page (1 when none or 0).
pub(super) fn parse(arg: &str) -> Command {
    let mut words = arg.split_whitespace();
    let id = words.next().unwrap_or_default().to_owned();
    let page = words.next().and_then(|p| p.trim_start_matches(['p', 'P']).parse().ok()).unwrap_or(1);
    Command::Case { id, page: page.max(1) }
}

impl ModeratorDesk {
    /// `/case <id> [page]`: the whole case (raw text, every message), in
    /// pages when it is longer than one Telegram message.
    pub(in crate::moderator) async fn show_case(&self, m: &Message, from: UserId, id: &str, page: usize) -> Result<()> {
        let store = &self.store;
        let case = match parse_short_id(id) {
            Some(n) => store.case(n).await?,
            None => None,
        };
        self.audit(m, from, case.as_ref(), "case", id, true).await?;
        let Some(case) = case else {
            self.answer(m, &format!("No case {id:?}. /cases lists the open ones.")).await?;
            return Ok(());
        };
        let body = render::case_text(store, &case).await?;
        let status = match case.status {
            CaseStatus::Open => "open".to_owned(),
            CaseStatus::Closed => format!("closed ({})", case.outcome.as_deref().unwrap_or("")),
        };
        let text = format!("{body}\n\nStatus: {status}");
        let text = match cards::case_page(&text, &case.short_id, page) {
            Ok(text) => text,
            Err(n) => {
                let s = &case.short_id;
                self.answer(m, &format!("{s} has {n} page(s); /case {s} {n} shows the last.")).await?;
                return Ok(());
            }
        };
        self.answer_linked(m, &text, AnswerLink::Case(case.id)).await
    }
}
