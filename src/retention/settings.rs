//! `[retention]` in the config file, and how it becomes [`RetentionSettings`].

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use crate::config::rules::bounded_secs;

const DAY: u64 = 86_400;

/// `[retention]`: how long each kind of data is kept (docs/privacy.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Handled customer and moderator messages in the inbox (the
    /// conversation has its own copy of a customer's message).
    #[serde(default = "default_short")]
    pub inbox_days: u64,
    /// Raw bodies of Tribute webhooks (the purchase they described stays).
    #[serde(default = "default_short")]
    pub webhook_body_days: u64,
    /// Agent turns: the question, the draft, the reply, the sources.
    #[serde(default = "default_agent_turns")]
    pub agent_turn_days: u64,
    /// Delivered (or given up) messages to customers, follow-ups of closed
    /// cases and the desk's answers, `/learn` previews, our replies in the
    /// Tribute chat and the bot's follow-ups once their order is settled.
    #[serde(default = "default_short")]
    pub outbox_days: u64,
    /// Messages of conversations with nothing in progress, Tribute messages
    /// that are not orders and the free texts of the audit after this many
    /// days; a customer with nothing pending is pseudonymised this long
    /// after their last activity.
    #[serde(default = "default_scrub")]
    pub scrub_after_days: u64,
    /// A paid Tribute purchase no Telegram order matched goes to a
    /// moderator this long after the payment, and is not matched
    /// automatically any more.
    #[serde(default = "default_unmatched")]
    pub unmatched_purchase_hours: u64,
    /// Rows per table per pass, so a pass never holds the database long.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// Seconds between passes (a pass that left more to do is followed by
    /// the next one a second later).
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
}

fn default_short() -> u64 {
    30
}
fn default_agent_turns() -> u64 {
    90
}
fn default_scrub() -> u64 {
    180
}
fn default_unmatched() -> u64 {
    72
}
fn default_batch() -> u32 {
    500
}
fn default_interval() -> u64 {
    900
}

impl Default for RetentionSection {
    fn default() -> Self {
        toml::from_str("").expect("the empty [retention] is valid")
    }
}

/// The retention windows, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    pub inbox: Duration,
    pub webhook_bodies: Duration,
    pub agent_turns: Duration,
    pub outboxes: Duration,
    pub scrub_after: Duration,
    pub unmatched_purchase_deadline: Duration,
    pub batch: u32,
    pub interval: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSection::default().settings().expect("the defaults are valid")
    }
}

/// Most rows one batch may touch: a bigger batch holds the writer lock
/// long enough to delay order steps.
const MAX_BATCH: u32 = 10_000;

impl RetentionSection {
    pub fn settings(&self) -> anyhow::Result<RetentionSettings> {
        let days = [
            ("[retention] inbox_days", self.inbox_days),
            ("[retention] webhook_body_days", self.webhook_body_days),
            ("[retention] agent_turn_days", self.agent_turn_days),
            ("[retention] outbox_days", self.outbox_days),
            ("[retention] scrub_after_days", self.scrub_after_days),
        ];
        for (name, value) in days {
            if value == 0 {
                bail!("{name} must be at least 1 (a day): 0 would delete what was just handled");
            }
        }
        if self.unmatched_purchase_hours == 0 {
            bail!("[retention] unmatched_purchase_hours must be at least 1: a payment needs time to meet its order");
        }
        if !(1..=MAX_BATCH).contains(&self.batch) {
            bail!("[retention] batch must be between 1 and {MAX_BATCH}, not {}", self.batch);
        }
        if self.interval_secs == 0 {
            bail!("[retention] interval_secs must be at least 1");
        }
        let secs = |v: u64, unit: u64| v.saturating_mul(unit);
        let mut all: Vec<(&str, Option<u64>)> = days.iter().map(|(n, v)| (*n, Some(secs(*v, DAY)))).collect();
        all.push(("[retention] unmatched_purchase_hours", Some(secs(self.unmatched_purchase_hours, 3600))));
        all.push(("[retention] interval_secs", Some(self.interval_secs)));
        bounded_secs(&all)?;
        let d = |v: u64| Duration::from_secs(secs(v, DAY));
        Ok(RetentionSettings {
            inbox: d(self.inbox_days),
            webhook_bodies: d(self.webhook_body_days),
            agent_turns: d(self.agent_turn_days),
            outboxes: d(self.outbox_days),
            scrub_after: d(self.scrub_after_days),
            unmatched_purchase_deadline: Duration::from_secs(secs(self.unmatched_purchase_hours, 3600)),
            batch: self.batch,
            interval: Duration::from_secs(self.interval_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_clear_errors() {
        let d = RetentionSettings::default();
        assert_eq!(d.inbox, Duration::from_secs(30 * DAY));
        assert_eq!(d.agent_turns, Duration::from_secs(90 * DAY));
        assert_eq!(d.scrub_after, Duration::from_secs(180 * DAY));
        assert_eq!(d.unmatched_purchase_deadline, Duration::from_secs(72 * 3600));
        assert_eq!((d.batch, d.interval.as_secs()), (500, 900));

        let s: RetentionSection = toml::from_str("inbox_days = 7\nunmatched_purchase_hours = 24").unwrap();
        let s = s.settings().unwrap();
        assert_eq!((s.inbox.as_secs(), s.unmatched_purchase_deadline.as_secs()), (7 * DAY, 24 * 3600));

        let err = |text: &str| toml::from_str::<RetentionSection>(text).unwrap().settings().unwrap_err().to_string();
        assert!(err("outbox_days = 0").contains("[retention] outbox_days"));
        assert!(err("unmatched_purchase_hours = 0").contains("unmatched_purchase_hours"));
        assert!(err("batch = 0").contains("[retention] batch"));
        assert!(err("batch = 1000000").contains("[retention] batch"));
        assert!(err("scrub_after_days = 9223372036854775807").contains("scrub_after_days"));
        assert!(err("interval_secs = 0").contains("interval_secs"));
        assert!(toml::from_str::<RetentionSection>("keep_forever = true").is_err(), "unknown keys are errors");
    }
}
