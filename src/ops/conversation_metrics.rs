//! The metric families whose counts live in the contact and agent tables:
//! customer messages by direction and agent answers by outcome; and the
//! automation report's counters over the whole store (orders completed by
//! how, questions by outcome, open cases by age), with the report's
//! definitions (`store::report`).

use std::sync::Arc;

use super::{Kind, MetricSource, OpsState, Sample, AGENT_ANSWERS, CUSTOMER_MESSAGES};
use crate::store::report::ReportQuery;
use crate::store::Store;

pub const ORDERS_COMPLETED: &str = "tribute_assistant_orders_completed";
pub const QUESTIONS: &str = "tribute_assistant_questions";
pub const CASES_OPEN: &str = "tribute_assistant_cases_open";

struct CustomerMessages(Store);
struct AgentAnswers(Store);

fn sample(label: &str, value: &str, n: i64) -> Sample {
    Sample { labels: vec![(label.to_owned(), value.to_owned())], value: n as f64 }
}

#[async_trait::async_trait]
impl MetricSource for CustomerMessages {
    async fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        let (incoming, outgoing) = self.0.customer_message_counts().await?;
        Ok(vec![sample("direction", "in", incoming), sample("direction", "out", outgoing)])
    }
}

#[async_trait::async_trait]
impl MetricSource for AgentAnswers {
    async fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        let (answered, escalated) = self.0.agent_turn_counts().await?;
        Ok(vec![sample("outcome", "answered", answered), sample("outcome", "escalated", escalated)])
    }
}

/// Wires both families to the store.
pub fn wire(state: &OpsState, store: &Store) {
    // Both families are declared (with their help) by `metrics`; only the source is new.
    let help = "";
    state.set_source(CUSTOMER_MESSAGES, help, Kind::Counter, Arc::new(CustomerMessages(store.clone())));
    state.set_source(AGENT_ANSWERS, help, Kind::Counter, Arc::new(AgentAnswers(store.clone())));
}

/// The report's queries over all time, as of the scrape.
fn all_time(window_ms: i64) -> ReportQuery {
    let now = crate::runtime::clock::now_ms();
    ReportQuery {
        since_ms: i64::MIN / 4,
        until_ms: i64::MAX / 4,
        as_of_ms: now,
        resolution_window_ms: window_ms,
        bucket_origin_ms: 0,
        bucket_ms: 1,
    }
    .whole()
}

struct OrdersCompleted(Store);
struct Questions(Store, i64);
struct CasesOpen(Store);

#[async_trait::async_trait]
impl MetricSource for OrdersCompleted {
    async fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        let o = self.0.report_orders(&all_time(0)).await?.into_iter().next().unwrap_or_default();
        Ok(vec![
            sample("how", "automatically", o.completed_automatically),
            sample("how", "after_contact", o.completed_after_contact),
            sample("how", "by_moderator", o.completed_by_moderator),
        ])
    }
}

#[async_trait::async_trait]
impl MetricSource for Questions {
    async fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        let q = self.0.report_questions(&all_time(self.1)).await?.into_iter().next().unwrap_or_default();
        Ok(vec![
            sample("outcome", "resolved_by_agent", q.resolved_by_agent),
            sample("outcome", "reopened", q.reopened),
            sample("outcome", "escalated", q.escalated),
            sample("outcome", "pending", q.pending),
        ])
    }
}

#[async_trait::async_trait]
impl MetricSource for CasesOpen {
    async fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        let [a, b, c, d] = self.0.report_cases(&all_time(0)).await?.open_by_age;
        Ok(vec![
            sample("age", "under_1h", a),
            sample("age", "1h_to_24h", b),
            sample("age", "1d_to_7d", c),
            sample("age", "over_7d", d),
        ])
    }
}

/// How long a reading of the report's counters is reused: they cost a pass
/// over the conversation tables (about a second at 100k conversations,
/// `benches/report.rs`), too much for every scrape.
const REUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// A source read at most once per [`REUSE`]; concurrent scrapes wait for one reading.
struct Reused<S> {
    inner: S,
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Vec<Sample>)>>,
}

impl<S> Reused<S> {
    fn new(inner: S) -> Self {
        Self { inner, last: tokio::sync::Mutex::new(None) }
    }
}

#[async_trait::async_trait]
impl<S: MetricSource> MetricSource for Reused<S> {
    async fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        let mut last = self.last.lock().await;
        if let Some((_, samples)) = last.as_ref().filter(|(at, _)| at.elapsed() < REUSE) {
            return Ok(samples.clone());
        }
        let samples = self.inner.samples().await?;
        *last = Some((tokio::time::Instant::now(), samples.clone()));
        Ok(samples)
    }
}

/// Wires the report's counters; `resolution_window` as in `[report]`.
pub fn wire_report(state: &OpsState, store: &Store, resolution_window: std::time::Duration) {
    let window = resolution_window.as_millis().min(i64::MAX as u128 / 4) as i64;
    state.set_source(
        ORDERS_COMPLETED,
        "Completed orders by how (automatically, after contact with the customer, by a moderator); docs/report.md.",
        Kind::Gauge,
        Arc::new(Reused::new(OrdersCompleted(store.clone()))),
    );
    state.set_source(
        QUESTIONS,
        "Customer questions the agent handled, by outcome (resolved_by_agent, reopened, escalated, pending); docs/report.md.",
        Kind::Gauge,
        Arc::new(Reused::new(Questions(store.clone(), window))),
    );
    state.set_source(CASES_OPEN, "Open cases by age.", Kind::Gauge, Arc::new(Reused::new(CasesOpen(store.clone()))));
}
