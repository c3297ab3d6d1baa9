//! Read-only views of the simulated world: for servers that expose it over
//! another protocol (the MTProto test server: who the users are, which
//! chats exist) and for checkers that assert a run broke no rule (what was
//! refused and why, which faults were injected, the longest text accepted).
//! Nothing here changes the world.

use std::collections::BTreeMap;

use super::world::SimWorld;
use tribute_assistant::telegram::{ChatId, DialogsOffset, Message, MessageId, RandomId, UserId};

/// What the world knows about a Telegram user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUserInfo {
    pub id: UserId,
    pub first_name: String,
    pub username: Option<String>,
    pub bot: bool,
}

/// What the world knows about a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimChatInfo {
    pub id: ChatId,
    /// Group title; `None` for private chats.
    pub title: Option<String>,
    /// Number of messages (the highest message id).
    pub len: usize,
}

/// One entry of the dialogs list (`messages.getDialogs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimDialog {
    pub chat: ChatId,
    /// The newest message's id and date (unix s).
    pub top: MessageId,
    pub date: i64,
    /// A private chat (not a group, channel or the bot's chat with itself).
    pub private: bool,
}

impl SimWorld {
    /// A known user (customers, the bot, moderators); `None` for our own
    /// account and unknown ids.
    pub fn user_info(&self, id: UserId) -> Option<SimUserInfo> {
        let st = self.lock();
        st.users.get(&id).map(|u| SimUserInfo {
            id,
            first_name: u.first_name.clone(),
            username: u.username.clone(),
            bot: u.bot,
        })
    }

    /// All known users, in no particular order.
    pub fn users(&self) -> Vec<SimUserInfo> {
        let st = self.lock();
        st.users
            .iter()
            .map(|(&id, u)| SimUserInfo {
                id,
                first_name: u.first_name.clone(),
                username: u.username.clone(),
                bot: u.bot,
            })
            .collect()
    }

    /// A chat of our account, if it exists.
    pub fn chat_info(&self, chat: ChatId) -> Option<SimChatInfo> {
        let st = self.lock();
        st.chats.get(&chat).map(|c| SimChatInfo { id: chat, title: c.title.clone(), len: c.messages.len() })
    }

    /// All chats of our account, in no particular order.
    /// One page of the dialogs list, the newest activity first, after
    /// `after`, and where the next page starts (`None` at the end).
    pub fn dialogs(&self, after: Option<DialogsOffset>, limit: usize) -> (Vec<SimDialog>, Option<DialogsOffset>) {
        self.lock().dialogs(after, limit)
    }

    pub fn chats(&self) -> Vec<SimChatInfo> {
        let st = self.lock();
        st.chats.iter().map(|(&id, c)| SimChatInfo { id, title: c.title.clone(), len: c.messages.len() }).collect()
    }
}

impl SimWorld {
    /// Sends the world refused, by Telegram's error name (`MESSAGE_TOO_LONG`,
    /// `PEER_FLOOD`, `FLOOD_WAIT`, `RANDOM_ID_DUPLICATE`, `DISCONNECTED`…).
    /// Nothing was stored for any of them.
    pub fn refused_sends(&self) -> BTreeMap<String, u64> {
        self.lock().tally.refused_sends.clone()
    }

    /// Button presses the world refused, by Telegram's error name
    /// (`DATA_INVALID`, `BUTTON_GONE` for a removed keyboard, `FLOOD_WAIT`…).
    pub fn refused_presses(&self) -> BTreeMap<String, u64> {
        self.lock().tally.refused_presses.clone()
    }

    /// History and dialogs reads the world refused, by Telegram's error
    /// name (`FLOOD_WAIT`, `DISCONNECTED`…).
    pub fn refused_reads(&self) -> BTreeMap<String, u64> {
        self.lock().tally.refused_reads.clone()
    }

    /// The longest text the world ever accepted from us, in UTF-16 code
    /// units; never more than [`tribute_assistant::telegram::MESSAGE_LENGTH_MAX`].
    pub fn max_text_accepted_utf16(&self) -> usize {
        self.lock().tally.max_text_utf16
    }

