//! Messages to customers go out through the store (`customer_outbox`):
//! stored before the first attempt, attempted at once, and retried by the
//! contact task's due work with backoff when Telegram could not take them.
//! Every attempt, in this process or after a restart, uses the message's
//! one `random_id`, and an attempt after a lost answer first looks in the
//! chat, so a customer gets a message at most once.

use std::time::Duration;

use tracing::{info, info_span, warn, Instrument};

use super::escalate::OnCase;
use super::{Contact, ContactError, Sent};
use crate::domain::{Author, EscalationReason, OrderState, Verdict};
use crate::runtime::backoff::{self, Jitter};
use crate::runtime::clock::{self, now_ms};
use crate::store::{ConversationRecord, NewCustomerMessage, PendingCustomerMessage, Undelivered};
use crate::telegram::send_once::{send_once, Once, OnceError};
use crate::telegram::{history, MessageId, MessengerError};

type Result<T> = std::result::Result<T, ContactError>;

/// A message that has not gone through this long after it was written is
/// given up (and its orders handed to a moderator): a reminder or an answer
/// that late would confuse more than help.
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(6 * 3600);

/// Retry delays double from the first to the cap (plus jitter).
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(300);

/// How far back a look for a message that may have gone out reads.
const HISTORY_PAGES: usize = 10;

/// Waiting messages one sweep attempts at most (the rest wait one tick).
const SWEEP_BATCH: i64 = 50;

impl Contact {
    /// Writes to the customer: the message is counted against the daily cap
    /// and stored, then attempted once now. `Sent::Queued` means it stays
    /// in the store and goes out when Telegram lets it.
    pub async fn send(
        &self,
        conv: &ConversationRecord,
        text: &str,
        author: Author,
        author_id: Option<i64>,
        template: Option<&str>,
        order_ids: &[i64],
    ) -> Result<Sent> {
        let day = clock::day(now_ms());
        if !self.store.take_daily_message(conv.customer_id, &day, self.cfg.max_messages_per_day).await? {
            warn!(customer = conv.customer_id, cap = self.cfg.max_messages_per_day, "daily message cap reached");
            return Ok(Sent::CapReached);
        }
        let message = NewCustomerMessage {
            conversation_id: conv.id,
            customer_id: conv.customer_id,
            text: text.to_owned(),
            author,
            author_id,
            template: template.map(str::to_owned),
            order_ids: order_ids.to_vec(),
        };
        let pending = self.store.enqueue_customer_message(&message, &day).await?;
        self.attempt(&pending).await
    }

    /// The sweep: attempts every waiting message that is due; one that
    /// ends undelivered hands its orders (or its question) to a moderator.
    pub async fn deliver_due(&self) -> Result<()> {
        for p in self.store.due_customer_messages(now_ms(), SWEEP_BATCH).await? {
            let span = info_span!("customer_message", customer = p.message.customer_id, outbox = p.id);
            let sent = self.attempt(&p).instrument(span).await?;
            match sent {
                Sent::Delivered(_) => {
                    info!(customer = p.message.customer_id, attempts = p.attempts + 1, "delivered a waiting message")
                }
                Sent::Queued(_) => {}
                other => self.undelivered(&p, other).await?,
            }
        }
        Ok(())
    }

    /// One attempt at a waiting message.
    async fn attempt(&self, p: &PendingCustomerMessage) -> Result<Sent> {
        let now = now_ms();
        let chat = p.message.customer_id;
        if now - p.created_at > MESSAGE_DEADLINE.as_millis() as i64 {
            let why = format!("not delivered within {} h", MESSAGE_DEADLINE.as_secs() / 3600);
            warn!(customer = chat, attempts = p.attempts, "{why}; giving the message up");
            self.store.customer_message_undelivered(p.id, Undelivered::Expired, &why).await?;
            return Ok(Sent::Expired);
        }
        if self.obsolete(p).await? {
            info!(customer = chat, template = ?p.message.template, "dropped a waiting question: no order waits for its answer");
            self.store.customer_message_undelivered(p.id, Undelivered::Obsolete, "no order waits for it").await?;
            return Ok(Sent::Expired);
        }
        let day = clock::day(now);
        if day != p.cap_day {
            // Counted again on the day it goes out, so no day ever sees more than the cap.
            if !self.store.take_daily_message(chat, &day, self.cfg.max_messages_per_day).await? {
                self.store.customer_message_undelivered(p.id, Undelivered::Refused, "daily cap reached").await?;
                return Ok(Sent::CapReached);
            }
            self.store.recount_customer_message(p.id, &day).await?;
        }
        // A history that cannot be read now only leaves the id unknown.
        let look = || async { Ok(self.find_delivered(p).await) };
        let send = || self.messenger.send_message(chat, &p.message.text, None, p.random_id);
        match send_once(p.maybe_sent, send, look).await.map_err(OnceError::into_inner) {
            Ok(Once::Sent(id) | Once::Earlier(id)) => self.delivered(p, Some(id)).await,
            Ok(Once::Duplicate(id)) => {
                // An earlier attempt got through: Telegram says so. Its id
                // comes from the history when that can be read now.
                if id.is_none() {
                    info!(customer = chat, "Telegram already has the message; its id is not known");
                }
                self.delivered(p, id).await
            }
            Err(e @ (MessengerError::Timeout | MessengerError::Disconnected)) => {
                // Maybe delivered: the answer was lost.
                if let Some(id) = self.find_delivered(p).await {
                    return self.delivered(p, Some(id)).await;
                }
                self.retry(p, e, true).await
            }
            Err(e) if e.is_transient() => self.retry(p, e, false).await,
            Err(e) => {
                warn!(customer = chat, error = %e, "Telegram refused our message to the customer");
                self.store.customer_message_undelivered(p.id, Undelivered::Refused, &e.to_string()).await?;
                Ok(Sent::Unreachable(e))
            }
        }
    }

