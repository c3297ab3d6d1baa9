//! Limits on what one customer can make the assistant do, in front of the
//! question handler (the agent, or the moderator).
//!
//! A customer writing once a second must not starve everyone else: each
//! question can be an LLM turn of many seconds and a moderator-chat
//! update. So per customer, at most `per_minute` questions in any minute
//! reach the handler (the rest are stored in the conversation, not
//! answered, and nobody is pinged), and at most `per_day` agent turns per
//! UTC day (counted from the store's `agent_turns`, so a restart does not
//! reset it); past that the question goes to a person instead.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::{Question, QuestionHandler, QuestionOutcome};
use crate::domain::Verdict;
use crate::store::Store;

/// Per-customer limits (`[contact]` `questions_per_minute`, `agent_turns_per_day`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuestionLimits {
    pub per_minute: u32,
    pub per_day: u32,
}

impl Default for QuestionLimits {
    fn default() -> Self {
        Self { per_minute: 4, per_day: 40 }
    }
}

pub struct Budgeted {
    inner: Arc<dyn QuestionHandler>,
    store: Store,
    limits: QuestionLimits,
    /// Recent question times (unix ms) per customer, pruned to the last minute.
    recent: Mutex<HashMap<i64, VecDeque<i64>>>,
}

impl Budgeted {
    pub fn new(inner: Arc<dyn QuestionHandler>, store: Store, limits: QuestionLimits) -> Self {
        Self { inner, store, limits, recent: Mutex::default() }
    }

    /// Counts the question against the minute window; false when it is over.
    fn take_rate(&self, customer: i64, now: i64) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        // Forget customers who went quiet, so the map stays small.
        if recent.len() > 10_000 {
            recent.retain(|_, times| times.back().is_some_and(|t| now - t < 60_000));
        }
        let times = recent.entry(customer).or_default();
        while times.front().is_some_and(|t| now - t >= 60_000) {
            times.pop_front();
        }
        if times.len() >= self.limits.per_minute as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

#[async_trait::async_trait]
impl QuestionHandler for Budgeted {
    async fn on_question(&self, q: &Question) -> anyhow::Result<QuestionOutcome> {
        let now = crate::runtime::clock::now_ms();
        if !self.take_rate(q.customer_id, now) {
            return Ok(QuestionOutcome::Defer {
                why: format!("more than {} questions in a minute", self.limits.per_minute),
            });
        }
        let day_start = now - now.rem_euclid(86_400_000);
        let used = self.store.agent_turns_of_customer_since(q.customer_id, day_start).await?;
        if used >= i64::from(self.limits.per_day) {
            return Ok(QuestionOutcome::Escalate(Verdict::because(format!(
                "the agent's daily budget for this customer ({} answers) is used up",
                self.limits.per_day
            ))));
        }
        self.inner.on_question(q).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Language;

    struct Always;

    #[async_trait::async_trait]
    impl QuestionHandler for Always {
        async fn on_question(&self, _q: &Question) -> anyhow::Result<QuestionOutcome> {
            Ok(QuestionOutcome::Answer("ok".into()))
        }
    }

    #[tokio::test]
    async fn a_flooding_customer_is_held_back_per_minute_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
        let limits = QuestionLimits { per_minute: 3, per_day: 100 };
        let b = Budgeted::new(Arc::new(Always), store, limits);
        let q = |customer| Question {
            conversation_id: 1,
            customer_id: customer,
            text: "?".into(),
            language: Language::Ru,
            message_id: 1,
        };
        let mut answered = 0;
        for _ in 0..10 {
            if b.on_question(&q(1)).await.unwrap() == QuestionOutcome::Answer("ok".into()) {
                answered += 1;
            }
        }
        assert_eq!(answered, 3, "only three questions a minute reach the handler");
        assert_eq!(b.on_question(&q(2)).await.unwrap(), QuestionOutcome::Answer("ok".into()), "others are served");
    }

    #[test]
    fn the_minute_window_slides() {
        let limits = QuestionLimits { per_minute: 2, per_day: 100 };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = rt.block_on(Store::open(&dir.path().join("db.sqlite"))).unwrap();
        let b = Budgeted::new(Arc::new(Always), store, limits);
        assert!(b.take_rate(1, 0) && b.take_rate(1, 30_000));
        assert!(!b.take_rate(1, 59_999), "a third within the minute");
        assert!(b.take_rate(1, 60_000), "the first one left the window");
        assert!(!b.take_rate(1, 60_001));
        assert!(b.take_rate(1, 120_001));
    }
}
