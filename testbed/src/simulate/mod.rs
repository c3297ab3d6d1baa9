//! `tribute-assistant simulate`: the real daemon (the same wiring as `run`
//! and `demo`, through [`Sandbox`]) against the simulated Telegram, the
//! reference backend and a fresh store, for days of simulated time on a
//! paused tokio clock, driven by a seeded scenario; then the invariants
//! are checked from the store, the simulator and the backend's ledger.
//!
//! - [`scenario`]: the seeded script (customers, orders, reactions, faults);
//! - [`hostile`]: the hostile content a script may add (`--content hostile`);
//! - [`driver`]: plays it on the paused clock, plays customers and moderators;
//! - [`probe`]: a read-only look into the store;
//! - [`check`]: the invariants and the [`Report`]; [`latency`] (moderator
//!   commands answered, account IDs to activations), [`store_size`] (the
//!   store per simulated day) and [`supervision`] (restarted tasks,
//!   quarantined items) measure for it.
//!
//! Docs: `docs/simulate.md`.

pub mod check;
pub mod driver;
pub mod hostile;
pub mod latency;
pub mod probe;
pub mod scenario;
pub mod store_size;
pub mod supervision;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

pub use check::{Report, Violation};
pub use scenario::{generate, Script};

use crate::sandbox::{Sandbox, SandboxOptions};
use crate::sim::{FaultLevel, FaultPlan};
use tribute_assistant::contact::ContactConfig;

/// How much misbehaves: Telegram (the simulator's [`FaultPlan`]) and the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Faults {
    /// Nothing: a polite Telegram and a backend that always answers (the daemon still restarts).
    None,
    /// Occasional Telegram faults; backend failure bursts, a slow spell and an hour's outage a day.
    Normal,
    /// Frequent Telegram faults; more backend bursts and slow spells, the outage.
    Hostile,
}

impl Faults {
    pub fn as_str(self) -> &'static str {
        match self {
            Faults::None => "none",
            Faults::Normal => "normal",
            Faults::Hostile => "hostile",
        }
    }

    fn level(self) -> FaultLevel {
        match self {
            Faults::None => FaultLevel::None,
            Faults::Normal => FaultLevel::Normal,
            Faults::Hostile => FaultLevel::Hostile,
        }
    }
}

/// What the people of the scenario write (Telegram's and the backend's
/// misbehaviour is [`Faults`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// Customers order, answer, ask and one floods; moderators act on cards.
    Normal,
    /// Also [`hostile`] content: malformed and random moderator commands,
    /// garbage, media, edits, forwards and texts at the length limit,
    /// bursts of new senders, a customer spamming an open case.
    Hostile,
}

impl Content {
    pub fn as_str(self) -> &'static str {
        match self {
            Content::Normal => "normal",
            Content::Hostile => "hostile",
        }
    }
}

/// A deliberate breakage after the run, to show the checker catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Tamper {
    /// The backend activates one more order nobody stored.
    ExtraActivation,
    /// A second reply to the first order in the Tribute chat.
    DuplicateReply,
    /// One send over Telegram's 4096-unit limit.
    OversizedMessage,
    /// A login code from the service account posted in the moderator chat.
    ServiceLeak,
    /// One customer gets one message more than the daily cap.
    OverCap,
    /// A moderator's command nobody answers (posted once the daemon stopped).
    UnansweredCommand,
    /// A customer's message the store never gets (posted once the daemon stopped).
    UnstoredMessage,
}

/// What to simulate. Everything else follows from the seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    pub seed: u64,
    pub orders: usize,
    pub customers: usize,
    pub days: u32,
    pub faults: Faults,
    pub content: Content,
    /// Restarts of the daemon; seeded (2–4) when `None`.
    pub restarts: Option<u32>,
    /// Customers' questions answered by the agent (retrieval-only over the starter FAQ).
    pub agent: bool,
    pub card_bound_secs: Option<u64>,
    pub stall_bound_secs: Option<u64>,
    pub command_bound_secs: Option<u64>,
    pub id_bound_secs: Option<u64>,
    /// Retention on, every window this many days (`[retention]`): the store
    /// must stop growing once it is reached.
    pub retention_days: Option<u32>,
    pub tamper: Option<Tamper>,
}

