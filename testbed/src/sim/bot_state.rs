//! What the scripted Tribute bot remembers, kept apart from its behaviour
//! (`tribute_bot`) because it lives inside the world's state.

use std::collections::HashMap;

use super::order::{Delivery, SimOrder};
use tribute_assistant::telegram::MessageId;

/// What the bot remembers about its orders and follow-ups.
#[derive(Default)]
pub(super) struct BotState {
    pub(super) orders: HashMap<MessageId, OrderRecord>,
    pub(super) followups: HashMap<MessageId, FollowUp>,
    pub deliveries: Vec<Delivery>,
}

pub(super) struct OrderRecord {
    pub(super) order: SimOrder,
    pub(super) delivered: bool,
    /// The follow-up whose keyboard is currently live, if any.
    pub(super) live_followup: Option<MessageId>,
    pub(super) send_presses: u32,
}

pub(super) struct FollowUp {
    pub(super) order_message_id: MessageId,
    /// Our reply text that Send would deliver.
    pub(super) answer: String,
    pub(super) send_data: Vec<u8>,
    pub(super) edit_data: Vec<u8>,
}

impl BotState {
    pub fn send_presses(&self, order_message_id: MessageId) -> u32 {
        self.orders.get(&order_message_id).map_or(0, |o| o.send_presses)
    }
}
