//! The composition root: every daemon — `run` on the real account, the
//! testbed crate's sandbox behind `demo`, `simulate`, the benchmarks and
//! the tests — is built here, once, from a [`Blueprint`] that says only
//! what differs between them. The parts never build one another: the order
//! processor, the customer contact, the moderator desk, the agent and the
//! ops listener each get what they need from here, and [`Daemon`] only
//! runs them as tasks.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tracing::info;

use crate::agent::AgentSettings;
use crate::backend::{BackendClient, BackendConfig};
use crate::contact::{Budgeted, Contact, ContactConfig, ModeratorQuestions, QuestionHandler};
use crate::daemon::{CardPoster, Daemon, DeskParts, ItemHook, Parts, Wakes};
use crate::knowledge::KnowledgeBase;
use crate::moderator::{DeskSetup, Learner, ModeratorConfig, ModeratorDesk};
use crate::ops::{Metrics, ObservedMessenger, OpsRuntime, OpsSettings, TelegramStats};
use crate::orders::{CheckpointHook, IngestConfig, OrderProcessor, WorkflowConfig};
use crate::report::ReportSettings;
use crate::retention::RetentionSettings;
use crate::store::{ApprovedPair, Store};
use crate::telegram::Messenger;

/// What one daemon is made of, as its caller decides it.
pub struct Blueprint {
    pub store: Store,
    /// The connection to Telegram (grammers, or the simulator).
    pub messenger: Arc<dyn Messenger>,
    pub backend: BackendConfig,
    pub workflow: WorkflowConfig,
    pub ingest: IngestConfig,
    pub ops: OpsSettings,
    /// Measurements that outlive a restart of the daemon in one process.
    pub observations: Observations,
    /// Customer contact and the moderator desk; `None` sends every account
    /// problem straight to a moderator card.
    pub contact: Option<ContactConfig>,
    pub moderator: ModeratorConfig,
    /// The agent answers customers' questions from this knowledge base;
    /// `None`: every question is a case for the moderator.
    pub agent: Option<(AgentSettings, KnowledgeBase)>,
    pub report: ReportSettings,
    pub retention: Option<RetentionSettings>,
    /// Stops the order worker at a named point (crash tests, `simulate`).
    pub checkpoint: Option<CheckpointHook>,
    /// Runs before each inbox message is handled (a test makes one panic).
    pub item_hook: Option<ItemHook>,
}

impl Blueprint {
    /// The orders path alone: no listener, no customer contact (account
    /// problems go to moderator cards), no agent, nothing pruned. For the
    /// tests (feature `test-support`).
    #[cfg(any(test, feature = "test-support"))]
    pub fn orders_only(
        store: Store,
        messenger: Arc<dyn Messenger>,
        backend: BackendConfig,
        workflow: WorkflowConfig,
        ingest: IngestConfig,
    ) -> Self {
        Self {
            store,
            messenger,
            backend,
            workflow,
            ingest,
            ops: OpsSettings::default(),
            observations: Observations::default(),
            contact: None,
            moderator: ModeratorConfig::default(),
            agent: None,
            report: ReportSettings::default(),
            retention: None,
            checkpoint: None,
            item_hook: None,
        }
    }
}

/// The backend latency and Telegram call counts `/metrics` shows.
#[derive(Clone, Default)]
pub struct Observations {
    pub metrics: Arc<Metrics>,
    pub telegram: Arc<TelegramStats>,
}

/// A daemon ready to run, with what its caller stops after it.
pub struct Assembled {
    pub daemon: Daemon,
    /// The ops listener and the webhook reconciler (already serving).
    pub ops: OpsRuntime,
    /// Raising it stops the daemon and the ops runtime gracefully.
    pub shutdown: watch::Sender<bool>,
}

