//! The invariants about the service people get, whatever they throw at the
//! daemon: every moderator command is answered in time, every customer
//! message is kept, a customer's account ID reaches the backend in time
//! during floods, an order never has two open cases, an order is activated
//! only for its customer's account and only when the Tribute bot posted
//! it, every quarantined item gets exactly one moderator notice, and the
//! store stops growing once a retention window is reached.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::Violation;
use crate::sim::{Fault, TelegramWait};
use crate::simulate::driver::{fmt_sim, Driver};
use crate::simulate::latency::{self, Spread};
use crate::simulate::probe::{CaseSpan, OrderEvent, OrderFact};
use crate::simulate::store_size;
use crate::simulate::supervision::Supervision;

/// How many violations of one kind are listed before "… and N more".
const LISTED: usize = 10;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceFigures {
    /// Moderator messages that asked for an answer (commands, replies to a
    /// case) answered, and how long our answers took beyond Telegram's waits.
    pub command_answers: Spread,
    /// The longest wait for an answer, Telegram's waits included.
    pub command_answer_raw_max_secs: u64,
    pub commands_unanswered: usize,
    pub command_bound_secs: u64,
    /// Messages customers (and the bursts' strangers) sent us, and how many the store does not have.
    pub customer_messages: usize,
    pub customer_messages_unstored: usize,
    /// Of those, older than the retention window when the run ended (pruned as configured, not lost).
    pub customer_messages_pruned: usize,
    /// From a customer's message with their account ID to the order's
    /// activation, beyond the time parked for an unavailable backend and
    /// Telegram's waits.
    pub id_to_activation: Spread,
    /// The longest of those delays, everything included.
    pub id_to_activation_raw_max_secs: u64,
    pub id_bound_secs: u64,
    pub max_open_cases_per_order: usize,
    pub orders_with_overlapping_cases: usize,
    pub wrong_account_activations: usize,
    /// Orders stored that the Tribute bot never posted (e.g. a forwarded receipt taken for one).
    pub phantom_orders: usize,
    #[serde(flatten)]
    pub supervision: Supervision,
    /// The store's SQLite file at the end of each simulated day, MiB.
    pub store_mib_by_day: Vec<f64>,
    /// Of it, the ledger (orders, their history and notifications, cases,
    /// conversations, audit: kept for good, pseudonymised), MiB.
    pub ledger_mib_by_day: Vec<f64>,
    /// The largest write-ahead log seen at a day's end, MiB.
    pub wal_mib_max: f64,
    /// The ledger at the end over the orders and conversations, KiB.
    pub ledger_kib_per_record: f64,
    pub retention_window_days: Option<u64>,
    /// Growth of all but the ledger after the retention window was reached
    /// (when the run was long enough to tell).
    pub store_growth_after_window_mib: Option<f64>,
}

pub(super) async fn check(d: &Driver, facts: &[OrderFact], v: &mut Vec<Violation>) -> anyhow::Result<ServiceFigures> {
    let mut c = Checker {
        d,
        facts,
        v,
        f: ServiceFigures {
            command_bound_secs: d.p.command_bound().as_secs(),
            id_bound_secs: d.p.id_bound().as_secs(),
            store_mib_by_day: d.stats.store_mib_by_day.iter().map(|m| (m * 100.0).round() / 100.0).collect(),
            ledger_mib_by_day: d.stats.ledger_mib_by_day.iter().map(|m| (m * 100.0).round() / 100.0).collect(),
            wal_mib_max: (d.stats.wal_mib_max * 100.0).round() / 100.0,
            ..ServiceFigures::default()
        },
        // Telegram's own waits (flood waits, the link down) are not the daemon's, as for cards.
        waits: d.sb.world.telegram_waits(),
    };
    c.commands_answered().await?;
    let id_messages = c.customer_messages_stored().await?;
    c.ids_activated_in_time(&id_messages).await?;
    c.one_open_case_per_order().await?;
    c.right_orders_and_accounts();
    c.one_notice_per_quarantined_item().await?;
    c.store_stops_growing().await?;
    Ok(c.f)
}

struct Checker<'a> {
    d: &'a Driver,
    facts: &'a [OrderFact],
    v: &'a mut Vec<Violation>,
    f: ServiceFigures,
    waits: Vec<TelegramWait>,
}

impl<'a> Checker<'a> {
    /// Adds the first [`LISTED`] violations of a kind, and how many more there were.
    fn add(&mut self, name: &'static str, details: Vec<String>) {
        let more = details.len().saturating_sub(LISTED);
        for detail in details.into_iter().take(LISTED) {
            self.v.push(Violation { name, detail });
        }
        if more > 0 {
            self.v.push(Violation { name, detail: format!("… and {more} more") });
        }
    }

