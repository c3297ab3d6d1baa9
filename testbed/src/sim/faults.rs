//! The seeded fault plan: how hostile the simulated Telegram is, and the one
//! random number generator every decision of the world draws from.
//!
//! Real Telegram fails in ways a polite simulator never shows: flood waits
//! on any method, requests that took effect although their answer never
//! came, dropped connections, updates lost, doubled or reordered in
//! transit, a bot that answers late or not at all, customers who blocked
//! us. A [`FaultPlan`] injects these by probability, per call. Because all
//! randomness of a world — including the Tribute bot's callback nonces —
//! comes from one generator seeded by the plan, the same sequence of calls
//! meets the same faults: a failing run can be replayed exactly from its
//! seed. Faults that belong to a person rather than to a call (a customer
//! who blocked us) are derived from the seed and the customer id alone, so
//! they do not depend on the order of calls at all.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tribute_assistant::telegram::UserId;

/// How hostile the world is. `None` is the polite simulator of old: no
/// fault is ever injected (the rules of [`super::rules`] still hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FaultLevel {
    #[default]
    None,
    /// Occasional faults, roughly what a busy account meets on a bad day.
    Normal,
    /// Frequent faults that still let work progress.
    Hostile,
}

impl fmt::Display for FaultLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultLevel::None => "none",
            FaultLevel::Normal => "normal",
            FaultLevel::Hostile => "hostile",
        })
    }
}

/// A fault level name that is not `none`, `normal` or `hostile`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault level {0:?}: expected none, normal or hostile")]
pub struct UnknownFaultLevel(pub String);

impl FromStr for FaultLevel {
    type Err = UnknownFaultLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(FaultLevel::None),
            "normal" => Ok(FaultLevel::Normal),
            "hostile" => Ok(FaultLevel::Hostile),
            _ => Err(UnknownFaultLevel(s.to_owned())),
        }
    }
}

/// Probabilities of each fault, in per mille (‰, 0–1000), per occasion:
/// per call for call faults, per event for transit faults, per customer
/// for the customer's settings. Integers keep plans comparable and exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultRates {
    /// A call (per method: send, press, history, get_messages) starts a `FLOOD_WAIT`.
    pub flood_wait: u32,
    /// Of those flood waits, how many are long (60–3600 s) instead of short (1–5 s).
    pub flood_wait_long: u32,
    /// A send that was stored and delivered answers `Timeout`.
    pub send_timeout: u32,
    /// A press that took effect answers `Timeout` (`BOT_RESPONSE_TIMEOUT`):
    /// the button is gone because the bot took the press.
    pub press_timeout: u32,
    /// A press of Send finds the keyboard gone although nothing was
    /// delivered (the bot took it away: the follow-up expired, or it was
    /// answered elsewhere): `ButtonNotFound`. Not part of the levels, whose
    /// seeds replay as before; set it with [`FaultPlan::with_rates`].
    pub button_gone: u32,
    /// A call drops the connection for 2–8 s of tokio time.
    pub disconnect: u32,
    /// An update is stored in history but never reaches the live stream.
    pub update_lost: u32,
    /// An update reaches the live stream twice.
    pub update_duplicated: u32,
    /// An update is held back and arrives after a later one.
    pub update_reordered: u32,
    /// The bot's follow-up to one of our messages comes late.
    pub followup_late: u32,
    /// The longest such delay, in seconds (the shortest is 2 s).
    pub followup_late_max_secs: u64,
    /// The bot never answers one of our messages.
    pub followup_missing: u32,
    /// A customer has blocked our account.
    pub customer_blocked: u32,
    /// A customer's privacy settings refuse first messages from strangers.
    pub customer_privacy: u32,
    /// A customer's account is deleted.
    pub customer_deactivated: u32,
}

impl FaultRates {
    /// The rates a level stands for.
    pub fn for_level(level: FaultLevel) -> Self {
        match level {
            FaultLevel::None => FaultRates::default(),
            FaultLevel::Normal => FaultRates {
                flood_wait: 20,
                flood_wait_long: 50,
                send_timeout: 10,
                press_timeout: 10,
                button_gone: 0,
                disconnect: 5,
                update_lost: 10,
                update_duplicated: 10,
                update_reordered: 10,
                followup_late: 50,
                followup_late_max_secs: 60,
                followup_missing: 10,
                customer_blocked: 30,
                customer_privacy: 30,
                customer_deactivated: 5,
            },
            FaultLevel::Hostile => FaultRates {
                flood_wait: 100,
                flood_wait_long: 100,
                send_timeout: 50,
                press_timeout: 50,
                button_gone: 0,
                disconnect: 30,
                update_lost: 50,
                update_duplicated: 50,
                update_reordered: 50,
                followup_late: 250,
                followup_late_max_secs: 300,
                followup_missing: 50,
                customer_blocked: 100,
                customer_privacy: 100,
                customer_deactivated: 20,
            },
        }
    }
}

