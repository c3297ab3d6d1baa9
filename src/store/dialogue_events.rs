//! What the customer dialogue must react to, written by an order's own
//! transition (migrations 0020 and 0021: triggers on the order's move to
//! `needs_customer` when it names its customer — only then can it be
//! adopted — and to `confirmed` while it has an open case; the
//! compare-and-set returns whether it wrote one): the contact task takes
//! these rows instead of scanning every order for the ones that now need a
//! customer, and sleeps until the store has something due
//! ([`Store::next_contact_due`]).

use sqlx::Row;

use super::{Store, StoreError, StoreResult};

/// Why the dialogue must look at an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogueEventKind {
    /// The order waits for its customer: adopt it, or hand it back to its case.
    NeedsCustomer,
    /// An order with an open case was confirmed: close the case.
    Completed,
}

impl DialogueEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DialogueEventKind::NeedsCustomer => "needs_customer",
            DialogueEventKind::Completed => "completed",
        }
    }
}

/// One event waiting for the contact task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogueEvent {
    pub id: i64,
    pub order_id: i64,
    pub kind: DialogueEventKind,
    pub attempts: i64,
}

impl Store {
    /// Resolves when a committed order move wrote a dialogue event in this
    /// process (another process's writes are found by the contact task's
    /// slow re-check).
    pub fn dialogue_hint(&self) -> crate::runtime::wake::Wake {
        self.dialogue.clone()
    }

    /// After the commit of a move that wrote a dialogue event: the contact
    /// task looks now. After, not before: woken earlier it could look
    /// before the row is visible and sleep past it.
    pub(super) fn hint_dialogue(&self, wrote: bool) {
        if wrote {
            self.dialogue.wake();
        }
    }

