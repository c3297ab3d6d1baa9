//! The budget of the whole account, across senders: how many agent turns
//! and how many new question cases per minute and per hour.
//!
//! The per-customer limits (`budget`) stop one customer; they do not stop a
//! hundred strangers, who would make a hundred agent turns of up to a
//! minute each and a hundred cards for the moderators. Past this budget a
//! question waits in the store (`Store::queue_question`) and the contact
//! tick releases the queue, oldest first, as the budget has room again.
//!
//! Counted from the store (`agent_turns`, `cases`), so a restart does not
//! reset it.

use std::num::NonZeroU32;

use crate::store::{BudgetItem, Store, StoreResult};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// `[contact]` `agent_turns_per_minute`, `agent_turns_per_hour`,
/// `question_cases_per_minute`, `question_cases_per_hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountBudget {
    pub agent_turns_per_minute: NonZeroU32,
    pub agent_turns_per_hour: NonZeroU32,
    pub question_cases_per_minute: NonZeroU32,
    pub question_cases_per_hour: NonZeroU32,
}

impl Default for AccountBudget {
    /// About what one serial agent and a small moderator team keep up with:
    /// an agent turn takes seconds (up to a minute), and moderators answer
    /// a few new questions a minute at best.
    fn default() -> Self {
        let n = |v| NonZeroU32::new(v).expect("the defaults are not zero");
        Self {
            agent_turns_per_minute: n(10),
            agent_turns_per_hour: n(120),
            question_cases_per_minute: n(3),
            question_cases_per_hour: n(30),
        }
    }
}

impl AccountBudget {
    /// `None` when a question may go to the question handler at `now`;
    /// else the earliest time it may (when every full window has room).
    ///
    /// Every question may end in a new case, so the case budget must have
    /// room as well as the turns budget.
    pub async fn next_room(&self, store: &Store, now: i64) -> StoreResult<Option<i64>> {
        let windows = [
            (BudgetItem::AgentTurn, MINUTE_MS, self.agent_turns_per_minute),
            (BudgetItem::AgentTurn, HOUR_MS, self.agent_turns_per_hour),
            (BudgetItem::QuestionCase, MINUTE_MS, self.question_cases_per_minute),
            (BudgetItem::QuestionCase, HOUR_MS, self.question_cases_per_hour),
        ];
        let mut until = None;
        for (item, window, limit) in windows {
            if let Some(at) = store.budget_full_since(item, now - window, limit.get()).await? {
                // The window has room once that item left it.
                until = until.max(Some(at + window + 1));
            }
        }
        Ok(until)
    }

    /// The budget in words, for the moderators' card.
    pub fn describe(&self) -> String {
        format!(
            "the budget is {} agent answers a minute and {} an hour, {} new question cases a minute and {} an hour",
            self.agent_turns_per_minute,
            self.agent_turns_per_hour,
            self.question_cases_per_minute,
            self.question_cases_per_hour
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Language;
    use crate::store::{Escalation, NewAgentTurn};

    fn budget(turns_per_minute: u32, cases_per_minute: u32) -> AccountBudget {
        let n = |v| NonZeroU32::new(v).unwrap();
        AccountBudget {
            agent_turns_per_minute: n(turns_per_minute),
            agent_turns_per_hour: n(1000),
            question_cases_per_minute: n(cases_per_minute),
            question_cases_per_hour: n(1000),
        }
    }

    async fn turn(store: &Store, customer: i64) {
        store
            .record_agent_turn(&NewAgentTurn {
                conversation_id: Some(1),
                customer_id: Some(customer),
                question: "?",
                answer: None,
                reply: "ok",
                language: "ru",
                confidence: None,
                sources: &[],
                reasons: serde_json::json!([]),
                escalated: false,
                mode: "retrieval",
                latency_ms: 1,
            })
            .await
            .unwrap();
    }

    /// Counted from the store across customers, so a fresh handle (a
    /// restart) sees the same budget; a window has room again once its
    /// oldest counted item left it.
    #[tokio::test]
    async fn turns_and_cases_of_every_customer_count_and_survive_a_restart() {
        let _clock = crate::runtime::clock::paused::PausedClock::start();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).await.unwrap();
        let b = budget(2, 1);
        let start = crate::runtime::clock::now_ms();
        assert_eq!(b.next_room(&store, start).await.unwrap(), None);
        turn(&store, 1).await;
        tokio::time::advance(std::time::Duration::from_secs(10)).await;
        turn(&store, 2).await;
        let now = crate::runtime::clock::now_ms();
        assert_eq!(b.next_room(&store, now).await.unwrap(), Some(start + MINUTE_MS + 1), "two customers, two turns");

        store.close().await;
        let store = Store::open(&path).await.unwrap();
        assert_eq!(b.next_room(&store, now).await.unwrap(), Some(start + MINUTE_MS + 1), "after a restart too");
        assert_eq!(b.next_room(&store, start + MINUTE_MS + 1).await.unwrap(), None, "the first turn left the minute");

        // One new question case a minute: the second must wait.
        let conv = store.open_conversation(3, "Ann", Language::En, now).await.unwrap();
        store.open_case(&Escalation::question(conv.id, &crate::domain::Verdict::because(""))).await.unwrap();
        let later = start + MINUTE_MS + 1;
        let room = b.next_room(&store, later).await.unwrap().expect("the case budget is full");
        assert_eq!(room, now + MINUTE_MS + 1);
    }
}
