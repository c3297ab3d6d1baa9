//! The driver: plays the script against the real daemon on a paused tokio
//! clock, plays the customers and the moderator, and restarts the daemon.
//!
//! One loop, on a current-thread runtime whose clock is paused and whose
//! auto-advance is held off by a blocking task (tokio does not auto-advance
//! while one runs; otherwise it would jump the clock whenever the runtime
//! waits on the SQLite thread or on loopback HTTP, and fire the pool's and
//! reqwest's timeouts):
//!
//! 1. inject the scripted events and the scheduled reactions due now;
//! 2. let the daemon settle: yield and read a fingerprint of the store, the
//!    Tribute and moderator chats and the backend's counters until it is
//!    the same twice in a row (each store read is itself a real wait on
//!    the SQLite thread, during which the daemon runs);
//! 3. observe: a daemon that stopped (a crash point) is started again; new
//!    case cards get the moderator's reaction scheduled; a customer who got
//!    a message from us gets their next answer scheduled;
//! 4. advance the clock to the next interesting moment: the next scripted
//!    event or reaction, the earliest due time in the store (parked orders,
//!    outbox retries, dialogue reminders and hand-overs), a second ahead
//!    while an order is in an automatic state, at most ten minutes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::debug;

use super::probe::Probe;
use super::scenario::{
    self, Event, Forward, ModeratorAction, Reply, ReplyTarget, RestartKind, Script, DAY, HOUR, MIN, SEC,
};
use super::{Params, Tamper};
use crate::sandbox::Sandbox;
use crate::sim::SimOrder;
use tribute_assistant::domain::OrderRef;
use tribute_assistant::orders::{Checkpoint, CheckpointHook};
use tribute_assistant::telegram::{MessageId, Messenger, RandomId};

/// The longest jump while nothing is due.
const MAX_IDLE_STEP: u64 = 10 * MIN;
/// The production daemon's re-read interval (`resync_interval_secs`): the
/// longest jump while a message sent to us is not in the inbox.
const REREAD_CADENCE: u64 = MIN;
/// How far back a message not in the inbox keeps jumps that short.
const MISSING_LOOKBACK: u64 = 2 * HOUR;
/// The step while an order is in an automatic state: short right after an
/// event or reaction, then the worker's one-second sweep.
const BUSY_STEP_MIN: u64 = 100;
const BUSY_STEP_MAX: u64 = SEC;
/// After the scripted period the run goes on until every order is at rest, at most this long.
const DRAIN_MAX: u64 = 3 * 24 * HOUR;
/// Jumps longer than this wait until no other thread of the process runs
/// (below the sqlx pool's 30 s acquire timeout, which a jump would fire
/// under a statement or a connection still in flight on an SQLite thread).
const SAFE_JUMP: u64 = 20 * SEC;
/// Yields between two looks while settling (each lets every ready task of
/// the daemon run and the runtime poll its sockets).
const LOOK_YIELDS: u32 = 16;
/// Unsettled cheap looks in one settle before switching to precise ones.
const PRECISE_AFTER: u32 = 200;
/// How long the supervisor waits before starting a daemon that stopped by itself.
const RESTART_DELAY: u64 = 5 * SEC;
/// The run ends only this long after the last event or reaction, with every order at rest.
const REST_BEFORE_END: u64 = 2 * HOUR;
/// How long a graceful stop may take (simulated), and the clock's step meanwhile.
const STOP_LIMIT: Duration = Duration::from_secs(600);
const STOP_STEP: u64 = 100;
/// How long the driver steps by the second after Telegram lost an update
/// (the daemon's next re-read, a second later here, finds it).
const WATCH_AFTER_LOSS: u64 = 2 * SEC;
/// How long the driver steps by the second after a moderator wrote.
const WATCH_AFTER_MODERATOR: u64 = 3 * SEC;
/// Due work undone this long (simulated) makes the driver's steps grow.
const STUCK_AFTER: u64 = MIN;
/// How often stalled orders are looked for.
const STALL_CHECK_EVERY: u64 = 5 * MIN;

type Snapshot = (usize, usize, u64, ThreadSignature);

/// What a person (or the backend's operator) does at a given time.
enum Reaction {
    CustomerSays {
        customer: usize,
        text: String,
    },
    ModeratorSays {
        reply_to: MessageId,
        text: String,
    },
    BackendUp,
    BackendFast,
    /// The supervisor starts the daemon again after it stopped by itself.
    StartDaemon,
}

