//! Looking back in a chat's history for a message we may have sent: after
//! a send whose answer was lost, before sending again. One implementation
//! for every sender (customer messages, moderator cards), because the
//! details are easy to get wrong: Telegram trims a message's surrounding
//! whitespace, and the look must page instead of reading only the last
//! page.

use super::{ChatId, MessageId, Messenger, MessengerResult};

/// Messages read per history request.
const PAGE: usize = 100;

/// Our own message with `text` (as Telegram stores it: trimmed) in `chat`
/// after message `after`, looking at up to `max_pages` pages of history.
pub async fn find_sent(
    messenger: &dyn Messenger,
    chat: ChatId,
    text: &str,
    after: MessageId,
    max_pages: usize,
) -> MessengerResult<Option<MessageId>> {
    let text = text.trim();
    find_own(messenger, chat, after, max_pages, |posted| posted.trim() == text).await
}

/// Our own first message in `chat` after message `after` whose text
/// `matches`, looking at up to `max_pages` pages of history.
pub async fn find_own(
    messenger: &dyn Messenger,
    chat: ChatId,
    mut after: MessageId,
    max_pages: usize,
    matches: impl Fn(&str) -> bool,
) -> MessengerResult<Option<MessageId>> {
    for _ in 0..max_pages {
        let page = messenger.history_since(chat, after, PAGE).await?;
        if let Some(m) = page.iter().find(|m| m.outgoing && matches(&m.text)) {
            return Ok(Some(m.id));
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = last.id,
            _ => return Ok(None),
        }
    }
    Ok(None)
}
