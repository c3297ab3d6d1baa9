//! Crash-only, proven with SIGKILL: the testbed in this process, the real
//! binary's `run` as a child process against it, orders posted, and the
//! child killed with SIGKILL at chosen moments — in the middle of a backend
//! call, between the Tribute reply and the Send press, right after a
//! customer answered, or at a random time — and started again each time.
//! At the end every order must be delivered (one Tribute reply, one Send
//! press, one activation) or have a case card, and nothing may be doubled.
//!
//! `tribute-assistant chaos` runs it (long form: 500 orders, 50 kills);
//! `tests/it/chaos.rs` runs a short form in `cargo test`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::process::{Child, Command};
use tracing::{info, warn};

use super::serve::{Testbed, TestbedArgs};
use super::sim::{FaultLevel, SimOrder};
use tribute_assistant::telegram::{MessageId, UserId};

/// `tribute-assistant chaos`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// The seed: which orders need the customer, when and how the daemon is killed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Orders the Tribute bot posts.
    #[arg(long, default_value_t = 500)]
    pub orders: usize,
    /// SIGKILLs of the daemon over the run.
    #[arg(long, default_value_t = 50)]
    pub kills: usize,
    /// Simulated Telegram's faults on top: none, normal or hostile.
    #[arg(long, default_value = "none")]
    pub faults: FaultLevel,
    /// Keep the testbed's files and the daemon's logs (`run-*.log`) here
    /// (default: a temp dir, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Where a kill lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillMoment {
    /// A backend `/activate` request has arrived and is being answered.
    BackendCall,
    /// An order has our Tribute reply but no Send press yet.
    ReplyBeforePress,
    /// Right after a customer sent the account ID we asked for.
    CustomerDialogue,
    /// Any moment.
    Random,
}

const MOMENTS: [KillMoment; 4] =
    [KillMoment::BackendCall, KillMoment::ReplyBeforePress, KillMoment::CustomerDialogue, KillMoment::Random];

/// The figures of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    pub orders: usize,
    pub kills: usize,
    pub kills_by_moment: BTreeMap<KillMoment, usize>,
    /// Kills whose moment did not come in time (then killed at once).
    pub kills_without_their_moment: usize,
    pub delivered: u64,
    pub with_case_card: u64,
    pub unresolved: Vec<String>,
    pub backend_activations: u64,
    pub double_activations: u64,
    pub duplicate_tribute_replies: u64,
    pub duplicate_send_presses: u64,
    /// The largest peak RSS of one `run` process (VmHWM), MiB.
    pub daemon_peak_rss_mib: u64,
    pub real_secs: f64,
    pub violations: Vec<String>,
}

/// One order of the scenario.
struct Planned {
    customer: UserId,
    account: String,
    /// The account is in the order's details; otherwise the customer is
    /// asked and answers.
    in_details: bool,
}

