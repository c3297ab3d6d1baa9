//! The invariants, checked after the run from three independent records:
//! the daemon's store, the simulated Telegram (histories, the bot's
//! deliveries and presses, refused sends) and the reference backend's
//! ledger. Each violated invariant is one [`Violation`]. The invariants
//! about what people get (answers, kept messages, timely activations, one
//! open case per order, supervision's notices, the store's footprint) are
//! in [`service`].

mod service;

pub use service::ServiceFigures;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::driver::{fmt_sim, Driver};
use super::latency;
use crate::sim::{utf16_len, Fault, TelegramWait, SERVICE_USER_ID};
use tribute_assistant::telegram::MESSAGE_LENGTH_MAX;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub name: &'static str,
    pub detail: String,
}

/// The run's figures. `--json` prints exactly this object.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seed: u64,
    pub orders: usize,
    pub customers: usize,
    pub faults: String,
    pub content: String,
    pub script_digest: String,
    pub confirmed: usize,
    /// Escalated, the case open and its card posted in the moderator chat.
    pub escalated_open: usize,
    /// Escalated and closed by a moderator's `/done` (handled by hand).
    pub done_by_hand: usize,
    pub failed: usize,
    /// Not at rest at the end: not confirmed, failed or escalated with a posted card.
    pub unresolved: usize,
    pub backend_activations: u64,
    pub backend_requests: u64,
    /// Activated orders a person finishes on the Tribute side (e.g. the Send button never came).
    pub activated_not_confirmed: usize,
    pub double_activations: u64,
    pub duplicate_tribute_replies: u64,
    pub duplicate_send_presses: u64,
    pub deliveries: usize,
    pub stalled_orders: usize,
    pub cards: usize,
    /// Longest a card waited beyond Telegram's own waits (see `card_delay`).
    pub max_card_delay_secs: u64,
    /// Longest a card waited from being stored to being posted, all included.
    pub max_card_wait_secs: u64,
    pub card_bound_secs: u64,
    pub oversized_messages_sent: u64,
    pub service_messages: usize,
    pub service_messages_leaked: u64,
    pub messages_to_customers_over_cap: u64,
    pub max_messages_to_one_customer_a_day: u64,
    pub daily_cap: u32,
    pub faults_injected: BTreeMap<String, u64>,
    pub refused_sends: BTreeMap<String, u64>,
    pub restarts: BTreeMap<&'static str, u64>,
    pub daemon_unplanned_exits: usize,
    pub sim_days: u32,
    pub sim_secs: u64,
    pub real_secs: f64,
    pub steps: u64,
    /// Looks the driver took while letting the daemon settle, and how often it gave up (5 s real).
    pub settle_looks: u64,
    pub settle_timeouts: u64,
    pub orders_per_real_sec: f64,
    /// Peak resident memory of the process so far (VmHWM), MiB.
    pub peak_rss_mib: u64,
    /// Of the peak RSS, about this much is the simulated Telegram's message
    /// history (grows with the run; not the daemon's memory).
    pub telegram_history_mib: f64,
    #[serde(flatten)]
    pub service: ServiceFigures,
    pub violations: Vec<Violation>,
    pub replay: String,
}

