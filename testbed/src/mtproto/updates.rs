//! The account's update sequence: every new or edited message gets a `pts`
//! (the common box for private chats, a per-channel box for groups), is
//! pushed to connected clients and kept, so `updates.getDifference` /
//! `updates.getChannelDifference` can replay what a client missed.
//!
//! Channel (group) messages also advance `qts`, which a user account does
//! not otherwise use (it counts secret-chat events). The client hands its
//! qts back in `getDifference`, so the common difference can carry exactly
//! the channel messages it has not seen, instead of Telegram's
//! `updateChannelTooLong` dance.

use std::collections::HashMap;

use grammers_tl_types as tl;

use super::convert::{channel_id, View};
use tribute_assistant::telegram::Message;

#[derive(Debug, Clone)]
pub(crate) struct Logged {
    /// pts in its box (common or channel).
    pub pts: i32,
    /// For channel entries: the account's qts after this entry.
    pub qts: i32,
    pub edit: bool,
    pub message: Message,
}

#[derive(Default)]
struct Box_ {
    pts: i32,
    entries: Vec<Logged>,
}

/// The update log. Guarded by a tokio mutex in the server, held across
/// the sim call that produces the updates so pts follow causality.
pub(crate) struct UpdateLog {
    common: Box_,
    channels: HashMap<i64, Box_>,
    qts: i32,
}

/// pts values start at 1: grammers treats 0 as "no state".
const FIRST_PTS: i32 = 1;

impl UpdateLog {
    pub fn new() -> Self {
        UpdateLog { common: Box_ { pts: FIRST_PTS, entries: Vec::new() }, channels: HashMap::new(), qts: FIRST_PTS }
    }

    pub fn pts(&self) -> i32 {
        self.common.pts
    }

    pub fn qts(&self) -> i32 {
        self.qts
    }

    pub fn channel_pts(&self, channel_id: i64) -> i32 {
        self.channels.get(&channel_id).map_or(FIRST_PTS, |b| b.pts)
    }

    /// Logs a new or edited message and returns its update (with pts).
    pub fn record(&mut self, view: &View, message: Message, edit: bool) -> tl::enums::Update {
        let channel = channel_id(message.chat_id);
        if channel.is_some() {
            self.qts += 1;
        }
        let qts = self.qts;
        let b = match channel {
            Some(id) => self.channels.entry(id).or_insert_with(|| Box_ { pts: FIRST_PTS, entries: Vec::new() }),
            None => &mut self.common,
        };
        b.pts += 1;
        let logged = Logged { pts: b.pts, qts, edit, message };
        let update = to_update(view, &logged);
        b.entries.push(logged);
        update
    }

    /// Common-box entries after `pts` and channel entries after `qts`.
    pub fn since(&self, pts: i32, qts: i32) -> Vec<Logged> {
        let mut out: Vec<Logged> = self.common.entries.iter().filter(|e| e.pts > pts).cloned().collect();
        for b in self.channels.values() {
            out.extend(b.entries.iter().filter(|e| e.qts > qts).cloned());
        }
        out
    }

    /// Channel entries after `pts`.
    pub fn channel_since(&self, channel_id: i64, pts: i32) -> Vec<Logged> {
        self.channels
            .get(&channel_id)
            .map_or_else(Vec::new, |b| b.entries.iter().filter(|e| e.pts > pts).cloned().collect())
    }
}

/// The `Update` for a logged entry.
pub(crate) fn to_update(view: &View, e: &Logged) -> tl::enums::Update {
    let message = view.message(&e.message);
    match (channel_id(e.message.chat_id).is_some(), e.edit) {
        (false, false) => tl::types::UpdateNewMessage { message, pts: e.pts, pts_count: 1 }.into(),
        (false, true) => tl::types::UpdateEditMessage { message, pts: e.pts, pts_count: 1 }.into(),
        (true, false) => tl::types::UpdateNewChannelMessage { message, pts: e.pts, pts_count: 1 }.into(),
        (true, true) => tl::types::UpdateEditChannelMessage { message, pts: e.pts, pts_count: 1 }.into(),
    }
}
