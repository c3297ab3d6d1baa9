//! Opens what the commands share from the config file: the knowledge base
//! (through the running daemon when one holds it) and the daemon's agent.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::config::FileConfig;
use crate::agent::knowledge_retriever::KnowledgeRetriever;
use crate::agent::{AgentSettings, Hit, Lang, Retriever, RetrieverError};
use crate::knowledge::redact::Redactor;
use crate::knowledge::{live, KnowledgeBase, KnowledgeError};
use crate::store::Store;

/// The knowledge base the `ask` command answers from: the one the running
/// daemon of `data_dir` holds (through it), else the index under `data_dir`
/// (or the configured Qdrant server), as a [`Retriever`].
pub async fn retriever_for(data_dir: &Path, config: &FileConfig) -> anyhow::Result<Box<dyn Retriever>> {
    let env = |k: &str| std::env::var(k).ok();
    let kc = config.knowledge.resolve(&env).context("Invalid [knowledge] section")?;
    Ok(access_filled(data_dir, &kc, Open::Plain).await?.retriever())
}

/// How a command opens the knowledge base when no daemon holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Plain,
    /// For a measurement: nobody is waiting on a query, so a query may take
    /// as long as an ingestion batch (`timeout_secs`) before search goes
    /// lexical — a loaded machine must not turn a hybrid evaluation into a
    /// lexical one. (Through the daemon, the daemon's own timeout applies.)
    Patient,
    /// Delete the collection first ([`KnowledgeBase::rebuild`]): never
    /// through a running daemon.
    Rebuild,
}

/// The knowledge base as a command reaches it.
pub enum KbAccess {
    /// Opened here: no daemon holds it.
    Local(KnowledgeBase),
    /// Held by the running daemon of the data dir; requests go to it.
    Daemon(live::Client),
}

impl KbAccess {
    /// The agent's retriever over it.
    pub fn retriever(self) -> Box<dyn Retriever> {
        match self {
            KbAccess::Local(kb) => Box::new(KnowledgeRetriever::new(kb)),
            KbAccess::Daemon(c) => Box::new(DaemonRetriever(c)),
        }
    }

    pub async fn stats(&self) -> anyhow::Result<crate::knowledge::KbStats> {
        Ok(match self {
            KbAccess::Local(kb) => kb.stats().await.context("Failed to read the knowledge base")?,
            KbAccess::Daemon(c) => c.stats().await.context("Failed to read the knowledge base")?.stats,
        })
    }

    /// Searches that went on lexically (the daemon's count: its customers' searches too).
    pub async fn dense_fallbacks(&self) -> u64 {
        match self {
            KbAccess::Local(kb) => kb.dense_fallbacks(),
            KbAccess::Daemon(c) => c.stats().await.map(|s| s.dense_fallbacks).unwrap_or(0),
        }
    }
}

/// The daemon's knowledge base as the agent's [`Retriever`]: the same
/// search the daemon's own agent runs ([`KnowledgeRetriever`]).
struct DaemonRetriever(live::Client);

#[async_trait::async_trait]
impl Retriever for DaemonRetriever {
    async fn search(&self, query: &str, language: Option<Lang>, limit: usize) -> Result<Vec<Hit>, RetrieverError> {
        let req = live::SearchRequest {
            query: query.to_owned(),
            kind: None,
            language: language.map(|l| l.as_str().to_owned()),
            limit,
            prefer: true,
        };
        let hits = self.0.search(&req).await.map_err(|e| RetrieverError(e.to_string()))?;
        Ok(hits.into_iter().map(KnowledgeRetriever::to_hit).collect())
    }
}

