//! Reading a chat's history after a message: the one pager every reader
//! uses (the order worker, the re-read, the look-ups after a lost answer),
//! and the look-up for a message we may have sent. One implementation,
//! because the details are easy to get wrong: the history ends at an empty
//! page, not a short one (an adapter leaves out messages it cannot read,
//! so a page can be short in the middle of a chat), and Telegram trims a
//! message's surrounding whitespace.

use std::future::Future;

use super::{ChatId, Message, MessageId, Messenger, MessengerResult};

/// Messages read per history request.
pub const PAGE: usize = 100;

/// A chat's history after a message, page by page, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Pages {
    chat: ChatId,
    after: MessageId,
    ended: bool,
}

impl Pages {
    /// The history of `chat` after message `after`.
    pub fn new(chat: ChatId, after: MessageId) -> Self {
        Self { chat, after, ended: false }
    }

    /// The newest message paged through so far (`after` before the first page).
    pub fn after(&self) -> MessageId {
        self.after
    }

    /// The next page, or `None` when the history has no more.
    pub async fn next(&mut self, messenger: &dyn Messenger) -> MessengerResult<Option<Vec<Message>>> {
        self.next_with(|chat, after, limit| messenger.history_since(chat, after, limit)).await
    }

    /// [`Self::next`] with the request made by `read` (`history_since`'s
    /// arguments), for a caller that retries each request its own way.
    pub async fn next_with<E, F, Fut>(&mut self, read: F) -> Result<Option<Vec<Message>>, E>
    where
        F: FnOnce(ChatId, MessageId, usize) -> Fut,
        Fut: Future<Output = Result<Vec<Message>, E>>,
    {
        if self.ended {
            return Ok(None);
        }
        let page = read(self.chat, self.after, PAGE).await?;
        match page.last() {
            Some(last) => {
                self.after = last.id;
                Ok(Some(page))
            }
            None => {
                self.ended = true;
                Ok(None)
            }
        }
    }
}

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
    find(messenger, chat, after, max_pages, |m| m.outgoing && m.text.trim() == text).await
}

/// The first message in `chat` after message `after` that `matches`,
/// looking at up to `max_pages` pages of history.
pub async fn find(
    messenger: &dyn Messenger,
    chat: ChatId,
    after: MessageId,
    max_pages: usize,
    matches: impl Fn(&Message) -> bool,
) -> MessengerResult<Option<MessageId>> {
    let mut pages = Pages::new(chat, after);
    for _ in 0..max_pages {
        let Some(page) = pages.next(messenger).await? else { break };
        if let Some(m) = page.iter().find(|m| matches(m)) {
            return Ok(Some(m.id));
        }
    }
    Ok(None)
}
