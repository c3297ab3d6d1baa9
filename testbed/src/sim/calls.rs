//! What happens to each of our account's requests, in the order real
//! Telegram would decide it: the link, flood waits, the request's own
//! validity, the recipient's settings, PEER_FLOOD, and only then the side
//! effect — after which the fault plan may still lose the answer (a
//! timeout although the message was delivered). Kept apart from
//! [`super::client`] so every decision happens under one lock and without
//! awaiting, and the client only adds what needs tokio (late follow-ups).

use std::time::Duration;

use super::faults::{Fault, Method};
use super::introspect::SimDialog;
use super::rules::{check_text, StrangerLimit};
use super::state::{NewMessage, State};
use super::tribute_bot;
use super::SimConfig;
use tribute_assistant::telegram::{
    CallbackAnswer, ChatId, DialogsOffset, DialogsPage, Message, MessageId, MessengerError, MessengerResult, RandomId,
    UserId, CALLBACK_DATA_MAX,
};

/// The id of Telegram's service account, which sends login codes.
pub const SERVICE_USER_ID: UserId = 777_000;

/// A send that went through, and what the caller still has to do.
pub(super) struct Sent {
    /// The answer our client gets (`Err(Timeout)` although the message was sent).
    pub answer: MessengerResult<MessageId>,
    /// The bot answers this message of ours after the delay.
    pub late_followup: Option<(Duration, MessageId)>,
}

impl State {
    /// The checks every request passes first: the link, a disconnect
    /// fault, an active flood wait of the method, a new flood wait.
    pub fn gate(&mut self, method: Method) -> MessengerResult<()> {
        if !self.link_up() {
            return Err(MessengerError::Disconnected);
        }
        let rates = self.dice.rates();
        let now = tribute_assistant::runtime::clock::now_ms();
        if self.dice.roll(rates.disconnect) {
            let down = self.dice.secs(2, 8);
            self.dice.inject_wait(Fault::Disconnect, down);
            self.link.down_until = Some(now + down.as_millis() as i64);
            self.stream.wake.notify_waiters();
            return Err(MessengerError::Disconnected);
        }
        if let Some(&until) = self.flood_until.get(&method) {
            if now < until {
                // Like Telegram: the remaining wait, in whole seconds.
                let left = (until - now + 999) / 1000;
                return Err(MessengerError::FloodWait(Duration::from_secs(left as u64)));
            }
        }
        if self.dice.roll(rates.flood_wait) {
            let wait =
                if self.dice.roll(rates.flood_wait_long) { self.dice.secs(60, 3600) } else { self.dice.secs(1, 5) };
            self.dice.inject_wait(Fault::flood_wait(method), wait);
            if wait >= Duration::from_secs(60) {
                self.dice.inject(Fault::FloodWaitLong, format!("{}s", wait.as_secs()));
            }
            self.flood_until.insert(method, now + wait.as_millis() as i64);
            return Err(MessengerError::FloodWait(wait));
        }
        Ok(())
    }

    /// `messages.sendMessage`. Refusals are counted; nothing is stored for them.
    pub fn send(
        &mut self,
        cfg: &SimConfig,
        chat: ChatId,
        text: &str,
        reply_to: Option<MessageId>,
        random_id: RandomId,
    ) -> MessengerResult<Sent> {
        // Telegram stores a message without its surrounding whitespace.
        let text = text.trim();
        match self.admit_send(cfg, chat, text, reply_to, random_id) {
            Ok(units) => Ok(self.deliver_send(cfg, chat, text, reply_to, random_id, units)),
            Err(e) => {
                self.refused(false, &e);
                Err(e)
            }
        }
    }

