//! Two delays a hostile world must not stretch: how long a moderator's
//! command waits for our answer in the moderator chat, and how long a
//! paying customer's account ID waits for the order's activation. Pure:
//! computed from the simulator's chat histories and the store's order
//! events, so both are tested here on hand-made histories.

use std::collections::HashMap;

use serde::Serialize;

use super::probe::{OrderEvent, BACKEND_UNAVAILABLE, CUSTOMER_GAVE_ID};
use crate::sim::TelegramWait;
use tribute_assistant::telegram::{Message, MessageId, UserId};

/// How much of `from..to` (unix ms) Telegram kept our account waiting:
/// the union of the flood waits and link outages within it. Any method's
/// wait counts, whichever call the delay hung on.
pub fn telegram_waited_ms(waits: &[TelegramWait], from: i64, to: i64) -> i64 {
    let mut spans: Vec<(i64, i64)> =
        waits.iter().map(|w| (w.from_ms.max(from), w.until_ms.min(to))).filter(|(a, b)| a < b).collect();
    spans.sort_unstable();
    let (mut total, mut reach) = (0, from);
    for (a, b) in spans {
        let a = a.max(reach);
        if b > a {
            total += b - a;
            reach = b;
        }
    }
    total
}

/// How many delays were measured and how they spread (seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub count: usize,
    pub p50_secs: u64,
    pub p99_secs: u64,
    pub max_secs: u64,
}

impl Spread {
    /// Nearest-rank percentiles of `secs`.
    pub fn of(mut secs: Vec<u64>) -> Self {
        secs.sort_unstable();
        let rank = |p: usize| secs.get((secs.len() * p).div_ceil(100).saturating_sub(1)).copied().unwrap_or(0);
        Spread {
            count: secs.len(),
            p50_secs: rank(50),
            p99_secs: rank(99),
            max_secs: secs.last().copied().unwrap_or(0),
        }
    }
}

/// A moderator's message that asks for an answer, and when ours came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub message_id: MessageId,
    pub text: String,
    /// Unix seconds (Telegram's dates).
    pub at: i64,
    /// Seconds until our answer; `None`: never answered.
    pub answered_after: Option<i64>,
    /// The message it replied to, and that message's case if it has one.
    pub reply_to: Option<MessageId>,
    pub case: Option<i64>,
}

/// What the desk must answer: a `/command` (or 👍) from `moderator`, or any
/// reply of theirs to a message of a case (an account ID, text for the
/// customer). Our answer is the first message of ours after it that
/// replies to it — or, for a reply to a case message, a follow-up on any
/// message of that case (`/done` and `/reject` answer with the case's
/// closing note on its card, whichever of the case's messages they
/// replied to). `case_messages` maps each case message to its case.
pub fn commands(chat: &[Message], moderator: UserId, case_messages: &HashMap<MessageId, i64>) -> Vec<Command> {
    let mut out = Vec::new();
    for (i, m) in chat.iter().enumerate() {
        if m.outgoing || m.sender_id != Some(moderator) {
            continue;
        }
        let case = m.reply_to.and_then(|r| case_messages.get(&r));
        if !is_command(&m.text) && case.is_none() {
            continue;
        }
        let answer = chat[i + 1..].iter().find(|a| {
            a.outgoing
                && (a.reply_to == Some(m.id)
                    || case.is_some() && a.reply_to.and_then(|r| case_messages.get(&r)) == case)
        });
        out.push(Command {
            message_id: m.id,
            text: m.text.clone(),
            at: m.date,
            answered_after: answer.map(|a| a.date - m.date),
            reply_to: m.reply_to,
            case: case.copied(),
        });
    }
    out
}

/// A `/word …` or 👍, as a moderator means it (whitespace around does not
/// matter; an invisible character before the slash makes it text).
fn is_command(text: &str) -> bool {
    let t = text.trim();
    t.starts_with('/') || t == "👍"
}

/// One order whose account ID a customer gave in the chat, from that
/// message to the activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdToActivation {
    pub order_id: i64,
    /// When the customer's message with the ID was sent, and the
    /// activation (unix ms).
    pub message_ms: i64,
    pub activated_ms: i64,
    /// Of the time between, how long the order was parked because the
    /// backend was unavailable (its outages and failure bursts are the backend's).
    pub backend_ms: i64,
}

impl IdToActivation {
    pub fn total_ms(&self) -> i64 {
        self.activated_ms - self.message_ms
    }
}