/// A seed and the probabilities of each fault. Install it with
/// [`super::SimWorld::set_fault_plan`] or [`super::SimConfig::fault_plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlan {
    seed: u64,
    level: FaultLevel,
    rates: FaultRates,
}

impl FaultPlan {
    /// The plan of a level, seeded.
    pub fn new(seed: u64, level: FaultLevel) -> Self {
        FaultPlan { seed, level, rates: FaultRates::for_level(level) }
    }

    /// No faults at all (seed 0): today's polite simulator.
    pub fn none() -> Self {
        FaultPlan::new(0, FaultLevel::None)
    }

    /// The same seed with hand-picked rates, e.g. one fault at 1000 ‰ to
    /// test exactly that fault.
    pub fn with_rates(mut self, rates: FaultRates) -> Self {
        self.rates = rates;
        self
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn level(&self) -> FaultLevel {
        self.level
    }

    pub fn rates(&self) -> &FaultRates {
        &self.rates
    }

    /// What the seed decided about a customer. Depends only on the seed and
    /// the id, never on the order of calls.
    pub(super) fn customer(&self, id: UserId) -> CustomerFate {
        let pick = |salt: u64, per_mille: u32| {
            per_mille > 0 && splitmix64(self.seed ^ splitmix64(id as u64 ^ salt)) % 1000 < u64::from(per_mille)
        };
        CustomerFate {
            deactivated: pick(0xdead, self.rates.customer_deactivated),
            blocked: pick(0xb10c, self.rates.customer_blocked),
            privacy: pick(0x9e1f, self.rates.customer_privacy),
        }
    }
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan::none()
    }
}

/// A customer's settings as the seed chose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct CustomerFate {
    pub deactivated: bool,
    pub blocked: bool,
    pub privacy: bool,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The methods that can be flood-waited, each with its own wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Method {
    Send,
    Press,
    History,
    GetMessages,
}