    /// Milliseconds of `from..to` (unix ms) that were not Telegram's waits.
    fn beyond_waits(&self, from_ms: i64, to_ms: i64) -> i64 {
        to_ms - from_ms - latency::telegram_waited_ms(&self.waits, from_ms, to_ms)
    }

    /// An order by its store id (borrowed from the facts, not from `self`).
    fn order(&self, id: i64) -> Option<&'a OrderFact> {
        let facts: &'a [OrderFact] = self.facts;
        facts.iter().find(|o| o.id == id)
    }

    async fn commands_answered(&mut self) -> anyhow::Result<()> {
        let d = self.d;
        let chat = d.sb.world.messages(d.sb.moderator_chat);
        let case_messages = d.probe.case_messages(d.sb.moderator_chat).await?;
        let bound = d.p.command_bound().as_millis() as i64;
        let (mut unanswered, mut slow, mut delays) = (Vec::new(), Vec::new(), Vec::new());
        for c in latency::commands(&chat, d.sb.moderator, &case_messages) {
            let on = match (c.reply_to, c.case) {
                (Some(r), Some(case)) => format!(", in reply to {r} of case #{case}"),
                (Some(r), None) => format!(", in reply to {r}"),
                _ => String::new(),
            };
            let what =
                format!("{:?} (message {}{on}, at {})", short(&c.text), c.message_id, fmt_sim(d.sim_ms(c.at * 1000)));
            let Some(after) = c.answered_after else {
                unanswered.push(format!("{what} was never answered"));
                continue;
            };
            self.f.command_answer_raw_max_secs = self.f.command_answer_raw_max_secs.max(after.max(0) as u64);
            let ours = self.beyond_waits(c.at * 1000, (c.at + after) * 1000);
            delays.push(ours.max(0) as u64 / 1000);
            if ours > bound {
                slow.push(format!(
                    "{what} was answered after {after} s, {} s of it beyond Telegram's waits",
                    ours / 1000
                ));
            }
        }
        self.f.command_answers = Spread::of(delays);
        self.f.commands_unanswered = unanswered.len();
        self.add("command_unanswered", unanswered);
        self.add("command_answer_delay", slow);
        Ok(())
    }

    /// Every customer message is in the inbox. Returns, per customer, when
    /// they sent a message carrying their account ID (unix ms).
    async fn customer_messages_stored(&mut self) -> anyhow::Result<HashMap<i64, Vec<i64>>> {
        let d = self.d;
        let world = &d.sb.world;
        let inbox = d.probe.customer_inbox().await?;
        let pruned_before = crate::simulate::retention_window(&d.p)
            .map(|w| tribute_assistant::runtime::clock::now_ms() - w.as_millis() as i64);
        let lost_in_transit: HashSet<String> = world
            .fault_log()
            .into_iter()
            .filter_map(|l| l.strip_prefix("update_lost new ").map(str::to_owned))
            .collect();
        let mut unstored = Vec::new();
        let mut id_messages: HashMap<i64, Vec<i64>> = HashMap::new();
        for c in &d.script.customers {
            for m in world.messages(c.id).iter().filter(|m| !m.outgoing && m.sender_id == Some(c.id)) {
                self.f.customer_messages += 1;
                if m.text.contains(c.account.as_str()) {
                    id_messages.entry(c.id).or_default().push(m.date * 1000);
                }
                if inbox.contains(&(c.id, i64::from(m.id))) {
                    continue;
                }
                if pruned_before.is_some_and(|t| m.date * 1000 < t) {
                    // Older than the retention window: handled and pruned, as configured.
                    self.f.customer_messages_pruned += 1;
                    continue;
                }
                let at = d.sim_ms(m.date * 1000);
                // Telegram's dates are whole seconds.
                let link_down = |w: &TelegramWait| {
                    w.fault == Fault::Disconnect && w.from_ms < (m.date + 1) * 1000 && m.date * 1000 <= w.until_ms
                };
                let why = if lost_in_transit.contains(&format!("{}/{}", c.id, m.id)) {
                    "its update was lost in transit"
                } else if self.waits.iter().any(link_down) {
                    "it came while Telegram's link was down"
                } else if d.stats.down_spans.iter().any(|(from, to)| at + 1000 >= *from && at <= *to) {
                    "it came while the daemon was down"
                } else {
                    "no fault on it"
                };
                let text = short(&m.text);
                unstored.push(format!("customer {} message {} ({text:?}, at {}): {why}", c.id, m.id, fmt_sim(at)));
            }
        }
        self.f.customer_messages_unstored = unstored.len();
        self.add("customer_messages_unstored", unstored);
        Ok(id_messages)
    }

    async fn ids_activated_in_time(&mut self, id_messages: &HashMap<i64, Vec<i64>>) -> anyhow::Result<()> {
        let mut histories: BTreeMap<i64, Vec<OrderEvent>> = BTreeMap::new();
        for e in self.d.probe.customer_id_histories().await? {
            histories.entry(e.order_id).or_default().push(e);
        }
        let bound = self.d.p.id_bound().as_millis() as i64;
        let (mut delays, mut late) = (Vec::new(), Vec::new());
        for (order_id, events) in &histories {
            let Some(order) = self.order(*order_id) else { continue };
            let Some(customer) = order.customer_id else { continue };
            let times = id_messages.get(&customer).map_or(&[][..], Vec::as_slice);
            let Some(delay) = latency::id_to_activation(events, times) else { continue };
            let total = delay.total_ms();
            self.f.id_to_activation_raw_max_secs = self.f.id_to_activation_raw_max_secs.max(total.max(0) as u64 / 1000);
            let ours = self.beyond_waits(delay.message_ms, delay.activated_ms) - delay.backend_ms;
            delays.push(ours.max(0) as u64 / 1000);
            if ours > bound {
                late.push(format!(
                    "{}: activated {} s after customer {customer} sent the account ID, {} s of it beyond the \
                     backend's outages and Telegram's waits",
                    order.order_ref,
                    total / 1000,
                    ours / 1000
                ));
            }
        }
        self.f.id_to_activation = Spread::of(delays);
        self.add("id_to_activation_delay", late);
        Ok(())
    }

    async fn one_open_case_per_order(&mut self) -> anyhow::Result<()> {
        let cases = self.d.probe.order_cases().await?;
        let (max_open, overlapping) = overlapping_cases(&cases);
        self.f.max_open_cases_per_order = max_open;
        self.f.orders_with_overlapping_cases = overlapping.len();
        let details = overlapping
            .iter()
            .map(|(order, a, b)| {
                let d = self.d;
                format!(
                    "{}: case {} opened at {} while case {} (opened at {}) was still open",
                    self.order(*order).map_or("?", |o| o.order_ref.as_str()),
                    b.short_id,
                    fmt_sim(d.sim_ms(b.opened_at)),
                    a.short_id,
                    fmt_sim(d.sim_ms(a.opened_at))
                )
            })
            .collect();
        self.add("overlapping_case_cards", details);
        Ok(())
    }

    /// Activated only for the customer's account; only what the bot posted is an order.
    fn right_orders_and_accounts(&mut self) {
        let accounts: HashMap<i64, &str> = self.d.script.customers.iter().map(|c| (c.id, c.account.as_str())).collect();
        let mut wrong = Vec::new();
        for o in self.facts.iter().filter(|o| o.activation_id.is_some()) {
            // The customer the bot's message named, from the script: retention
            // pseudonymises the store's copy once the conversation is scrubbed.
            let d = self.d;
            let scripted = d.msg_order.get(&o.message_id).map(|i| d.script.customers[d.script.orders[*i].customer].id);
            let expected = scripted.or(o.customer_id).and_then(|c| accounts.get(&c)).copied();
            let held: Vec<String> = serde_json::from_str(&o.account_candidates).unwrap_or_default();
            if expected.is_none() || held != [expected.unwrap_or_default()] {
                wrong.push(format!(
                    "{} was activated for {} but customer {:?} has account {}",
                    o.order_ref,
                    o.account_candidates,
                    o.customer_id,
                    expected.unwrap_or("— (not a customer of the scenario)")
                ));
            }
        }
        self.f.wrong_account_activations = wrong.len();
        self.add("wrong_account", wrong);
        let phantom: Vec<String> = self
            .facts
            .iter()
            .filter(|o| !self.d.msg_order.contains_key(&o.message_id))
            .map(|o| format!("{} (Tribute message {}) is not an order the bot posted", o.order_ref, o.message_id))
            .collect();
        self.f.phantom_orders = phantom.len();
        self.add("phantom_orders", phantom);
    }

    async fn one_notice_per_quarantined_item(&mut self) -> anyhow::Result<()> {
        let d = self.d;
        let chat = d.sb.world.messages(d.sb.moderator_chat);
        let quarantined = d.sb.store().quarantined_inbound().await? as u64;
        let s = Supervision::read(d.stats.metrics_at_end.as_deref(), quarantined, &chat);
        self.f.supervision = s;
        if s.quarantine_notices != s.items_quarantined {
            let detail = format!(
                "{} item(s) quarantined, {} moderator notice(s) saying a message could not be handled",
                s.items_quarantined, s.quarantine_notices
            );
            self.add("quarantine_notices", vec![detail]);
        }
        Ok(())
    }

    /// The ledger stays within its budget per order and per person who
    /// wrote (their pseudonymised conversation, cases and the moderators'
    /// audit are kept too); with a retention window, all the rest stops
    /// growing once the window is reached.
    async fn store_stops_growing(&mut self) -> anyhow::Result<()> {
        let stats = &self.d.stats;
        let conversations = self.d.probe.conversations().await?;
        let records = self.facts.len() + conversations;
        if let (Some(&ledger), false) = (stats.ledger_mib_by_day.last(), records == 0) {
            let per_record = ledger * 1024.0 / records as f64;
            self.f.ledger_kib_per_record = (per_record * 100.0).round() / 100.0;
            let budget_kib = store_size::LEDGER_KIB_PER_RECORD * records as f64 + store_size::LEDGER_FIXED_KIB;
            if ledger * 1024.0 > budget_kib {
                let detail = format!(
                    "the ledger takes {per_record:.2} KiB per order or conversation ({ledger:.2} MiB for {} orders \
                     and {conversations} conversations; budget {} KiB each + {} KiB)",
                    self.facts.len(),
                    store_size::LEDGER_KIB_PER_RECORD,
                    store_size::LEDGER_FIXED_KIB
                );
                self.add("ledger_size", vec![detail]);
            }
        }
        if stats.wal_mib_max > store_size::WAL_BOUND_MIB {
            let detail = format!(
                "the write-ahead log reached {:.1} MiB (bound {} MiB): checkpoints do not keep up",
                stats.wal_mib_max,
                store_size::WAL_BOUND_MIB
            );
            self.add("wal_size", vec![detail]);
        }
        let Some(window) = crate::simulate::retention_window(&self.d.p) else { return Ok(()) };
        let days = window.as_secs().div_ceil(86_400).max(1);
        self.f.retention_window_days = Some(days);
        let rest = store_size::without_ledger(&stats.store_mib_by_day, &stats.ledger_mib_by_day);
        match store_size::plateau_after_window(&rest, days as u32) {
            Ok(growth) => self.f.store_growth_after_window_mib = growth,
            Err(e) => self.add("store_growth", vec![format!("all but the ledger: {e}")]),
        }
        Ok(())
    }
}

