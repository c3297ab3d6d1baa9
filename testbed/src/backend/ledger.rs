//! The reference backend's books: accounts, pending orders, idempotency
//! keys, accepted signatures and counters. Plain synchronous code with no
//! I/O, so the HTTP handlers stay thin and hold the lock only briefly.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tribute_assistant::backend::signing::MacBytes;

/// Counters a test or benchmark reads back from the reference backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Every `POST /activate` request received, whatever its answer.
    pub requests: u64,
    /// Real activations (each consumed one pending order).
    pub activations: u64,
    /// Requests answered `already_activated`.
    pub already_activated: u64,
    /// Requests refused with 401 (missing, malformed, wrong, stale or replayed signature).
    pub rejected_signatures: u64,
    /// Requests answered 503 because of [`fail_next`](super::ReferenceBackend::fail_next).
    pub failures_injected: u64,
    /// Every `POST /deactivate` request received, whatever its answer.
    pub deactivation_requests: u64,
    /// Real deactivations (each took back one activation).
    pub deactivations: u64,
}

/// What the business logic decided for one authenticated `/deactivate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Deactivation {
    Deactivated,
    AlreadyDeactivated,
    NotActivated,
}

/// What the business logic decided for one authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    Activated(String),
    AlreadyActivated(String),
    UnknownAccount,
    NoPendingOrder,
    /// Nothing is pending for this account and product, and an earlier
    /// activation fulfilled one: the customer most likely paid twice.
    AlreadyFulfilled,
}

#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// account id → (lower-cased product name → pending orders).
    accounts: HashMap<String, HashMap<String, u32>>,
    /// (account id, lower-cased product name) of every pending order an
    /// activation consumed, to tell a second payment from nothing pending.
    fulfilled: HashSet<(String, String)>,
    /// Idempotency key → activation id. Only successful activations bind a
    /// key: a 404/422 must not, because the same order is retried with a
    /// corrected account ID.
    activated_keys: HashMap<String, String>,
    /// `(t, MAC)` of every signature entry already accepted, for the replay check.
    accepted_signatures: HashSet<(i64, MacBytes)>,
    requests_by_key: HashMap<String, u32>,
    /// Idempotency key → the reason it was deactivated with.
    deactivated_keys: HashMap<String, String>,
    handler_time: HashMap<String, Duration>,
    next_activation: u64,
    pub(super) fail_next: u32,
    /// The next this many authenticated `/activate` requests are refused
    /// as invalid (400), like a backend that does not sell the product yet.
    pub(super) reject_next: u32,
    pub(super) delay: Duration,
    pub(super) stats: BackendStats,
}

fn product_key(product: &str) -> String {
    product.trim().to_lowercase()
}

impl Ledger {
    pub(super) fn add_account(&mut self, account: &str) {
        self.accounts.entry(account.to_owned()).or_default();
    }

    pub(super) fn add_pending(&mut self, account: &str, product: &str) {
        *self.accounts.entry(account.to_owned()).or_default().entry(product_key(product)).or_default() += 1;
    }

    /// Counts an incoming `/activate` request (and its key, when it has one).
    pub(super) fn note_request(&mut self, key: Option<&str>) {
        self.stats.requests += 1;
        if let Some(key) = key {
            *self.requests_by_key.entry(key.to_owned()).or_default() += 1;
        }
    }

    /// Records a verified signature (its `t` and the MACs that matched);
    /// `false` when any of them was accepted before with the same `t`,
    /// however the header was spelled. Entries older than `forget_before`
    /// can no longer pass the freshness check anyway, so they are dropped to
    /// keep the set small.
    pub(super) fn accept_signature(&mut self, t: i64, macs: &[MacBytes], forget_before: i64) -> bool {
        self.accepted_signatures.retain(|(seen_t, _)| *seen_t >= forget_before);
        if macs.iter().any(|mac| self.accepted_signatures.contains(&(t, *mac))) {
            return false;
        }
        self.accepted_signatures.extend(macs.iter().map(|mac| (t, *mac)));
        true
    }

    /// Uses up one injected failure, if any is left.
    pub(super) fn take_injected_failure(&mut self) -> bool {
        if self.fail_next == 0 {
            return false;
        }
        self.fail_next -= 1;
        self.stats.failures_injected += 1;
        true
    }

    /// The activation rules, in the documented order.
    pub(super) fn decide(&mut self, key: &str, account: &str, product: &str) -> Decision {
        if let Some(id) = self.activated_keys.get(key) {
            self.stats.already_activated += 1;
            return Decision::AlreadyActivated(id.clone());
        }
        let Some(pending) = self.accounts.get_mut(account) else {
            return Decision::UnknownAccount;
        };
        let fulfilled = (account.to_owned(), product_key(product));
        match pending.get_mut(&fulfilled.1) {
            Some(n) if *n > 0 => *n -= 1,
            _ if self.fulfilled.contains(&fulfilled) => return Decision::AlreadyFulfilled,
            _ => return Decision::NoPendingOrder,
        }
        self.fulfilled.insert(fulfilled);
        self.next_activation += 1;
        let id = format!("act-{:06}", self.next_activation);
        self.activated_keys.insert(key.to_owned(), id.clone());
        self.stats.activations += 1;
        Decision::Activated(id)
    }