/// For one order's events (in order): the activation, the step that asked
/// the backend for it (the last move into `activation_requested` before
/// it), and — when that step took an account ID the customer sent in the
/// chat — the customer's last message with their account at or before it
/// (`id_messages_ms`: the times of their messages that carry it). `None`
/// when the order was not activated with an ID the customer sent.
pub fn id_to_activation(events: &[OrderEvent], id_messages_ms: &[i64]) -> Option<IdToActivation> {
    let activated = events.iter().position(|e| e.to_state == "activated")?;
    let taken = events[..activated]
        .iter()
        .rev()
        .find(|e| e.to_state == "activation_requested" && e.from_state.as_deref() != Some("activation_requested"))
        .filter(|e| e.note.starts_with(CUSTOMER_GAVE_ID))?;
    let message = id_messages_ms.iter().copied().filter(|t| *t <= taken.at).max()?;
    let activated_at = events[activated].at;
    let backend_ms = events[..activated]
        .iter()
        .enumerate()
        .filter(|(_, e)| e.at >= message && e.note.starts_with(BACKEND_UNAVAILABLE))
        .map(|(i, e)| events[i + 1].at.min(activated_at) - e.at)
        .sum();
    Some(IdToActivation { order_id: events[0].order_id, message_ms: message, activated_ms: activated_at, backend_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOD: UserId = 7001;

    fn msg(id: MessageId, date: i64, outgoing: bool, text: &str, reply_to: Option<MessageId>) -> Message {
        Message {
            chat_id: -100,
            id,
            sender_id: Some(if outgoing { 1000 } else { MOD }),
            outgoing,
            sender_is_bot: false,
            date,
            text: text.into(),
            entities: vec![],
            reply_to,
            buttons: vec![],
        }
    }

    #[test]
    fn commands_and_replies_to_cases_wait_for_their_own_answer() {
        let chat = vec![
            msg(1, 0, true, "Case C1 …", None),
            msg(2, 10, false, "/report 7д", None),
            msg(3, 11, false, "just chatting", None),
            msg(4, 12, false, "/done", Some(1)),
            msg(5, 20, true, "☑️ C1: closed", Some(1)),
            msg(6, 30, false, "\u{200f}/report 7d", None),
            msg(7, 40, false, "  👍 ", Some(3)),
            msg(8, 45, true, "Usage: /report", Some(2)),
            msg(9, 50, true, "Reply to a case card", Some(7)),
            msg(10, 60, false, "123456", Some(1)),
            msg(11, 70, true, "C2 card", None),
            msg(12, 71, true, "C2 follow-up", Some(11)),
            msg(13, 72, false, "/done", Some(12)),
            msg(14, 73, true, "☑️ C1: closed", Some(1)),
            msg(15, 75, true, "☑️ C2: closed", Some(11)),
        ];
        let cases = HashMap::from([(1, 1), (11, 2), (12, 2)]);
        let got: Vec<(MessageId, Option<i64>)> =
            commands(&chat, MOD, &cases).iter().map(|c| (c.message_id, c.answered_after)).collect();
        assert_eq!(got, vec![(2, Some(35)), (4, Some(8)), (7, Some(10)), (10, Some(13)), (13, Some(3))]);
    }

    #[test]
    fn telegram_waits_overlapping_each_other_count_once() {
        use crate::sim::Fault;
        let w = |from_ms, until_ms| TelegramWait { fault: Fault::FloodWaitSend, from_ms, until_ms };
        let waits = [w(0, 100), w(50, 150), w(300, 400), w(1000, 2000)];
        assert_eq!(telegram_waited_ms(&waits, 20, 350), 130 + 50);
        assert_eq!(telegram_waited_ms(&waits, 500, 900), 0);
        assert_eq!(telegram_waited_ms(&[], 0, 10), 0);
    }

    #[test]
    fn spreads_are_nearest_rank() {
        assert_eq!(Spread::of(vec![]), Spread::default());
        let s = Spread::of((1..=200).rev().collect());
        assert_eq!((s.count, s.p50_secs, s.p99_secs, s.max_secs), (200, 100, 198, 200));
        assert_eq!(Spread::of(vec![7]).p99_secs, 7);
    }

    /// An event of order 9; a note alone (the same state) when `to` is "=".
    fn ev(at: i64, from: &str, to: &str, note: &str) -> OrderEvent {
        let to = if to == "=" { from } else { to };
        OrderEvent { order_id: 9, at, from_state: Some(from.into()), to_state: to.into(), note: note.into() }
    }

    #[test]
    fn the_delay_runs_from_the_message_that_gave_the_id_and_leaves_the_backend_out() {
        let events = vec![
            ev(0, "", "received", "stored"),
            ev(1_000, "received", "needs_customer", "no account ID"),
            ev(50_000, "needs_customer", "activation_requested", "the customer sent account ID 999999 in the chat"),
            ev(51_000, "activation_requested", "needs_customer", "unknown account"),
            ev(90_000, "needs_customer", "activation_requested", "the customer sent account ID 123456 in the chat"),
            ev(91_000, "activation_requested", "=", "backend unavailable (503); retrying in 60s"),
            ev(151_000, "activation_requested", "=", "backend unavailable (503); retrying in 120s"),
            ev(271_000, "activation_requested", "activated", "activated A-1"),
            ev(272_000, "activated", "replied", "replied"),
        ];
        let got = id_to_activation(&events, &[20_000, 88_000, 300_000]).unwrap();
        assert_eq!(got, IdToActivation { order_id: 9, message_ms: 88_000, activated_ms: 271_000, backend_ms: 180_000 });
        assert_eq!(got.total_ms(), 183_000);
        assert_eq!(id_to_activation(&events, &[95_000]), None, "no message with the ID before it was taken");
        // The customer's IDs were refused; a moderator's ID was activated.
        let mut by_moderator = events[..4].to_vec();
        by_moderator.push(ev(80_000, "needs_customer", "escalated", "the customer did not answer"));
        by_moderator.push(ev(90_000, "escalated", "activation_requested", "moderator 7001 gave account ID 123456"));
        by_moderator.push(ev(91_000, "activation_requested", "activated", "activated A-1"));
        assert_eq!(id_to_activation(&by_moderator, &[20_000]), None);
        assert_eq!(id_to_activation(&events[..5], &[88_000]), None, "not activated");
    }
}