/// The most cases of one order open at once, and every (order, still
/// open case, case opened meanwhile).
fn overlapping_cases(cases: &[CaseSpan]) -> (usize, Vec<(i64, &CaseSpan, &CaseSpan)>) {
    let mut by_order: BTreeMap<i64, Vec<&CaseSpan>> = BTreeMap::new();
    for c in cases {
        by_order.entry(c.order_id).or_default().push(c);
    }
    let (mut max_open, mut overlaps) = (0, Vec::new());
    for (order, mut cases) in by_order {
        cases.sort_by_key(|c| c.opened_at);
        let mut open: Vec<&CaseSpan> = Vec::new();
        for c in cases {
            open.retain(|o| o.closed_at.is_none_or(|closed| closed > c.opened_at));
            if let Some(first) = open.first() {
                overlaps.push((order, *first, c));
            }
            open.push(c);
            max_open = max_open.max(open.len());
        }
    }
    (max_open, overlaps)
}

fn short(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, order_id: i64, opened_at: i64, closed_at: Option<i64>) -> CaseSpan {
        CaseSpan { short_id: id.into(), order_id, opened_at, closed_at }
    }

    #[test]
    fn two_open_cases_of_one_order_are_found() {
        let cases = vec![
            case("C1", 1, 0, Some(100)),
            case("C2", 1, 100, None),
            case("C3", 2, 0, None),
            case("C4", 2, 50, Some(60)),
            case("C5", 3, 10, None),
        ];
        let (max_open, overlaps) = overlapping_cases(&cases);
        assert_eq!(max_open, 2);
        let got: Vec<(i64, &str, &str)> =
            overlaps.iter().map(|(o, a, b)| (*o, a.short_id.as_str(), b.short_id.as_str())).collect();
        assert_eq!(got, vec![(2, "C3", "C4")], "a case closed when the next opens does not overlap");
    }
}