/// Every fault the plan can inject, by the name [`super::SimWorld::faults_injected`] counts it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    FloodWaitSend,
    FloodWaitPress,
    FloodWaitHistory,
    FloodWaitGetMessages,
    /// Counted in addition to the method's flood wait when it is 60 s or more.
    FloodWaitLong,
    SendTimeoutDelivered,
    PressTimeoutDelivered,
    /// A Send keyboard taken away without a delivery.
    ButtonGone,
    Disconnect,
    UpdateLost,
    UpdateDuplicated,
    UpdateReordered,
    /// An update dropped because the live buffer was full (see `SimConfig::update_buffer`).
    UpdateOverflow,
    FollowupLate,
    FollowupMissing,
    CustomerBlocked,
    CustomerPrivacy,
    CustomerDeactivated,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::FloodWaitSend => "flood_wait.send",
            Fault::FloodWaitPress => "flood_wait.press",
            Fault::FloodWaitHistory => "flood_wait.history",
            Fault::FloodWaitGetMessages => "flood_wait.get_messages",
            Fault::FloodWaitLong => "flood_wait.long",
            Fault::SendTimeoutDelivered => "send_timeout_delivered",
            Fault::PressTimeoutDelivered => "press_timeout_delivered",
            Fault::ButtonGone => "button_gone",
            Fault::Disconnect => "disconnect",
            Fault::UpdateLost => "update_lost",
            Fault::UpdateDuplicated => "update_duplicated",
            Fault::UpdateReordered => "update_reordered",
            Fault::UpdateOverflow => "update_overflow",
            Fault::FollowupLate => "followup_late",
            Fault::FollowupMissing => "followup_missing",
            Fault::CustomerBlocked => "customer_blocked",
            Fault::CustomerPrivacy => "customer_privacy",
            Fault::CustomerDeactivated => "customer_deactivated",
        }
    }

    pub(super) fn flood_wait(method: Method) -> Self {
        match method {
            Method::Send => Fault::FloodWaitSend,
            Method::Press => Fault::FloodWaitPress,
            Method::History => Fault::FloodWaitHistory,
            Method::GetMessages => Fault::FloodWaitGetMessages,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A time Telegram made our account wait: a flood wait of one method, or
/// the link down after a disconnect. Checkers leave these out of the delays
/// they hold the daemon to (Telegram's own waits are not the daemon's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelegramWait {
    pub fault: Fault,
    /// Clock times (unix ms).
    pub from_ms: i64,
    pub until_ms: i64,
}

/// The most entries [`Dice::log`] keeps; later faults are only counted.
const LOG_MAX: usize = 10_000;

/// The plan in force, its generator and the record of what it injected.
pub(super) struct Dice {
    pub plan: FaultPlan,
    rng: fastrand::Rng,
    injected: BTreeMap<String, u64>,
    /// "name detail" per injected fault, in order (the first [`LOG_MAX`]).
    log: Vec<String>,
    waits: Vec<TelegramWait>,
}

impl Dice {
    pub fn new(plan: FaultPlan) -> Self {
        let rng = fastrand::Rng::with_seed(plan.seed);
        Dice { plan, rng, injected: BTreeMap::new(), log: Vec::new(), waits: Vec::new() }
    }

    pub fn rates(&self) -> FaultRates {
        self.plan.rates
    }

    /// True with probability `per_mille` ‰. Draws nothing at 0 ‰, so a plan
    /// without faults leaves the generator to the bot's nonces alone.
    pub fn roll(&mut self, per_mille: u32) -> bool {
        match per_mille {
            0 => false,
            p if p >= 1000 => true,
            p => self.rng.u32(..1000) < p,
        }
    }

    /// A random value for the world (the bot's nonces).
    pub fn u64(&mut self) -> u64 {
        self.rng.u64(..)
    }

    /// A whole number of seconds in `min..=max`.
    pub fn secs(&mut self, min: u64, max: u64) -> Duration {
        Duration::from_secs(self.rng.u64(min..=max.max(min)))
    }

    /// Records an injected fault.
    pub fn inject(&mut self, fault: Fault, detail: impl fmt::Display) {
        *self.injected.entry(fault.as_str().to_owned()).or_default() += 1;
        if self.log.len() < LOG_MAX {
            self.log.push(format!("{fault} {detail}"));
        }
    }

    /// Records an injected fault that makes the account wait from now on.
    pub fn inject_wait(&mut self, fault: Fault, wait: Duration) {
        let from_ms = tribute_assistant::runtime::clock::now_ms();
        self.inject(fault, format!("{}s", wait.as_secs()));
        self.waits.push(TelegramWait { fault, from_ms, until_ms: from_ms + wait.as_millis() as i64 });
    }

    pub fn waits(&self) -> &[TelegramWait] {
        &self.waits
    }

    pub fn injected(&self) -> &BTreeMap<String, u64> {
        &self.injected
    }

    pub fn log(&self) -> &[String] {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_print() {
        for level in [FaultLevel::None, FaultLevel::Normal, FaultLevel::Hostile] {
            assert_eq!(level.to_string().parse::<FaultLevel>(), Ok(level));
        }
        assert_eq!(" Hostile ".parse::<FaultLevel>(), Ok(FaultLevel::Hostile));
        assert!("brutal".parse::<FaultLevel>().is_err());
    }

    #[test]
    fn no_faults_draws_nothing() {
        let mut a = Dice::new(FaultPlan::new(7, FaultLevel::None));
        let mut b = Dice::new(FaultPlan::new(7, FaultLevel::None));
        assert!(!a.roll(a.rates().flood_wait));
        assert_eq!(a.u64(), b.u64(), "the roll at 0 ‰ did not advance the generator");
    }

    #[test]
    fn customer_fate_depends_on_seed_and_id_only() {
        let plan = FaultPlan::new(42, FaultLevel::Hostile);
        let fates: Vec<_> = (1..=2000).map(|id| plan.customer(id)).collect();
        assert_eq!(fates, (1..=2000).map(|id| plan.customer(id)).collect::<Vec<_>>());
        let blocked = fates.iter().filter(|f| f.blocked).count();
        assert!((100..=300).contains(&blocked), "about 10 % blocked, got {blocked} of 2000");
        let other = FaultPlan::new(43, FaultLevel::Hostile);
        assert_ne!(fates, (1..=2000).map(|id| other.customer(id)).collect::<Vec<_>>());
        assert!((1..=2000).all(|id| FaultPlan::none().customer(id) == CustomerFate::default()));
    }
}
