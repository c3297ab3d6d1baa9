//! The weekly summary in the moderator chat (`[report] weekly`).
//!
//! The schedule lives in the store (`report_posts`), on the program's one
//! clock, never in memory: there is always one waiting row, the next
//! scheduled time, with the Telegram `random_id` it will be sent with.
//! A restart after a missed time finds that row due and posts it (late,
//! never skipped); a send whose answer was lost is retried with the same
//! `random_id`, which Telegram refuses as a duplicate instead of posting
//! twice. After an outage of several weeks only the latest missed summary
//! is posted: older ones would be stale news in the chat.

use std::fmt;
use std::time::Duration;

use chrono::Weekday;
use tracing::{info, warn};

use super::{summary, Range, ReportSettings};
use crate::runtime::backoff::{self, Jitter};
use crate::store::{Store, StoreResult};
use crate::telegram::send_once::{send_once, Once, OnceError};
use crate::telegram::{ChatId, Messenger, MessengerError, RandomId};

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;
pub const WEEK: i64 = 7 * DAY;
/// 1970-01-05T00:00:00Z, the first Monday of unix time: weeks start here.
pub const FIRST_MONDAY: i64 = 4 * DAY;

/// First wait after a failed post; doubles per failure up to [`RETRY_MAX`].
const RETRY: Duration = Duration::from_secs(30);
const RETRY_MAX: Duration = Duration::from_secs(3600);

/// A weekday and a time of day, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekly {
    weekday: Weekday,
    /// Minutes after midnight.
    minute: u32,
}

impl Weekly {
    /// `"mon 09:00"`, `"Monday 9:00"`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let mut words = s.split_whitespace();
        let (Some(day), Some(time), None) = (words.next(), words.next(), words.next()) else {
            anyhow::bail!("{s:?} is not \"<weekday> <HH:MM>\"");
        };
        let weekday: Weekday = day.parse().map_err(|_| anyhow::anyhow!("{day:?} is not a weekday"))?;
        let (h, m) = time.split_once(':').ok_or_else(|| anyhow::anyhow!("{time:?} is not HH:MM"))?;
        let (h, m): (u32, u32) = (h.parse()?, m.parse()?);
        if h > 23 || m > 59 {
            anyhow::bail!("{time:?} is not a time of day");
        }
        Ok(Self { weekday, minute: h * 60 + m })
    }

    fn offset(&self) -> i64 {
        i64::from(self.weekday.num_days_from_monday()) * DAY + i64::from(self.minute) * MINUTE
    }

    /// The latest scheduled time at or before `t` (unix ms).
    pub fn at_or_before(&self, t: i64) -> i64 {
        let start = FIRST_MONDAY + self.offset();
        start + (t - start).div_euclid(WEEK) * WEEK
    }

    /// The first scheduled time after `t`.
    pub fn after(&self, t: i64) -> i64 {
        self.at_or_before(t) + WEEK
    }

    /// Is `t` one of this schedule's times?
    pub fn is_time(&self, t: i64) -> bool {
        self.at_or_before(t) == t
    }
}

impl fmt::Display for Weekly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = format!("{:?}", self.weekday).to_lowercase();
        write!(f, "{day} {:02}:{:02} UTC", self.minute / 60, self.minute % 60)
    }
}

/// What [`post_due`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No schedule, or nothing due before this time (unix ms).
    NotDue(Option<i64>),
    /// The summary for this scheduled time is in the chat.
    Posted(i64),
    /// Telegram did not take it; it is due again at this time.
    Retrying(i64),
}

