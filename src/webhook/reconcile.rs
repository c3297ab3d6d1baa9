//! Reconciles stored webhook purchases with the Telegram orders.
//!
//! - A paid purchase is matched to the Telegram order of the same customer
//!   (Telegram user id) and product, created within the match window of
//!   the payment; an order with the same amount is preferred, and a match
//!   whose amount differs is flagged to the moderator.
//! - A paid purchase still without an order after the grace period is
//!   flagged once: Tribute took money and we never saw the order. After
//!   `[retention] unmatched_purchase_hours` the pruner hands it to a
//!   moderator for good and it is no longer matched (`retention`).
//! - A refund waits while the order's activation or Tribute exchange is in
//!   flight; then an activated order's product is taken back with the
//!   backend's `/deactivate` (idempotent, so a restart between the call and
//!   the commit is harmless), and in one transaction the order becomes
//!   `refunded` (final: no later account ID can activate it), its dialogue
//!   link and open cases close, and the moderator is told.
//!
//! Runs in its own task: woken when an event is stored, and on a timer
//! (grace periods and parked deactivations need time to pass).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tracing::{info, info_span, warn, Instrument};

use crate::backend::{BackendClient, BackendError, DeactivationOutcome, DeactivationRequest};
use crate::domain::OrderState;
use crate::runtime::clock::now_ms;
use crate::runtime::shutdown::stopped;
use crate::store::{OrderRecord, PurchaseRecord, Store, StoreResult};

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// How far apart (either way) a payment and its Telegram order may be.
    pub match_window: Duration,
    /// How long a paid purchase may stay without a Telegram order before a person is told.
    pub unmatched_grace: Duration,
    /// How often the reconciler looks again without being woken.
    pub interval: Duration,
    /// Delay before a deactivation the backend could not take is tried again.
    pub retry_delay: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            match_window: Duration::from_secs(3600),
            unmatched_grace: Duration::from_secs(1800),
            interval: Duration::from_secs(15),
            retry_delay: Duration::from_secs(60),
        }
    }
}

/// What one pass did (for tests and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub matched: u32,
    pub amount_mismatches: u32,
    pub flagged_unmatched: u32,
    pub refunds_handled: u32,
    pub deactivated: u32,
}

pub struct Reconciler {
    store: Store,
    backend: BackendClient,
    cfg: ReconcileConfig,
    wake: Arc<Notify>,
}

impl Reconciler {
    pub fn new(store: Store, backend: BackendClient, cfg: ReconcileConfig, wake: Arc<Notify>) -> Self {
        Self { store, backend, cfg, wake }
    }