/// Runs the chaos scenario with `exe` as the daemon binary.
pub async fn chaos(args: &ChaosArgs, exe: &Path) -> anyhow::Result<ChaosReport> {
    let started = Instant::now();
    let temp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().context("Failed to create a temp dir")?;
            temp.path().to_path_buf()
        }
    };
    let tb_args = TestbedArgs {
        dir: dir.clone(),
        mtproto: "127.0.0.1:0".parse()?,
        control: "127.0.0.1:0".parse()?,
        backend: "reference".into(),
        faults: args.faults,
        seed: args.seed,
        require_v2: true,
        rehearse_login: false,
    };
    let testbed = Testbed::start(&tb_args).await?;
    let world = testbed.state.world.clone();
    let backend = testbed.state.backend.as_ref().context("chaos needs the reference backend")?;
    // Wider windows for the kills to land in.
    backend.set_delay(Duration::from_millis(150));
    world.button_delay(Duration::from_millis(150));

    let mut rng = fastrand::Rng::with_seed(args.seed);
    let plan: Vec<Planned> = (0..args.orders)
        .map(|i| Planned {
            customer: 700_000 + i as UserId,
            account: format!("{}", 300_000 + i),
            in_details: rng.u32(0..100) < 75,
        })
        .collect();
    let mut daemon = Daemon::start(exe, &dir, 0).await?;
    let mut posted: Vec<MessageId> = Vec::new();
    let mut asked_seen: HashMap<UserId, usize> = HashMap::new();
    let mut report = ChaosReport { seed: args.seed, orders: args.orders, ..ChaosReport::default() };
    let kill_every = (args.orders / (args.kills + 1)).max(1);
    let mut due: Option<KillMoment> = None;
    for (i, p) in plan.iter().enumerate() {
        if p.in_details {
            backend.add_pending(&p.account, "100 Diamonds");
        }
        let details = if p.in_details { format!("ID {}", p.account) } else { "спасибо!".to_owned() };
        let order = SimOrder {
            customer_id: p.customer,
            customer_name: format!("Покупатель {i}"),
            product: "100 Diamonds".into(),
            price: "€5.00".into(),
            details,
        };
        posted.push(testbed.state.post_order(&order));
        tokio::time::sleep(Duration::from_millis(rng.u64(5..40))).await;
        answer_customers(&world, backend, &plan, &posted, &mut asked_seen);
        if report.kills + usize::from(due.is_some()) < args.kills && (i + 1) % kill_every == 0 {
            due = due.or(Some(MOMENTS[report.kills % MOMENTS.len()]));
        }
        // A backend call or a reply comes only for an order with its account.
        let Some(moment) =
            due.filter(|m| p.in_details || !matches!(m, KillMoment::BackendCall | KillMoment::ReplyBeforePress))
        else {
            continue;
        };
        due = None;
        let mut answer = || answer_customers(&world, backend, &plan, &posted, &mut asked_seen);
        let came = wait_for(moment, &world, backend, &posted, &mut answer, &mut rng).await;
        report.daemon_peak_rss_mib = report.daemon_peak_rss_mib.max(daemon.peak_rss_mib());
        daemon.kill().await?;
        report.kills += 1;
        *report.kills_by_moment.entry(moment).or_default() += 1;
        report.kills_without_their_moment += usize::from(!came);
        daemon = Daemon::start(exe, &dir, report.kills).await?;
    }
    // Let the last daemon finish everything.
    let deadline = Instant::now() + Duration::from_secs(60 + args.orders as u64 / 2);
    loop {
        answer_customers(&world, backend, &plan, &posted, &mut asked_seen);
        let stats = testbed.state.stats();
        let open = stats.orders.iter().filter(|o| o.send_presses == 0 && !o.case_card).count();
        if open == 0 || Instant::now() > deadline {
            break;
        }
        if daemon.exited()? {
            warn!("the daemon exited by itself; starting it again");
            daemon = Daemon::start(exe, &dir, report.kills + 1).await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.daemon_peak_rss_mib = report.daemon_peak_rss_mib.max(daemon.peak_rss_mib());
    daemon.stop().await?;

    let stats = testbed.state.stats();
    for o in &stats.orders {
        let activations = o.activations.unwrap_or(0);
        if o.send_presses == 0 && !o.case_card {
            report.unresolved.push(o.order_ref.clone());
        }
        if activations > 1 {
            report.violations.push(format!("{} activated {activations} times", o.order_ref));
        }
        if o.tribute_replies > 1 {
            report.violations.push(format!("{} got {} Tribute replies", o.order_ref, o.tribute_replies));
        }
        if o.send_presses > 1 {
            report.violations.push(format!("{} had Send pressed {} times", o.order_ref, o.send_presses));
        }
        if o.send_presses == 1 && activations != 1 {
            report.violations.push(format!("{} was delivered with {activations} activations", o.order_ref));
        }
    }
    let t = &stats.totals;
    report.delivered = t.delivered;
    report.with_case_card = stats.orders.iter().filter(|o| o.send_presses == 0 && o.case_card).count() as u64;
    report.backend_activations = t.activations.unwrap_or(0);
    report.double_activations = t.double_activations.unwrap_or(0);
    report.duplicate_tribute_replies = t.duplicate_tribute_replies;
    report.duplicate_send_presses = t.duplicate_send_presses;
    if !report.unresolved.is_empty() {
        report.violations.push(format!(
            "{} order(s) neither delivered nor on a case card: {}",
            report.unresolved.len(),
            report.unresolved.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if report.backend_activations != report.delivered {
        report.violations.push(format!(
            "{} backend activations for {} delivered orders",
            report.backend_activations, report.delivered
        ));
    }
    report.real_secs = started.elapsed().as_secs_f64();
    testbed.shutdown().await;
    Ok(report)
}

/// Customers who were asked for their account answer with it (once per
/// question), and the backend learns the pending order. True if anyone
/// answered now.
fn answer_customers(
    world: &super::sim::SimWorld,
    backend: &super::backend::ReferenceBackend,
    plan: &[Planned],
    posted: &[MessageId],
    asked_seen: &mut HashMap<UserId, usize>,
) -> bool {
    let mut answered = false;
    for (p, &order) in plan.iter().zip(posted).filter(|(p, _)| !p.in_details) {
        if world.send_presses(order) > 0 {
            continue; // delivered: what we wrote was the thanks
        }
        let ours = world.messages(p.customer).iter().filter(|m| m.outgoing).count();
        let seen = asked_seen.entry(p.customer).or_default();
        if ours > *seen {
            *seen = ours;
            backend.add_pending(&p.account, "100 Diamonds");
            world.post_as_user(p.customer, p.customer, &p.account, None);
            answered = true;
        }
    }
    answered
}

/// Waits (up to 3 s) for the moment to kill in (for a customer dialogue:
/// until a customer answers a question). False if it did not come.
async fn wait_for(
    moment: KillMoment,
    world: &super::sim::SimWorld,
    backend: &super::backend::ReferenceBackend,
    posted: &[MessageId],
    answer: &mut dyn FnMut() -> bool,
    rng: &mut fastrand::Rng,
) -> bool {
    let until = Instant::now() + Duration::from_secs(3);
    let requests = backend.stats().requests;
    loop {
        let now = match moment {
            KillMoment::BackendCall => backend.stats().requests > requests,
            KillMoment::ReplyBeforePress => {
                let tribute = world.tribute_chat();
                let replied: Vec<MessageId> =
                    world.messages(tribute).iter().filter(|m| m.outgoing).filter_map(|m| m.reply_to).collect();
                replied.iter().any(|&o| posted.contains(&o) && world.send_presses(o) == 0)
            }
            KillMoment::CustomerDialogue => answer(),
            KillMoment::Random => {
                tokio::time::sleep(Duration::from_millis(rng.u64(0..400))).await;
                true
            }
        };
        if now {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The `run` child process.
struct Daemon {
    child: Child,
}

impl Daemon {
    async fn start(exe: &Path, dir: &Path, n: usize) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.join(format!("run-{n}.log")))?;
        let child = Command::new(exe)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .args(["--log", "info,qdrant_edge=error", "--log-format", "json", "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("Failed to start {}", exe.display()))?;
        Ok(Self { child })
    }

    fn exited(&mut self) -> anyhow::Result<bool> {
        Ok(self.child.try_wait()?.is_some())
    }

    /// The process's peak RSS so far (0 once it is gone).
    fn peak_rss_mib(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .map_or(0, |kib: u64| kib / 1024)
    }

    /// SIGKILL: no shutdown path runs.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("Failed to kill the daemon")?;
        self.child.wait().await?;
        Ok(())
    }

    /// SIGTERM, and wait for the graceful stop.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                let status = status?;
                // Still starting, before its handler was in place: SIGTERM's
                // default action, as harmless as the SIGKILLs before it.
                if !status.success() && status.signal() != Some(libc::SIGTERM) {
                    bail!("the daemon stopped with {status}");
                }
                Ok(())
            }
            Err(_) => {
                self.child.start_kill()?;
                bail!("the daemon did not stop within 20 s of SIGTERM")
            }
        }
    }
}

/// The command: run, print the figures, exit 1 on a violated invariant.
pub async fn run(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("Failed to find this binary")?;
    let report = chaos(&args, &exe).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", summary(&report));
    }
    info!(violations = report.violations.len(), "chaos run finished");
    Ok(if report.violations.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn summary(r: &ChaosReport) -> String {
    let moments: Vec<String> = r.kills_by_moment.iter().map(|(m, n)| format!("{m:?} {n}")).collect();
    let mut s = format!(
        "chaos seed {}: {} orders, {} SIGKILLs ({}; {} without their moment)\n  \
         delivered {}, on a case card {}, unresolved {}\n  \
         backend activations {}, doubled {}; duplicate Tribute replies {}, duplicate Send presses {}\n  \
         daemon peak RSS {} MiB; {:.1} s\n",
        r.seed,
        r.orders,
        r.kills,
        moments.join(", "),
        r.kills_without_their_moment,
        r.delivered,
        r.with_case_card,
        r.unresolved.len(),
        r.backend_activations,
        r.double_activations,
        r.duplicate_tribute_replies,
        r.duplicate_send_presses,
        r.daemon_peak_rss_mib,
        r.real_secs
    );
    for v in &r.violations {
        s.push_str(&format!("  VIOLATED: {v}\n"));
    }
    s.push_str(if r.violations.is_empty() { "all invariants hold\n" } else { "INVARIANTS VIOLATED\n" });
    s
}
