//! Orders held up by a failing backend or Telegram reach a person once per
//! outage, not once per order and not never.
//!
//! A step that fails for a transient reason parks its order with a backoff
//! (`Store::park`, `Store::park_step`) and marks since when it waits on
//! which dependency. Retrying is right, but retrying in silence is not: a
//! backend down for an hour means paid orders nobody delivers. So once
//! an order has waited longer than the bound (`[telegram]
//! outage_alert_secs`), the order worker's pass ([`watch`]) opens an
//! outage for that dependency: one case whose card lists every order
//! waiting that long and why. Orders that cross the bound later are named
//! in follow-ups to that card (at most one per [`UPDATE_EVERY`]), and when
//! no order of the outage waits any more, one follow-up says the
//! dependency is back and how its orders went on, and closes the case.
//!
//! Everything is in the store: the outage row, its orders, the card and
//! follow-ups in the moderator outbox, on the one clock. A pass repeats
//! nothing that was committed, so a restart in the middle neither loses
//! the outage nor posts its card again. When the backend answers one of
//! the outage's orders, the others are made due at once instead of after
//! their backoff (up to an hour); Telegram's are not, as its flood waits
//! must be waited out.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::{info, warn};

use crate::store::{OutageCause, OutageMember, OutageRecord, Store, StoreResult};

/// The least time between two follow-ups naming orders that joined an
/// outage: a steady stream of new orders during a long outage makes a few
/// messages, not one per order.
pub const UPDATE_EVERY: Duration = Duration::from_secs(5 * 60);

/// Orders a follow-up names one by one; the rest are counted.
const NAMED_MAX: usize = 20;

/// What one pass of [`watch`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutageReport {
    /// Outages opened (each with its card).
    pub opened: usize,
    /// Follow-ups naming orders that joined an open outage.
    pub announced: usize,
    /// Outages that ended (each with its follow-up).
    pub recovered: usize,
    /// Orders made due at once because their dependency answered again.
    pub woken: u64,
}

impl OutageReport {
    /// Something was queued for the moderator chat.
    pub fn wrote_cards(&self) -> bool {
        self.opened + self.announced + self.recovered > 0
    }
}

/// One look at every dependency: opens, extends or ends its outage as the
/// orders waiting on it say. `after` is how long an order may wait before
/// it counts; `now` is unix ms on the program's clock.
pub async fn watch(store: &Store, after: Duration, now: i64) -> StoreResult<OutageReport> {
    let mut report = OutageReport::default();
    let since = now - after.as_millis() as i64;
    for cause in OutageCause::ALL {
        watch_cause(store, cause, since, now, &mut report).await?;
    }
    Ok(report)
}

async fn watch_cause(
    store: &Store,
    cause: OutageCause,
    late_since: i64,
    now: i64,
    report: &mut OutageReport,
) -> StoreResult<()> {
    let late = store.orders_waiting_on(cause, late_since).await?;
    let ids: Vec<i64> = late.iter().map(|(id, _)| *id).collect();
    let outage = match store.open_outage(cause).await? {
        Some(outage) => outage,
        None => {
            let Some(since) = late.iter().map(|(_, since)| *since).min() else { return Ok(()) };
            let outage = store.start_outage(cause, since, &ids, now).await?;
            warn!(
                cause = cause.as_str(), orders = ids.len(), case = %outage.case(), waiting_for = %span(now - since),
                "{}: orders wait too long; one card for the moderator lists them", cause.trouble()
            );
            report.opened += 1;
            return Ok(());
        }
    };
    store.join_outage(outage.id, &ids, now).await?;
    let members = store.outage_members(outage.id).await?;

    let left: Vec<i64> = members.iter().filter(|m| !m.waiting() && m.left_at.is_none()).map(|m| m.order_id).collect();
    if !left.is_empty() {
        // The backend activated one of them: it is back, try the others now.
        let wake = cause == OutageCause::Backend && members.iter().any(|m| left.contains(&m.order_id) && m.activated);
        let woken = store.outage_members_left(&outage, &left, wake, now).await?;
        if woken > 0 {
            info!(cause = cause.as_str(), woken, case = %outage.case(), "{} answers again; the waiting orders are due now", cause.name());
        }
        report.woken += woken;
    }

    if members.iter().all(|m| !m.waiting()) {
        let text = recovery_text(&outage, &members, now);
        let outcome = format!("{} answered again; {} order(s) went on", cause.name(), members.len());
        if store.end_outage(&outage, &outcome, &text, now).await? {
            info!(cause = cause.as_str(), orders = members.len(), case = %outage.case(), lasted = %span(now - outage.since), "outage over");
            report.recovered += 1;
        }
        return Ok(());
    }

    let new: Vec<&OutageMember> = members.iter().filter(|m| !m.announced).collect();
    let quiet_long_enough = outage.last_update_at.is_none_or(|t| now - t >= UPDATE_EVERY.as_millis() as i64);
    if !new.is_empty() && quiet_long_enough {
        let text = joined_text(&outage, &new, members.len());
        let ids: Vec<i64> = new.iter().map(|m| m.order_id).collect();
        store.announce_outage_members(&outage, &ids, &text, now).await?;
        info!(cause = cause.as_str(), joined = ids.len(), case = %outage.case(), "more orders wait; the outage's card gets a follow-up");
        report.announced += 1;
    }
    Ok(())
}

/// The follow-up naming orders that joined an open outage.
fn joined_text(outage: &OutageRecord, new: &[&OutageMember], total: usize) -> String {
    let mut text = format!(
        "{}: {} more order(s) wait because {} ({total} in all):",
        outage.case(),
        new.len(),
        outage.cause.trouble()
    );
    for m in new.iter().take(NAMED_MAX) {
        text.push_str(&format!("\n  • {} · {} · {}", m.order_ref, m.product, m.customer_name));
    }
    if new.len() > NAMED_MAX {
        text.push_str(&format!("\n  … and {} more (/case {} lists them all)", new.len() - NAMED_MAX, outage.case()));
    }
    text
}

/// The follow-up that ends an outage: how long it lasted and where its orders are now.
fn recovery_text(outage: &OutageRecord, members: &[OutageMember], now: i64) -> String {
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for m in members {
        *by_state.entry(m.state.as_str()).or_default() += 1;
    }
    let mut states: Vec<(&str, usize)> = by_state.into_iter().collect();
    states.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let states: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    format!(
        "✅ {}: {} answers again after {}; the {} order(s) it held up went on: {}. Case closed.",
        outage.case(),
        outage.cause.name(),
        span(now - outage.since),
        members.len(),
        states.join(", ")
    )
}

/// A duration for people: "40 s", "17 min", "2 h 5 min".
pub fn span(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(40_000), "40 s");
        assert_eq!(span(17 * 60_000 + 59_000), "17 min");
        assert_eq!(span(2 * 3_600_000 + 5 * 60_000), "2 h 5 min");
        assert_eq!(span(-5), "0 s");
    }
}
