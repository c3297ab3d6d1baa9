//! How often the daemon's supervision stepped in: tasks it restarted and
//! inbox items it quarantined (an item whose handling kept failing is set
//! aside with ONE moderator notice, "this message could not be handled: …").
//!
//! Where the counts live: quarantined items in the store (inbox rows with
//! `quarantined_at`: they survive the daemon's restarts during a run), the
//! restarts in the daemon's `/metrics` (`tribute_assistant_task_restarts_total`,
//! scraped by the driver just before the daemon's last stop: that run's
//! restarts; a process restart starts them afresh).

use serde::Serialize;

use tribute_assistant::telegram::Message;

/// What the moderator chat shows for one quarantined item.
pub const QUARANTINE_NOTICE: &str = "could not be handled";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Supervision {
    pub tasks_restarted: u64,
    pub items_quarantined: u64,
    /// Our messages in the moderator chat that say an item could not be handled.
    pub quarantine_notices: u64,
}

impl Supervision {
    /// The restarts from a `/metrics` scrape (`None`: none was taken), the
    /// quarantined items from the store and the notices from the moderator chat.
    pub fn read(metrics: Option<&str>, quarantined: u64, moderator_chat: &[Message]) -> Self {
        Supervision {
            tasks_restarted: metrics.map_or(0, |text| sum_family(text, "task_restarts_total")),
            items_quarantined: quarantined,
            quarantine_notices: moderator_chat
                .iter()
                .filter(|m| m.outgoing && m.text.to_lowercase().contains(QUARANTINE_NOTICE))
                .count() as u64,
        }
    }
}

/// The sum of the samples of the families whose name contains `needle`
/// (Prometheus text format; comments and other families skipped).
fn sum_family(text: &str, needle: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let name = name.split('{').next()?;
            name.contains(needle).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum::<f64>()
        .round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_come_from_the_daemon_s_metrics_and_quarantines_from_the_store() {
        let text = "# HELP tribute_assistant_task_restarts_total Restarts.\n\
                    # TYPE tribute_assistant_task_restarts_total counter\n\
                    tribute_assistant_task_restarts_total{task=\"contact\"} 2\n\
                    tribute_assistant_task_restarts_total{task=\"cards\"} 1\n\
                    tribute_assistant_items_quarantined_total{task=\"contact\"} 9\n\
                    tribute_assistant_up 1\n";
        let s = Supervision::read(Some(text), 1, &[]);
        assert_eq!((s.tasks_restarted, s.items_quarantined, s.quarantine_notices), (3, 1, 0));
        assert_eq!(Supervision::read(None, 0, &[]), Supervision::default());
    }
}