    /// Faults the plan injected, by name (see [`super::Fault::as_str`]).
    pub fn faults_injected(&self) -> BTreeMap<String, u64> {
        self.lock().dice.injected().clone()
    }

    /// The injected faults in order, `"name detail"` each (the first
    /// 10,000): two runs with the same seed and calls log the same lines.
    pub fn fault_log(&self) -> Vec<String> {
        self.lock().dice.log().to_vec()
    }

    /// Messages stored in any chat so far, ours and everybody else's: a
    /// cheap sign that something happened.
    pub fn messages_stored(&self) -> u64 {
        self.lock().tally.messages
    }

    /// Messages people sent our account since `since` (unix s): in private
    /// chats (but the bots'), from the chat's person; in `group`, from
    /// anyone but us. What a daemon that lost no update has in its inbox.
    pub fn inbound_since(&self, since: i64, group: ChatId) -> Vec<(ChatId, MessageId)> {
        let st = self.lock();
        let mut out = Vec::new();
        for (&chat, c) in &st.chats {
            let private = chat > 0 && c.title.is_none() && !st.users.get(&chat).is_some_and(|u| u.bot);
            if !private && chat != group {
                continue;
            }
            for m in c.messages.iter().rev().flatten().take_while(|m| m.date >= since) {
                if !m.outgoing && (chat == group || m.sender_id == Some(chat)) {
                    out.push((chat, m.id));
                }
            }
        }
        out
    }

    /// Every time the plan made our account wait (flood waits, the link
    /// down after a disconnect), in the order they were injected.
    pub fn telegram_waits(&self) -> Vec<super::faults::TelegramWait> {
        self.lock().dice.waits().to_vec()
    }

    /// When the first of the waits still running at `now_ms` ends: the
    /// moment the account may call again (waits last an hour at most, so
    /// only the recent end of the record is read).
    pub fn next_wait_end(&self, now_ms: i64) -> Option<i64> {
        let st = self.lock();
        st.dice
            .waits()
            .iter()
            .rev()
            .take_while(|w| w.from_ms > now_ms - 3_600_000 - 1_000)
            .filter(|w| w.until_ms > now_ms)
            .map(|w| w.until_ms)
            .min()
    }

    /// One message as it is now (`None` if unknown or deleted), read past
    /// the fault plan: for servers that serve the world over another
    /// protocol and must not meet a second fault on their own lookups.
    pub fn message(&self, chat: ChatId, id: MessageId) -> Option<Message> {
        self.lock().chats.get(&chat).and_then(|c| c.get(id).cloned())
    }

    /// The message a send with this `random_id` created, if one did.
    pub fn message_for_random_id(&self, random_id: RandomId) -> Option<(ChatId, MessageId)> {
        self.lock().random_ids.get(&random_id).copied()
    }
}

impl SimWorld {
    /// About how many heap bytes the world holds for its chats' histories
    /// and `random_id`s: what the simulated Telegram servers keep, which
    /// grows with every message and is not the daemon's. `simulate` reports
    /// it beside the peak RSS so the daemon's own share can be read off.
    pub fn history_bytes(&self) -> usize {
        use std::mem::size_of;
        let st = self.lock();
        let message = |m: &Message| {
            m.text.capacity()
                + m.entities.capacity() * size_of::<tribute_assistant::telegram::Entity>()
                + m.buttons
                    .iter()
                    .map(|row| {
                        size_of::<Vec<tribute_assistant::telegram::InlineButton>>()
                            + row
                                .iter()
                                .map(|b| {
                                    size_of::<tribute_assistant::telegram::InlineButton>()
                                        + b.text.capacity()
                                        + b.data.capacity()
                                })
                                .sum::<usize>()
                    })
                    .sum::<usize>()
        };
        let chats: usize = st
            .chats
            .values()
            .map(|c| {
                c.messages.capacity() * size_of::<Option<Message>>()
                    + c.messages.iter().flatten().map(message).sum::<usize>()
            })
            .sum();
        chats + st.random_ids.capacity() * (size_of::<RandomId>() + size_of::<(ChatId, MessageId)>() + 1)
    }
}