    /// Takes back an activation once; the activation id must be the one we handed out.
    pub(super) fn deactivate(&mut self, key: &str, activation_id: &str, reason: &str) -> Deactivation {
        if self.deactivated_keys.contains_key(key) {
            return Deactivation::AlreadyDeactivated;
        }
        match self.activated_keys.get(key) {
            Some(id) if id == activation_id => {
                self.deactivated_keys.insert(key.to_owned(), reason.to_owned());
                self.stats.deactivations += 1;
                Deactivation::Deactivated
            }
            _ => Deactivation::NotActivated,
        }
    }

    pub(super) fn deactivations_for(&self, key: &str) -> u32 {
        u32::from(self.deactivated_keys.contains_key(key))
    }

    pub(super) fn activations_for(&self, key: &str) -> u32 {
        u32::from(self.activated_keys.contains_key(key))
    }

    pub(super) fn requests_for(&self, key: &str) -> u32 {
        self.requests_by_key.get(key).copied().unwrap_or(0)
    }

    pub(super) fn add_handler_time(&mut self, key: &str, d: Duration) {
        *self.handler_time.entry(key.to_owned()).or_default() += d;
    }

    pub(super) fn handler_time(&self, key: &str) -> Duration {
        self.handler_time.get(key).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activates_once_per_key_and_consumes_one_pending_order() {
        let mut l = Ledger::default();
        l.add_pending("42", "100 Diamonds");
        l.add_pending("42", "100 diamonds ");
        assert_eq!(l.decide("k1", "42", "100 DIAMONDS"), Decision::Activated("act-000001".into()));
        assert_eq!(l.decide("k1", "42", "100 Diamonds"), Decision::AlreadyActivated("act-000001".into()));
        assert_eq!(l.decide("k2", "42", "100 Diamonds"), Decision::Activated("act-000002".into()));
        assert_eq!(l.decide("k3", "42", "100 Diamonds"), Decision::AlreadyFulfilled, "a third payment for two");
        assert_eq!(l.decide("k3", "42", "VIP month"), Decision::NoPendingOrder, "never pending for this product");
        l.add_pending("42", "100 Diamonds");
        assert_eq!(l.decide("k3", "42", "100 Diamonds"), Decision::Activated("act-000003".into()), "a new checkout");
        assert_eq!((l.stats.activations, l.stats.already_activated), (3, 1));
        assert_eq!((l.activations_for("k1"), l.activations_for("k4")), (1, 0));
    }

    #[test]
    fn failed_answers_do_not_bind_the_key() {
        let mut l = Ledger::default();
        l.add_account("7");
        assert_eq!(l.decide("k", "8", "P"), Decision::UnknownAccount);
        assert_eq!(l.decide("k", "7", "P"), Decision::NoPendingOrder);
        l.add_pending("7", "P");
        assert_eq!(l.decide("k", "7", "p"), Decision::Activated("act-000001".into()));
    }

    #[test]
    fn deactivates_once_and_only_what_was_activated() {
        let mut l = Ledger::default();
        l.add_pending("42", "P");
        assert_eq!(l.deactivate("k", "act-000001", "refund"), Deactivation::NotActivated);
        assert_eq!(l.decide("k", "42", "P"), Decision::Activated("act-000001".into()));
        assert_eq!(l.deactivate("k", "act-999999", "refund"), Deactivation::NotActivated, "wrong activation id");
        assert_eq!(l.deactivate("k", "act-000001", "refund"), Deactivation::Deactivated);
        assert_eq!(l.deactivate("k", "act-000001", "refund"), Deactivation::AlreadyDeactivated);
        assert_eq!((l.stats.deactivations, l.deactivations_for("k")), (1, 1));
    }

    #[test]
    fn account_ids_are_exact() {
        let mut l = Ledger::default();
        l.add_pending("00123", "P");
        assert_eq!(l.decide("k", "123", "P"), Decision::UnknownAccount);
    }

    #[test]
    fn refuses_a_replayed_signature_and_forgets_old_ones() {
        let mut l = Ledger::default();
        let (a, b) = ([0xaa; 32], [0xbb; 32]);
        assert!(l.accept_signature(100, &[a, b], 0));
        assert!(!l.accept_signature(100, &[a, b], 0));
        assert!(!l.accept_signature(100, &[b], 0), "a subset of the entries is a replay too");
        assert!(l.accept_signature(101, &[a], 0));
        assert!(l.accept_signature(200, &[b], 150));
        assert_eq!(l.accepted_signatures.len(), 1);
    }

    #[test]
    fn injected_failures_run_out() {
        let mut l = Ledger { fail_next: 2, ..Ledger::default() };
        assert!(l.take_injected_failure() && l.take_injected_failure());
        assert!(!l.take_injected_failure());
        assert_eq!(l.stats.failures_injected, 2);
    }
}