    /// Passes until shutdown; a failed pass is logged and retried on the next tick.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        loop {
            match self.pass().await {
                Ok(p) if p != Pass::default() => info!(?p, "webhook reconciliation pass"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "webhook reconciliation failed; will retry"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.interval) => {}
                _ = stopped(&shutdown) => return,
            }
        }
    }

    /// Matches, flags and handles refunds once.
    pub async fn pass(&self) -> StoreResult<Pass> {
        let mut pass = Pass::default();
        let now = now_ms();
        for p in self.store.unmatched_purchases().await? {
            let span = info_span!("purchase", purchase_id = %p.purchase_id);
            self.match_one(&p, now, &mut pass).instrument(span).await?;
        }
        for p in self.store.refunds_due(now).await? {
            let span = info_span!("refund", purchase_id = %p.purchase_id);
            self.refund_one(&p, now, &mut pass).instrument(span).await?;
        }
        Ok(pass)
    }

    async fn match_one(&self, p: &PurchaseRecord, now: i64, pass: &mut Pass) -> StoreResult<()> {
        let Some(paid) = p.paid_at else { return Ok(()) };
        let window = self.cfg.match_window.as_millis() as i64;
        let product = normalise(&p.product_name);
        let best = self
            .store
            .match_candidates(p.telegram_user_id, paid - window, paid + window)
            .await?
            .into_iter()
            .filter(|c| normalise(&c.product) == product)
            .min_by_key(|c| (c.price != p.price, (c.created_at - paid).abs()));
        if let Some(c) = best {
            let order = self.store.order(c.order_id).await?;
            let mismatch = order.price != p.price;
            if self.store.match_purchase(&p.purchase_id, order.id, mismatch).await? {
                pass.matched += 1;
                if mismatch {
                    pass.amount_mismatches += 1;
                    warn!(order_ref = %order.order_ref, telegram = %order.price, webhook = %p.price, "amounts differ");
                } else {
                    info!(order_ref = %order.order_ref, "purchase matched to its Telegram order");
                }
            }
            return Ok(());
        }
        let grace = self.cfg.unmatched_grace.as_millis() as i64;
        if p.unmatched_flagged_at.is_none() && now - paid >= grace {
            let detail = format!("none within {} min", self.cfg.unmatched_grace.as_secs() / 60);
            if self.store.flag_unmatched_purchase(&p.purchase_id, &detail).await? {
                pass.flagged_unmatched += 1;
                warn!("paid purchase without a Telegram order; moderator told");
            }
        }
        Ok(())
    }

    async fn refund_one(&self, p: &PurchaseRecord, now: i64, pass: &mut Pass) -> StoreResult<()> {
        let Some(order_id) = p.order_id else {
            // The Telegram order may still come (or be matched): wait out the grace period.
            let since = p.paid_at.or(p.refunded_at).unwrap_or(now);
            if now - since < self.cfg.unmatched_grace.as_millis() as i64 {
                return Ok(());
            }
            let what = "No Telegram order matches this purchase, so nothing was deactivated.";
            self.store.finish_refund(&p.purchase_id, None, None, what).await?;
            pass.refunds_handled += 1;
            return Ok(());
        };
        let order = self.store.order(order_id).await?;
        if order.state == OrderState::Refunded {
            return Ok(());
        }
        if !order.state.can_be_refunded() {
            // An activation or the Tribute exchange is in flight; decide once it has an outcome.
            return Ok(());
        }
        let Some(activation_id) = order.activation_id.clone() else {
            let what =
                format!("The order was never activated (state {}), so there was nothing to take back.", order.state);
            self.finish(p, &order, None, &what).await?;
            pass.refunds_handled += 1;
            return Ok(());
        };
        self.store.note_deactivation_requested(&p.purchase_id).await?;
        let req = DeactivationRequest {
            order_ref: order.order_ref.clone(),
            activation_id: activation_id.clone(),
            reason: "refund".into(),
            detail: p.refund_reason.clone(),
            purchase_id: Some(p.purchase_id.clone()),
            refunded_at: chrono::DateTime::from_timestamp_millis(p.refunded_at.unwrap_or(now)).unwrap_or_default(),
        };
        let (status, what) = match self.backend.deactivate(&req).await {
            Ok(DeactivationOutcome::Deactivated) => {
                ("deactivated", format!("The backend took the product back (activation {activation_id})."))
            }
            Ok(DeactivationOutcome::AlreadyDeactivated) => {
                ("already_deactivated", format!("The backend had already taken it back (activation {activation_id})."))
            }
            Ok(DeactivationOutcome::NotActivated) => (
                "not_activated",
                format!("The backend says activation {activation_id} does not exist: check the account by hand."),
            ),
            Err(e @ BackendError::Unavailable { .. }) => {
                warn!(error = %e, retry_in = ?self.cfg.retry_delay, "backend unavailable for the deactivation; will retry");
                self.store.park_refund(&p.purchase_id, now + self.cfg.retry_delay.as_millis() as i64).await?;
                return Ok(());
            }
            Err(e) => ("failed", format!("The backend refused the deactivation ({e}): take the product back by hand.")),
        };
        self.finish(p, &order, Some(status), &what).await?;
        pass.refunds_handled += 1;
        if matches!(status, "deactivated" | "already_deactivated") {
            pass.deactivated += 1;
        }
        info!(order_ref = %order.order_ref, deactivation = status, "refund handled; moderator told");
        Ok(())
    }

    async fn finish(
        &self,
        p: &PurchaseRecord,
        order: &OrderRecord,
        status: Option<&str>,
        what: &str,
    ) -> StoreResult<()> {
        self.store.finish_refund(&p.purchase_id, status, Some((order.id, order.state)), what).await
    }
}

/// Product names compare trimmed, case-insensitively, with runs of spaces collapsed.
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_names_compare_loosely() {
        assert_eq!(normalise("  100   Diamonds "), normalise("100 diamonds"));
        assert_eq!(normalise("ПРЕМИУМ"), normalise("премиум"));
        assert_ne!(normalise("100 Diamonds"), normalise("1000 Diamonds"));
    }
}
