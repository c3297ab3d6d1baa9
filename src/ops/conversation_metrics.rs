//! The metric families whose counts live in the contact and agent tables:
//! customer messages by direction and agent answers by outcome.

use std::sync::Arc;

use super::{Kind, MetricSource, OpsState, Sample, AGENT_ANSWERS, CUSTOMER_MESSAGES};
use crate::store::Store;

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