/// The knowledge base of `data_dir` for a command: through the daemon that
/// serves it when one runs, else opened here. When neither works — the
/// index is held by a process that takes no requests, or by a daemon that
/// does not answer — the error says who holds it and what to do.
pub async fn access(data_dir: &Path, kc: &crate::knowledge::KnowledgeConfig, how: Open) -> anyhow::Result<KbAccess> {
    let mut silent = None;
    if let Some(endpoint) = live::Endpoint::read(data_dir)? {
        let client = live::Client::new(endpoint)?;
        match client.ping().await {
            Ok(_) if how == Open::Rebuild => bail!(
                "the running daemon (pid {}) holds the knowledge base under {}, and `kb ingest --rebuild` \
                 starts the index over, which needs it to itself: stop the daemon, run `kb ingest --rebuild`, \
                 start the daemon again (a rebuild follows a change of the embedding model, which the daemon \
                 only takes at its start anyway)",
                client.pid(),
                data_dir.display()
            ),
            Ok(_) => {
                tracing::debug!(pid = client.pid(), "the running daemon holds the knowledge base: asking it");
                return Ok(KbAccess::Daemon(client));
            }
            // A file left by a killed daemon, or a daemon that is stuck: opening tells which.
            Err(e) => silent = Some((client, e)),
        }
    }
    let mut kc = kc.clone();
    if how == Open::Patient {
        if let Some(e) = kc.embedding.as_mut() {
            e.query_timeout = e.query_timeout.max(e.timeout);
        }
    }
    let opened = if how == Open::Rebuild {
        KnowledgeBase::rebuild(data_dir, &kc).await
    } else {
        KnowledgeBase::open(data_dir, &kc).await
    };
    match opened {
        Ok(kb) => Ok(KbAccess::Local(kb)),
        Err(KnowledgeError::Busy { dir }) => match silent {
            Some((client, e)) => bail!(
                "the daemon (pid {pid}) holds the knowledge base under {dir} but does not answer at {url} ({e}). \
                 If it is still starting, try again in a moment; otherwise look at its log, or stop it \
                 (e.g. `kill {pid}`) and run this command again",
                pid = client.pid(),
                dir = dir.display(),
                url = client.url(),
            ),
            None => bail!(
                "the knowledge base under {} is open in another process that takes no requests: another \
                 `kb ingest` still running, or a daemon that started without its knowledge listener (see its log) \
                 or of a version before the daemon took `kb` commands. Wait for it or stop it, then run this \
                 command again",
                dir.display()
            ),
        },
        Err(e) => {
            Err(anyhow::Error::new(e)
                .context(format!("Failed to open the knowledge base under {}", data_dir.display())))
        }
    }
}

/// [`access`] to a knowledge base that has something in it.
pub async fn access_filled(
    data_dir: &Path,
    kc: &crate::knowledge::KnowledgeConfig,
    how: Open,
) -> anyhow::Result<KbAccess> {
    let kb = access(data_dir, kc, how).await?;
    ensure_filled(data_dir, &kb.stats().await?)?;
    Ok(kb)
}

fn ensure_filled(data_dir: &Path, stats: &crate::knowledge::KbStats) -> anyhow::Result<()> {
    if stats.doc_chunks + stats.conversation_chunks == 0 {
        bail!(
            "the knowledge base under {} is empty: run `tribute-assistant kb ingest --data-dir {}` first \
             (without paths it ingests the starter FAQ built into the binary)",
            data_dir.display(),
            data_dir.display()
        );
    }
    Ok(())
}

/// `serving`: for the daemon ([`KnowledgeBase::open_serving`]).
async fn open_resolved(
    data_dir: &Path,
    kc: &crate::knowledge::KnowledgeConfig,
    serving: bool,
) -> anyhow::Result<KnowledgeBase> {
    let opened =
        if serving { KnowledgeBase::open_serving(data_dir, kc).await } else { KnowledgeBase::open(data_dir, kc).await };
    opened.with_context(|| format!("Failed to open the knowledge base under {}", data_dir.display()))
}

/// The agent of the real daemon: its `[agent]` settings and the knowledge
/// base under `data_dir`, which the daemon also serves to the `kb`
/// commands ([`live::serve`]). An empty knowledge base is taken all the
/// same — its questions go to the moderator until a `kb ingest` fills it,
/// without a restart. When it cannot be opened, the daemon still runs
/// orders and contact, and every question goes to the moderator — said
/// once, loudly, at start.
pub async fn open_agent(data_dir: &Path, file: &FileConfig) -> Option<(AgentSettings, KnowledgeBase)> {
    let opened = async {
        let env = |k: &str| std::env::var(k).ok();
        let settings = AgentSettings::resolve(&file.agent, &env).context("Invalid [agent] settings")?;
        let kc = file.knowledge.resolve(&env).context("Invalid [knowledge] section")?;
        let kb = open_resolved(data_dir, &kc, true).await?;
        if let Err(e) = ensure_filled(data_dir, &kb.stats().await.context("Failed to read the knowledge base")?) {
            tracing::warn!(
                error = format!("{e:#}"),
                "every customer question goes to the moderator until the knowledge base is filled \
                 (`kb ingest` works while the daemon runs)"
            );
        }
        anyhow::Ok((settings, kb))
    };
    match opened.await {
        Ok(agent) => Some(agent),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "the agent is off: every customer question goes to the moderator");
            None
        }
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
