//! Case follow-ups that merge while they wait, so a busy case posts to the
//! moderator chat at a bounded rate instead of once per event.
//!
//! A customer writing ten messages to their open case, or a hundred senders
//! joining the question queue, would otherwise be ten (a hundred) posts.
//! Instead one follow-up row per case and kind waits in the outbox: the
//! first one is due at once (or at `not_before`), each later one no sooner
//! than `every` after the one before, and what comes meanwhile is merged
//! into the row that waits — appended (a customer's messages) or replacing
//! it (a summary's newest figures).
//!
//! Merging is race-free with the desk's poster: a row is only changed while
//! it is not due yet and was never tried, so the poster (which only takes
//! due rows) has not read it, and a retry never sends a text other than the
//! one an earlier attempt may have delivered (`migrations/0016_crowds.sql`).

use super::outbox::insert_update;
use super::{Store, StoreResult};
use crate::runtime::clock::now_ms;

/// What a follow-up adds to a waiting one of the same case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoalescedUpdate<'a> {
    /// `start` opens a new post; `more` is added to a waiting one, after a blank line.
    Append { start: &'a str, more: &'a str },
    /// Only the newest text counts (a summary): it replaces a waiting one.
    Replace(&'a str),
}

impl CoalescedUpdate<'_> {
    fn mode(&self) -> &'static str {
        match self {
            CoalescedUpdate::Append { .. } => "append",
            CoalescedUpdate::Replace(_) => "replace",
        }
    }
}

impl Store {
    /// Queues `update` for case `case_id`: merged into the case's waiting
    /// follow-up of the same kind if there is one, else a new follow-up due
    /// at the latest of now, `not_before`, and `every_ms` after the last one
    /// of that kind.
    pub async fn coalesced_case_update(
        &self,
        case_id: i64,
        update: CoalescedUpdate<'_>,
        every_ms: i64,
        not_before: i64,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mode = update.mode();
        // The merge is the transaction's first statement, so it takes the
        // write lock before anything is read (a read first could not turn
        // into a write once another connection wrote: SQLITE_BUSY_SNAPSHOT).
        let waiting = "(SELECT id FROM moderator_outbox
             WHERE case_id = ? AND coalescing = ? AND posted_at IS NULL AND parked_at IS NULL
               AND attempts = 0 AND next_attempt_at > ?
             ORDER BY id DESC LIMIT 1)";
        let (merge, text) = match update {
            CoalescedUpdate::Append { more, .. } => (
                format!("UPDATE moderator_outbox SET text = text || char(10) || char(10) || ? WHERE id = {waiting}"),
                more,
            ),
            CoalescedUpdate::Replace(text) => {
                (format!("UPDATE moderator_outbox SET text = ? WHERE id = {waiting}"), text)
            }
        };
        let mut tx = self.pool.begin().await?;
        let merged =
            sqlx::query(&merge).bind(text).bind(case_id).bind(mode).bind(now).execute(&mut *tx).await?.rows_affected();
        if merged == 0 {
            let last: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(next_attempt_at) FROM moderator_outbox WHERE case_id = ? AND coalescing = ?",
            )
            .bind(case_id)
            .bind(mode)
            .fetch_one(&mut *tx)
            .await?;
            let due = now.max(not_before).max(last.map_or(0, |t| t + every_ms));
            let text = match update {
                CoalescedUpdate::Append { start, .. } => start,
                CoalescedUpdate::Replace(text) => text,
            };
            let id = insert_update(&mut tx, case_id, text, now).await?;
            sqlx::query("UPDATE moderator_outbox SET coalescing = ?, next_attempt_at = ? WHERE id = ?")
                .bind(mode)
                .bind(due)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Closes an open case (false when it was closed already) with its
    /// outcome and `follow_up`, dropping its summaries that wait to be
    /// posted: the closing follow-up has the final figures.
    pub async fn close_case_dropping_summaries(
        &self,
        case_id: i64,
        outcome: &str,
        follow_up: &str,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let closed = super::cases::close_case_tx(&mut tx, case_id, outcome, now).await?;
        if closed {
            sqlx::query(
                "DELETE FROM moderator_outbox
                 WHERE case_id = ? AND coalescing = 'replace' AND posted_at IS NULL AND attempts = 0
                   AND next_attempt_at > ?",
            )
            .bind(case_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_update(&mut tx, case_id, follow_up, now).await?;
        }
        tx.commit().await?;
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Language;
    use crate::store::{CardBody, Escalation};

    fn texts(rows: &[crate::store::OutboxCard]) -> Vec<(String, i64)> {
        rows.iter()
            .filter(|r| r.is_update())
            .map(|r| match &r.body {
                CardBody::Text(t) => (t.clone(), r.next_attempt_at),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn waiting_follow_ups_are_merged_and_spaced() {
        let _clock = crate::runtime::clock::paused::PausedClock::start();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let conv = store.open_conversation(5, "Иван", Language::Ru, 0).await.unwrap();
        let case = store.open_case(&Escalation::question(conv.id, &crate::domain::Verdict::because(""))).await.unwrap();
        let relay = |more: &'static str| CoalescedUpdate::Append { start: "💬 wrote:\n1", more };
        let t0 = now_ms();
        store.coalesced_case_update(case, relay("1"), 30_000, 0).await.unwrap();
        store
            .coalesced_case_update(case, CoalescedUpdate::Append { start: "💬 wrote:\n2", more: "2" }, 30_000, 0)
            .await
            .unwrap();
        store.coalesced_case_update(case, relay("3"), 30_000, 0).await.unwrap();
        let rows = texts(&store.pending_cards().await.unwrap());
        assert_eq!(rows.len(), 2, "the first is due at once, the rest wait together: {rows:?}");
        assert_eq!(rows[0], ("💬 wrote:\n1".to_owned(), t0));
        assert_eq!(rows[1].0, "💬 wrote:\n2\n\n3");
        assert_eq!(rows[1].1, t0 + 30_000, "no sooner than 30 s after the one before");

        // Once due, it is the poster's: a later message starts a new one.
        tokio::time::advance(std::time::Duration::from_millis(30_001)).await;
        store
            .coalesced_case_update(case, CoalescedUpdate::Append { start: "💬 wrote:\n4", more: "4" }, 30_000, 0)
            .await
            .unwrap();
        let rows = texts(&store.pending_cards().await.unwrap());
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[2], ("💬 wrote:\n4".to_owned(), t0 + 60_000));

        // A summary is replaced while it waits, and dropped when its case closes.
        let not_before = now_ms() + 300_000;
        for n in ["2 waiting", "3 waiting"] {
            store.coalesced_case_update(case, CoalescedUpdate::Replace(n), 300_000, not_before).await.unwrap();
        }
        let rows = texts(&store.pending_cards().await.unwrap());
        assert_eq!(rows[3], ("3 waiting".to_owned(), not_before));
        assert!(store.close_case_dropping_summaries(case, "done", "closed: 3 taken").await.unwrap());
        let rows = texts(&store.pending_cards().await.unwrap());
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert_eq!(rows[3].0, "closed: 3 taken");
        assert!(!store.close_case_dropping_summaries(case, "done", "again").await.unwrap());
    }
}
