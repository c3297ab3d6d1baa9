//! Each task's pulse: a beat per completed loop (or handled item), its
//! restarts, panics and quarantined items. In memory on purpose: it
//! describes this process, and a restart of the process starts it afresh
//! (what must survive a restart — the items themselves — is in the store).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

/// The tasks of one daemon, by name.
#[derive(Debug, Default)]
pub struct TaskBoard {
    tasks: Mutex<BTreeMap<&'static str, TaskState>>,
}

#[derive(Debug, Clone)]
struct TaskState {
    /// The longest a loop may take before the task counts as stuck.
    bound: Duration,
    running: bool,
    last_beat_ms: i64,
    restarts: u64,
    panics: u64,
    quarantined: u64,
    /// Why it last ended, while it is down.
    down: Option<String>,
}

/// One task as `/healthz` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskReport {
    pub name: &'static str,
    pub ok: bool,
    pub running: bool,
    /// Seconds since the task last completed a loop.
    pub last_loop_secs: u64,
    pub bound_secs: u64,
    pub restarts: u64,
    pub panics: u64,
    pub quarantined: u64,
    /// Why it is not ok, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl TaskBoard {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Adds a task (or finds it again) and returns its handle.
    pub fn register(self: &Arc<Self>, name: &'static str, bound: Duration) -> TaskHandle {
        let now = crate::runtime::clock::now_ms();
        self.lock().entry(name).or_insert(TaskState {
            bound,
            running: false,
            last_beat_ms: now,
            restarts: 0,
            panics: 0,
            quarantined: 0,
            down: None,
        });
        TaskHandle { board: self.clone(), name }
    }

    /// Every task, by name, judged at `now_ms`.
    pub fn reports(&self, now_ms: i64) -> Vec<TaskReport> {
        self.lock()
            .iter()
            .map(|(name, t)| {
                let since = Duration::from_millis((now_ms - t.last_beat_ms).max(0) as u64);
                let problem = if !t.running {
                    Some(format!("not running: {}", t.down.as_deref().unwrap_or("not started yet")))
                } else if since > t.bound {
                    Some(format!(
                        "no loop completed for {} s (bound {} s): stuck on one item?",
                        since.as_secs(),
                        t.bound.as_secs()
                    ))
                } else {
                    None
                };
                TaskReport {
                    name,
                    ok: problem.is_none(),
                    running: t.running,
                    last_loop_secs: since.as_secs(),
                    bound_secs: t.bound.as_secs(),
                    restarts: t.restarts,
                    panics: t.panics,
                    quarantined: t.quarantined,
                    problem,
                }
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, TaskState>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a task tells the board about itself.
#[derive(Debug, Clone)]
pub struct TaskHandle {
    board: Arc<TaskBoard>,
    name: &'static str,
}

impl TaskHandle {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A loop (or one item) completed.
    pub fn beat(&self) {
        self.update(|t| t.last_beat_ms = crate::runtime::clock::now_ms());
    }

    /// Handling one item panicked (the task itself goes on).
    pub fn item_panicked(&self) {
        self.update(|t| t.panics += 1);
    }

    /// One item was given up on and set aside for a person.
    pub fn item_quarantined(&self) {
        self.update(|t| t.quarantined += 1);
    }

    pub(super) fn started(&self) {
        self.update(|t| {
            t.running = true;
            t.down = None;
            t.last_beat_ms = crate::runtime::clock::now_ms();
        });
    }

    pub(super) fn ended(&self, why: String, panicked: bool, restarting: bool) {
        self.update(|t| {
            t.running = false;
            t.down = Some(why);
            t.panics += u64::from(panicked);
            t.restarts += u64::from(restarting);
        });
    }

    fn update(&self, f: impl FnOnce(&mut TaskState)) {
        if let Some(t) = self.board.lock().get_mut(self.name) {
            f(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_task_is_ok_only_while_it_runs_and_beats_within_its_bound() {
        let board = TaskBoard::new();
        let t = board.register("contact", Duration::from_secs(60));
        let report = |board: &TaskBoard| board.reports(crate::runtime::clock::now_ms()).remove(0);
        assert!(!report(&board).ok, "registered but not started");
        t.started();
        assert!(report(&board).ok);
        tokio::time::advance(Duration::from_secs(61)).await;
        let r = report(&board);
        assert!(!r.ok && r.problem.unwrap().contains("no loop completed for 61 s"));
        t.beat();
        assert!(report(&board).ok);
        t.ended("it panicked: boom".into(), true, true);
        let r = report(&board);
        assert_eq!((r.ok, r.panics, r.restarts), (false, 1, 1));
        assert!(r.problem.unwrap().contains("boom"));
    }
}
