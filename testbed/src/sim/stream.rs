//! The live update stream of the connected client, with what happens to
//! updates between Telegram and a real client: some are lost, some come
//! twice, some overtake others (the fault plan decides), and a client that
//! does not keep up loses new ones once its buffer is full, as grammers
//! does when its `updates_channel_capacity` is reached. History is never
//! affected: whatever the stream misses, `history_since` still returns.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Notify;

use super::faults::{Dice, Fault};
use tribute_assistant::telegram::Event;

pub(super) struct Stream {
    /// A client is connected and wants events.
    open: bool,
    queue: VecDeque<Event>,
    /// An update held back by the reorder fault; it follows the next one.
    held: Option<Event>,
    /// Most events waiting unread; `None` for no limit.
    pub capacity: Option<usize>,
    /// Wakes a waiting `next_event` (new events, link changes).
    pub wake: Arc<Notify>,
}

impl Stream {
    pub fn new(capacity: Option<usize>) -> Self {
        Stream { open: false, queue: VecDeque::new(), held: None, capacity, wake: Arc::new(Notify::new()) }
    }

    /// A new client: only events from now on.
    pub fn open(&mut self) {
        self.open = true;
        self.queue.clear();
        self.held = None;
        self.wake.notify_waiters();
    }

    /// No client: events are lost until the next [`open`](Self::open).
    pub fn close(&mut self) {
        self.open = false;
        self.queue.clear();
        self.held = None;
        self.wake.notify_waiters();
    }

    /// Hands an event to the client, through the transit faults of the plan.
    pub fn deliver(&mut self, event: Event, dice: &mut Dice) {
        if !self.open {
            return;
        }
        let rates = dice.rates();
        if dice.roll(rates.update_lost) {
            dice.inject(Fault::UpdateLost, describe(&event));
            return;
        }
        let twice = dice.roll(rates.update_duplicated);
        if twice {
            dice.inject(Fault::UpdateDuplicated, describe(&event));
        }
        if self.held.is_none() && !twice && dice.roll(rates.update_reordered) {
            dice.inject(Fault::UpdateReordered, describe(&event));
            self.held = Some(event);
            return;
        }
        if twice {
            self.push(event.clone(), dice);
        }
        self.push(event, dice);
        if let Some(held) = self.held.take() {
            self.push(held, dice);
        }
        self.wake.notify_waiters();
    }

    fn push(&mut self, event: Event, dice: &mut Dice) {
        if self.capacity.is_some_and(|n| self.queue.len() >= n) {
            dice.inject(Fault::UpdateOverflow, describe(&event));
            return;
        }
        self.queue.push_back(event);
    }

    pub fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    pub fn has_held(&self) -> bool {
        self.held.is_some()
    }

    /// Nothing overtook the held update for a while: let it through late.
    pub fn release_held(&mut self, dice: &mut Dice) {
        if let Some(held) = self.held.take() {
            self.push(held, dice);
            self.wake.notify_waiters();
        }
    }
}

/// A short label of an event for the fault log.
fn describe(event: &Event) -> String {
    match event {
        Event::NewMessage(m) => format!("new {}/{}", m.chat_id, m.id),
        Event::MessageEdited(m) => format!("edit {}/{}", m.chat_id, m.id),
        Event::MessagesDeleted { chat, ids } => format!("delete {chat}/{ids:?}"),
    }
}