impl Params {
    /// 300 orders from 150 customers over one day with normal faults.
    pub fn new(seed: u64) -> Self {
        Params {
            seed,
            orders: 300,
            customers: 150,
            days: 1,
            faults: Faults::Normal,
            content: Content::Normal,
            restarts: None,
            agent: false,
            card_bound_secs: None,
            stall_bound_secs: None,
            command_bound_secs: None,
            id_bound_secs: None,
            retention_days: None,
            tamper: None,
        }
    }

    /// Longest a case card may wait for the moderator chat after it was
    /// stored or, when an attempt failed, after its last retry fell due
    /// (Telegram's FLOOD_WAITs legitimately hold cards back for hours).
    pub fn card_bound(&self) -> Duration {
        Duration::from_secs(self.card_bound_secs.unwrap_or(15 * 60))
    }

    /// Longest an order may sit in an automatic state without any event
    /// (retries and parking write events; more than the longest backoff, 1 h).
    pub fn stall_bound(&self) -> Duration {
        Duration::from_secs(self.stall_bound_secs.unwrap_or(2 * 3600))
    }

    /// Longest a moderator's command may wait for our answer in the
    /// moderator chat (the contact task takes the moderator chat first).
    pub fn command_bound(&self) -> Duration {
        Duration::from_secs(self.command_bound_secs.unwrap_or(5 * 60))
    }

    /// Longest from a paying customer's message with their account ID to
    /// the order's activation, the time the order was parked because the
    /// backend was unavailable left out (see [`latency`]).
    pub fn id_bound(&self) -> Duration {
        Duration::from_secs(self.id_bound_secs.unwrap_or(10 * 60))
    }

    /// The command line that replays this run.
    pub fn replay_command(&self) -> String {
        let mut s = format!(
            "tribute-assistant simulate --seed {} --orders {} --customers {} --days {} --faults {}",
            self.seed,
            self.orders,
            self.customers,
            self.days,
            self.faults.as_str()
        );
        if self.content != Content::Normal {
            s.push_str(&format!(" --content {}", self.content.as_str()));
        }
        if let Some(r) = self.restarts {
            s.push_str(&format!(" --restarts {r}"));
        }
        if self.agent {
            s.push_str(" --agent");
        }
        if let Some(b) = self.card_bound_secs {
            s.push_str(&format!(" --card-bound-secs {b}"));
        }
        if let Some(b) = self.stall_bound_secs {
            s.push_str(&format!(" --stall-bound-secs {b}"));
        }
        if let Some(b) = self.command_bound_secs {
            s.push_str(&format!(" --command-bound-secs {b}"));
        }
        if let Some(b) = self.id_bound_secs {
            s.push_str(&format!(" --id-bound-secs {b}"));
        }
        if let Some(d) = self.retention_days {
            s.push_str(&format!(" --retention-days {d}"));
        }
        s
    }
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The seed: the same seed and options replay the same scenario.
    #[arg(long)]
    pub seed: u64,
    /// Paid orders the Tribute bot posts.
    #[arg(long, default_value_t = 300)]
    pub orders: usize,
    /// Distinct customers (default: half the orders, at least 3).
    #[arg(long)]
    pub customers: Option<usize>,
    /// Simulated days the orders arrive over (the run then drains until every order is at rest).
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// How much Telegram and the backend misbehave.
    #[arg(long, value_enum, default_value_t = Faults::Normal)]
    pub faults: Faults,
    /// What customers and moderators write: `hostile` adds malformed commands, garbage, media, edits,
    /// forwards, texts at the length limit, bursts of new senders and a customer spamming a case.
    #[arg(long, value_enum, default_value_t = Content::Normal)]
    pub content: Content,
    /// Daemon restarts (graceful, aborted, or a crash at a workflow checkpoint); default: 2–4, seeded.
    #[arg(long)]
    pub restarts: Option<u32>,
    /// Let the agent answer customers' questions (slower start: the starter FAQ is indexed).
    #[arg(long)]
    pub agent: bool,
    /// Longest a case card may wait before it is posted, counted from when it was stored, Telegram's waits left out (default 900 s).
    #[arg(long)]
    pub card_bound_secs: Option<u64>,
    /// Longest an order may sit in an automatic state without progress (default 7200 s).
    #[arg(long)]
    pub stall_bound_secs: Option<u64>,
    /// Longest a moderator's command may wait for our answer in the moderator chat (default 300 s).
    #[arg(long)]
    pub command_bound_secs: Option<u64>,
    /// Longest from a customer's message with their account ID to the order's activation, backend outages left out (default 600 s).
    #[arg(long)]
    pub id_bound_secs: Option<u64>,
    /// Run the daemon with retention on, every window (inbox, webhook bodies, agent turns, outboxes, scrubbing closed conversations) this many days; the store must stop growing once it is reached.
    #[arg(long)]
    pub retention_days: Option<u32>,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Keep the store in DIR (for `orders show … --data-dir DIR`) instead of a temp dir.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Break an invariant on purpose after the run (checks the checker).
    #[arg(long, value_enum, hide = true)]
    pub tamper: Option<Tamper>,
}

