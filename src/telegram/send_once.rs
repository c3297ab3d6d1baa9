//! Sending a message at most once, across lost answers and restarts. Every
//! sender that must not repeat itself (the Tribute reply, customer
//! messages, moderator cards, the weekly post) stores the send's
//! `random_id` before the first attempt and reuses it on every attempt;
//! this is the one place that turns what Telegram then says into an
//! answer: an attempt that may have gone through earlier is looked up in
//! the chat first, and a send Telegram refuses as one it already has
//! (`RANDOM_ID_DUPLICATE`) is looked up too. How a sender recognises its
//! own message (its reply to a notification, its text, a card's title) is
//! the look-up it passes.

use std::future::Future;

use super::{MessageId, MessengerError};

/// What became of a message sent at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// Sent by this attempt.
    Sent(MessageId),
    /// An earlier attempt's message, found in the chat before sending again.
    Earlier(MessageId),
    /// Telegram refused the send as one it already has: an earlier attempt
    /// went through. Its message when the look-up found it.
    Duplicate(Option<MessageId>),
}

/// Where a send-once failed: the send itself or a look-up in the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnceError<E> {
    Send(E),
    Look(E),
}

impl<E> OnceError<E> {
    /// The error, wherever it came from.
    pub fn into_inner(self) -> E {
        match self {
            OnceError::Send(e) | OnceError::Look(e) => e,
        }
    }
}

/// An error a send can end with, as far as sending once cares: whether it
/// is Telegram's `RANDOM_ID_DUPLICATE`.
pub trait SendFailure {
    fn is_duplicate(&self) -> bool;
}

impl SendFailure for MessengerError {
    fn is_duplicate(&self) -> bool {
        matches!(self, MessengerError::RandomIdDuplicate)
    }
}

/// Sends with `send` (which reuses the message's stored `random_id`)
/// unless `maybe_sent` (an earlier attempt may have been delivered) and
/// `look` finds the message in the chat; a send refused as a duplicate is
/// looked up with `look` as well.
pub async fn send_once<E, S, SF, L, LF>(maybe_sent: bool, send: S, look: L) -> Result<Once, OnceError<E>>
where
    E: SendFailure,
    S: FnOnce() -> SF,
    SF: Future<Output = Result<MessageId, E>>,
    L: Fn() -> LF,
    LF: Future<Output = Result<Option<MessageId>, E>>,
{
    if maybe_sent {
        if let Some(id) = look().await.map_err(OnceError::Look)? {
            return Ok(Once::Earlier(id));
        }
    }
    match send().await {
        Ok(id) => Ok(Once::Sent(id)),
        Err(e) if e.is_duplicate() => Ok(Once::Duplicate(look().await.map_err(OnceError::Look)?)),
        Err(e) => Err(OnceError::Send(e)),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    type Answer = Result<MessageId, MessengerError>;

    /// Runs `send_once` with a send that answers `sent` and a look-up that
    /// finds `found`; returns the outcome and how many sends and looks ran.
    async fn run(
        maybe_sent: bool,
        sent: Answer,
        found: Option<MessageId>,
    ) -> (Result<Once, OnceError<MessengerError>>, u32, u32) {
        let (sends, looks) = (Cell::new(0), Cell::new(0));
        let out = send_once(
            maybe_sent,
            || {
                sends.set(sends.get() + 1);
                async { sent }
            },
            || {
                looks.set(looks.get() + 1);
                async move { Ok(found) }
            },
        )
        .await;
        (out, sends.get(), looks.get())
    }

    #[tokio::test]
    async fn a_first_attempt_sends_without_looking() {
        assert_eq!(run(false, Ok(7), Some(3)).await, (Ok(Once::Sent(7)), 1, 0));
    }

    #[tokio::test]
    async fn an_attempt_after_one_that_may_have_gone_through_looks_first() {
        assert_eq!(run(true, Ok(7), Some(3)).await, (Ok(Once::Earlier(3)), 0, 1));
        assert_eq!(run(true, Ok(7), None).await, (Ok(Once::Sent(7)), 1, 1));
    }

    #[tokio::test]
    async fn a_duplicate_is_looked_up() {
        let dup = Err(MessengerError::RandomIdDuplicate);
        assert_eq!(run(false, dup.clone(), Some(3)).await, (Ok(Once::Duplicate(Some(3))), 1, 1));
        assert_eq!(run(false, dup, None).await, (Ok(Once::Duplicate(None)), 1, 1));
    }

    #[tokio::test]
    async fn another_refusal_is_the_send_s_error() {
        let (out, sends, looks) = run(true, Err(MessengerError::Timeout), None).await;
        assert_eq!((out, sends, looks), (Err(OnceError::Send(MessengerError::Timeout)), 1, 1));
    }

    #[tokio::test]
    async fn a_failed_look_up_is_the_look_up_s_error() {
        let out =
            send_once(true, || async { Ok::<_, MessengerError>(7) }, || async { Err(MessengerError::Disconnected) })
                .await;
        assert_eq!(out, Err(OnceError::Look(MessengerError::Disconnected)));
    }
}