/// What the driver counted while it ran.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub steps: u64,
    pub settle_reads: u64,
    pub settle_timeouts: u64,
    pub restarts_graceful: u64,
    pub restarts_abort: u64,
    pub crashes_armed: u64,
    pub crashes: u64,
    /// (when, why) for every time the daemon stopped by itself.
    pub unplanned_exits: Vec<(u64, String)>,
    /// (when, what) for every graceful stop that did not finish in time.
    pub stop_hung: Vec<(u64, String)>,
    pub backend_fail_bursts: u64,
    pub backend_slow_spells: u64,
    pub backend_outages: u64,
    pub customer_messages: u64,
    pub customer_replies: u64,
    pub moderator_actions: u64,
    pub service_messages: u64,
    pub drained_ms: u64,
    pub hit_drain_limit: bool,
    /// (from, to) simulated ms while no daemon read Telegram's updates
    /// (restarts, crashes): what was posted then reaches it only by a re-read.
    pub down_spans: Vec<(u64, u64)>,
    /// The store's file (MiB) at the end of each simulated day.
    pub store_mib_by_day: Vec<f64>,
    /// Of it, the ledger (kept for good, see `Probe::ledger_mib`), MiB.
    pub ledger_mib_by_day: Vec<f64>,
    /// The largest write-ahead log seen at a day's end, MiB.
    pub wal_mib_max: f64,
    /// The daemon's `/metrics` just before its last stop (`None` if it was down).
    pub metrics_at_end: Option<String>,
}

pub struct Driver {
    pub p: Params,
    pub script: Script,
    pub sb: Sandbox,
    pub probe: Probe,
    t0: tokio::time::Instant,
    wall0: i64,
    next_event: usize,
    reactions: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, Reaction>,
    seq: u64,
    /// Script order → its Tribute message id, and back.
    pub order_msg: Vec<Option<MessageId>>,
    /// Script order → when it was posted (simulated ms).
    pub order_posted_at: Vec<Option<u64>>,
    pub msg_order: HashMap<MessageId, usize>,
    queues: Vec<VecDeque<Reply>>,
    /// Highest message id seen in each customer's chat.
    seen: Vec<MessageId>,
    watched: BTreeSet<usize>,
    handled_cards: HashSet<i64>,
    card_cursor: i64,
    /// Store order ids whose first card got the script's moderator plan.
    planned_cards: HashSet<i64>,
    crash_at: Arc<Mutex<Option<Checkpoint>>>,
    crash_fired: Arc<AtomicBool>,
    backend_down_until: u64,
    backend_slow_until: u64,
    mod_rng: fastrand::Rng,
    /// The distinctive part of every service-account message posted.
    pub service_needles: Vec<String>,
    /// order_ref → what was seen stalled.
    pub stalled: BTreeMap<String, String>,
    last_stall_check: u64,
    pub stats: RunStats,
    pub stall_bound_ms: u64,
    /// `SIMULATE_TRACE=1`: the driver's steps on stderr.
    trace: bool,
    threads: SqliteThreads,
    busy_step: u64,
    /// The daemon stopped by itself and waits for the supervisor.
    pub down: bool,
    /// When the last scripted event or reaction fired.
    last_stimulus: u64,
    /// The newest case card posted (what a hostile moderator replies to).
    latest_card: Option<MessageId>,
    /// The end of the simulated day whose store size is measured next.
    next_day_end: u64,
    /// Since when no daemon runs (see [`RunStats::down_spans`]).
    down_since: Option<u64>,
    /// Updates Telegram lost so far (in transit, or with the link down),
    /// and until when the driver looks every second after the last one.
    updates_lost: u64,
    watch_until: u64,
    /// When a moderator last wrote (the desk's short in-memory waits follow).
    moderator_wrote: u64,
    /// What the daemon had got done at the last look, and when that last changed.
    progress: Progress,
    progress_at: u64,
}

/// What changes when the daemon gets work done.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Progress {
    store: [i64; 4],
    messages: u64,
    backend_requests: u64,
}

impl Driver {
    pub async fn new(p: Params, script: Script, sb: Sandbox, probe: Probe) -> Self {
        let customers = script.customers.len();
        let orders = script.orders.len();
        Self {
            mod_rng: fastrand::Rng::with_seed(p.seed ^ 0x6d6f_6465_7261_746f),
            stall_bound_ms: p.stall_bound().as_millis() as u64,
            p,
            script,
            sb,
            probe,
            t0: tokio::time::Instant::now(),
            wall0: tribute_assistant::runtime::clock::now_ms(),
            next_event: 0,
            reactions: BinaryHeap::new(),
            pending: HashMap::new(),
            seq: 0,
            order_msg: vec![None; orders],
            order_posted_at: vec![None; orders],
            msg_order: HashMap::new(),
            queues: vec![VecDeque::new(); customers],
            seen: vec![0; customers],
            watched: BTreeSet::new(),
            handled_cards: HashSet::new(),
            card_cursor: 0,
            planned_cards: HashSet::new(),
            crash_at: Arc::new(Mutex::new(None)),
            crash_fired: Arc::new(AtomicBool::new(false)),
            backend_down_until: 0,
            backend_slow_until: 0,
            service_needles: Vec::new(),
            stalled: BTreeMap::new(),
            last_stall_check: 0,
            stats: RunStats::default(),
            trace: std::env::var_os("SIMULATE_TRACE").is_some_and(|v| v == "1"),
            threads: SqliteThreads::default(),
            busy_step: BUSY_STEP_MIN,
            down: false,
            last_stimulus: 0,
            latest_card: None,
            next_day_end: DAY,
            down_since: None,
            updates_lost: 0,
            watch_until: 0,
            moderator_wrote: 0,
            progress: Default::default(),
            progress_at: 0,
        }
    }