impl SimulateArgs {
    pub fn params(&self) -> Params {
        Params {
            seed: self.seed,
            orders: self.orders,
            customers: self.customers.unwrap_or((self.orders / 2).max(3)),
            days: self.days.max(1),
            faults: self.faults,
            content: self.content,
            restarts: self.restarts,
            agent: self.agent,
            card_bound_secs: self.card_bound_secs,
            stall_bound_secs: self.stall_bound_secs,
            command_bound_secs: self.command_bound_secs,
            id_bound_secs: self.id_bound_secs,
            retention_days: self.retention_days,
            tamper: self.tamper,
        }
    }
}

/// The contact settings of the simulated daemon: the production defaults
/// (reminder after 1 h, moderator after 24 h, 10 messages a day).
pub fn contact_config() -> ContactConfig {
    ContactConfig::default()
}

/// The sandbox settings: production timings where they matter to the flow.
fn sandbox_options(p: &Params) -> SandboxOptions {
    SandboxOptions {
        button_timeout: Duration::from_secs(120),
        backend_attempts: 5,
        backend_backoff: Duration::from_millis(500),
        park_delay: Duration::from_secs(60),
        contact: Some(contact_config()),
        agent: p.agent,
        retention: retention_window(p).map(|window| tribute_assistant::retention::RetentionSettings {
            inbox: window,
            webhook_bodies: window,
            agent_turns: window,
            outboxes: window,
            scrub_after: window,
            ..Default::default()
        }),
        // `/metrics` is scraped at the end for the supervision counters.
        ops_listener: true,
        ..SandboxOptions::default()
    }
}

/// The simulated daemon's retention window (rows older than this are
/// pruned), when it has one: the store-size check is active only then.
pub fn retention_window(p: &Params) -> Option<Duration> {
    p.retention_days.map(|d| Duration::from_secs(u64::from(d) * 86_400))
}