    /// Everything that may refuse a send; returns the text's UTF-16 length.
    fn admit_send(
        &mut self,
        cfg: &SimConfig,
        chat: ChatId,
        text: &str,
        reply_to: Option<MessageId>,
        random_id: RandomId,
    ) -> MessengerResult<usize> {
        self.gate(Method::Send)?;
        if self.faults.flood_sends_left > 0 {
            self.faults.flood_sends_left -= 1;
            return Err(MessengerError::FloodWait(self.faults.flood_wait));
        }
        if self.random_ids.contains_key(&random_id) {
            return Err(MessengerError::RandomIdDuplicate);
        }
        self.chat(chat)?;
        let units = check_text(text)?;
        if let Some(r) = reply_to {
            self.message(chat, r)?;
        }
        self.recipient_allows(chat)?;
        if let Some(error) = self.faults.send_failures.get(&chat) {
            return Err(error.clone());
        }
        if self.is_stranger(cfg, chat) {
            let limit = StrangerLimit {
                quota: cfg.stranger_quota,
                window: cfg.stranger_window,
                penalty: cfg.peer_flood_penalty,
            };
            self.strangers.admit(limit, tribute_assistant::runtime::clock::now_ms())?;
        }
        Ok(units)
    }

    /// A private chat with a user nobody ever wrote in (the bot and our
    /// own saved messages are never strangers).
    fn is_stranger(&self, cfg: &SimConfig, chat: ChatId) -> bool {
        chat > 0
            && chat != cfg.tribute_bot_id
            && chat != cfg.self_id
            && self.chats.get(&chat).is_some_and(|c| !c.talked)
    }

    /// The user's own settings (explicit, or chosen by the plan's seed for
    /// customers): deleted account, blocked us, privacy for strangers.
    fn recipient_allows(&mut self, chat: ChatId) -> MessengerResult<()> {
        let Some(user) = self.users.get(&chat) else { return Ok(()) };
        let fate = if user.customer { self.dice.plan.customer(chat) } else { Default::default() };
        let s = user.settings;
        let deactivated = s.deactivated.unwrap_or(fate.deactivated);
        let blocked = s.blocked.unwrap_or(fate.blocked);
        let privacy = s.privacy.unwrap_or(fate.privacy);
        let they_wrote = self.chats.get(&chat).is_some_and(|c| c.they_wrote);
        let (refusal, planned, fault) = if deactivated {
            (MessengerError::UserDeactivated, s.deactivated.is_none(), Fault::CustomerDeactivated)
        } else if blocked {
            (MessengerError::UserBlocked, s.blocked.is_none(), Fault::CustomerBlocked)
        } else if privacy && !they_wrote {
            (MessengerError::PrivacyRestricted, s.privacy.is_none(), Fault::CustomerPrivacy)
        } else {
            return Ok(());
        };
        if planned && self.fated.insert(chat) {
            self.dice.inject(fault, chat);
        }
        Err(refusal)
    }

    /// Stores our message, lets the bot answer (now, later or never) and
    /// decides whether the answer reaches us.
    fn deliver_send(
        &mut self,
        cfg: &SimConfig,
        chat: ChatId,
        text: &str,
        reply_to: Option<MessageId>,
        random_id: RandomId,
        units: usize,
    ) -> Sent {
        let msg = NewMessage {
            sender_id: Some(cfg.self_id),
            outgoing: true,
            text: text.to_owned(),
            entities: vec![],
            reply_to,
            buttons: vec![],
        };
        let id = self.append(chat, msg, false);
        self.random_ids.insert(random_id, (chat, id));
        self.tally.max_text_utf16 = self.tally.max_text_utf16.max(units);
        let mut late_followup = None;
        if chat == cfg.tribute_bot_id {
            let rates = self.dice.rates();
            let delay = self.faults.button_delay;
            if self.dice.roll(rates.followup_missing) {
                self.dice.inject(Fault::FollowupMissing, id);
            } else if self.dice.roll(rates.followup_late) {
                let late = self.dice.secs(2, rates.followup_late_max_secs.max(2));
                self.dice.inject(Fault::FollowupLate, format!("{id} after {}s", late.as_secs()));
                late_followup = Some((late.max(delay), id));
            } else if delay.is_zero() {
                // Before our call returns, as the real bot's instant answer.
                tribute_bot::answer(self, cfg, id);
            } else {
                late_followup = Some((delay, id));
            }
        }
        let answer = if self.dice.roll(self.dice.rates().send_timeout) {
            self.dice.inject(Fault::SendTimeoutDelivered, format!("{chat}/{id}"));
            Err(MessengerError::Timeout)
        } else {
            Ok(id)
        };
        Sent { answer, late_followup }
    }

