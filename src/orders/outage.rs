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
//! no order of the outage waits any more and they have finished (or
//! [`UPDATE_EVERY`] after, whatever they are doing), one follow-up says the
//! dependency is back and where its orders are, and closes the case.
//!
//! Everything is in the store: the outage row, its orders, the card and
//! follow-ups in the moderator outbox, on the one clock. A pass repeats
//! nothing that was committed, so a restart in the middle neither loses
//! the outage nor posts its card again. When the backend answers one of
//! the outage's orders, the others are made due at once instead of after
//! their backoff (up to an hour); Telegram's are not, as its flood waits
//! must be waited out.

use std::collections::HashMap;
use std::time::Duration;

use tracing::{info, warn};

use crate::domain::OrderState;
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
    if !store.outage_watch_needed(since).await? {
        // Nothing late and no outage open: every cause below would stop at its first look.
        return Ok(report);
    }
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
    let mut members = store.outage_members(outage.id).await?;
    let joining: Vec<i64> = ids.into_iter().filter(|id| members.iter().all(|m| m.order_id != *id)).collect();
    if !joining.is_empty() {
        store.join_outage(outage.id, &joining, now).await?;
        members = store.outage_members(outage.id).await?;
    }

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
        // Over. Said once its orders have finished what they were held up
        // for, or a while after, whatever they are doing then.
        let back_at = members.iter().map(|m| m.left_at.unwrap_or(now)).max().unwrap_or(now);
        let settled = members.iter().all(|m| m.state.is_settled());
        if settled || now - back_at >= UPDATE_EVERY.as_millis() as i64 {
            let text = recovery_text(&outage, &members, back_at);
            let outcome = format!("{} answered again; {} order(s) went on", cause.name(), members.len());
            if store.end_outage(&outage, &outcome, &text, now).await? {
                info!(
                    cause = cause.as_str(), orders = members.len(), case = %outage.case(),
                    lasted = %span(back_at - outage.since), "outage over"
                );
                report.recovered += 1;
            }
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

/// The follow-up that ends an outage: how long it lasted (until `back_at`)
/// and where its orders are now.
fn recovery_text(outage: &OutageRecord, members: &[OutageMember], back_at: i64) -> String {
    let mut by_state: HashMap<OrderState, usize> = HashMap::new();
    for m in members {
        *by_state.entry(m.state).or_default() += 1;
    }
    let mut states: Vec<(OrderState, usize)> = by_state.into_iter().collect();
    states.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
    let states: Vec<String> = states
        .iter()
        .map(|(s, n)| if s.is_settled() { format!("{n} {s}") } else { format!("{n} in progress ({s})") })
        .collect();
    format!(
        "✅ {}: {} answers again after {}; the {} order(s) it held up: {}. Case closed.",
        outage.case(),
        outage.cause.name(),
        span(back_at - outage.since),
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
    use crate::domain::{EscalationReason, OrderRef, OrderState};
    use crate::runtime::clock::now_ms;
    use crate::store::{CardBody, CardSubject, CaseStatus, Transition};

    const AFTER: Duration = Duration::from_secs(15 * 60);
    const MIN: i64 = 60_000;

    async fn open(path: &std::path::Path) -> Store {
        Store::open(path).await.unwrap()
    }

    /// An order stored from Tribute message `msg`, moved to `state` (on the happy path).
    async fn order(store: &Store, msg: i32, state: OrderState) -> i64 {
        let id = crate::store::test_orders::record(store, msg, Some(7), Some("123456")).await;
        let mut at = OrderState::Received;
        for next in [OrderState::ActivationRequested, OrderState::Activated] {
            if at == state {
                break;
            }
            let mut t = Transition::to(next, "step");
            t.activation_id = (next == OrderState::Activated).then(|| format!("A{msg}"));
            store.transition(id, at, t).await.unwrap();
            at = next;
        }
        assert_eq!(at, state);
        id
    }

    /// The backend answered: the order is activated.
    async fn activated(store: &Store, id: i64) {
        let mut t = Transition::to(OrderState::Activated, "backend activated it");
        t.activation_id = Some(format!("A{id}"));
        store.transition(id, OrderState::ActivationRequested, t).await.unwrap();
    }

    async fn texts(store: &Store) -> Vec<String> {
        let rows = store.pending_cards().await.unwrap();
        rows.into_iter()
            .filter_map(|r| match r.body {
                CardBody::Text(t) => Some(t),
                CardBody::Escalation(_) => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn twenty_orders_waiting_on_the_backend_make_one_card_follow_ups_and_one_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = open(&path).await;
        let t0 = now_ms();
        let mut ids = Vec::new();
        for msg in 1..=20 {
            let id = order(&store, msg, OrderState::ActivationRequested).await;
            store
                .park(id, OrderState::ActivationRequested, t0 + 60 * MIN, "backend unavailable (HTTP 503)", true)
                .await
                .unwrap();
            // A later failure of the same streak keeps when it started.
            store
                .park(id, OrderState::ActivationRequested, t0 + 60 * MIN, "backend unavailable (HTTP 503)", true)
                .await
                .unwrap();
            ids.push(id);
        }
        assert_eq!(watch(&store, AFTER, t0 + 10 * MIN).await.unwrap(), OutageReport::default(), "not long enough yet");
        assert!(store.all_cards().await.unwrap().is_empty());

        let r = watch(&store, AFTER, t0 + 16 * MIN).await.unwrap();
        assert_eq!((r.opened, r.announced, r.recovered), (1, 0, 0));
        let outage = store.open_outage(OutageCause::Backend).await.unwrap().expect("an open outage");
        let cards = store.all_cards().await.unwrap();
        assert_eq!(cards.len(), 1, "one card for twenty orders");
        let CardBody::Escalation(card) = &cards[0].body else { panic!("a typed card") };
        assert_eq!(card.subject, CardSubject::Outage(outage.id));
        assert_eq!(card.detail, "the backend is unreachable");
        let members = store.outage_members(outage.id).await.unwrap();
        assert_eq!(members.iter().map(|m| m.order_id).collect::<Vec<_>>(), ids);
        assert!(members.iter().all(|m| m.in_card && m.announced && m.waiting()));
        assert!(outage.since <= t0 + MIN && outage.since >= t0 - MIN, "since the first failure, not the second");

        // Passes and a restart repeat nothing.
        assert_eq!(watch(&store, AFTER, t0 + 16 * MIN).await.unwrap(), OutageReport::default());
        store.close().await;
        let store = open(&path).await;
        assert_eq!(watch(&store, AFTER, t0 + 17 * MIN).await.unwrap(), OutageReport::default());
        assert_eq!(store.all_cards().await.unwrap().len(), 1);

        // Orders that join are named in a follow-up, at most one per UPDATE_EVERY.
        let late = order(&store, 21, OrderState::ActivationRequested).await;
        store.park(late, OrderState::ActivationRequested, t0 + 60 * MIN, "backend unavailable", true).await.unwrap();
        assert_eq!(watch(&store, AFTER, t0 + 17 * MIN).await.unwrap().announced, 1);
        let later = order(&store, 22, OrderState::ActivationRequested).await;
        store.park(later, OrderState::ActivationRequested, t0 + 60 * MIN, "backend unavailable", true).await.unwrap();
        assert_eq!(watch(&store, AFTER, t0 + 18 * MIN).await.unwrap().announced, 0, "too soon after the last one");
        assert_eq!(watch(&store, AFTER, t0 + 23 * MIN).await.unwrap().announced, 1);
        let follow_ups = texts(&store).await;
        assert_eq!(follow_ups.len(), 2, "{follow_ups:?}");
        let case = outage.case();
        assert!(
            follow_ups[0]
                .starts_with(&format!("{case}: 1 more order(s) wait because the backend is unreachable (21 in all):")),
            "{}",
            follow_ups[0]
        );
        assert!(follow_ups[0].contains(OrderRef::for_message(93372553, 21).as_str()));
        assert!(
            follow_ups[1].contains(OrderRef::for_message(93372553, 22).as_str())
                && follow_ups[1].contains("(22 in all)")
        );

        // The backend answers one: the others are tried at once, not after their backoff.
        activated(&store, ids[0]).await;
        let r = watch(&store, AFTER, t0 + 24 * MIN).await.unwrap();
        assert_eq!((r.woken, r.recovered), (21, 0));
        assert_eq!(
            store.due_orders(t0 + 24 * MIN, 100).await.unwrap().ids.len(),
            22,
            "the 21 woken and the activated one"
        );
        assert_eq!(
            watch(&store, AFTER, t0 + 24 * MIN).await.unwrap().woken,
            0,
            "woken once per order that went through"
        );

        for id in ids.iter().skip(1).chain([&late, &later]) {
            activated(&store, *id).await;
        }
        let back = t0 + 25 * MIN + 30_000;
        assert_eq!(watch(&store, AFTER, back).await.unwrap().recovered, 0, "its orders are still on their way");
        for id in ids.iter().skip(2) {
            for (from, to) in
                [(OrderState::Activated, OrderState::Replied), (OrderState::Replied, OrderState::Confirmed)]
            {
                let mut t = Transition::to(to, "step");
                t.reply_message_id = Some(1000 + *id as i32);
                store.transition(*id, from, t).await.unwrap();
            }
        }
        assert_eq!(watch(&store, AFTER, back + 4 * MIN).await.unwrap().recovered, 0, "four are not done yet");
        let r = watch(&store, AFTER, back + 5 * MIN).await.unwrap();
        assert_eq!(r.recovered, 1, "said a while after, whatever they are doing");
        assert_eq!(store.open_outage(OutageCause::Backend).await.unwrap(), None);
        let case_record = store.case(outage.case_id).await.unwrap().unwrap();
        assert_eq!(case_record.status, CaseStatus::Closed);
        assert_eq!(case_record.reason, EscalationReason::Outage);
        let follow_ups = texts(&store).await;
        assert_eq!(follow_ups.len(), 3);
        assert_eq!(
            follow_ups[2],
            format!(
                "✅ {case}: the backend answers again after 25 min; the 22 order(s) it held up: 18 confirmed, \
                 4 in progress (activated). Case closed."
            )
        );
        assert_eq!(watch(&store, AFTER, back + 6 * MIN).await.unwrap(), OutageReport::default());
        assert_eq!(store.all_cards().await.unwrap().len(), 1, "still one card, never one per order");
    }

    #[tokio::test]
    async fn telegram_failing_is_its_own_outage_and_its_waits_are_not_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("t.db")).await;
        let t0 = now_ms();
        let a = order(&store, 1, OrderState::Activated).await;
        let b = order(&store, 2, OrderState::Activated).await;
        for id in [a, b] {
            store.park_step(id, OrderState::Activated, t0 + 60 * MIN, "Telegram: FLOOD_WAIT 3600s").await.unwrap();
        }
        let r = watch(&store, AFTER, t0 + 16 * MIN).await.unwrap();
        assert_eq!(r.opened, 1);
        assert_eq!(store.open_outage(OutageCause::Backend).await.unwrap(), None);
        let outage = store.open_outage(OutageCause::Telegram).await.unwrap().expect("a Telegram outage");
        let CardBody::Escalation(card) = &store.all_cards().await.unwrap()[0].body else { panic!("a typed card") };
        assert_eq!(card.detail, "Telegram keeps failing");

        let mut t = Transition::to(OrderState::Replied, "replied");
        t.reply_message_id = Some(9);
        store.transition(a, OrderState::Activated, t).await.unwrap();
        let r = watch(&store, AFTER, t0 + 17 * MIN).await.unwrap();
        assert_eq!((r.woken, r.recovered), (0, 0), "a flood wait is waited out");
        assert_eq!(store.order(b).await.unwrap().next_attempt_at, Some(t0 + 60 * MIN));
        assert!(store.outage_members(outage.id).await.unwrap().iter().any(|m| m.order_id == a && m.left_at.is_some()));

        let mut t = Transition::to(OrderState::Replied, "replied");
        t.reply_message_id = Some(10);
        store.transition(b, OrderState::Activated, t).await.unwrap();
        let back = t0 + 18 * MIN + 30_000;
        assert_eq!(watch(&store, AFTER, back).await.unwrap().recovered, 0, "not finished yet");
        for (id, reply) in [(a, 9), (b, 10)] {
            let mut t = Transition::to(OrderState::Confirmed, "pressed Send");
            t.reply_message_id = Some(reply);
            store.transition(id, OrderState::Replied, t).await.unwrap();
        }
        assert_eq!(watch(&store, AFTER, back + MIN).await.unwrap().recovered, 1, "finished: no need to wait");
        let done = texts(&store).await;
        assert!(
            done[0]
                .contains("Telegram answers again after 18 min; the 2 order(s) it held up: 2 confirmed. Case closed."),
            "{done:?}"
        );
    }

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(40_000), "40 s");
        assert_eq!(span(17 * 60_000 + 59_000), "17 min");
        assert_eq!(span(2 * 3_600_000 + 5 * 60_000), "2 h 5 min");
        assert_eq!(span(-5), "0 s");
    }
}
