//! `/metrics` in the Prometheus text exposition format (version 0.0.4),
//! written by hand: a dozen families do not justify a metrics framework.
//!
//! Counts that live in the database (orders, activations, escalations,
//! queues, webhook events) are read at scrape time, so they survive
//! restarts and agree with `orders list`. Counts that only exist in memory
//! (backend latency, Telegram flood waits) start at zero with the process,
//! as Prometheus counters may. Counts owned by other parts (customer
//! messages, agent answers) come in through [`MetricSource`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::BackendObserver;
use crate::domain::OrderState;
use crate::store::StoreSnapshot;

use super::observed_messenger::TelegramSnapshot;
use crate::runtime::TaskReport;

/// Upper bounds (seconds) of the backend latency histogram.
pub const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// In-memory measurements. Cheap to share; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    backend: Mutex<BTreeMap<&'static str, Histogram>>,
    backend_results: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        let slot = LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum += secs;
        self.count += 1;
    }
}

impl BackendObserver for Metrics {
    fn observe(&self, endpoint: &'static str, took: Duration, result: &'static str) {
        self.backend.lock().unwrap_or_else(|e| e.into_inner()).entry(endpoint).or_default().observe(took.as_secs_f64());
        *self.backend_results.lock().unwrap_or_else(|e| e.into_inner()).entry((endpoint, result)).or_default() += 1;
    }
}

/// One labelled value of an externally owned metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A seam for counts whose tables belong to other parts (customer
/// messages: `contact`; agent answers: `agent`). The lead wires an
/// implementation with [`super::OpsState::set_source`]; until then the
/// family is exported with its HELP/TYPE lines and no samples.
#[async_trait::async_trait]
pub trait MetricSource: Send + Sync {
    async fn samples(&self) -> anyhow::Result<Vec<Sample>>;
}

/// Counter or gauge, for the `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A metric family filled by a [`MetricSource`].
#[derive(Clone)]
pub struct ExternalFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub source: Option<Arc<dyn MetricSource>>,
}

/// The externally owned families, unwired.
pub fn external_families() -> Vec<ExternalFamily> {
    vec![
        ExternalFamily {
            name: CUSTOMER_MESSAGES,
            help: "Messages exchanged with customers in private chats, by direction (in/out).",
            kind: Kind::Counter,
            source: None,
        },
        ExternalFamily {
            name: AGENT_ANSWERS,
            help: "Answers the agent produced, by outcome (answered/escalated).",
            kind: Kind::Counter,
            source: None,
        },
    ]
}

/// Family names of the seams.
pub const CUSTOMER_MESSAGES: &str = "tribute_assistant_customer_messages_total";
pub const AGENT_ANSWERS: &str = "tribute_assistant_agent_answers_total";

/// Everything one scrape shows.
pub struct Scrape<'a> {
    pub store: &'a StoreSnapshot,
    pub telegram: &'a TelegramSnapshot,
    pub metrics: &'a Metrics,
    /// `(result, count)` of webhook deliveries, when the webhook is enabled.
    pub webhook: Option<Vec<(&'static str, u64)>>,
    /// External families with the samples their sources returned.
    pub external: Vec<(ExternalFamily, Vec<Sample>)>,
    pub uptime: Duration,
    /// The daemon's tasks, as the supervisor sees them.
    pub tasks: Vec<TaskReport>,
}

