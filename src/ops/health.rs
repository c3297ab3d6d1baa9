//! `/healthz`: is Telegram connected, does the database answer a read, when
//! did the last update arrive. Nothing here writes: a monitor polling every
//! few seconds must not cost a commit each time. 200 when all hold, 503 otherwise, with the
//! same JSON either way so a person can see which check failed.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::OpsState;
use crate::runtime::clock::now_ms;
use crate::runtime::TaskReport;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// `ok` or `unhealthy`.
    pub status: &'static str,
    pub telegram: TelegramCheck,
    pub database: DatabaseCheck,
    pub updates: UpdatesCheck,
    /// Every task of the daemon: unhealthy when one is down or stuck.
    pub tasks: Vec<TaskReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TelegramCheck {
    pub ok: bool,
    pub connected: bool,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatabaseCheck {
    pub ok: bool,
    /// How long the read probe took.
    pub query_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UpdatesCheck {
    pub ok: bool,
    /// RFC 3339 time of the last Telegram update, if any arrived since start.
    pub last_update_at: Option<String>,
    pub age_secs: Option<u64>,
    pub max_age_secs: Option<u64>,
}

impl HealthReport {
    pub fn healthy(&self) -> bool {
        self.status == "ok"
    }
}

/// Runs the checks (one small database read included).
pub async fn health_report(state: &OpsState) -> HealthReport {
    let t = state.telegram.snapshot();
    let telegram = TelegramCheck { ok: t.connected, connected: t.connected, last_error: t.last_error };
    let started = Instant::now();
    let probe = tokio::time::timeout(Duration::from_secs(5), state.store.probe()).await;
    let database = match probe {
        Ok(Ok(())) => DatabaseCheck { ok: true, query_ms: started.elapsed().as_millis() as u64, error: None },
        Ok(Err(e)) => {
            DatabaseCheck { ok: false, query_ms: started.elapsed().as_millis() as u64, error: Some(e.to_string()) }
        }
        Err(_) => DatabaseCheck { ok: false, query_ms: 5000, error: Some("the read did not finish within 5 s".into()) },
    };
    let age = t.last_update_ms.map(|ms| ((now_ms() - ms).max(0) / 1000) as u64);
    let max = state.max_update_age.map(|d| d.as_secs());
    let updates_ok = match (max, age) {
        (Some(max), Some(age)) => age <= max,
        // No update since start counts against the limit from the start.
        (Some(max), None) => state.uptime().as_secs() <= max,
        (None, _) => true,
    };
    let updates = UpdatesCheck {
        ok: updates_ok,
        last_update_at: t
            .last_update_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        age_secs: age,
        max_age_secs: max,
    };
    let tasks = state.tasks.reports(now_ms());
    let ok = telegram.ok && database.ok && updates.ok && tasks.iter().all(|t| t.ok);
    HealthReport { status: if ok { "ok" } else { "unhealthy" }, telegram, database, updates, tasks }
}
