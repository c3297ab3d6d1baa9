//! Wake-up hints between tasks. The work itself is always in the store;
//! a hint only says "look now" instead of at the next sweep, so a lost or
//! coalesced hint costs a delay, never an item. A hint sent while nobody
//! waits is kept (one permit), so it cannot fall between a look and a wait.

use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the waiting task to look at the store now.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next hint (or at once if one came since the last wait).
    pub async fn woken(&self) {
        self.0.notified().await
    }
}

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wake")
    }
}