    /// Simulated milliseconds since the start.
    pub fn now(&self) -> u64 {
        tokio::time::Instant::now().duration_since(self.t0).as_millis() as u64
    }

    /// A store time (unix ms) as simulated milliseconds since the start.
    pub fn sim_ms(&self, unix_ms: i64) -> u64 {
        (unix_ms - self.wall0).max(0) as u64
    }

    pub fn unix_ms(&self, sim: u64) -> i64 {
        self.wall0 + sim as i64
    }

    fn hook(&self) -> CheckpointHook {
        let (at, fired) = (self.crash_at.clone(), self.crash_fired.clone());
        Arc::new(move |point: Checkpoint, _: &OrderRef| {
            let mut armed = at.lock().unwrap_or_else(|e| e.into_inner());
            if *armed == Some(point) {
                *armed = None;
                fired.store(true, Ordering::SeqCst);
                true
            } else {
                false
            }
        })
    }

    async fn start_daemon(&mut self) -> anyhow::Result<()> {
        if let Some(since) = self.down_since.take() {
            self.stats.down_spans.push((since, self.now()));
        }
        let hook = self.hook();
        self.sb.start_daemon(Some(hook)).await
    }

    /// Plays the whole script, then drains until every order is at rest.
    pub async fn run(&mut self) -> anyhow::Result<()> {
        self.start_daemon().await?;
        self.settle().await?;
        let hard_end = self.script.end_ms + DRAIN_MAX;
        loop {
            let now = self.now();
            self.fire_due(now).await?;
            self.settle().await?;
            self.observe(now).await?;
            while now >= self.next_day_end {
                self.stats.store_mib_by_day.push(super::store_size::store_mib(&self.sb.db_path));
                self.stats.wal_mib_max = self.stats.wal_mib_max.max(super::store_size::wal_mib(&self.sb.db_path));
                self.stats.ledger_mib_by_day.push(self.probe.ledger_mib().await?);
                self.next_day_end += DAY;
            }
            if now >= self.script.end_ms && self.next_event >= self.script.events.len() {
                // At rest for a while after the last thing anybody did: the
                // daemon may still be about to act on it.
                let quiet_since = now.saturating_sub(self.last_stimulus);
                if self.reactions.is_empty() && quiet_since >= REST_BEFORE_END && self.probe.unresolved().await? == 0 {
                    break;
                }
                if now >= hard_end {
                    self.stats.hit_drain_limit = true;
                    break;
                }
            }
            let next = self.next_wake(now).await?.min(hard_end.max(now + 1));
            if next - now > SAFE_JUMP && self.settle_deep().await? {
                continue; // something moved meanwhile: look again before jumping
            }
            if self.trace {
                eprintln!("[sim {}] advance {} ms", fmt_sim(now), next - now);
            }
            tokio::time::advance(Duration::from_millis(next - now)).await;
            self.stats.steps += 1;
        }
        self.stats.drained_ms = self.now().saturating_sub(self.script.end_ms);
        if !self.down {
            self.stats.metrics_at_end = self.scrape_metrics().await;
        }
        if self.trace {
            eprintln!("[sim {}] done: {:?}", fmt_sim(self.now()), self.stats);
        }
        self.stalled_now().await?;
        Ok(())
    }

