//! The rules real Telegram enforces on every request, whatever the fault
//! plan: message limits, callback data size, `random_id` uniqueness and
//! the PEER_FLOOD limit on writing to strangers. A daemon that breaks one
//! of them in the simulator would be refused by Telegram too, so the sim
//! refuses, and counts every refusal for checkers to assert on.

use std::collections::VecDeque;
use std::time::Duration;

use super::text::utf16_len;
use tribute_assistant::telegram::{MessengerError, ENTITIES_MAX, MESSAGE_LENGTH_MAX};

/// Checks a text the way `messages.sendMessage` does and returns its
/// length in UTF-16 code units.
pub(super) fn check_text(text: &str) -> Result<usize, MessengerError> {
    if text.trim().is_empty() {
        return Err(MessengerError::MessageEmpty);
    }
    let units = utf16_len(text);
    if units > MESSAGE_LENGTH_MAX {
        return Err(MessengerError::MessageTooLong);
    }
    if auto_entities(text) > ENTITIES_MAX {
        return Err(MessengerError::EntitiesTooLong);
    }
    Ok(units)
}

/// The longest caption of a photo or file a (non-premium) user can send,
/// in UTF-16 code units.
pub const CAPTION_LENGTH_MAX: usize = 1024;

/// Checks what another user's client sends us the way Telegram checks
/// it: a text message is not empty (whitespace only counts as empty) and
/// at most 4096 UTF-16 units; a caption may be empty (a photo without
/// one) and is at most [`CAPTION_LENGTH_MAX`] units. Scenarios send
/// customers' and moderators' messages through this, so a simulation
/// never feeds the daemon what real Telegram would not have delivered.
pub fn check_incoming(text: &str, media: bool) -> Result<(), MessengerError> {
    let units = utf16_len(text);
    if media {
        return if units > CAPTION_LENGTH_MAX { Err(MessengerError::MessageTooLong) } else { Ok(()) };
    }
    if text.trim().is_empty() {
        return Err(MessengerError::MessageEmpty);
    }
    if units > MESSAGE_LENGTH_MAX {
        return Err(MessengerError::MessageTooLong);
    }
    Ok(())
}

/// How many entities Telegram would find in a plain text by itself: links,
/// `@mentions`, `#hashtags`, `$cashtags` and `/commands`, one per
/// whitespace-separated word. An approximation of the server's parser
/// that is good enough to count against [`ENTITIES_MAX`]; the entities
/// are not stored.
pub fn auto_entities(text: &str) -> usize {
    text.split_whitespace().filter(|word| is_entity(word)).count()
}

fn is_entity(word: &str) -> bool {
    let word = word.trim_end_matches(['.', ',', '!', '?', ':', ';', ')']);
    let tail_ok =
        |rest: &str, min: usize| rest.chars().count() >= min && rest.chars().all(|c| c.is_alphanumeric() || c == '_');
    if let Some(rest) = word.strip_prefix('@') {
        return tail_ok(rest, 4);
    }
    if let Some(rest) = word.strip_prefix('#').or_else(|| word.strip_prefix('$')) {
        return tail_ok(rest, 1) && rest.chars().any(|c| !c.is_ascii_digit());
    }
    if let Some(rest) = word.strip_prefix('/') {
        return tail_ok(rest, 1) && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    }
    let lower = word.to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("www.")
        || lower.starts_with("t.me/")
}

/// The PEER_FLOOD limit: how many first messages to strangers the account
/// may send per window, and for how long it may not write to strangers
/// once it went past that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrangerLimit {
    pub quota: u32,
    pub window: Duration,
    pub penalty: Duration,
}

/// First messages to strangers in the current window, and the ban.
#[derive(Default)]
pub(super) struct Strangers {
    /// Clock times (ms) of the admitted first messages, oldest first.
    firsts: VecDeque<i64>,
    banned_until: Option<i64>,
}

impl Strangers {
    /// Admits one first message to a stranger at `now_ms`, or refuses it
    /// with `PeerFlood` (and starts the ban when this one is over the quota).
    pub fn admit(&mut self, limit: StrangerLimit, now_ms: i64) -> Result<(), MessengerError> {
        if self.banned_until.is_some_and(|until| now_ms < until) {
            return Err(MessengerError::PeerFlood);
        }
        let window = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX);
        while self.firsts.front().is_some_and(|&t| now_ms.saturating_sub(t) >= window) {
            self.firsts.pop_front();
        }
        if self.firsts.len() >= limit.quota as usize {
            let penalty = i64::try_from(limit.penalty.as_millis()).unwrap_or(i64::MAX);
            self.banned_until = Some(now_ms.saturating_add(penalty));
            self.firsts.clear();
            return Err(MessengerError::PeerFlood);
        }
        self.firsts.push_back(now_ms);
        Ok(())
    }
}

