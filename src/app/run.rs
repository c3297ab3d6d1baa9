//! `tribute-assistant run`: the daemon on the real Telegram account.
//!
//! Refuses to start without an authorised session (and says that
//! `tribute-assistant login` fixes it), then wires the store, the backend
//! client, the grammers adapter and the [`Daemon`], and stops gracefully on
//! SIGINT/SIGTERM: the step in flight finishes, the update state and the
//! database are flushed.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::sync::watch;
use tracing::info;

use crate::app::config::{Config, FileConfig};
use crate::backend::BackendClient;
use crate::daemon::{Daemon, Exit};
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
    // ops: backend latency and Telegram observations for /metrics.
    let metrics = Arc::new(crate::ops::Metrics::default());
    let telegram_stats = Arc::new(crate::ops::TelegramStats::default());
    let backend = BackendClient::new(cfg.backend_config())?.with_observer(metrics.clone());
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let observed = crate::ops::ObservedMessenger::new(Arc::new(messenger.clone()), telegram_stats.clone());
    let ops = crate::ops::OpsRuntime::start(
        &cfg.ops,
        store.clone(),
        backend.clone(),
        metrics,
        telegram_stats,
        stop_rx.clone(),
    )
    .await
    .context("Failed to start the ops listener")?;
    crate::ops::conversation_metrics::wire(&ops.state, &store);
    crate::ops::conversation_metrics::wire_report(&ops.state, &store, cfg.report.resolution_window);
    let daemon = Daemon::new(
        store.clone(),
        Arc::new(observed),
        backend,
        cfg.workflow_config(),
        cfg.ingest_config()?,
        stop_rx,
        None,
    )
    .with_report(cfg.report.clone())
    .with_task_board(ops.state.tasks.clone())
    .with_retention(cfg.retention.clone());
    let mut knowledge = None;
    let daemon = match cfg.contact_setup()? {
        Some(mut setup) => {
            knowledge = super::wiring::wire_agent(&mut setup, &cfg.data_dir, &agent_file, store.clone()).await;
            daemon.with_contact(setup)
        }
        None => daemon,
    };
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
            let _ = stop_tx.send(true);
            (&mut handle).await
        }
        res = &mut handle => res,
    };
    let _ = stop_tx.send(true);
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
