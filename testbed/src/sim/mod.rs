//! An in-process Telegram that stands in for the real one in tests, the
//! `demo` and `simulate` commands and the benchmark.
//!
//! It is faithful where the daemon's correctness depends on it: message
//! ids per chat, entities in UTF-16 units, edits and deletions, inline
//! keyboards that disappear after a press, no catch-up of events missed
//! while offline, and a scripted Tribute bot that runs the reply → "Send"
//! exchange exactly once per order (see [`tribute_bot`]). It is cheap: one
//! short `std::sync::Mutex` section per call, and every delay is on tokio
//! time, so a paused clock runs hours of Telegram in milliseconds.
//!
//! **Rules** it always enforces, as Telegram does ([`rules`]), each
//! refusal counted in [`SimWorld::refused_sends`] /
//! [`SimWorld::refused_presses`]:
//! - text: empty or whitespace-only → `MessageEmpty`; over 4096 UTF-16
//!   code units → `MessageTooLong`; over 100 entities (links, mentions,
//!   hashtags, commands found in the text) → `EntitiesTooLong`;
//! - callback data over 64 bytes or never issued → `DataInvalid`;
//! - a second send with the same [`RandomId`](tribute_assistant::telegram::RandomId)
//!   → `RandomIdDuplicate`, nothing sent (the first one was delivered);
//! - PEER_FLOOD: first messages to strangers (a private chat nobody ever
//!   wrote in) are limited to [`SimConfig::stranger_quota`] per
//!   [`SimConfig::stranger_window`] of the clock; past it every send to a
//!   stranger fails with `PeerFlood` for [`SimConfig::peer_flood_penalty`];
//! - users who blocked us, deleted their account or accept first messages
//!   from contacts only (set per user, or chosen by the fault plan).
//!
//! **Faults** come from a seeded [`FaultPlan`] ([`faults`]): flood waits
//! per method, requests that took effect but answer `Timeout`, disconnects
//! that heal after a few seconds, updates lost, duplicated or reordered in
//! transit, a bounded live buffer that drops updates when the client falls
//! behind (see `stream.rs`), a bot whose follow-up comes late or never, and
//! customers who blocked us. One generator seeded by the plan makes every
//! decision, so the same calls meet the same faults; [`FaultLevel::None`]
//! is the polite simulator of old. [`SimWorld::faults_injected`] counts them.
//!
//! - [`SimWorld`]: the world; other people's actions, faults, inspection.
//! - [`SimClient`]: our account, implementing [`tribute_assistant::telegram::Messenger`].

mod bot_state;
mod calls;
mod client;
pub mod faults;
mod introspect;
mod order;
mod people;
pub mod rules;
mod state;
mod stream;
pub mod text;
pub mod tribute_bot;
mod world;

use std::time::Duration;

pub use calls::SERVICE_USER_ID;
pub use client::SimClient;
pub use faults::{Fault, FaultLevel, FaultPlan, FaultRates, TelegramWait, UnknownFaultLevel};
pub use introspect::{SimChatInfo, SimDialog, SimUserInfo};
pub use order::{Delivery, SimOrder};
pub use text::{utf16_len, TextBuilder};
pub use tribute_bot::{ALREADY_COMPLETED_TEXT, EDIT_BUTTON_TEXT, EDIT_PROMPT_TEXT, NOT_UNDERSTOOD_TEXT};
pub use world::SimWorld;

use tribute_assistant::telegram::UserId;

/// Who is who in the simulated Telegram, how the bot labels its button,
/// the account's limits and the fault plan it starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Our account.
    pub self_id: UserId,
    /// The Tribute bot (@tribute); its private chat has the same id.
    pub tribute_bot_id: UserId,
    /// The label of the bot's delivery button: "Send", or "Отправить" when
    /// the account's Telegram language is Russian.
    pub send_button_text: String,
    /// First messages to strangers allowed per [`stranger_window`](Self::stranger_window).
    pub stranger_quota: u32,
    /// The sliding window of the clock the quota applies to.
    pub stranger_window: Duration,
    /// How long sends to strangers fail with `PeerFlood` once the quota was exceeded.
    pub peer_flood_penalty: Duration,
    /// Most live updates waiting unread before new ones are dropped, like
    /// grammers' `updates_channel_capacity`; `None` for no limit.
    pub update_buffer: Option<usize>,
    /// The faults the world starts with (see [`SimWorld::set_fault_plan`]).
    pub fault_plan: FaultPlan,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            self_id: 1000,
            tribute_bot_id: 93372553,
            send_button_text: "Send".into(),
            stranger_quota: 5,
            stranger_window: Duration::from_secs(10 * 60),
            peer_flood_penalty: Duration::from_secs(6 * 3600),
            update_buffer: None,
            fault_plan: FaultPlan::none(),
        }
    }
}
