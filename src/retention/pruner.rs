//! The pruner: one batch per table per pass, on the one clock.
//!
//! A pass asks the store for each kind of data past its window (the store
//! decides what is pending and never touches it); a table that filled its
//! batch has more due, and the next pass follows a second later instead of
//! after the interval. Nothing is kept in memory between passes: what is
//! due is whatever the store holds past its window at the time.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, info_span, warn, Instrument};

use super::RetentionSettings;
use crate::runtime::shutdown::stopped;
use crate::store::{Store, StoreError};

/// The pause after a pass that left more to do: short, so a backlog
/// drains, but long enough to let the order worker write in between.
const MORE_PAUSE: Duration = Duration::from_secs(1);

/// What one pass did, per kind of data; `more` when some kind had more
/// than one batch due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub counts: BTreeMap<&'static str, u64>,
    pub more: bool,
}

impl PruneReport {
    /// Rows (or customers, or purchases) of `kind` this pass touched.
    pub fn get(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.counts.values().all(|n| *n == 0)
    }
}

pub struct Pruner {
    store: Store,
    settings: RetentionSettings,
}

impl Pruner {
    pub fn new(store: Store, settings: RetentionSettings) -> Self {
        Self { store, settings }
    }

    /// One batch of each kind of data past its window at `now_ms`.
    pub async fn pass(&self, now_ms: i64) -> Result<PruneReport, StoreError> {
        let (s, store) = (&self.settings, &self.store);
        let batch = i64::from(s.batch);
        let before = |window: Duration| now_ms.saturating_sub(window.as_millis() as i64);
        let mut counts = BTreeMap::new();
        let deadline_hours = s.unmatched_purchase_deadline.as_secs() / 3600;
        let detail = format!(
            "none within {deadline_hours} h; it is no longer matched automatically: \
             match it by hand or refund it"
        );
        counts.insert(
            "purchases_handed_over",
            store.stop_matching_purchases(before(s.unmatched_purchase_deadline), batch, &detail, now_ms).await?,
        );
        counts.insert("inbox", store.prune_handled_inbox(before(s.inbox), batch).await?);
        counts.insert("webhook_bodies", store.scrub_webhook_bodies(before(s.webhook_bodies), batch).await?);
        counts.insert("agent_turns", store.prune_agent_turns(before(s.agent_turns), batch).await?);
        counts.insert("customer_outbox", store.prune_customer_outbox(before(s.outboxes), batch).await?);
        counts.insert("case_follow_ups", store.prune_case_follow_ups(before(s.outboxes), batch).await?);
        counts.insert("tribute_copies", store.prune_tribute_copies(before(s.outboxes), batch).await?);
        counts.insert("learn_previews", store.prune_learn_previews(before(s.outboxes), batch).await?);
        counts.insert("queued_questions", store.prune_released_questions(before(s.outboxes), batch).await?);
        counts.insert(
            "daily_counters",
            store.prune_daily_counters(&crate::runtime::clock::day(before(s.inbox)), batch).await?,
        );
        let scrub = before(s.scrub_after);
        counts.insert("conversation_messages", store.prune_closed_conversation_messages(scrub, batch).await?);
        counts.insert("customers", store.scrub_inactive_customers(scrub, batch, now_ms).await?);
        counts.insert("anonymous_orders", store.scrub_anonymous_orders(scrub, batch, now_ms).await?);
        counts.insert("tribute_messages", store.scrub_tribute_messages(scrub, batch).await?);
        counts.insert("audit_texts", store.scrub_audit_texts(scrub, batch).await?);
        let more = counts.values().any(|n| *n >= s.batch as u64);
        store.record_retention_pass(now_ms, more).await?;
        Ok(PruneReport { counts, more })
    }

    /// Passes until shutdown, sleeping on tokio's time between them (so
    /// a paused clock drives it); a failed pass is logged and retried
    /// after the interval.
    pub async fn run(
        self,
        shutdown: watch::Receiver<bool>,
        task: crate::runtime::TaskHandle,
    ) -> Result<(), std::convert::Infallible> {
        loop {
            task.beat();
            let pause = match self.pass(crate::runtime::clock::now_ms()).instrument(info_span!("retention")).await {
                Ok(report) => {
                    if !report.is_empty() {
                        let touched: Vec<String> =
                            report.counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}: {n}")).collect();
                        info!(more = report.more, "retention pass: {}", touched.join(", "));
                    }
                    if report.more {
                        MORE_PAUSE
                    } else {
                        self.settings.interval
                    }
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?self.settings.interval, "retention pass failed; will retry");
                    self.settings.interval
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped(&shutdown) => return Ok(()),
            }
        }
    }
}
