//! The process-wide shutdown flag: a `watch` channel raised once on
//! SIGINT/SIGTERM. Every long-running task selects on [`stopped`] so it can
//! finish the step in flight and return instead of being cut mid-write.

use tokio::sync::watch;
use tracing::info;

/// Resolves once the shutdown flag is raised (or its sender is gone).
pub async fn stopped(shutdown: &watch::Receiver<bool>) {
    let mut rx = shutdown.clone();
    let _ = rx.wait_for(|s| *s).await;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    info!("shutdown signal received; finishing the step in flight");
}