    /// Events due at `now`, oldest first.
    pub async fn due_dialogue_events(&self, now: i64, limit: i64) -> StoreResult<Vec<DialogueEvent>> {
        let rows = sqlx::query(
            "SELECT id, order_id, kind, attempts FROM dialogue_events WHERE due_at <= ? ORDER BY due_at, id LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get("id");
                let kind = match r.get::<&str, _>("kind") {
                    "needs_customer" => DialogueEventKind::NeedsCustomer,
                    "completed" => DialogueEventKind::Completed,
                    other => return Err(StoreError::Corrupt(format!("dialogue event {id}: kind {other:?}"))),
                };
                Ok(DialogueEvent { id, order_id: r.get("order_id"), kind, attempts: r.get("attempts") })
            })
            .collect()
    }

    /// The dialogue has acted on the event.
    pub async fn dialogue_event_handled(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM dialogue_events WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Acting on the event failed: try again at `at`, with why on the row.
    pub async fn dialogue_event_failed(&self, id: i64, error: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE dialogue_events SET attempts = attempts + 1, last_error = ?, due_at = ? WHERE id = ?")
            .bind(error)
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When the contact task next has work of its own in the store (unix
    /// ms; `Some(0)`: now): an order event, a dialogue whose timer is due
    /// or that changed since it was looked at, a message to a customer, a
    /// queued question. None: nothing until something new is written.
    pub async fn next_contact_due(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(t) FROM (
                 SELECT MIN(due_at) AS t FROM dialogue_events
                 UNION ALL SELECT MIN(due_at) FROM conversations WHERE due_at IS NOT NULL
                 UNION ALL SELECT 0 WHERE EXISTS (SELECT 1 FROM conversations WHERE version > looked_version)
                 UNION ALL SELECT MIN(due_at) FROM customer_outbox WHERE status = 'pending'
                 UNION ALL SELECT MIN(due_at) FROM queued_questions WHERE released_at IS NULL)",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::DialogueEventKind;
    use crate::domain::{EscalationReason, OrderState};
    use crate::store::{Escalation, Store, Transition};

    async fn order(store: &Store, msg: i32, customer: Option<i64>) -> i64 {
        crate::store::test_orders::record(store, msg, customer, None).await
    }

    async fn moves(store: &Store, id: i64, path: &[OrderState]) {
        for pair in path.windows(2) {
            store.transition(id, pair[0], Transition::to(pair[1], "step")).await.unwrap();
        }
    }

    /// Whether the contact task was hinted since the last look.
    async fn hinted(store: &Store) -> bool {
        tokio::time::timeout(std::time::Duration::ZERO, store.dialogue_hint().woken()).await.is_ok()
    }

    /// The triggers write the events; the compare-and-set's own answer
    /// hints the contact task: the two must agree, move by move.
    #[tokio::test]
    async fn only_moves_that_concern_a_customer_or_a_case_write_an_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let with_customer = order(&store, 1, Some(42)).await;
        let anonymous = order(&store, 2, None).await;
        for (id, hint) in [(with_customer, true), (anonymous, false)] {
            moves(&store, id, &[OrderState::Received, OrderState::NeedsCustomer]).await;
            assert_eq!(hinted(&store).await, hint, "order {id}");
        }
        let events = store.due_dialogue_events(i64::MAX, 10).await.unwrap();
        assert_eq!(
            events.iter().map(|e| (e.order_id, e.kind)).collect::<Vec<_>>(),
            vec![(with_customer, DialogueEventKind::NeedsCustomer)]
        );
        store.dialogue_event_handled(events[0].id).await.unwrap();

        // Confirmed with an open case: the case's event; without one: none.
        let (cased, plain) = (order(&store, 3, Some(43)).await, order(&store, 4, Some(44)).await);
        let mut t = Transition::to(OrderState::Escalated, "backend refused");
        t.escalation = Some(Escalation::order(cased, EscalationReason::BackendRejected, "HTTP 400"));
        store.transition(cased, OrderState::Received, t).await.unwrap();
        moves(&store, plain, &[OrderState::Received, OrderState::Escalated]).await;
        for (id, hint) in [(cased, true), (plain, false)] {
            moves(&store, id, &[OrderState::Escalated, OrderState::Replied]).await;
            assert!(!hinted(&store).await, "order {id} replied");
            moves(&store, id, &[OrderState::Replied, OrderState::Confirmed]).await;
            assert_eq!(hinted(&store).await, hint, "order {id} confirmed");
        }
        let events = store.due_dialogue_events(i64::MAX, 10).await.unwrap();
        assert_eq!(
            events.iter().map(|e| (e.order_id, e.kind)).collect::<Vec<_>>(),
            vec![(cased, DialogueEventKind::Completed)]
        );
    }

    #[tokio::test]
    async fn a_failed_event_waits_until_its_retry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let id = order(&store, 1, Some(7)).await;
        moves(&store, id, &[OrderState::Received, OrderState::NeedsCustomer]).await;
        let event = store.due_dialogue_events(i64::MAX, 1).await.unwrap().remove(0);
        let now = crate::runtime::clock::now_ms();
        store.dialogue_event_failed(event.id, "disk full", now + 5_000).await.unwrap();
        assert!(store.due_dialogue_events(now, 10).await.unwrap().is_empty());
        assert_eq!(store.next_contact_due().await.unwrap(), Some(now + 5_000));
        assert_eq!(store.due_dialogue_events(now + 5_000, 10).await.unwrap()[0].attempts, 1);
    }

    /// An upgrade loses nothing the old once-a-second scan would have
    /// found: an order waiting for its customer that no dialogue asks
    /// about yet, and an open case of a completed order.
    #[tokio::test]
    async fn the_migration_writes_the_events_an_upgraded_store_is_owed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path).await.unwrap();
        let waiting = order(&store, 1, Some(42)).await;
        moves(&store, waiting, &[OrderState::Received, OrderState::NeedsCustomer]).await;
        let cased = order(&store, 2, Some(43)).await;
        let mut t = Transition::to(OrderState::Escalated, "backend refused");
        t.escalation = Some(Escalation::order(cased, EscalationReason::BackendRejected, "HTTP 400"));
        store.transition(cased, OrderState::Received, t).await.unwrap();
        moves(&store, cased, &[OrderState::Escalated, OrderState::Replied, OrderState::Confirmed]).await;
        // The store as it was before 0020.
        for sql in ["DROP TABLE dialogue_events", "DELETE FROM _sqlx_migrations WHERE version = 20"] {
            sqlx::query(sql).execute(&store.pool).await.unwrap();
        }
        store.close().await;

        let store = Store::open(&path).await.unwrap();
        let mut owed: Vec<_> =
            store.due_dialogue_events(0, 10).await.unwrap().into_iter().map(|e| (e.order_id, e.kind)).collect();
        owed.sort_by_key(|(id, _)| *id);
        assert_eq!(owed, vec![(waiting, DialogueEventKind::NeedsCustomer), (cased, DialogueEventKind::Completed)]);
    }
}