/// Telegram's name for an error, the key of the refusal counters.
pub(super) fn error_name(e: &MessengerError) -> &'static str {
    match e {
        MessengerError::FloodWait(_) => "FLOOD_WAIT",
        MessengerError::Disconnected => "DISCONNECTED",
        MessengerError::Timeout => "TIMEOUT",
        MessengerError::ChatNotFound(_) => "PEER_ID_INVALID",
        MessengerError::MessageNotFound(..) => "MESSAGE_ID_INVALID",
        MessengerError::ButtonNotFound(_) => "BUTTON_GONE",
        MessengerError::PrivacyRestricted => "USER_PRIVACY_RESTRICTED",
        MessengerError::UserBlocked => "USER_IS_BLOCKED",
        MessengerError::UserDeactivated => "INPUT_USER_DEACTIVATED",
        MessengerError::PeerFlood => "PEER_FLOOD",
        MessengerError::MessageTooLong => "MESSAGE_TOO_LONG",
        MessengerError::MessageEmpty => "MESSAGE_EMPTY",
        MessengerError::EntitiesTooLong => "ENTITIES_TOO_LONG",
        MessengerError::DataInvalid => "DATA_INVALID",
        MessengerError::RandomIdDuplicate => "RANDOM_ID_DUPLICATE",
        MessengerError::Closed => "CLOSED",
        MessengerError::Other(_) => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_count_utf16_units() {
        assert_eq!(check_text(&"a".repeat(4096)), Ok(4096));
        assert_eq!(check_text(&"a".repeat(4097)), Err(MessengerError::MessageTooLong));
        // 2048 emoji are 4096 units although only 2048 chars.
        assert_eq!(check_text(&"😀".repeat(2048)), Ok(4096));
        assert_eq!(check_text(&format!("{}a", "😀".repeat(2048))), Err(MessengerError::MessageTooLong));
        assert_eq!(check_text(""), Err(MessengerError::MessageEmpty));
        assert_eq!(check_text(" \n\t "), Err(MessengerError::MessageEmpty));
    }

    #[test]
    fn incoming_texts_and_captions_have_their_own_limits() {
        assert_eq!(check_incoming(&"😀".repeat(2048), false), Ok(()));
        assert_eq!(check_incoming(&"😀".repeat(2049), false), Err(MessengerError::MessageTooLong));
        assert_eq!(check_incoming("\u{200f}", false), Ok(()), "a lone RTL mark is not whitespace to Telegram");
        assert_eq!(check_incoming(" ", false), Err(MessengerError::MessageEmpty));
        assert_eq!(check_incoming("", true), Ok(()), "a photo without a caption");
        assert_eq!(check_incoming(&"a".repeat(1024), true), Ok(()));
        assert_eq!(check_incoming(&"a".repeat(1025), true), Err(MessengerError::MessageTooLong));
    }

    #[test]
    fn entities_found_in_plain_text() {
        assert_eq!(auto_entities("see https://example.com, @support_team and #faq /start"), 4);
        assert_eq!(auto_entities("price: $5 or #1, mail a@b.c, path a/b"), 0);
        assert_eq!(check_text(&"#tag ".repeat(100)), Ok(500));
        assert_eq!(check_text(&"#tag ".repeat(101)), Err(MessengerError::EntitiesTooLong));
    }

    #[test]
    fn strangers_over_the_quota_start_a_ban() {
        let limit = StrangerLimit { quota: 2, window: Duration::from_secs(60), penalty: Duration::from_secs(3600) };
        let mut s = Strangers::default();
        assert!(s.admit(limit, 0).is_ok());
        assert!(s.admit(limit, 1_000).is_ok());
        assert_eq!(s.admit(limit, 2_000), Err(MessengerError::PeerFlood));
        // The window has passed, but the ban has not.
        assert_eq!(s.admit(limit, 120_000), Err(MessengerError::PeerFlood));
        assert!(s.admit(limit, 2_000 + 3_600_000).is_ok());
    }

    #[test]
    fn the_window_slides() {
        let limit = StrangerLimit { quota: 2, window: Duration::from_secs(60), penalty: Duration::from_secs(3600) };
        let mut s = Strangers::default();
        assert!(s.admit(limit, 0).is_ok());
        assert!(s.admit(limit, 30_000).is_ok());
        assert!(s.admit(limit, 60_000).is_ok(), "the first one left the window");
    }
}
