//! Erasing one customer on request: the `forget` command and `/forget` in
//! the moderator chat. The store erases in one transaction (or refuses,
//! naming the pending work); the knowledge base's index is another store,
//! so its copy of the customer's `/learn`ed answers is a work item
//! (`kb_removals`) until the index confirms it is gone.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tracing::{info, warn};

use crate::knowledge::KnowledgeBase;
use crate::runtime::backoff::{self, Jitter};
use crate::store::{Forgotten, Store, StoreError};

/// A customer as Telegram knows them: a user id (their private chat's id),
/// always a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CustomerId(i64);

impl CustomerId {
    pub fn new(id: i64) -> Option<Self> {
        (id > 0).then_some(Self(id))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl FromStr for CustomerId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<i64>()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| format!("{s:?} is not a Telegram user id (a positive integer, e.g. 123456789)"))
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who asked for an erasure (the erasure log keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    CommandLine,
    /// A configured moderator, by Telegram user id.
    Moderator(i64),
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requester::CommandLine => f.write_str("command line"),
            Requester::Moderator(id) => write!(f, "moderator {id}"),
        }
    }
}

/// Erases `customer`'s personal data now (see `store::erasure`), or
/// returns the pending work that prevents it. Idempotent: a second call
/// erases nothing more.
pub async fn forget_customer(store: &Store, customer: CustomerId, by: Requester) -> Result<Forgotten, StoreError> {
    let forgotten = store.forget_customer(customer.get(), &by.to_string(), crate::runtime::clock::now_ms()).await?;
    match &forgotten {
        // The log names neither the customer nor what was erased beyond kinds and counts.
        Forgotten::Erased { counts, .. } => info!(requested_by = %by, %counts, "customer erased"),
        Forgotten::Pending(_) => warn!(requested_by = %by, "erasure refused: the customer has work in progress"),
    }
    Ok(forgotten)
}

/// Removes an erased conversation's approved pairs from the knowledge
/// base's index.
#[async_trait::async_trait]
pub trait IndexEraser: Send + Sync {
    async fn remove_conversation(&self, conversation_id: i64) -> anyhow::Result<()>;
}

#[async_trait::async_trait]
impl IndexEraser for KnowledgeBase {
    async fn remove_conversation(&self, conversation_id: i64) -> anyhow::Result<()> {
        let removed = self.forget_conversation(conversation_id).await?;
        info!(conversation_id, removed, "erased approved answers removed from the knowledge base");
        Ok(())
    }
}

/// First wait before removing from the index again; doubles per failure.
const RETRY: Duration = Duration::from_secs(30);
const RETRY_MAX: Duration = Duration::from_secs(3600);

/// Removes from the index what erasures left there and is due by
/// `due_by` (`now` in the daemon; a command run by hand tries them all);
/// a failure stays a work item, retried later with backoff. Returns how
/// many failed.
pub async fn remove_from_index(
    store: &Store,
    index: &dyn IndexEraser,
    due_by: i64,
    now: i64,
) -> Result<usize, StoreError> {
    let due = store.kb_removals_due(due_by, 20).await?;
    let mut failed = 0;
    for (conversation_id, attempts) in due {
        match index.remove_conversation(conversation_id).await {
            Ok(()) => store.kb_removal_done(conversation_id).await?,
            Err(e) => {
                let wait = backoff::delay(attempts, RETRY, RETRY_MAX, Jitter::Spread);
                warn!(error = format!("{e:#}"), conversation_id, retry_in = ?wait,
                      "erased answers are still in the knowledge base; retrying");
                store.retry_kb_removal_later(conversation_id, now + wait.as_millis() as i64).await?;
                failed += 1;
            }
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_are_positive_integers() {
        assert_eq!("123456789".parse::<CustomerId>().unwrap().get(), 123_456_789);
        assert_eq!(" 42 ".parse::<CustomerId>().unwrap().to_string(), "42");
        for bad in ["0", "-5", "abc", "", "1.5", "@ivan"] {
            let err = bad.parse::<CustomerId>().unwrap_err();
            assert!(err.contains("Telegram user id"), "{bad}: {err}");
        }
        assert_eq!(Requester::Moderator(7).to_string(), "moderator 7");
    }
}