    /// A waiting question for an account ID whose orders all moved on (a
    /// moderator took them, the customer answered meanwhile): sending it
    /// late would only confuse.
    async fn obsolete(&self, p: &PendingCustomerMessage) -> Result<bool> {
        const ASKS_FOR_ACCOUNT: [&str; 6] = [
            "ask_account",
            "reminder",
            "id_rejected",
            "ask_again_several",
            "ask_again_none",
            "ask_again_none_forwarded",
        ];
        if p.attempts == 0 || !p.message.template.as_deref().is_some_and(|t| ASKS_FOR_ACCOUNT.contains(&t)) {
            return Ok(false);
        }
        for &id in &p.message.order_ids {
            if self.store.order(id).await?.state == OrderState::NeedsCustomer {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn delivered(&self, p: &PendingCustomerMessage, id: Option<MessageId>) -> Result<Sent> {
        self.store.customer_message_sent(p, id).await?;
        Ok(Sent::Delivered(id))
    }

    async fn retry(&self, p: &PendingCustomerMessage, e: MessengerError, maybe_sent: bool) -> Result<Sent> {
        let backoff = backoff::delay(p.attempts, RETRY_FIRST, RETRY_CAP, Jitter::None);
        let wait = match e {
            MessengerError::FloodWait(flood) => backoff.max(flood),
            _ => backoff,
        };
        let due = now_ms() + Jitter::Later.apply(wait).as_millis() as i64;
        warn!(customer = p.message.customer_id, error = %e, retry_in_ms = due - now_ms(), "message to the customer not delivered yet");
        self.store.retry_customer_message(p.id, due, &e.to_string(), maybe_sent).await?;
        Ok(Sent::Queued(e))
    }

    /// Our message with this text in the customer's chat after the last
    /// one stored for the conversation, if Telegram has it.
    async fn find_delivered(&self, p: &PendingCustomerMessage) -> Option<MessageId> {
        let chat = p.message.customer_id;
        let after = self.store.last_conversation_message_id(p.message.conversation_id, chat).await.ok()?;
        history::find_sent(self.messenger.as_ref(), chat, &p.message.text, after, HISTORY_PAGES).await.ok()?
    }

    /// A message the sweep could not deliver: its orders go to a
    /// moderator; a moderator's or the agent's words go to their case.
    async fn undelivered(&self, p: &PendingCustomerMessage, sent: Sent) -> Result<()> {
        let conv = self.store.conversation(p.message.conversation_id).await?;
        if !p.message.order_ids.is_empty() {
            self.escalate_after_send(&conv, &p.message.order_ids, sent.clone()).await?;
        }
        if matches!(p.message.author, Author::Moderator | Author::Agent) {
            let why = self.undelivered_reason(&sent).map_or_else(|| format!("{sent:?}"), |(_, detail)| detail);
            let text = &p.message.text;
            let name = &conv.customer_name;
            let update =
                |case: &str| format!("⚠️ {case}: our message to {name} could not be delivered ({why}):\n{text}");
            let verdict = Verdict::because(format!("our answer could not be delivered: {why}"));
            self.escalate_question(&conv, OnCase::Notice(&update), &verdict, false).await?;
        }
        Ok(())
    }

    /// The reason a moderator reads for a message that did not go out.
    pub(super) fn undelivered_reason(&self, sent: &Sent) -> Option<(EscalationReason, String)> {
        match sent {
            Sent::CapReached => Some((
                EscalationReason::MessageCapReached,
                format!("{} messages a day to one customer", self.cfg.max_messages_per_day),
            )),
            Sent::Unreachable(e) => Some((EscalationReason::CustomerUnreachable, super::unreachable_reason(e))),
            Sent::Expired => Some((
                EscalationReason::CustomerUnreachable,
                format!("our message was not delivered within {} h", MESSAGE_DEADLINE.as_secs() / 3600),
            )),
            Sent::Delivered(_) | Sent::Queued(_) => None,
        }
    }
}
