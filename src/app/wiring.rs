//! Builds the parts the commands share from the config file: the knowledge
//! base, and the agent plugged into the daemon's contact setup.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::config::FileConfig;
use crate::agent::knowledge_retriever::KnowledgeRetriever;
use crate::agent::{questions, AgentSettings, Retriever};
use crate::daemon::ContactSetup;
use crate::knowledge::redact::Redactor;
use crate::knowledge::KnowledgeBase;
use crate::store::Store;

/// The knowledge base the `ask` command and the daemon answer from: the
/// index under `data_dir` (or the configured Qdrant server) as a [`Retriever`].
pub async fn retriever_for(data_dir: &Path, config: &FileConfig) -> anyhow::Result<Box<dyn Retriever>> {
    let kb = open_knowledge(data_dir, config).await?;
    Ok(Box::new(KnowledgeRetriever::new(kb)))
}

/// Opens the configured knowledge base; an empty one is an error that says
/// how to fill it.
pub async fn open_knowledge(data_dir: &Path, config: &FileConfig) -> anyhow::Result<KnowledgeBase> {
    let env = |k: &str| std::env::var(k).ok();
    let kc = config.knowledge.resolve(&env).context("Invalid [knowledge] section")?;
    open_resolved(data_dir, &kc, false).await
}

/// [`open_knowledge`] for a measurement: nobody is waiting on a query, so
/// a query may take as long as an ingestion batch (`timeout_secs`) before
/// search goes lexical — a loaded machine must not turn a hybrid
/// evaluation into a lexical one.
pub async fn open_knowledge_patiently(data_dir: &Path, config: &FileConfig) -> anyhow::Result<KnowledgeBase> {
    let env = |k: &str| std::env::var(k).ok();
    let mut kc = config.knowledge.resolve(&env).context("Invalid [knowledge] section")?;
    if let Some(e) = kc.embedding.as_mut() {
        e.query_timeout = e.query_timeout.max(e.timeout);
    }
    open_resolved(data_dir, &kc, false).await
}

/// `serving`: for the daemon ([`KnowledgeBase::open_serving`]).
async fn open_resolved(
    data_dir: &Path,
    kc: &crate::knowledge::KnowledgeConfig,
    serving: bool,
) -> anyhow::Result<KnowledgeBase> {
    let opened =
        if serving { KnowledgeBase::open_serving(data_dir, kc).await } else { KnowledgeBase::open(data_dir, kc).await };
    let kb = opened.with_context(|| format!("Failed to open the knowledge base under {}", data_dir.display()))?;
    let stats = kb.stats().await.context("Failed to read the knowledge base")?;
    if stats.doc_chunks + stats.conversation_chunks == 0 {
        anyhow::bail!(
            "the knowledge base under {} is empty: run `tribute-assistant kb ingest --data-dir {}` first \
             (without paths it ingests the starter FAQ built into the binary)",
            data_dir.display(),
            data_dir.display()
        );
    }
    Ok(kb)
}

/// The agent of the real daemon: answers questions over the knowledge base
/// under `data_dir` with the `[agent]` settings, and learns approved answers.
/// When the knowledge base cannot be opened or is empty, the daemon still
/// runs orders and contact, and every question goes to the moderator —
/// said once, loudly, at start.
pub async fn wire_agent(setup: &mut ContactSetup, data_dir: &Path, file: &FileConfig, store: Store) {
    let wired = async {
        let env = |k: &str| std::env::var(k).ok();
        let settings = AgentSettings::resolve(&file.agent, &env).context("Invalid [agent] settings")?;
        let kc = file.knowledge.resolve(&env).context("Invalid [knowledge] section")?;
        let kb = open_resolved(data_dir, &kc, true).await?;
        questions::attach(setup, settings, kb, store)
    };
    if let Err(e) = wired.await {
        tracing::warn!(error = format!("{e:#}"), "the agent is off: every customer question goes to the moderator");
    }
}

/// The store of a command that reads what the daemon wrote: `--data-dir`,
/// else the config's data dir, else `./data`; a missing database is an
/// error that says how to point at one.
pub async fn open_existing_store(data_dir: Option<PathBuf>, file: Option<&FileConfig>) -> anyhow::Result<Store> {
    let dir = match (data_dir, file) {
        (Some(d), _) => d,
        (None, Some(f)) => f.data_dir.clone(),
        (None, None) => PathBuf::from("./data"),
    };
    let db = dir.join(crate::DATABASE_FILE);
    if !db.exists() {
        anyhow::bail!("No database at {}: pass --data-dir or --config, or run the daemon first", db.display());
    }
    Store::open(&db).await.with_context(|| format!("Failed to open {}", db.display()))
}

/// The PII redactor, with the shop's own account-ID pattern from the
/// config, which catches IDs the generic rules miss.
pub fn redactor(file: Option<&FileConfig>) -> anyhow::Result<Redactor> {
    let extra = match file.and_then(|c| c.parser.account_pattern.as_deref()) {
        Some(p) => Some(regex::Regex::new(p).with_context(|| format!("Invalid [parser] account_pattern {p:?}"))?),
        None => None,
    };
    Ok(Redactor::new(extra))
}
