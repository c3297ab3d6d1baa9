//! An in-process Telegram that stands in for the real one in tests, the
//! `demo` command and the benchmark.
//!
//! It is faithful where the daemon's correctness depends on it: message
//! ids per chat, entities in UTF-16 units, edits, inline keyboards that
//! disappear after a press, no catch-up of events missed while offline,
//! flood waits, and a scripted Tribute bot that runs the reply → "Send"
//! exchange exactly once per order (see [`tribute_bot`]). It is cheap:
//! one short `std::sync::Mutex` section per call and no sleeps unless a
//! test asks for a delayed bot.
//!
//! - [`SimWorld`]: the world; other people's actions, faults, inspection.
//! - [`SimClient`]: our account, implementing [`crate::telegram::Messenger`].

mod client;
mod introspect;
mod order;
mod state;
pub mod text;
pub mod tribute_bot;
mod world;

pub use client::SimClient;
pub use introspect::{SimChatInfo, SimUserInfo};
pub use order::{Delivery, SimOrder};
pub use text::{utf16_len, TextBuilder};
pub use tribute_bot::{ALREADY_COMPLETED_TEXT, EDIT_BUTTON_TEXT, EDIT_PROMPT_TEXT, NOT_UNDERSTOOD_TEXT};
pub use world::SimWorld;

use crate::telegram::UserId;

/// Who is who in the simulated Telegram and how the bot labels its button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Our account.
    pub self_id: UserId,
    /// The Tribute bot (@tribute); its private chat has the same id.
    pub tribute_bot_id: UserId,
    /// The label of the bot's delivery button: "Send", or "Отправить" when
    /// the account's Telegram language is Russian.
    pub send_button_text: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { self_id: 1000, tribute_bot_id: 93372553, send_button_text: "Send".into() }
    }
}