/// `tribute-assistant simulate`.
pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let p = args.params();
    let dir = args.data_dir.clone();
    // The simulation needs its own current-thread runtime (a paused clock),
    // on a thread of its own: no runtime may be started inside another.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("simulate".into())
        .spawn(move || {
            let _ = tx.send(run_blocking(&p, dir.as_deref()));
        })
        .context("Failed to start the simulation thread")?;
    let report = rx.await.context("the simulation panicked")??;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        for v in &report.violations {
            eprintln!("VIOLATION {}: {}", v.name, v.detail);
        }
    } else {
        print!("{}", summary(&report));
        for v in &report.violations {
            println!("VIOLATION {}: {}", v.name, v.detail);
        }
    }
    Ok(if report.violations.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs one simulation on a fresh current-thread runtime with a paused
/// clock (in the calling thread) and returns its report. `data_dir`
/// keeps the store; otherwise a temp dir is used and removed.
pub fn run_blocking(p: &Params, data_dir: Option<&Path>) -> anyhow::Result<Report> {
    tribute_assistant::http::tls::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(simulate(p, data_dir))
}

async fn simulate(p: &Params, data_dir: Option<&Path>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let temp;
    let dir = match data_dir {
        Some(d) => {
            if d.join(tribute_assistant::DATABASE_FILE).exists() {
                anyhow::bail!("{} already holds a store; simulate needs a fresh one", d.display());
            }
            d.to_owned()
        }
        None => {
            temp = tempfile::Builder::new().prefix("tribute-assistant-simulate-").tempdir()?;
            temp.path().to_owned()
        }
    };
    let script = scenario::generate(p);
    let sb = Sandbox::new(&dir, sandbox_options(p)).await?;
    sb.world.set_fault_plan(FaultPlan::new(p.seed, p.faults.level()));
    let probe = probe::Probe::open(&sb.db_path).await.context("Failed to open the store for reading")?;

    // Paused from here on; a running blocking task holds auto-advance off.
    tokio::time::pause();
    let holding = Arc::new(AtomicBool::new(true));
    let h = holding.clone();
    let holder = tokio::task::spawn_blocking(move || {
        while h.load(Ordering::Relaxed) {
            // Seldom: every wake-up is a context switch the driver's cheap looks see.
            std::thread::sleep(Duration::from_millis(50));
        }
    });

    let mut d = driver::Driver::new(p.clone(), script, sb, probe).await;
    let result = d.run().await;
    let stopped = if d.down {
        Ok(())
    } else if d.sb.daemon_finished() {
        match driver::drive(d.sb.join_daemon(Duration::ZERO), Duration::from_secs(600)).await {
            Some(res) => res.map(|_| ()),
            None => Err(anyhow::anyhow!("the stopped daemon's helpers did not wind down")),
        }
    } else {
        d.stop_daemon().await
    };
    let checked = match (&result, p.tamper) {
        (Ok(()), Some(t)) => d.tamper(t).await,
        _ => Ok(()),
    };
    let report = match (result, stopped, checked) {
        (Ok(()), Ok(()), Ok(())) => check::check(&d).await,
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
    };
    holding.store(false, Ordering::Relaxed);
    let _ = holder.await;
    tokio::time::resume();
    d.probe.close().await;
    let history_bytes = d.sb.world.history_bytes();
    let driver::Driver { sb, .. } = d;
    sb.shutdown().await?;
    let mut report = report?;
    report.real_secs = started.elapsed().as_secs_f64();
    report.orders_per_real_sec = report.orders as f64 / report.real_secs.max(1e-9);
    report.peak_rss_mib = peak_rss_kib() / 1024;
    report.telegram_history_mib = (history_bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0;
    Ok(report)
}

/// Peak resident set size of this process (VmHWM), KiB; 0 where unknown.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The human summary (the violations go to stderr separately).
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "simulate seed {} · {} orders from {} customers · {} day(s) + drain · faults {} · content {}\n",
        r.seed, r.orders, r.customers, r.sim_days, r.faults, r.content
    ));
    s.push_str(&format!(
        "  orders: {} confirmed, {} escalated (case open), {} done by hand, {} failed, {} unresolved\n",
        r.confirmed, r.escalated_open, r.done_by_hand, r.failed, r.unresolved
    ));
    s.push_str(&format!(
        "  backend: {} activations ({} activated but finished by a person), {} requests; double activations {}\n",
        r.backend_activations, r.activated_not_confirmed, r.backend_requests, r.double_activations
    ));
    s.push_str(&format!(
        "  Tribute: {} deliveries; duplicate replies {}, duplicate Send presses {}\n",
        r.deliveries, r.duplicate_tribute_replies, r.duplicate_send_presses
    ));
    s.push_str(&format!(
        "  cards: {} (longest wait {} s, {} s of it beyond Telegram's waits, bound {} s); stalled orders {}\n",
        r.cards, r.max_card_wait_secs, r.max_card_delay_secs, r.card_bound_secs, r.stalled_orders
    ));
    s.push_str(&format!(
        "  limits: oversized sends {}, customers over the daily cap {} (most to one customer in a day {}, cap {}), \
         service messages leaked {} of {}\n",
        r.oversized_messages_sent,
        r.messages_to_customers_over_cap,
        r.max_messages_to_one_customer_a_day,
        r.daily_cap,
        r.service_messages_leaked,
        r.service_messages
    ));
    let sv = &r.service;
    s.push_str(&format!(
        "  moderator: {} commands answered (beyond Telegram's waits p99 {} s, max {} s, bound {} s; \
         longest {} s), {} unanswered\n",
        sv.command_answers.count,
        sv.command_answers.p99_secs,
        sv.command_answers.max_secs,
        sv.command_bound_secs,
        sv.command_answer_raw_max_secs,
        sv.commands_unanswered
    ));
    s.push_str(&format!(
        "  customers: {} messages, {} not stored; account ID to activation: {} orders, beyond the backend's \
         outages and Telegram's waits p99 {} s, max {} s (bound {} s; longest {} s)\n",
        sv.customer_messages,
        sv.customer_messages_unstored,
        sv.id_to_activation.count,
        sv.id_to_activation.p99_secs,
        sv.id_to_activation.max_secs,
        sv.id_bound_secs,
        sv.id_to_activation_raw_max_secs
    ));
    s.push_str(&format!(
        "  cases: at most {} open per order ({} orders with two at once); wrong-account activations {}, \
         phantom orders {}; supervision: {} tasks restarted, {} items quarantined, {} notices\n",
        sv.max_open_cases_per_order,
        sv.orders_with_overlapping_cases,
        sv.wrong_account_activations,
        sv.phantom_orders,
        sv.supervision.tasks_restarted,
        sv.supervision.items_quarantined,
        sv.supervision.quarantine_notices
    ));
    let days: Vec<String> = sv.store_mib_by_day.iter().map(|m| format!("{m:.1}")).collect();
    s.push_str(&format!(
        "  store file at the end of each day, MiB: {}; WAL at most {:.1} MiB; the ledger (kept for good) {:.2} KiB \
         per order or conversation{}\n",
        if days.is_empty() { "—".to_owned() } else { days.join(" ") },
        sv.wal_mib_max,
        sv.ledger_kib_per_record,
        match (sv.retention_window_days, sv.store_growth_after_window_mib) {
            (Some(w), Some(g)) => format!("; all but the ledger grew {g:.1} MiB after the {w}-day retention window"),
            (Some(w), None) => format!("; too short to see the {w}-day retention window"),
            _ => String::new(),
        }
    ));
    let faults: Vec<String> = r.faults_injected.iter().map(|(k, n)| format!("{k} {n}")).collect();
    s.push_str(&format!("  faults injected: {}\n", if faults.is_empty() { "none".into() } else { faults.join(", ") }));
    let restarts: Vec<String> = r.restarts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    s.push_str(&format!("  daemon restarts: {}; unplanned exits {}\n", restarts.join(", "), r.daemon_unplanned_exits));
    s.push_str(&format!(
        "  {} simulated seconds in {:.1} real seconds ({} steps, {:.1} orders per real second); \
         peak RSS {} MiB, of which ~{:.1} MiB the simulated Telegram's history\n",
        r.sim_secs, r.real_secs, r.steps, r.orders_per_real_sec, r.peak_rss_mib, r.telegram_history_mib
    ));
    s.push_str(&format!(
        "{}: {}\n",
        if r.violations.is_empty() { "all invariants hold" } else { "INVARIANTS VIOLATED" },
        r.replay
    ));
    s
}
