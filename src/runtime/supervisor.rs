//! Restarts a task that ends while the daemon is not shutting down — by a
//! panic or by returning — with backoff, and records it on the
//! [`TaskBoard`](super::TaskBoard). A task's error (`Err`) is not a crash
//! but its way of saying the daemon must stop (a test's checkpoint): it is
//! passed on, not restarted.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::backoff::{self, Jitter};
use super::isolate::panic_message;
use super::{TaskBoard, TaskHandle};
use crate::runtime::shutdown::stopped;

/// A task that ran this long before ending starts its backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// Registers task `name` on `board` and runs it under [`supervise`] in
/// its own tokio task; `start` gets the task's handle and the shutdown flag.
pub fn spawn_supervised<F, Fut, E>(
    board: &Arc<TaskBoard>,
    name: &'static str,
    bound: Duration,
    shutdown: &watch::Receiver<bool>,
    mut start: F,
) -> JoinHandle<Result<(), E>>
where
    F: FnMut(TaskHandle, watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Send + 'static,
{
    let (task, stop) = (board.register(name, bound), shutdown.clone());
    let (handle, flag) = (task.clone(), stop.clone());
    tokio::spawn(supervise(task, stop, move || start(handle.clone(), flag.clone())))
}

/// Runs `start()` in its own tokio task until shutdown, starting it again
/// whenever it ends early. Returns `Ok` at shutdown, or the task's own error.
pub async fn supervise<F, Fut, E>(task: TaskHandle, shutdown: watch::Receiver<bool>, mut start: F) -> Result<(), E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Send + 'static,
{
    let mut failures = 0i64;
    loop {
        task.started();
        let began = tokio::time::Instant::now();
        let ended = tokio::spawn(start()).await;
        let shutting_down = *shutdown.borrow();
        let (why, panicked) = match ended {
            Ok(Err(e)) => {
                task.ended("it stopped the daemon".into(), false, false);
                return Err(e);
            }
            Ok(Ok(())) if shutting_down => {
                task.ended("shut down".into(), false, false);
                return Ok(());
            }
            Ok(Ok(())) => ("it returned".to_owned(), false),
            Err(e) if e.is_panic() => (format!("it panicked: {}", panic_message(e.into_panic())), true),
            Err(e) => (format!("it was cancelled: {e}"), false),
        };
        if shutting_down {
            task.ended(why, panicked, false);
            return Ok(());
        }
        failures = if began.elapsed() >= HEALTHY_RUN { 1 } else { failures + 1 };
        let wait = backoff::delay(failures - 1, FIRST_WAIT, LONGEST_WAIT, Jitter::Spread);
        if panicked {
            error!(task = task.name(), reason = %why, restart_in = ?wait, "a task ended; restarting it");
        } else {
            warn!(task = task.name(), reason = %why, restart_in = ?wait, "a task ended; restarting it");
        }
        task.ended(why, panicked, true);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&shutdown) => {
                info!(task = task.name(), "shutdown while waiting to restart a task");
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_restarted_and_counted_and_an_error_is_passed_on() {
        let board = TaskBoard::new();
        let task = board.register("flaky", Duration::from_secs(60));
        let (_tx, rx) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let out = supervise(task, rx, move || {
            let r = r.clone();
            async move {
                match r.fetch_add(1, Ordering::SeqCst) {
                    0 => panic!("the first run dies"),
                    1 => Ok(()),
                    _ => Err("checkpoint"),
                }
            }
        })
        .await;
        assert_eq!(out, Err("checkpoint"));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let report = board.reports(crate::runtime::clock::now_ms()).remove(0);
        assert_eq!((report.panics, report.restarts, report.running), (1, 2, false));
    }

    #[tokio::test(start_paused = true)]
    async fn at_shutdown_a_returning_task_is_not_restarted() {
        let board = TaskBoard::new();
        let (tx, rx) = watch::channel(false);
        tx.send(true).unwrap();
        let out: Result<(), ()> = supervise(board.register("t", Duration::from_secs(1)), rx, || async { Ok(()) }).await;
        assert_eq!(out, Ok(()));
        assert_eq!(board.reports(0)[0].restarts, 0);
    }
}
