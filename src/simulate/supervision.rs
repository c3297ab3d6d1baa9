//! How often the daemon's supervision stepped in: tasks it restarted and
//! inbox items it quarantined (an item whose handling kept failing is set
//! aside with ONE moderator notice, "this message could not be handled: …").
//!
//! The one place that knows where those counts live. Today they are read
//! from the daemon's `/metrics` (scraped by the driver just before the
//! daemon's last stop): the sum of the samples of every family whose name
//! contains `tasks_restarted` or `items_quarantined`; a daemon that does
//! not export them reports 0. Point [`from_metrics`] elsewhere (the store,
//! another family name) if the counts live somewhere else.

use serde::Serialize;

use crate::telegram::Message;

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
    /// The counters from a `/metrics` scrape (`None`: none was taken) and
    /// the notices from the moderator chat.
    pub fn from_metrics(metrics: Option<&str>, moderator_chat: &[Message]) -> Self {
        let sum = |needle: &str| metrics.map_or(0, |text| sum_family(text, needle));
        Supervision {
            tasks_restarted: sum("tasks_restarted"),
            items_quarantined: sum("items_quarantined"),
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
    fn counts_come_from_the_families_that_exist() {
        let text = "# HELP tribute_assistant_tasks_restarted_total Restarts.\n\
                    # TYPE tribute_assistant_tasks_restarted_total counter\n\
                    tribute_assistant_tasks_restarted_total{task=\"contact\"} 2\n\
                    tribute_assistant_tasks_restarted_total{task=\"desk\"} 1\n\
                    tribute_assistant_up 1\n";
        let s = Supervision::from_metrics(Some(text), &[]);
        assert_eq!((s.tasks_restarted, s.items_quarantined), (3, 0));
        assert_eq!(Supervision::from_metrics(None, &[]), Supervision::default());
    }
}