/// Writes the exposition text.
pub fn render(s: &Scrape<'_>) -> String {
    let mut w = Writer::default();
    w.family("tribute_assistant_up", "1 while the daemon serves this endpoint.", Kind::Gauge);
    w.sample("tribute_assistant_up", &[], 1.0);
    w.family("tribute_assistant_build_info", "The running version.", Kind::Gauge);
    w.sample("tribute_assistant_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    w.family("tribute_assistant_uptime_seconds", "Seconds since the daemon started.", Kind::Gauge);
    w.sample("tribute_assistant_uptime_seconds", &[], s.uptime.as_secs_f64());

    w.family("tribute_assistant_orders", "Orders in the store by state.", Kind::Gauge);
    for state in OrderState::ALL {
        let n = s.store.orders_by_state.iter().find(|(st, _)| *st == state).map_or(0, |(_, n)| *n);
        w.sample("tribute_assistant_orders", &[("state", state.as_str())], n as f64);
    }
    w.family("tribute_assistant_activations_total", "Orders the backend activated.", Kind::Counter);
    w.sample("tribute_assistant_activations_total", &[], s.store.activations as f64);
    w.family(
        "tribute_assistant_escalations_total",
        "Cases written for the moderator, by reason (order escalations, unreadable messages, webhook flags).",
        Kind::Counter,
    );
    for (reason, n) in &s.store.cards_by_reason {
        w.sample("tribute_assistant_escalations_total", &[("reason", reason)], *n as f64);
    }
    w.family("tribute_assistant_queue_depth", "Work waiting, by queue.", Kind::Gauge);
    for (queue, n) in [
        ("moderator_outbox", s.store.cards_pending),
        ("moderator_outbox_parked", s.store.cards_parked),
        ("orders_unfinished", s.store.orders_unfinished),
        ("orders_parked", s.store.orders_parked),
        ("purchases_unmatched", s.store.purchases_unmatched),
        ("refunds_open", s.store.refunds_open),
        ("inbox", s.store.inbox_waiting),
        ("learn_unindexed", s.store.pairs_unindexed),
        ("questions_queued", s.store.questions_queued),
    ] {
        w.sample("tribute_assistant_queue_depth", &[("queue", queue)], n as f64);
    }

    w.family(
        "tribute_assistant_queue_lag_seconds",
        "How long the longest-waiting due item of each queue has waited (0 = nothing due).",
        Kind::Gauge,
    );
    for (queue, ms) in s.store.lag_ms {
        w.sample("tribute_assistant_queue_lag_seconds", &[("queue", queue)], ms as f64 / 1000.0);
    }
    for (name, help, kind, value) in [
        (
            "tribute_assistant_task_up",
            "1 while the task runs and completed a loop within its bound.",
            Kind::Gauge,
            (|t: &TaskReport| f64::from(u8::from(t.ok))) as fn(&TaskReport) -> f64,
        ),
        ("tribute_assistant_task_restarts_total", "Times the supervisor restarted the task.", Kind::Counter, |t| {
            t.restarts as f64
        }),
        (
            "tribute_assistant_task_panics_total",
            "Panics caught in the task (the task itself or one item it handled).",
            Kind::Counter,
            |t| t.panics as f64,
        ),
        (
            "tribute_assistant_items_quarantined_total",
            "Items the task gave up on after their retries and showed to the moderators.",
            Kind::Counter,
            |t| t.quarantined as f64,
        ),
    ] {
        w.family(name, help, kind);
        for t in &s.tasks {
            w.sample(name, &[("task", t.name)], value(t));
        }
    }

    let hist = s.metrics.backend.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let name = "tribute_assistant_backend_request_duration_seconds";
    w.family_raw(name, "Backend HTTP attempts by endpoint, seconds.", "histogram");
    for (endpoint, h) in &hist {
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += h.buckets[i];
            w.sample(&format!("{name}_bucket"), &[("endpoint", endpoint), ("le", &fmt_f64(*bound))], cumulative as f64);
        }
        w.sample(&format!("{name}_bucket"), &[("endpoint", endpoint), ("le", "+Inf")], h.count as f64);
        w.sample(&format!("{name}_sum"), &[("endpoint", endpoint)], h.sum);
        w.sample(&format!("{name}_count"), &[("endpoint", endpoint)], h.count as f64);
    }
    let results = s.metrics.backend_results.lock().unwrap_or_else(|e| e.into_inner()).clone();
    w.family(
        "tribute_assistant_backend_requests_total",
        "Backend HTTP attempts by endpoint and result.",
        Kind::Counter,
    );
    for ((endpoint, result), n) in &results {
        w.sample("tribute_assistant_backend_requests_total", &[("endpoint", endpoint), ("result", result)], *n as f64);
    }

    let t = s.telegram;
    w.family("tribute_assistant_telegram_connected", "1 when the last Telegram call succeeded.", Kind::Gauge);
    w.sample("tribute_assistant_telegram_connected", &[], if t.connected { 1.0 } else { 0.0 });
    w.family(
        "tribute_assistant_telegram_last_update_timestamp_seconds",
        "Unix time of the last Telegram update received (0 = none yet).",
        Kind::Gauge,
    );
    w.sample(
        "tribute_assistant_telegram_last_update_timestamp_seconds",
        &[],
        t.last_update_ms.unwrap_or(0) as f64 / 1000.0,
    );
    w.family("tribute_assistant_telegram_updates_total", "Telegram updates received.", Kind::Counter);
    w.sample("tribute_assistant_telegram_updates_total", &[], t.updates as f64);
    w.family(
        "tribute_assistant_telegram_flood_waits_total",
        "FLOOD_WAIT answers that reached the daemon.",
        Kind::Counter,
    );
    w.sample("tribute_assistant_telegram_flood_waits_total", &[], t.flood_waits as f64);
    w.family(
        "tribute_assistant_telegram_flood_wait_seconds_total",
        "Seconds Telegram asked us to wait.",
        Kind::Counter,
    );
    w.sample("tribute_assistant_telegram_flood_wait_seconds_total", &[], t.flood_wait_ms as f64 / 1000.0);
    w.family("tribute_assistant_telegram_errors_total", "Failed Telegram calls by kind.", Kind::Counter);
    for (kind, n) in &t.errors {
        w.sample("tribute_assistant_telegram_errors_total", &[("kind", kind)], *n as f64);
    }

    w.family("tribute_assistant_webhook_events_total", "Tribute webhook events stored, by name.", Kind::Counter);
    for (name, n) in &s.store.webhook_events {
        w.sample("tribute_assistant_webhook_events_total", &[("name", name)], *n as f64);
    }
    if let Some(deliveries) = &s.webhook {
        w.family("tribute_assistant_webhook_requests_total", "Webhook deliveries by answer.", Kind::Counter);
        for (result, n) in deliveries {
            w.sample("tribute_assistant_webhook_requests_total", &[("result", result)], *n as f64);
        }
    }
    w.family(
        "tribute_assistant_deactivations_total",
        "Backend deactivations after refunds, by outcome.",
        Kind::Counter,
    );
    for (outcome, n) in &s.store.deactivations {
        w.sample("tribute_assistant_deactivations_total", &[("outcome", outcome)], *n as f64);
    }

    // Retention (src/retention): what the pruner and `forget` removed.
    for (kind, name, help, label) in [
        (
            "pruned",
            "tribute_assistant_retention_pruned_rows_total",
            "Rows deleted by retention or forget, by table.",
            "table",
        ),
        (
            "scrubbed",
            "tribute_assistant_retention_scrubbed_total",
            "Texts blanked and customers pseudonymised, by what.",
            "what",
        ),
    ] {
        w.family(name, help, Kind::Counter);
        for (_, what, n) in s.store.retention.iter().filter(|(k, _, _)| k == kind) {
            w.sample(name, &[(label, what)], *n as f64);
        }
    }
    let name = "tribute_assistant_retention_last_pass_timestamp_seconds";
    w.family(name, "Unix time the pruner last finished a pass (0 = never).", Kind::Gauge);
    w.sample(name, &[], s.store.retention_last_pass_at.unwrap_or(0) as f64 / 1000.0);

    for (family, samples) in &s.external {
        w.family(family.name, family.help, family.kind);
        for sample in samples {
            let labels: Vec<(&str, &str)> = sample.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            w.sample(family.name, &labels, sample.value);
        }
    }
    w.out
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, help: &str, kind: Kind) {
        self.family_raw(name, help, kind.as_str());
    }

    fn family_raw(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", fmt_f64(value));
    }
}

fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.observe("activate", Duration::from_millis(3), "ok");
        m.observe("activate", Duration::from_millis(30), "ok");
        m.observe("activate", Duration::from_secs(20), "retry");
        let store = StoreSnapshot { cards_by_reason: vec![("we\"ird\\reason".into(), 2)], ..Default::default() };
        let telegram = TelegramSnapshot { connected: true, ..Default::default() };
        let text = render(&Scrape {
            store: &store,
            telegram: &telegram,
            metrics: &m,
            webhook: None,
            external: vec![],
            uptime: Duration::from_secs(5),
            tasks: {
                let board = crate::runtime::TaskBoard::new();
                board.register("contact", Duration::from_secs(60));
                board.reports(0)
            },
        });
        assert!(text.contains("tribute_assistant_task_up{task=\"contact\"} 0\n"), "{text}");
        assert!(text.contains("tribute_assistant_items_quarantined_total{task=\"contact\"} 0\n"), "{text}");
        let b = "tribute_assistant_backend_request_duration_seconds_bucket{endpoint=\"activate\",";
        assert!(text.contains(&format!("{b}le=\"0.005\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("{b}le=\"0.05\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("{b}le=\"10\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("{b}le=\"+Inf\"}} 3\n")), "{text}");
        assert!(text.contains("reason=\"we\\\"ird\\\\reason\"} 2\n"), "{text}");
        assert!(text.contains("tribute_assistant_orders{state=\"confirmed\"} 0\n"));
        assert!(text.contains("tribute_assistant_backend_requests_total{endpoint=\"activate\",result=\"retry\"} 1\n"));
    }
}