    /// `messages.getBotCallbackAnswer`.
    pub fn press(
        &mut self,
        cfg: &SimConfig,
        chat: ChatId,
        message: MessageId,
        data: &[u8],
    ) -> MessengerResult<CallbackAnswer> {
        let result = self.gate(Method::Press).and_then(|()| {
            if data.len() > CALLBACK_DATA_MAX {
                return Err(MessengerError::DataInvalid);
            }
            tribute_bot::press(self, cfg, chat, message, data)
        });
        match result {
            Ok(answer) => {
                if self.dice.roll(self.dice.rates().press_timeout) {
                    self.dice.inject(Fault::PressTimeoutDelivered, format!("{chat}/{message}"));
                    return Err(MessengerError::Timeout);
                }
                Ok(answer)
            }
            Err(e) => {
                self.refused(true, &e);
                Err(e)
            }
        }
    }

    /// The gate of a history read; a refusal is counted.
    fn gate_read(&mut self) -> MessengerResult<()> {
        self.gate(Method::History).inspect_err(|e| {
            *self.tally.refused_reads.entry(super::rules::error_name(e).to_owned()).or_default() += 1;
        })
    }

    /// `messages.getHistory` as the port asks for it.
    pub fn history(&mut self, chat: ChatId, after: MessageId, limit: usize) -> MessengerResult<Vec<Message>> {
        self.gate_read()?;
        Ok(self.chat(chat)?.since(after, limit))
    }

    /// `messages.getDialogs`: one page of the chats (private ones and
    /// groups), newest activity first, after `after`; only private chats are
    /// returned. Limited and faulted like history.
    pub fn recent_private_chats(&mut self, after: Option<DialogsOffset>, limit: usize) -> MessengerResult<DialogsPage> {
        self.gate_read()?;
        let (dialogs, next) = self.dialogs(after, limit);
        Ok(DialogsPage {
            chats: dialogs.into_iter().filter(|d| d.private && d.top > 0).map(|d| (d.chat, d.top)).collect(),
            next,
        })
    }

    /// One page of the dialogs list, the newest top message first (chats
    /// without a message last, top 0), after `after`; and where the next
    /// page starts.
    pub fn dialogs(&self, after: Option<DialogsOffset>, limit: usize) -> (Vec<SimDialog>, Option<DialogsOffset>) {
        let mut dialogs: Vec<(SimDialog, u64)> = self
            .chats
            .iter()
            .map(|(&chat, c)| {
                let date = c.messages.iter().rev().flatten().next().map_or(0, |m| m.date);
                let top = MessageId::try_from(c.messages.len()).unwrap_or(MessageId::MAX);
                (SimDialog { chat, top, date, private: chat > 0 && c.title.is_none() }, c.last_activity)
            })
            .collect();
        // Telegram's order: the newest top message first.
        dialogs.sort_by_key(|(d, activity)| (std::cmp::Reverse(d.date), std::cmp::Reverse(*activity)));
        // The next page starts after the offset's dialog, or (if it has
        // moved up since) at the first dialog older than the offset's date.
        let start = after.map_or(0, |a| {
            dialogs
                .iter()
                .position(|(d, _)| d.chat == a.chat && d.date == a.date)
                .map(|i| i + 1)
                .unwrap_or_else(|| dialogs.iter().position(|(d, _)| d.date < a.date).unwrap_or(dialogs.len()))
        });
        let end = (start + limit.max(1)).min(dialogs.len());
        let page: Vec<SimDialog> = dialogs[start..end].iter().map(|(d, _)| *d).collect();
        let next = (end < dialogs.len())
            .then(|| page.last().map(|d| DialogsOffset { date: d.date, message: d.top, chat: d.chat }))
            .flatten();
        (page, next)
    }

    /// `messages.getMessages`: deleted and unknown ids are left out.
    pub fn get_messages(&mut self, chat: ChatId, ids: &[MessageId]) -> MessengerResult<Vec<Message>> {
        self.gate(Method::GetMessages)?;
        let c = self.chat(chat)?;
        Ok(ids.iter().filter_map(|&id| c.get(id).cloned()).collect())
    }
}