/// Posts the weekly summary to `chat` if one is due at `now` (the program's
/// clock), and keeps the next one scheduled. Cheap when nothing is due:
/// one indexed read.
pub async fn post_due(
    store: &Store,
    messenger: &dyn Messenger,
    chat: ChatId,
    settings: &ReportSettings,
    now: i64,
) -> StoreResult<Outcome> {
    let Some(weekly) = settings.weekly else { return Ok(Outcome::NotDue(None)) };
    let post = match store.report_post_waiting().await? {
        Some(p) if weekly.is_time(p.due_at) && p.due_at + WEEK > now => p,
        stale => {
            if let Some(p) = stale {
                // The schedule changed, or a newer week is due: this one is not posted.
                warn!(due_at = p.due_at, attempts = p.attempts, "a weekly summary was not posted and is dropped");
                store.unschedule_report_post(p.due_at).await?;
            }
            let from = store.report_post_last().await?.filter(|&t| weekly.is_time(t)).unwrap_or(now);
            let due = weekly.after(from).max(weekly.at_or_before(now));
            store.schedule_report_post(due, RandomId::fresh().0).await?;
            let Some(post) = store.report_post_waiting().await? else {
                // Someone else took it meanwhile (never in one daemon): look again next pass.
                return Ok(Outcome::NotDue(None));
            };
            post
        }
    };
    if post.next_attempt_at > now {
        return Ok(Outcome::NotDue(Some(post.next_attempt_at)));
    }
    let range = Range::last_week(post.due_at);
    let text = match summary::build_text(store, &range, settings, now).await {
        Ok(text) => text,
        Err(e) => {
            let next = now + retry_after(post.attempts).as_millis() as i64;
            store.report_post_failed(post.due_at, &format!("{e:#}"), next).await?;
            return Ok(Outcome::Retrying(next));
        }
    };
    // Nothing refers to the post later: one Telegram already has is not looked up.
    let send = || messenger.send_message(chat, &text, None, RandomId(post.random_id));
    match send_once(false, send, || async { Ok(None) }).await.map_err(OnceError::into_inner) {
        Ok(Once::Sent(id) | Once::Earlier(id)) => store.report_post_sent(post.due_at, Some(i64::from(id)), now).await?,
        Ok(Once::Duplicate(_)) => store.report_post_sent(post.due_at, None, now).await?,
        Err(e) => {
            let wait = match &e {
                MessengerError::FloodWait(w) => retry_after(post.attempts).max(*w),
                _ => retry_after(post.attempts),
            };
            let next = now + wait.as_millis() as i64;
            warn!(error = %e, retry_in = ?wait, "the weekly summary was not posted yet");
            store.report_post_failed(post.due_at, &e.to_string(), next).await?;
            return Ok(Outcome::Retrying(next));
        }
    }
    info!(due_at = post.due_at, "weekly summary posted");
    Ok(Outcome::Posted(post.due_at))
}

fn retry_after(attempts: i64) -> Duration {
    backoff::delay(attempts, RETRY, RETRY_MAX, Jitter::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-12T00:00:00Z, a Monday.
    const MON: i64 = 1_768_176_000_000;

    #[test]
    fn times_of_the_schedule() {
        let w = Weekly::parse("mon 09:00").unwrap();
        let nine = MON + 9 * 3_600_000;
        assert_eq!(w.at_or_before(nine), nine);
        assert_eq!(w.at_or_before(nine - 1), nine - WEEK);
        assert_eq!(w.after(nine), nine + WEEK);
        assert_eq!(w.after(nine - 1), nine);
        assert!(w.is_time(nine) && !w.is_time(nine + MINUTE));
        let fri = Weekly::parse("Friday 17:30").unwrap();
        assert_eq!(fri.after(MON), MON + 4 * DAY + 17 * 3_600_000 + 30 * MINUTE);
        assert_eq!(fri.to_string(), "fri 17:30 UTC");
        for bad in ["mon", "mon 24:00", "mon 9", "someday 09:00", "mon 09:00 extra", "mon 09:60"] {
            assert!(Weekly::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(retry_after(0), Duration::from_secs(30));
        assert_eq!(retry_after(2), Duration::from_secs(120));
        assert_eq!(retry_after(40), RETRY_MAX);
    }
}