pub async fn check(d: &Driver) -> anyhow::Result<Report> {
    let mut v: Vec<Violation> = Vec::new();
    let mut add = |name: &'static str, detail: String| v.push(Violation { name, detail });
    let world = &d.sb.world;
    let backend = &d.sb.backend;
    let facts = d.probe.orders().await?;
    let end_unix = d.unix_ms(d.now());

    // ---- every paid order stored and at rest ----
    let by_msg: HashMap<i32, usize> = facts.iter().enumerate().map(|(i, f)| (f.message_id, i)).collect();
    let posted: Vec<i32> = d.order_msg.iter().flatten().copied().collect();
    let fault_log = world.fault_log();
    for (i, msg) in d.order_msg.iter().enumerate() {
        let Some(msg) = msg else { continue };
        if !by_msg.contains_key(msg) {
            let tag = format!("{}/{msg}", world.tribute_chat());
            let faults: Vec<&String> = fault_log.iter().filter(|l| l.ends_with(&tag)).collect();
            let o = &d.script.orders[i];
            add(
                "lost_orders",
                format!(
                    "order #{i} ({:?}, {} for customer {}) posted at {} as Tribute message {msg} was never stored; \
                     Telegram faults on that message: {faults:?}",
                    o.kind,
                    o.product,
                    d.script.customers[o.customer].id,
                    d.order_posted_at[i].map(fmt_sim).unwrap_or_default()
                ),
            );
        }
    }
    let (mut confirmed, mut escalated_open, mut done_by_hand, mut failed, mut unresolved) = (0, 0, 0, 0, 0);
    let mut stalled = d.stalled.clone();
    for f in &facts {
        match (f.state.as_str(), f.last_card) {
            ("confirmed", _) => confirmed += 1,
            ("failed", _) => failed += 1,
            ("escalated", Some((true, true))) => escalated_open += 1,
            ("escalated", Some((true, false))) => done_by_hand += 1,
            (state, card) => {
                unresolved += 1;
                let why = match card {
                    Some((false, _)) if state == "escalated" => "escalated but its card was never posted".to_owned(),
                    _ => format!("ended in {state}"),
                };
                let last = fmt_sim(d.sim_ms(f.last_event_at));
                stalled.entry(f.order_ref.clone()).or_insert(format!("{why}; last event at {last}"));
            }
        }
    }
    for (order_ref, what) in stalled.iter().take(20) {
        add("stalled_orders", format!("{order_ref}: {what}"));
    }
    if stalled.len() > 20 {
        add("stalled_orders", format!("… and {} more", stalled.len() - 20));
    }

    // ---- activations: the backend's ledger against the store ----
    let stats = backend.stats();
    let mut attributed = 0u64;
    let mut double = 0u64;
    let mut activated_not_confirmed = 0;
    for f in &facts {
        let a = u64::from(backend.activations_for(&f.order_ref));
        attributed += a;
        if a > 1 {
            double += a - 1;
            add("double_activations", format!("{}: activated {a} times", f.order_ref));
        }
        if f.state == "confirmed" && a == 0 {
            add(
                "confirmed_without_activation",
                format!("{} is confirmed but the backend never activated it", f.order_ref),
            );
        }
        if f.activation_id.is_some() != (a > 0) {
            add(
                "activation_mismatch",
                format!("{}: store activation {:?}, backend activations {a}", f.order_ref, f.activation_id),
            );
        }
        if a > 0 && f.state != "confirmed" {
            activated_not_confirmed += 1;
        }
    }
    if stats.activations > attributed {
        let extra = stats.activations - attributed;
        double += extra;
        add("double_activations", format!("{extra} activation(s) on the backend belong to no stored order"));
    }

    // ---- Tribute side: one reply and one Send press per order ----
    let tribute = world.messages(world.tribute_chat());
    let mut replies: HashMap<i32, u64> = HashMap::new();
    for m in tribute.iter().filter(|m| m.outgoing) {
        if let Some(r) = m.reply_to.filter(|r| d.msg_order.contains_key(r)) {
            *replies.entry(r).or_default() += 1;
        }
    }
    let mut dup_replies = 0;
    for (msg, n) in &replies {
        if *n > 1 {
            dup_replies += n - 1;
            add(
                "duplicate_tribute_replies",
                format!("{}: {n} replies to Tribute message {msg}", order_ref_of(d, *msg)),
            );
        }
    }
    let deliveries = world.deliveries();
    let mut delivered: HashMap<i32, u64> = HashMap::new();
    for dl in &deliveries {
        *delivered.entry(dl.order_message_id).or_default() += 1;
    }
    let mut dup_presses = 0;
    for msg in &posted {
        let n = u64::from(world.send_presses(*msg)).max(delivered.get(msg).copied().unwrap_or(0));
        if n > 1 {
            dup_presses += n - 1;
            add("duplicate_send_presses", format!("{}: Send pressed/delivered {n} times", order_ref_of(d, *msg)));
        }
    }
    for f in facts.iter().filter(|f| f.state == "confirmed") {
        if !delivered.contains_key(&f.message_id) {
            add("confirmed_undelivered", format!("{} is confirmed but Tribute delivered nothing", f.order_ref));
        }
    }

    // ---- cards reach the moderator chat in time ----
    // Counted beyond Telegram's own waits on the calls a post makes (a
    // send; the history, to find a card an answer was lost for) and the
    // link's outages, whoever met them: all sends share one flood wait, and
    // the poster holds every row back until a wait another row met is over
    // (follow-ups included), without a failed attempt on those rows. In
    // hostile runs FLOOD_WAITs of up to an hour follow one another for
    // hours; `max_card_wait_secs` reports the raw wait.
    let card_bound_ms = d.p.card_bound().as_millis() as i64;
    let cards = d.probe.card_timings().await?;
    let waits: Vec<TelegramWait> =
        d.sb.world
            .telegram_waits()
            .into_iter()
            .filter(|w| matches!(w.fault, Fault::FloodWaitSend | Fault::FloodWaitHistory | Fault::Disconnect))
            .collect();
    let (mut max_delay, mut max_raw) = (0i64, 0i64);
    let mut late = Vec::new();
    for c in &cards {
        let end = c.posted_at.unwrap_or(end_unix);
        let delay = end - c.created_at - latency::telegram_waited_ms(&waits, c.created_at, end);
        max_delay = max_delay.max(delay);
        max_raw = max_raw.max(end - c.created_at);
        if delay > card_bound_ms || (c.posted_at.is_none() && c.parked) {
            let what = match c.posted_at {
                Some(_) => format!("posted {}s after it was stored, beyond Telegram's waits", delay / 1000),
                None if c.parked => "refused by Telegram for good; never posted".to_owned(),
                None => format!("not posted {}s after it was stored, beyond Telegram's waits", delay / 1000),
            };
            let order = c.order_id.and_then(|id| facts.iter().find(|f| f.id == id)).map(|f| f.order_ref.clone());
            late.push(format!(
                "card {} ({}, order {}, {} failed attempts): {what}",
                c.id,
                c.reason,
                order.as_deref().unwrap_or("—"),
                c.attempts
            ));
        }
    }
    for l in late.iter().take(10) {
        add("card_delay", l.clone());
    }
    if late.len() > 10 {
        add("card_delay", format!("… and {} more", late.len() - 10));
    }

    // ---- Telegram's limits, the daily cap, the service account ----
    let refused = world.refused_sends();
    let mut oversized: u64 = ["MESSAGE_TOO_LONG", "ENTITIES_TOO_LONG", "MESSAGE_EMPTY"]
        .iter()
        .map(|k| refused.get(*k).copied().unwrap_or(0))
        .sum();
    if oversized > 0 {
        add("oversized_messages_sent", format!("Telegram refused {oversized} send(s) over its limits: {refused:?}"));
    }
    let cap = super::contact_config().max_messages_per_day;
    let mut over_cap = 0u64;
    let mut max_per_day = 0u64;
    let mut leaked = 0u64;
    let moderator_chat = d.sb.moderator_chat;
    for chat in world.chats() {
        let messages = world.messages(chat.id);
        let mut per_day: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in messages.iter().filter(|m| m.outgoing) {
            let units = utf16_len(&m.text);
            if units > MESSAGE_LENGTH_MAX {
                oversized += 1;
                add("oversized_messages_sent", format!("chat {}: message {} has {units} UTF-16 units", chat.id, m.id));
            }
            if chat.id > 0 && chat.id != world.tribute_chat() && chat.id != SERVICE_USER_ID {
                let at = fmt_sim(d.sim_ms(m.date * 1000));
                per_day
                    .entry(tribute_assistant::runtime::clock::day(m.date * 1000))
                    .or_default()
                    .push(format!("#{} {at}", m.id));
            }
            if chat.id == SERVICE_USER_ID {
                leaked += 1;
                add("service_messages_leaked", format!("we wrote to Telegram's service account: {:?}", short(&m.text)));
            }
        }
        for (day, sent) in per_day {
            let n = sent.len() as u64;
            max_per_day = max_per_day.max(n);
            if n > u64::from(cap) {
                over_cap += 1;
                let tag = format!(" {}/", chat.id);
                let faults: Vec<&String> = fault_log.iter().filter(|l| l.contains(&tag)).collect();
                add(
                    "messages_to_customers_over_cap",
                    format!(
                        "customer {} got {n} messages on {day} (cap {cap}): {}; Telegram faults in that chat: {faults:?}",
                        chat.id,
                        sent.join(", ")
                    ),
                );
            }
        }
        if chat.id == moderator_chat {
            for needle in &d.service_needles {
                if messages.iter().any(|m| m.outgoing && m.text.contains(needle.as_str())) {
                    leaked += 1;
                    add("service_messages_leaked", format!("{needle:?} reached the moderator chat"));
                }
            }
        }
    }
    for needle in &d.service_needles {
        for table in d.probe.text_leaks(needle).await? {
            leaked += 1;
            add("service_messages_leaked", format!("{needle:?} was stored in {table}"));
        }
    }

    // ---- the daemon itself ----
    for (at, what) in &d.stats.stop_hung {
        add("shutdown_hung", format!("graceful stop at {}: {what}; aborted", fmt_sim(*at)));
    }
    // Grouped by the message with its numbers blanked (e.g. flood waits of different lengths).
    let mut exits: BTreeMap<String, (usize, u64, &str)> = BTreeMap::new();
    for (at, why) in &d.stats.unplanned_exits {
        let key: String = why.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
        exits.entry(key).or_insert((0, *at, why.as_str())).0 += 1;
    }
    for (n, first, why) in exits.into_values() {
        add("daemon_exited", format!("{n} time(s), the first at {}: {why}", fmt_sim(first)));
    }

    let mut faults: BTreeMap<String, u64> =
        world.faults_injected().into_iter().map(|(k, n)| (format!("telegram.{k}"), n)).collect();
    faults.insert("backend.failed_requests".into(), stats.failures_injected);
    faults.insert("backend.failure_bursts".into(), d.stats.backend_fail_bursts);
    faults.insert("backend.slow_spells".into(), d.stats.backend_slow_spells);
    faults.insert("backend.outages".into(), d.stats.backend_outages);
    faults.retain(|_, n| *n > 0);
    let restarts = BTreeMap::from([
        ("graceful", d.stats.restarts_graceful),
        ("abort", d.stats.restarts_abort),
        ("crash_armed", d.stats.crashes_armed),
        ("crash", d.stats.crashes),
    ]);

    let service = service::check(d, &facts, &mut v).await?;

    Ok(Report {
        seed: d.p.seed,
        orders: posted.len(),
        customers: d.script.customers.len(),
        faults: d.p.faults.as_str().to_owned(),
        content: d.p.content.as_str().to_owned(),
        script_digest: d.script.digest(),
        confirmed,
        escalated_open,
        done_by_hand,
        failed,
        unresolved,
        backend_activations: stats.activations,
        backend_requests: stats.requests,
        activated_not_confirmed,
        double_activations: double,
        duplicate_tribute_replies: dup_replies,
        duplicate_send_presses: dup_presses,
        deliveries: deliveries.len(),
        stalled_orders: stalled.len(),
        cards: cards.len(),
        max_card_delay_secs: (max_delay.max(0) / 1000) as u64,
        max_card_wait_secs: (max_raw.max(0) / 1000) as u64,
        card_bound_secs: d.p.card_bound().as_secs(),
        oversized_messages_sent: oversized,
        service_messages: d.service_needles.len(),
        service_messages_leaked: leaked,
        messages_to_customers_over_cap: over_cap,
        max_messages_to_one_customer_a_day: max_per_day,
        daily_cap: cap,
        faults_injected: faults,
        refused_sends: refused,
        restarts,
        daemon_unplanned_exits: d.stats.unplanned_exits.len(),
        sim_days: d.p.days,
        sim_secs: d.now() / 1000,
        real_secs: 0.0,
        steps: d.stats.steps,
        settle_looks: d.stats.settle_reads,
        settle_timeouts: d.stats.settle_timeouts,
        orders_per_real_sec: 0.0,
        peak_rss_mib: 0,
        telegram_history_mib: 0.0,
        service,
        violations: v,
        replay: d.p.replay_command(),
    })
}

fn order_ref_of(d: &Driver, msg: i32) -> String {
    tribute_assistant::domain::OrderRef::for_message(d.sb.tribute_chat(), msg).to_string()
}

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}
