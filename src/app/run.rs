//! `tribute-assistant run`: the daemon on the real Telegram account.
//!
//! Refuses to start without an authorised session (and says that
//! `tribute-assistant login` fixes it), then connects the grammers adapter,
//! opens the store and the agent's knowledge base, has
//! [`assemble`](super::assemble::assemble) build the daemon, and stops gracefully on
//! SIGINT/SIGTERM: the step in flight finishes, the update state and the
//! database are flushed.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use tracing::info;

use super::assemble::{assemble, Assembled, Blueprint, Observations};
use crate::app::config::{Config, FileConfig};
use crate::daemon::Exit;
use crate::runtime::shutdown::shutdown_signal;
use crate::store::Store;
use crate::telegram::grammers::session::{open_existing_session, point_at_server, stored_self_id};
use crate::telegram::grammers::GrammersMessenger;

/// What `run` prints when there is no usable session.
pub const NOT_LOGGED_IN: &str = "not logged in to Telegram: run `tribute-assistant login` first";

pub async fn run(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let file = match config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let env = |k: &str| std::env::var(k).ok();
    // The session first: on a fresh install this is the step that is missing.
    let session_path = file.session_path(&env);
    let Some(session) = open_existing_session(&session_path).await? else {
        bail!("{NOT_LOGGED_IN} (no session at {})", session_path.display());
    };
    if let Some(server) = file.telegram.server_addr()? {
        point_at_server(&*session, server).await?;
    }
    if stored_self_id(&*session).await.is_none() {
        session.close().await;
        bail!("{NOT_LOGGED_IN} (the session at {} was never logged in)", session_path.display());
    }
    let agent_file = file.clone();
    let cfg = Config::resolve(file, env)?;
    let telegram = cfg.telegram.grammers_config(cfg.telegram_api.as_ref())?;
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("Failed to create {}", cfg.data_dir.display()))?;
    let db = cfg.database_path();
    let store = Store::open(&db).await.with_context(|| format!("Failed to open {}", db.display()))?;
    let messenger =
        GrammersMessenger::connect(session.clone(), telegram).await.context("Failed to connect to Telegram")?;
    // Customers are reachable through the order message that mentions them;
    // after a restart, relearn that for the orders in the store.
    for order in store.list_orders(None, 5000).await? {
        if let Some(customer) = order.customer_id {
            messenger.remember_mention(customer, order.chat_id, order.message_id);
        }
    }
    info!(
        account = crate::telegram::Messenger::self_id(&messenger),
        tribute_chat = cfg.telegram.tribute_chat,
        "connected to Telegram; the daemon is running"
    );
    let contact = cfg.contact.contact_config()?;
    let agent = match contact {
        Some(_) => super::wiring::open_agent(&cfg.data_dir, &agent_file).await,
        None => None,
    };
    let knowledge = agent.as_ref().map(|(_, kb)| kb.clone());
    let Assembled { daemon, ops, shutdown } = assemble(Blueprint {
        store: store.clone(),
        messenger: Arc::new(messenger.clone()),
        backend: cfg.backend_config(),
        workflow: cfg.workflow_config(),
        ingest: cfg.ingest_config()?,
        ops: cfg.ops.clone(),
        observations: Observations::default(),
        contact,
        moderator: cfg.moderator.clone(),
        agent,
        report: cfg.report.clone(),
        retention: Some(cfg.retention.clone()),
        checkpoint: None,
        item_hook: None,
    })
    .await?;
    // The daemon holds the index now: the `kb` commands and `ask` reach it through this listener.
    let live = match knowledge {
        Some(kb) => crate::knowledge::live::serve(kb, &cfg.data_dir)
            .await
            .inspect_err(|e| {
                tracing::warn!(error = %e, "the knowledge listener did not start: `kb` commands fail while the daemon runs")
            })
            .ok(),
        None => None,
    };
    let mut handle = tokio::spawn(daemon.run());
    let result = tokio::select! {
        _ = shutdown_signal() => {
            let _ = shutdown.send(true);
            (&mut handle).await
        }
        res = &mut handle => res,
    };
    let _ = shutdown.send(true);
    if let Some(live) = live {
        live.shutdown().await;
    }
    ops.shutdown().await;
    messenger.close().await;
    store.close().await;
    session.close().await;
    match result.context("the daemon panicked")? {
        Ok(Exit::Shutdown) => {
            info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Exit::MessengerClosed) => bail!("the Telegram connection closed; restart the daemon"),
        Err(e) => Err(e),
    }
}