    fn schedule(&mut self, at: u64, r: Reaction) {
        self.seq += 1;
        self.reactions.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, r);
    }

    async fn fire_due(&mut self, now: u64) -> anyhow::Result<()> {
        while let Some(t) = self.script.events.get(self.next_event) {
            if t.at_ms > now {
                break;
            }
            let event = t.event.clone();
            self.next_event += 1;
            self.last_stimulus = now;
            if self.trace && !matches!(event, Event::CustomerWrites { .. }) {
                let event: String = format!("{event:?}").chars().take(200).collect();
                eprintln!("[sim {}] {event}", fmt_sim(now));
            }
            self.fire(now, event).await?;
        }
        while let Some(Reverse((at, seq))) = self.reactions.peek().copied() {
            if at > now {
                break;
            }
            self.reactions.pop();
            self.last_stimulus = now;
            match self.pending.remove(&seq) {
                Some(Reaction::StartDaemon) => {
                    self.start_daemon().await?;
                    self.down = false;
                }
                Some(r) => self.react(now, r),
                None => {}
            }
        }
        Ok(())
    }

    fn customer_id(&self, c: usize) -> i64 {
        self.script.customers[c].id
    }

    fn ensure_customer(&mut self, c: usize) {
        let cust = &self.script.customers[c];
        if self.sb.world.user_info(cust.id).is_none() {
            self.sb.world.add_user(cust.id, &cust.name, None);
        }
    }

    async fn fire(&mut self, now: u64, event: Event) -> anyhow::Result<()> {
        let world = self.sb.world.clone();
        match event {
            Event::Order { index } => {
                let o = &self.script.orders[index];
                let c = &self.script.customers[o.customer];
                self.sb.backend.add_pending(&c.account, &o.product);
                let order = SimOrder {
                    customer_id: c.id,
                    customer_name: c.name.clone(),
                    product: o.product.clone(),
                    price: o.price.clone(),
                    details: o.details.clone(),
                };
                let customer = o.customer;
                let replies = o.replies.clone();
                self.ensure_customer(customer);
                let msg = world.post_order(&order);
                self.order_msg[index] = Some(msg);
                self.order_posted_at[index] = Some(now);
                self.msg_order.insert(msg, index);
                if !replies.is_empty() {
                    self.queues[customer].extend(replies);
                    self.watched.insert(customer);
                }
            }
            Event::CustomerWrites { customer, text } => {
                self.ensure_customer(customer);
                let id = self.customer_id(customer);
                world
                    .send_as_user(id, id, &text, None)
                    .with_context(|| format!("customer {id} cannot send {text:?}"))?;
                self.stats.customer_messages += 1;
            }
            Event::CustomerMedia { customer, caption } => {
                self.ensure_customer(customer);
                let id = self.customer_id(customer);
                world
                    .send_media_as_user(id, id, &caption)
                    .with_context(|| format!("customer {id}: caption {caption:?}"))?;
            }
            Event::CustomerEdits { customer, text } => {
                let id = self.customer_id(customer);
                // Nothing to edit when their message has not been sent (e.g. deleted).
                if let Some(last) = world.last_message_from(id, id) {
                    world.edit_as_user(id, last.id, &text).with_context(|| format!("customer {id}: edit {text:?}"))?;
                }
            }
            Event::CustomerForwards { customer, forward } => {
                self.ensure_customer(customer);
                let c = &self.script.customers[customer];
                let (text, entities) = match forward {
                    Forward::Receipt { product, price, details } => {
                        SimOrder { customer_id: c.id, customer_name: c.name.clone(), product, price, details }
                            .render_notification()
                    }
                    Forward::Text { text } => (text, vec![]),
                };
                world.forward_as_user(c.id, c.id, &text, entities).with_context(|| format!("forward {text:?}"))?;
            }
            Event::ModeratorWrites { text, reply } => {
                let chat = self.sb.moderator_chat;
                let reply_to = match reply {
                    ReplyTarget::None => None,
                    ReplyTarget::LatestCard => self.latest_card,
                    ReplyTarget::Anywhere(per_mille) => {
                        let len = world.chat_info(chat).map_or(0, |c| c.len);
                        let id = 1 + (usize::from(per_mille) * len / 1000) as MessageId;
                        (len > 0 && world.message(chat, id).is_some()).then_some(id)
                    }
                };
                world
                    .send_as_user(chat, self.sb.moderator, &text, reply_to)
                    .with_context(|| format!("the moderator cannot send {text:?}"))?;
                self.moderator_wrote = now;
            }
            Event::ServiceMessage { text } => {
                let needle = text.split('.').next().unwrap_or(&text).to_owned();
                self.service_needles.push(needle);
                world.post_service_message(&text);
                self.stats.service_messages += 1;
            }
            Event::BotNoise { text } => {
                world.post_bot_text(&text, vec![]);
            }
            Event::BackendFails { n } => {
                if now >= self.backend_down_until {
                    self.sb.backend.fail_next(n);
                    self.stats.backend_fail_bursts += 1;
                }
            }
            Event::BackendSlow { delay_ms, for_ms } => {
                self.sb.backend.set_delay(Duration::from_millis(delay_ms));
                self.backend_slow_until = self.backend_slow_until.max(now + for_ms);
                self.schedule(now + for_ms, Reaction::BackendFast);
                self.stats.backend_slow_spells += 1;
            }
            Event::BackendDown { for_ms } => {
                self.sb.backend.fail_next(u32::MAX);
                self.backend_down_until = self.backend_down_until.max(now + for_ms);
                self.schedule(now + for_ms, Reaction::BackendUp);
                self.stats.backend_outages += 1;
            }
            Event::Restart { kind } => self.restart(kind).await?,
        }
        Ok(())
    }

    fn react(&mut self, now: u64, r: Reaction) {
        match r {
            Reaction::CustomerSays { customer, text } => {
                self.ensure_customer(customer);
                let id = self.customer_id(customer);
                self.sb.world.post_as_user(id, id, &text, None);
                self.stats.customer_replies += 1;
            }
            Reaction::ModeratorSays { reply_to, text } => {
                self.sb.world.post_as_user(self.sb.moderator_chat, self.sb.moderator, &text, Some(reply_to));
                self.stats.moderator_actions += 1;
                self.moderator_wrote = now;
            }
            Reaction::BackendUp => {
                if now >= self.backend_down_until {
                    self.sb.backend.fail_next(0);
                }
            }
            Reaction::BackendFast => {
                if now >= self.backend_slow_until {
                    self.sb.backend.set_delay(Duration::ZERO);
                }
            }
            Reaction::StartDaemon => {}
        }
    }

    async fn restart(&mut self, kind: RestartKind) -> anyhow::Result<()> {
        if self.down || self.sb.daemon_finished() {
            return Ok(()); // down already; the supervisor starts it
        }
        match kind {
            RestartKind::Graceful => {
                self.stop_daemon().await?;
                self.stats.restarts_graceful += 1;
                self.start_daemon().await?;
            }
            RestartKind::Abort => {
                self.down_since = Some(self.now());
                drive(self.sb.abort_daemon(), STOP_LIMIT).await.context("the aborted daemon did not wind down")??;
                // Let the aborted daemon's helper tasks finish their step before the next one starts.
                self.settle().await?;
                self.stats.restarts_abort += 1;
                self.start_daemon().await?;
            }
            RestartKind::Crash(i) => {
                *self.crash_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Checkpoint::ALL[i]);
                self.stats.crashes_armed += 1;
            }
        }
        Ok(())
    }

    /// Stops the daemon gracefully: the shutdown flag, then the clock moves
    /// on in small steps until it has stopped (the step in flight may wait
    /// on a timer: a backoff, a slow backend). One that has not stopped
    /// after [`STOP_LIMIT`] is aborted, and that is a violation.
    pub async fn stop_daemon(&mut self) -> anyhow::Result<()> {
        self.down_since = Some(self.now());
        self.sb.request_stop();
        let started = self.now();
        while !self.sb.daemon_finished() {
            if self.now() - started >= STOP_LIMIT.as_millis() as u64 {
                self.stats
                    .stop_hung
                    .push((started, format!("still running {} s after the shutdown flag", STOP_LIMIT.as_secs())));
                drive(self.sb.abort_daemon(), STOP_LIMIT).await.context("the daemon did not wind down")??;
                return Ok(());
            }
            spin().await;
            if !self.sb.daemon_finished() {
                tokio::time::advance(Duration::from_millis(STOP_STEP)).await;
            }
        }
        match drive(self.sb.join_daemon(Duration::ZERO), STOP_LIMIT).await {
            Some(Ok(Ok(_))) => {}
            Some(Ok(Err(e))) | Some(Err(e)) => self.stats.unplanned_exits.push((self.now(), format!("{e:#}"))),
            None => anyhow::bail!("the stopped daemon's helpers did not wind down"),
        }
        Ok(())
    }

    /// Lets the daemon run until nothing moves (see the module docs):
    /// three looks in a row, a few yields apart, with no SQLite statement
    /// run or running, no message in the Tribute or moderator chat and no
    /// backend request.
    pub async fn settle(&mut self) -> anyhow::Result<()> {
        self.quiet(3, false).await;
        Ok(())
    }

    /// Before a long jump: a longer quiet spell with precise looks. True if
    /// the daemon did anything meanwhile (then the driver looks again at
    /// what is due before jumping).
    async fn settle_deep(&mut self) -> anyhow::Result<bool> {
        let before = self.snapshot(true);
        let after = self.quiet(4, true).await;
        // Any statement counts: a card or a due time written just now changes what is due.
        Ok((after.0, after.1, after.2, after.3.switches) != (before.0, before.1, before.2, before.3.switches))
    }

    /// Looks until `looks` in a row saw nothing move. Cheap looks count the
    /// whole process's context switches (every statement an SQLite worker
    /// runs ends in one); precise looks (`deep`, or after many unsettled
    /// cheap looks, e.g. other tests' threads in the same process) read the
    /// SQLite workers' own counters and states.
    async fn quiet(&mut self, looks: u32, deep: bool) -> Snapshot {
        let start = Instant::now();
        let mut precise = deep;
        let mut last = self.snapshot(precise);
        let mut stable = 0;
        let mut unsettled = 0;
        while stable < looks {
            for _ in 0..LOOK_YIELDS {
                tokio::task::yield_now().await;
            }
            let now = self.snapshot(precise);
            self.stats.settle_reads += 1;
            if now == last && !now.3.running {
                stable += 1;
            } else {
                stable = 0;
                unsettled += 1;
                if !precise && unsettled > PRECISE_AFTER {
                    precise = true;
                    last = self.snapshot(true);
                    continue;
                }
                last = now;
            }
            if start.elapsed() > Duration::from_secs(5) {
                self.stats.settle_timeouts += 1;
                debug!("settle gave up after 5 s of real time");
                break;
            }
        }
        last
    }

    /// What moved: the Tribute and moderator chats, the backend's request
    /// counter, the SQLite threads' work (reads included).
    fn snapshot(&mut self, precise: bool) -> Snapshot {
        let world = &self.sb.world;
        let tribute = world.chat_info(world.tribute_chat()).map_or(0, |c| c.len);
        let moderators = world.chat_info(self.sb.moderator_chat).map_or(0, |c| c.len);
        let threads = if precise {
            self.threads.signature()
        } else {
            ThreadSignature { threads: 0, switches: process_context_switches(), running: false }
        };
        (tribute, moderators, self.sb.backend.stats().requests, threads)
    }

    async fn observe(&mut self, now: u64) -> anyhow::Result<()> {
        // A daemon that stopped: a crash point fired, or something failed.
        if !self.down && self.sb.daemon_finished() {
            let res = drive(self.sb.join_daemon(Duration::ZERO), STOP_LIMIT)
                .await
                .context("the stopped daemon's helpers did not wind down")?;
            let planned = self.crash_fired.swap(false, Ordering::SeqCst);
            if planned {
                self.stats.crashes += 1;
            } else {
                let why = match res {
                    Ok(Ok(exit)) => format!("exited: {exit:?}"),
                    Ok(Err(e)) | Err(e) => format!("{e:#}"),
                };
                if self.trace {
                    eprintln!("[sim {}] daemon exited: {why}", fmt_sim(now));
                }
                self.stats.unplanned_exits.push((now, why));
            }
            // Like a supervisor (systemd `Restart=always`, `RestartSec=5`).
            self.down = true;
            self.down_since = Some(now);
            self.schedule(now + RESTART_DELAY, Reaction::StartDaemon);
        }
        self.moderator_reads(now).await?;
        self.customers_read(now);
        if now >= self.last_stall_check + STALL_CHECK_EVERY {
            self.last_stall_check = now;
            self.stalled_now().await?;
        }
        Ok(())
    }

    /// New case cards: the moderator reacts per the script (the order's
    /// first card) or per the card's reason.
    async fn moderator_reads(&mut self, now: u64) -> anyhow::Result<()> {
        let cards = self.probe.posted_cards_since(self.card_cursor).await?;
        for card in cards {
            self.card_cursor = self.card_cursor.max(card.posted_at);
            if !self.handled_cards.insert(card.id) {
                continue;
            }
            let Some(message_id) = card.message_id else { continue };
            self.latest_card = Some(message_id);
            let order = card.order_message_id.and_then(|m| self.msg_order.get(&m).copied());
            let account_useful = !matches!(card.reason.as_str(), "button_never_came" | "backend_rejected");
            let (after, action) = match (order, card.order_id) {
                (Some(i), Some(order_id)) if account_useful && self.planned_cards.insert(order_id) => {
                    let plan = &self.script.orders[i].moderator;
                    (plan.after_ms, plan.action)
                }
                (Some(_), Some(_)) => {
                    let action = if account_useful { ModeratorAction::GiveAccount } else { ModeratorAction::Done };
                    (Some(self.mod_rng.u64(5 * MIN..2 * HOUR)), action)
                }
                _ => (Some(self.mod_rng.u64(5 * MIN..4 * HOUR)), ModeratorAction::Done),
            };
            let Some(after) = after else { continue };
            let text = match (action, order) {
                (ModeratorAction::GiveAccount, Some(i)) => {
                    self.script.customers[self.script.orders[i].customer].account.clone()
                }
                (ModeratorAction::Reject, _) => "/reject refunded by hand".to_owned(),
                _ => "/done".to_owned(),
            };
            self.schedule(now + after, Reaction::ModeratorSays { reply_to: message_id, text });
        }
        Ok(())
    }

    /// Customers who got a new message from us answer (late) per their queue.
    fn customers_read(&mut self, now: u64) {
        let watched: Vec<usize> = self.watched.iter().copied().collect();
        for c in watched {
            let id = self.customer_id(c);
            let len = self.sb.world.chat_info(id).map_or(0, |i| i.len as MessageId);
            if len <= self.seen[c] {
                continue;
            }
            let ours: Vec<MessageId> =
                self.sb.world.messages(id).iter().filter(|m| m.id > self.seen[c] && m.outgoing).map(|m| m.id).collect();
            self.seen[c] = len;
            for _ in ours {
                let Some(reply) = self.queues[c].pop_front() else { break };
                let text = scenario::reply_text(&reply.says, &self.script.customers[c]);
                self.schedule(now + reply.after_ms, Reaction::CustomerSays { customer: c, text });
            }
            if self.queues[c].is_empty() {
                self.watched.remove(&c);
            }
        }
    }

    /// Orders in an automatic state with no event for longer than the bound.
    async fn stalled_now(&mut self) -> anyhow::Result<()> {
        let before = self.unix_ms(self.now().saturating_sub(self.stall_bound_ms));
        for (order_ref, state, last) in self.probe.quiet_automatic(before).await? {
            let since = fmt_sim(self.sim_ms(last));
            self.stalled.entry(order_ref).or_insert_with(|| format!("in {state} with no event since {since}"));
        }
        Ok(())
    }

    async fn next_wake(&mut self, now: u64) -> anyhow::Result<u64> {
        // When the next person acts (at the latest, a look every ten minutes).
        let mut script = now + MAX_IDLE_STEP;
        if let Some(t) = self.script.events.get(self.next_event) {
            script = script.min(t.at_ms);
        }
        if let Some(Reverse((at, _))) = self.reactions.peek() {
            script = script.min(*at);
        }
        self.note_progress(now).await?;
        // When the daemon has something due later, and whether it has
        // something due already.
        let (busy, store_next) = self.probe.due(self.unix_ms(now)).await?;
        let mut overdue = busy > 0;
        let mut daemon = u64::MAX;
        if let Some(t) = store_next {
            daemon = daemon.min(self.sim_ms(t) + 1);
        }
        if let Some(t) = self.probe.next_dialogue_due().await? {
            // The contact task wakes at the timer: land just after it.
            let at = self.sim_ms(t) + 1100;
            if at <= now {
                overdue = true;
            } else {
                daemon = daemon.min(at);
            }
        }
        // Telegram's waits and lost updates are not in the store, but the
        // daemon acts on them from memory: a call retried once the flood
        // wait or the link's outage is over (a disconnect also starts a
        // re-read then), a re-read every second (here; a minute in
        // production) that finds what was lost. Land just after.
        if let Some(t) = self.sb.world.next_wait_end(self.unix_ms(now)) {
            daemon = daemon.min(self.sim_ms(t) + 1100);
        }
        let lost: u64 = self
            .sb
            .world
            .faults_injected()
            .iter()
            .filter(|(k, _)| ["update_lost", "update_overflow"].contains(&k.as_str()))
            .map(|(_, n)| n)
            .sum();
        if lost != self.updates_lost {
            self.updates_lost = lost;
            self.watch_until = now + WATCH_AFTER_LOSS;
        }
        // The desk waits in memory too (a second at most for a card's
        // mapping a reply races): short steps after a moderator wrote.
        if now < self.watch_until || now < self.moderator_wrote + WATCH_AFTER_MODERATOR {
            daemon = daemon.min(now + BUSY_STEP_MAX);
        }
        // Right after something happened to the daemon, a short step (what it
        // waits for is more likely an HTTP answer than a timer); then the
        // worker's one-second sweep.
        self.busy_step = if self.last_stimulus == now { BUSY_STEP_MIN } else { BUSY_STEP_MAX };
        if overdue {
            daemon = daemon.min(now + self.overdue_step(now));
        }
        let mut wake = script.min(daemon.max(now + 1));
        // A message whose update was lost waits for the daemon's periodic
        // re-read (every minute in production): no jump skips that cadence
        // while one is missing from the inbox.
        if wake > now + REREAD_CADENCE && self.inbound_missing(now).await? {
            wake = now + REREAD_CADENCE;
        }
        Ok(wake)
    }

    /// Whether a message someone sent us in the last [`MISSING_LOOKBACK`] is
    /// not in the inbox yet.
    async fn inbound_missing(&self, now: u64) -> anyhow::Result<bool> {
        let since_ms = self.unix_ms(now.saturating_sub(MISSING_LOOKBACK));
        let mut sent = self.sb.world.inbound_since(since_ms / 1000, self.sb.moderator_chat);
        // Telegram's service account is never stored (login codes).
        sent.retain(|(chat, _)| *chat != tribute_assistant::daemon::TELEGRAM_SERVICE_USER);
        if sent.is_empty() {
            return Ok(false);
        }
        // Stored after it was sent: the inbox rows of the window (and a
        // second before it, Telegram's dates being whole seconds).
        let stored = self.probe.inbox_since(since_ms - 1000).await?;
        Ok(sent.iter().any(|m| !stored.contains(m)))
    }

    /// The step while work is due: the busy step, unless nothing got done
    /// for a while (a dead task, say) — then the longer nothing got done,
    /// the longer the step, so undone work does not hold the clock to
    /// one-second steps for days. The invariants report what stalled.
    fn overdue_step(&self, now: u64) -> u64 {
        let idle = now - self.progress_at;
        if idle > STUCK_AFTER {
            (idle / 8).clamp(self.busy_step, MAX_IDLE_STEP)
        } else {
            self.busy_step
        }
    }

    /// Notes when the daemon (or anybody) last got something done: an
    /// order event, a card posted, a message handled or queued, any
    /// message in any chat, a backend request.
    async fn note_progress(&mut self, now: u64) -> anyhow::Result<()> {
        let progress = Progress {
            store: self.probe.progress().await?,
            messages: self.sb.world.messages_stored(),
            backend_requests: self.sb.backend.stats().requests,
        };
        if progress != self.progress {
            self.progress = progress;
            self.progress_at = now;
        }
        Ok(())
    }

    /// The running daemon's `/metrics` text (the ops listener's), if it answers.
    async fn scrape_metrics(&self) -> Option<String> {
        let url = format!("{}/metrics", self.sb.ops_url()?);
        let res = async { reqwest::get(&url).await?.error_for_status()?.text().await }.await;
        res.map_err(|e| debug!(error = %e, "no /metrics at the end of the run")).ok()
    }

    /// Deliberately breaks an invariant after the run, so tests can see the
    /// checker report it. The daemon is stopped and Telegram polite.
    pub async fn tamper(&mut self, t: Tamper) -> anyhow::Result<()> {
        use crate::sim::FaultPlan;
        self.sb.world.set_fault_plan(FaultPlan::none());
        let client = self.sb.world.connect();
        let tribute = self.sb.tribute_chat();
        let first = self.order_msg.iter().flatten().next().copied().context("no order was posted")?;
        match t {
            Tamper::ExtraActivation => {
                use tribute_assistant::backend::{ActivationRequest, BackendClient, BackendConfig};
                let i = self.msg_order[&first];
                let (o, c) = (&self.script.orders[i], &self.script.customers[self.script.orders[i].customer]);
                self.sb.backend.add_pending(&c.account, &o.product);
                let client =
                    BackendClient::new(BackendConfig::new(self.sb.backend.url(), self.sb.backend_secret().clone()))?;
                let req = ActivationRequest {
                    order_ref: OrderRef::for_message(tribute, first + 50_000_000),
                    account_id: tribute_assistant::domain::AccountId::parse(&c.account)?,
                    product: o.product.clone(),
                    price: tribute_assistant::domain::Money::new(
                        500,
                        "EUR".parse().map_err(|_| anyhow::anyhow!("currency"))?,
                    )?,
                    customer_telegram_id: Some(c.id),
                    customer_name: c.name.clone(),
                    received_at: tribute_assistant::runtime::clock::now_utc(),
                };
                client.activate(&req).await?;
            }
            Tamper::DuplicateReply => {
                client.send_message(tribute, "a second reply", Some(first), RandomId::fresh()).await?;
            }
            Tamper::OversizedMessage => {
                let text = "x".repeat(tribute_assistant::telegram::MESSAGE_LENGTH_MAX + 1);
                let _ = client.send_message(self.sb.moderator_chat, &text, None, RandomId::fresh()).await;
            }
            Tamper::ServiceLeak => {
                let needle = self.service_needles.first().cloned().context("no service message was posted")?;
                let text = format!("Case C0\n{needle}");
                client.send_message(self.sb.moderator_chat, &text, None, RandomId::fresh()).await?;
            }
            Tamper::UnansweredCommand => {
                self.sb.world.send_as_user(self.sb.moderator_chat, self.sb.moderator, "/cases", None)?;
            }
            Tamper::UnstoredMessage => {
                let c = self.script.customers[0].id;
                self.sb.world.add_user(c, "Tampered", None);
                self.sb.world.send_as_user(c, c, "is anybody there?", None)?;
            }
            Tamper::OverCap => {
                let c = self.script.customers[0].id;
                self.sb.world.add_user(c, "Tampered", None);
                self.sb.world.post_as_user(c, c, "hi", None);
                for k in 0..=super::contact_config().max_messages_per_day {
                    client.send_message(c, &format!("spam {k}"), None, RandomId::fresh()).await?;
                }
            }
        }
        self.sb.world.close_client();
        Ok(())
    }
}

