//! `/report [span]`: the automation report's summary in the chat.

use crate::moderator::{ModeratorDesk, Result};
use crate::report::range::parse_relative;
use crate::report::{summary, Range};
use crate::runtime::clock::now_ms;
use crate::telegram::{Message, UserId};

impl ModeratorDesk {
    /// `/report [span]`: the report's summary for the last `span` (7 days
    /// unless given: `30d`, `2w`, `12h`), sized to one message.
    pub(in crate::moderator) async fn report(&self, m: &Message, from: UserId, span: &str) -> Result<()> {
        self.audit(m, from, None, "report", span, true).await?;
        let back =
            if span.is_empty() { Some(std::time::Duration::from_secs(7 * 86_400)) } else { parse_relative(span) };
        let now = now_ms();
        if back.is_some_and(|d| d > CHAT_REPORT_LONGEST) {
            let text = "In the chat /report covers at most a year (e.g. /report 52w): it is built while other \
                        messages wait. For longer ranges run `tribute-assistant report --since DATE` on the server.";
            self.answer(m, text).await?;
            return Ok(());
        }
        let Some(range) = back.and_then(|d| Range::last(d, now).ok()) else {
            self.answer(m, &format!("Usage: /report [span], e.g. /report, /report 30d, /report 12w (not {span:?})."))
                .await?;
            return Ok(());
        };
        let text = summary::build_text(&self.store, &range, &self.report, now).await?;
        self.answer(m, &text).await?;
        Ok(())
    }
}

/// The longest span `/report` builds in the chat (the desk waits for it).
const CHAT_REPORT_LONGEST: std::time::Duration = std::time::Duration::from_secs(371 * 86_400);