/// Builds every part of one daemon from `b` and starts the ops listener.
pub async fn assemble(b: Blueprint) -> anyhow::Result<Assembled> {
    let (shutdown, stop) = watch::channel(false);
    let backend = BackendClient::new(b.backend)?.with_observer(b.observations.metrics.clone());
    let messenger: Arc<dyn Messenger> = Arc::new(ObservedMessenger::new(b.messenger, b.observations.telegram.clone()));
    let wakes = Wakes::new();
    let mut orders = OrderProcessor::new(
        b.store.clone(),
        messenger.clone(),
        backend.clone(),
        b.workflow.clone(),
        b.ingest.clone(),
        stop.clone(),
        b.checkpoint,
    );
    orders.set_customer_contact(b.contact.is_some());
    let desk = match b.contact {
        Some(contact) => {
            Some(desk(&b.store, &messenger, &wakes, &b.workflow, &b.ingest, contact, b.moderator, b.agent, &b.report)?)
        }
        None => None,
    };
    // Started after every part that can fail to build, so no listener is left behind.
    let ops = OpsRuntime::start(
        &b.ops,
        b.store.clone(),
        backend,
        b.observations.metrics,
        b.observations.telegram,
        stop.clone(),
    )
    .await
    .context("Failed to start the ops listener")?;
    crate::ops::conversation_metrics::wire(&ops.state, &b.store);
    crate::ops::conversation_metrics::wire_report(&ops.state, &b.store, b.report.resolution_window);

    let cards = b
        .workflow
        .moderator_chat
        .map(|chat| CardPoster::new(b.store.clone(), messenger.clone(), chat, b.report.clone()));
    let daemon = Daemon::new(Parts {
        store: b.store,
        messenger,
        orders: Arc::new(orders),
        desk,
        cards,
        wakes,
        workflow: b.workflow,
        ingest: b.ingest,
        retention: b.retention,
        board: ops.state.tasks.clone(),
        item_hook: b.item_hook,
        shutdown: stop,
    });
    Ok(Assembled { daemon, ops, shutdown })
}

/// Customer contact, its question handler (the agent, or a case for the
/// moderator) and the moderator desk over it.
#[allow(clippy::too_many_arguments)]
fn desk(
    store: &Store,
    messenger: &Arc<dyn Messenger>,
    wakes: &Wakes,
    workflow: &WorkflowConfig,
    ingest: &IngestConfig,
    contact: ContactConfig,
    moderator: ModeratorConfig,
    agent: Option<(AgentSettings, KnowledgeBase)>,
    report: &ReportSettings,
) -> anyhow::Result<DeskParts> {
    let (questions, learner): (Arc<dyn QuestionHandler>, Option<Arc<dyn Learner>>) = match agent {
        Some((settings, kb)) => {
            let handler = crate::agent::questions::handler(settings, kb.clone(), store.clone())?;
            (Arc::new(handler), Some(Arc::new(KnowledgeLearner(kb))))
        }
        None => (Arc::new(ModeratorQuestions), None),
    };
    let limits = contact.question_limits;
    let contact = Arc::new(Contact::new(
        store.clone(),
        messenger.clone(),
        contact,
        ingest.parser.account_pattern.clone(),
        Arc::new(Budgeted::new(questions, store.clone(), limits)),
        wakes.orders.clone(),
        wakes.cards.clone(),
        workflow.moderator_chat,
    ));
    let desk = ModeratorDesk::new(DeskSetup {
        store: store.clone(),
        customers: contact.clone(),
        orders: wakes.orders.clone(),
        cards: wakes.cards.clone(),
        pattern: ingest.parser.account_pattern.clone(),
        default_language: contact.config().default_language,
        cfg: moderator,
        learner,
        report: report.clone(),
    });
    Ok(DeskParts { contact, desk: Arc::new(desk) })
}

/// `/learn`ed pairs go into the knowledge base at once; erasing a
/// customer takes their conversation out of it.
struct KnowledgeLearner(KnowledgeBase);

#[async_trait::async_trait]
impl Learner for KnowledgeLearner {
    async fn learn(&self, pair: &ApprovedPair) -> anyhow::Result<()> {
        let report = self.0.add_approved_pair(pair).await.context("Failed to index the approved pair")?;
        info!(pair = pair.id, %report, "approved pair added to the knowledge base");
        Ok(())
    }

    async fn unlearn(&self, conversation_id: i64) -> anyhow::Result<()> {
        crate::retention::IndexEraser::remove_conversation(&self.0, conversation_id).await
    }
}