/// `+1d 02:03:04` from the start of the simulation.
pub fn fmt_sim(ms: u64) -> String {
    let s = ms / 1000;
    format!("+{}d {:02}:{:02}:{:02}", s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60)
}

/// A signature of the daemon's SQLite work: the sqlx worker threads
/// (sqlx runs each connection on a thread of its own), the sum of their
/// context switches, and whether one of them is running. A worker blocks
/// once per statement it ran, so any statement, however short, between two
/// looks changes the signature; one still running shows as running.
/// Linux only; elsewhere always the same (then only the chats and the
/// backend's counter tell that the daemon moved).
#[derive(Default)]
pub struct SqliteThreads {
    /// Thread id → is a sqlx SQLite worker (not the probe's, which is named otherwise).
    known: HashMap<String, bool>,
    /// The workers' `status` files, listed afresh every few looks (a new
    /// connection's thread is found at the next listing).
    workers: Vec<std::path::PathBuf>,
    looks: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadSignature {
    threads: usize,
    switches: u64,
    running: bool,
}

impl SqliteThreads {
    pub fn signature(&mut self) -> ThreadSignature {
        if self.looks % 16 == 0 {
            self.list();
        }
        self.looks = self.looks.wrapping_add(1);
        let mut sig = ThreadSignature::default();
        let mut gone = false;
        for path in &self.workers {
            let Ok(status) = std::fs::read_to_string(path) else {
                gone = true;
                continue;
            };
            sig.threads += 1;
            sig.running |= field(&status, "State:").is_some_and(|v| v.starts_with(['R', 'D']));
            for key in ["\nvoluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"] {
                sig.switches += field(&status, key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        }
        if gone {
            self.looks = 0;
        }
        sig
    }

    fn list(&mut self) {
        self.workers.clear();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return };
        for e in dir.flatten() {
            let tid = e.file_name().to_string_lossy().into_owned();
            let sqlite = *self.known.entry(tid).or_insert_with(|| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.starts_with("sqlx-sqlite"))
            });
            if sqlite {
                self.workers.push(e.path().join("status"));
            }
        }
    }
}

/// The value after `key` in a `/proc/…/status` text, up to the end of its line.
fn field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    let at = status.find(key)? + key.len();
    let rest = &status[at..];
    Some(rest[..rest.find('\n').unwrap_or(rest.len())].trim())
}

/// Voluntary and involuntary context switches of all threads of the
/// process so far (`getrusage(RUSAGE_SELF)`).
fn process_context_switches() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    (usage.ru_nvcsw as u64).wrapping_add(usage.ru_nivcsw as u64)
}

/// Lets the runtime run the daemon's ready tasks for a moment.
async fn spin() {
    for _ in 0..256 {
        tokio::task::yield_now().await;
    }
}

/// Awaits `fut` while the paused clock moves on in small steps (at most
/// `limit`): winding a daemon down may wait on its timers.
pub async fn drive<F: std::future::Future>(fut: F, limit: Duration) -> Option<F::Output> {
    tokio::pin!(fut);
    let mut spent = Duration::ZERO;
    loop {
        tokio::select! {
            biased;
            out = &mut fut => return Some(out),
            _ = spin() => {}
        }
        if spent >= limit {
            return None;
        }
        tokio::time::advance(Duration::from_millis(STOP_STEP)).await;
        spent += Duration::from_millis(STOP_STEP);
    }
}
