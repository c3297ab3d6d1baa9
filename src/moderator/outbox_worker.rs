//! Posting the moderator outbox: every due row on its own, oldest first.
//!
//! Why each row on its own: one card Telegram refuses (too long, a chat that
//! is gone) must never hold back the cards behind it, escalated orders
//! above all, and a card that fails for a while must not be hammered every
//! second. So a row that fails is retried with exponential backoff and
//! jitter (1 s doubling to 30 s; after a flood wait, as soon as it is
//! over: a case, or the answer a moderator waits for, must reach a person
//! soon after Telegram lets us write again), a row Telegram
//! refuses for good is parked with the error for a person, and the pass
//! moves on.
//!
//! Every attempt at one row uses the row's stored `random_id`: if a send
//! timed out but was delivered, the retry is refused with
//! `RANDOM_ID_DUPLICATE`, which counts as posted. The message is then looked
//! up in the chat history (our outgoing message with the same text after
//! the newest message posted before the row existed) so replies to it still
//! find the case; if it is not found (or the history cannot be read for
//! a few attempts: the card is in the chat all the same) the row is marked
//! posted without a message id and a warning says that replies to that card
//! will not reach its case (`/case` still works).
//!
//! Cards are rendered here from the store ([`render::card`]: the row holds a
//! typed escalation) once, for their first attempt, and the text is kept on
//! the row ([`Store::keep_card_text`]): every attempt sends exactly that
//! text, so a card Telegram says it already has is found in the chat by it,
//! not by a part of it. What happened to the case after that first attempt
//! reaches the chat as follow-ups. Every text is sized here
//! ([`sizing::fit`]): whatever produced a row, what is sent is at most 4096
//! UTF-16 units.

use std::collections::HashMap;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::cards::View;
use super::{render, sizing};
use crate::runtime::backoff::{self, Jitter};
use crate::runtime::clock::now_ms;
use crate::store::{short_id, CardBody, OutboxCard, Store, StoreError, StoreResult};
use crate::telegram::send_once::{send_once, Once, OnceError, SendFailure};
use crate::telegram::{history, ChatId, MessageId, Messenger, MessengerError, RandomId};

/// First retry delay after a failed attempt.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Longest delay between two attempts at one row.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Attempts at finding a card Telegram says is posted before it is marked
/// posted without its message id.
const LOOKUP_ATTEMPTS: u32 = 3;
/// Unknown Telegram errors are retried this many times, then the row is parked.
const MAX_UNKNOWN_ATTEMPTS: u32 = 5;
/// How far back the history is searched for a card Telegram says was already sent.
const SEARCH_PAGES: usize = 10;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostReport {
    /// Rows now in the chat (including ones Telegram said were already sent).
    pub posted: usize,
    /// Rows that failed for now and are due again later.
    pub retrying: usize,
    /// Rows refused for good in this pass.
    pub parked: usize,
    /// Rows not tried in this pass (a follow-up waiting for its card; the
    /// rest of a pass stopped by a flood wait).
    pub deferred: usize,
}

/// How the desk treats a failed send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Retry this row after the delay; `global` when the whole account is
    /// affected (flood wait, disconnected), so the pass stops.
    Retry { after: Duration, global: bool },
    /// Never send this row again.
    Park,
}

/// Delay after failed attempt number `attempt` (1-based): equal jitter,
/// half of `min(BACKOFF_MAX, BACKOFF_INITIAL · 2^(attempt−1))` plus a random
/// part of up to the other half, so rows failing together spread out.
pub fn backoff(attempt: u32) -> Duration {
    backoff::delay(attempt.saturating_sub(1), BACKOFF_INITIAL, BACKOFF_MAX, Jitter::Equal)
}

/// Classifies a send error for a row that has failed `attempt` times now.
pub fn classify(e: &MessengerError, attempt: u32) -> Failure {
    use MessengerError as E;
    match e {
        // Telegram said when: waiting longer only makes the moderators wait.
        E::FloodWait(wait) => {
            Failure::Retry { after: *wait + Duration::from_millis(fastrand::u64(0..=1000)), global: true }
        }
        E::Disconnected | E::Closed => Failure::Retry { after: backoff(attempt), global: true },
        E::Timeout => Failure::Retry { after: backoff(attempt), global: false },
        E::Other(_) if attempt < MAX_UNKNOWN_ATTEMPTS => Failure::Retry { after: backoff(attempt), global: false },
        _ => Failure::Park,
    }
}

/// Posts every due outbox row to `chat`, oldest first, each on its own (see
/// the module docs). Only store errors end a pass early with an error;
/// Telegram's errors are recorded on their rows.
pub async fn post_due(store: &Store, messenger: &dyn Messenger, chat: ChatId) -> StoreResult<PostReport> {
    let mut report = PostReport::default();
    let due = store.due_cards(now_ms()).await?;
    // Cards posted in this pass (the rows were read before): their follow-ups answer them.
    let mut posted_now: HashMap<i64, MessageId> = HashMap::new();
    let mut rows = due.iter();
    while let Some(row) = rows.next() {
        let card_now = row.case_id.and_then(|c| posted_now.get(&c).copied()).filter(|_| row.is_update());
        if let (true, None, Some(until)) = (row.is_update(), card_now, row.card_pending_until) {
            // A follow-up answers its card: it waits until the card is posted (or parked).
            store.defer_card(row.id, until.max(now_ms() + 1000)).await?;
            debug!(card = row.id, case = %label(row), "follow-up waits for its case's card");
            report.deferred += 1;
            continue;
        }
        match post_row(store, messenger, chat, row, card_now).await? {
            Outcome::Posted(id) => {
                if let (Some(c), Some(id), true) = (row.case_id, id, row.is_card()) {
                    posted_now.insert(c, id);
                }
                report.posted += 1;
            }
            Outcome::Parked => report.parked += 1,
            Outcome::Retrying { stop_pass: None } => report.retrying += 1,
            Outcome::Retrying { stop_pass: Some(resume) } => {
                report.retrying += 1;
                for rest in rows.by_ref() {
                    store.defer_card(rest.id, resume).await?;
                    report.deferred += 1;
                }
            }
        }
    }
    Ok(report)
}

/// What became of one row.
enum Outcome {
    /// In the chat (its message id, when known).
    Posted(Option<MessageId>),
    /// Due again later; `stop_pass`: the whole account is affected (flood
    /// wait, disconnected), the rest of the pass waits until then.
    Retrying {
        stop_pass: Option<i64>,
    },
    Parked,
}

fn label(row: &OutboxCard) -> String {
    row.case_id.map(short_id).unwrap_or_else(|| format!("row {}", row.id))
}

/// Sends one row, sized to Telegram, and records what happened to it.
async fn post_row(
    store: &Store,
    messenger: &dyn Messenger,
    chat: ChatId,
    row: &OutboxCard,
    card_now: Option<MessageId>,
) -> StoreResult<Outcome> {
    let case = row.case_id.map(short_id);
    let label = label(row);
    let whole = match row_text(store, row).await {
        Ok(text) => text,
        // Its facts cannot be read back: a person has to look, the rows behind it go on.
        Err(StoreError::Corrupt(e)) => {
            store.park_card(row.id, &format!("cannot render the card: {e}")).await?;
            warn!(card = row.id, case = %label, error = %e, "cannot render the card; parked");
            return Ok(Outcome::Parked);
        }
        Err(e) => return Err(e),
    };
    let text = sizing::fit(&whole, case.as_deref());
    if text.len() != whole.len() {
        let units = sizing::utf16_len(&whole);
        info!(card = row.id, case = %label, units, "over Telegram's 4096 UTF-16 units; posting it cut");
    }
    let reply_to = row.reply_to.filter(|(c, _)| *c == chat).map(|(_, m)| m).or(card_now);
    let look = || async {
        info!(card = row.id, case = %label, "Telegram already has it (an earlier attempt went through); looking it up");
        let after = store.outbox_search_anchor(row.id, chat).await.map_err(PostError::Store)?;
        find_posted(messenger, chat, &text, after).await.map_err(PostError::Telegram)
    };
    let sent = send_once(false, || send(messenger, chat, &text, reply_to, row), look).await;
    // A failed history look-up holds only this row: sends may go on.
    let (e, lookup) = match sent {
        Ok(Once::Sent(id) | Once::Earlier(id)) => {
            store.mark_card_posted(row.id, chat, id).await?;
            info!(card = row.id, case = %label, reason = %row.reason, message = id, "posted to the moderator chat");
            return Ok(Outcome::Posted(Some(id)));
        }
        Ok(Once::Duplicate(Some(id))) => {
            store.mark_card_posted(row.id, chat, id).await?;
            info!(card = row.id, case = %label, message = id, "found in the chat; marked posted");
            return Ok(Outcome::Posted(Some(id)));
        }
        Err(OnceError::Send(PostError::Store(e)) | OnceError::Look(PostError::Store(e))) => return Err(e),
        Err(OnceError::Send(PostError::Telegram(e))) => (e, false),
        // The history cannot be read now: look again on the next attempt.
        Err(OnceError::Look(PostError::Telegram(e))) if e.is_transient() && row.attempts + 1 < LOOKUP_ATTEMPTS => {
            (e, true)
        }
        found @ (Ok(Once::Duplicate(None)) | Err(OnceError::Look(PostError::Telegram(_)))) => {
            if let Err(OnceError::Look(PostError::Telegram(e))) = found {
                warn!(card = row.id, case = %label, error = %e, "could not read the moderator chat history");
            }
            store.mark_card_posted_unmapped(row.id, chat).await?;
            warn!(
                card = row.id, case = %label,
                "Telegram says it was already posted but it is not in the recent history; marked posted \
                 without a message id: replies to it will not reach the case (/case {label} works)"
            );
            return Ok(Outcome::Posted(None));
        }
    };
    let attempt = row.attempts + 1;
    match classify(&e, attempt) {
        Failure::Retry { after, global } => {
            let at = now_ms() + after.as_millis() as i64;
            store.retry_card_later(row.id, &e.to_string(), at).await?;
            warn!(
                card = row.id, case = %label, attempt, error = %e, retry_in = ?after,
                "could not post to the moderator chat; will retry"
            );
            let stop_pass = (global && !lookup).then(|| match e {
                MessengerError::FloodWait(wait) => now_ms() + wait.as_millis() as i64,
                _ => now_ms(),
            });
            Ok(Outcome::Retrying { stop_pass })
        }
        Failure::Park => {
            store.park_card(row.id, &e.to_string()).await?;
            warn!(
                card = row.id, case = %label, attempt, error = %e,
                "Telegram refused it for good; parked (not retried), moving on to the next"
            );
            if row.is_card() {
                post_notice(store, messenger, chat, row, &text, &e).await?;
            }
            Ok(Outcome::Parked)
        }
    }
}

/// A case whose card Telegram refused must still reach a person: one short
/// notice (the card's first line, the error, where the case is) is posted
/// in its place and mapped to the case, so replies to it act on the case.
/// Tried once; a failure is only logged (the card stays parked).
async fn post_notice(
    store: &Store,
    messenger: &dyn Messenger,
    chat: ChatId,
    card: &OutboxCard,
    text: &str,
    error: &MessengerError,
) -> StoreResult<()> {
    let Some(case_id) = card.case_id else { return Ok(()) };
    let case = short_id(case_id);
    let first = sizing::cut_to(text.lines().next().unwrap_or_default(), 300, None);
    let text = format!(
        "⚠️ {first}\nTelegram refused this case's card ({error}). The case is stored whole: \
         /case {case} shows it; reply to this message to act on it."
    );
    match messenger.send_message(chat, &text, None, RandomId::fresh()).await {
        Ok(id) => {
            store.map_case_message(chat, id, case_id).await?;
            info!(card = card.id, case = %case, message = id, "posted a notice in place of the refused card");
        }
        Err(e) => {
            warn!(card = card.id, case = %case, error = %e, "could not post a notice for the refused card either")
        }
    }
    Ok(())
}

/// The text of a row: a follow-up (or a card stored as text before
/// migration 0011) as stored, a card rendered now from the store.
async fn row_text(store: &Store, row: &OutboxCard) -> StoreResult<String> {
    let escalation = match (&row.body, &row.rendered) {
        (CardBody::Text(text), _) | (CardBody::Escalation(_), Some(text)) => return Ok(text.clone()),
        (CardBody::Escalation(e), None) => e,
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("outbox row {}: {what}", row.id));
    let case_id = row.case_id.ok_or_else(|| corrupt("a card without a case"))?;
    let case = store.case(case_id).await?.ok_or_else(|| corrupt("its case is not stored"))?;
    let text = render::card(store, &case, escalation, View::Card).await?;
    store.keep_card_text(row.id, &text).await?;
    Ok(text)
}

/// Why posting a row stopped: the store (the pass ends) or Telegram (the
/// row's own failure).
enum PostError {
    Store(StoreError),
    Telegram(MessengerError),
}

impl SendFailure for PostError {
    fn is_duplicate(&self) -> bool {
        matches!(self, PostError::Telegram(e) if e.is_duplicate())
    }
}

/// One row's send with its stored `random_id`.
async fn send(
    messenger: &dyn Messenger,
    chat: ChatId,
    text: &str,
    reply_to: Option<MessageId>,
    card: &OutboxCard,
) -> Result<MessageId, PostError> {
    let random_id = RandomId(card.random_id);
    let sent = match messenger.send_message(chat, text, reply_to, random_id).await {
        // The card this follow-up answers is gone: post it on its own.
        Err(MessengerError::MessageNotFound(c, m)) if c == chat && Some(m) == reply_to => {
            warn!(
                card = card.id,
                card_message = m,
                "the case's card is gone from the chat; posting the follow-up on its own"
            );
            messenger.send_message(chat, text, None, random_id).await
        }
        other => other,
    };
    sent.map_err(PostError::Telegram)
}

/// Our message with exactly `text` in the chat after message `after` (the
/// newest one posted before the row was stored), looking at up to
/// `SEARCH_PAGES` pages of history.
async fn find_posted(
    messenger: &dyn Messenger,
    chat: ChatId,
    text: &str,
    after: MessageId,
) -> Result<Option<MessageId>, MessengerError> {
    // Telegram trims a message's surrounding whitespace.
    history::find(messenger, chat, after, SEARCH_PAGES, |m| m.outgoing && m.text.trim() == text.trim()).await
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::domain::{
        AccountId, Author, Currency, Direction, EscalationReason, Language, Money, OrderRef, OrderState,
    };
    use crate::runtime::clock::paused::PausedClock;
    use crate::store::{CardBody, Escalation, MessageKind, NewConversationMessage, NewOrder, Recorded, Transition};
    use crate::telegram::{CallbackAnswer, DialogsOffset, DialogsPage, Event, Message, MessengerResult, UserId};

    const CHAT: ChatId = -100;

    /// A moderator chat that refuses what Telegram refuses (over 4096
    /// units, a reused random_id) and fails sends on request; a `Timeout`
    /// fault can be "delivered but the answer lost".
    #[derive(Default)]
    struct Chat {
        state: Mutex<ChatState>,
    }

    #[derive(Default)]
    struct ChatState {
        messages: Vec<Message>,
        seen: HashMap<i64, MessageId>,
        /// Errors for the next sends, in order; `(error, delivered anyway)`.
        faults: VecDeque<(MessengerError, bool)>,
        /// Sends whose text contains this fail with the error.
        refuse: Vec<(String, MessengerError)>,
        /// Errors for the next history reads.
        history_faults: VecDeque<MessengerError>,
        attempts: usize,
    }

    impl Chat {
        fn fault(&self, e: MessengerError, delivered: bool) {
            self.state.lock().unwrap().faults.push_back((e, delivered));
        }
        fn refuse(&self, needle: &str, e: MessengerError) {
            self.state.lock().unwrap().refuse.push((needle.into(), e));
        }
        fn texts(&self) -> Vec<String> {
            self.state.lock().unwrap().messages.iter().map(|m| m.text.clone()).collect()
        }
    }

    #[async_trait::async_trait]
    impl Messenger for Chat {
        fn self_id(&self) -> UserId {
            1
        }
        async fn next_event(&self) -> MessengerResult<Event> {
            Err(MessengerError::Closed)
        }
        async fn send_message(
            &self,
            chat: ChatId,
            text: &str,
            reply_to: Option<MessageId>,
            random_id: RandomId,
        ) -> MessengerResult<MessageId> {
            let mut st = self.state.lock().unwrap();
            st.attempts += 1;
            if chat != CHAT {
                return Err(MessengerError::ChatNotFound(chat));
            }
            if st.seen.contains_key(&random_id.0) {
                return Err(MessengerError::RandomIdDuplicate);
            }
            if sizing::utf16_len(text) > sizing::TELEGRAM_LIMIT {
                return Err(MessengerError::MessageTooLong);
            }
            if let Some((_, e)) = st.refuse.iter().find(|(n, _)| text.contains(n.as_str())) {
                return Err(e.clone());
            }
            let fault = st.faults.pop_front();
            if let Some((e, false)) = fault {
                return Err(e);
            }
            let id = st.messages.len() as MessageId + 1;
            st.messages.push(Message {
                chat_id: chat,
                id,
                sender_id: Some(1),
                outgoing: true,
                sender_is_bot: false,
                date: 0,
                text: text.into(),
                entities: vec![],
                reply_to,
                buttons: vec![],
            });
            st.seen.insert(random_id.0, id);
            match fault {
                Some((e, true)) => Err(e),
                _ => Ok(id),
            }
        }
        async fn press_button(&self, _: ChatId, m: MessageId, _: &[u8]) -> MessengerResult<CallbackAnswer> {
            Err(MessengerError::ButtonNotFound(m))
        }
        async fn history_since(&self, _: ChatId, after: MessageId, limit: usize) -> MessengerResult<Vec<Message>> {
            let mut st = self.state.lock().unwrap();
            if let Some(e) = st.history_faults.pop_front() {
                return Err(e);
            }
            Ok(st.messages.iter().filter(|m| m.id > after).take(limit).cloned().collect())
        }
        async fn get_messages(&self, _: ChatId, ids: &[MessageId]) -> MessengerResult<Vec<Message>> {
            let st = self.state.lock().unwrap();
            Ok(st.messages.iter().filter(|m| ids.contains(&m.id)).cloned().collect())
        }
        async fn recent_private_chats(&self, _: Option<DialogsOffset>, _: usize) -> MessengerResult<DialogsPage> {
            Ok(DialogsPage::default())
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    /// A customer message in conversation `conv`.
    async fn said(store: &Store, conv: i64, text: &str) {
        let m = NewConversationMessage {
            conversation_id: conv,
            at: now_ms(),
            direction: Direction::In,
            author: Author::Customer,
            author_id: None,
            text: text.into(),
            template: None,
            telegram: None,
            order_ids: vec![],
        };
        store.record_conversation_message(&m).await.unwrap();
    }

    /// A question case of a customer who wrote `text`; returns the case id.
    async fn case(store: &Store, customer: i64, text: &str) -> i64 {
        let conv = store.open_conversation(customer, "Иван", Language::Ru, now_ms()).await.unwrap();
        said(store, conv.id, text).await;
        store
            .open_case(&Escalation::question(conv.id, &crate::domain::Verdict::because("the agent had no answer")))
            .await
            .unwrap()
    }

    /// An order whose raw Tribute text has `details`, escalated the way the
    /// workflow does it; returns (order id, case id).
    async fn order_case(store: &Store, message_id: i32, details: &str) -> (i64, i64) {
        let text = format!("🆕 Custom Product Order\nProduct: 100 Diamonds\nPrice: €5.00\nOrder Details: {details}");
        let msg = Message {
            chat_id: 777,
            id: message_id,
            sender_id: Some(777),
            outgoing: false,
            sender_is_bot: true,
            date: 0,
            text,
            entities: vec![],
            reply_to: None,
            buttons: vec![],
        };
        let order = NewOrder {
            order_ref: OrderRef::for_message(777, message_id),
            customer_name: "Иван".into(),
            customer_id: Some(7),
            customer_username: None,
            product: "100 Diamonds".into(),
            price: Money::new(500, Currency::Eur).unwrap(),
            details: details.into(),
            account_candidates: vec![AccountId::parse("123456").unwrap()],
        };
        let Recorded::NewOrder(id) =
            store.record_tribute_message(&msg, MessageKind::Order, None, Some(&order), None).await.unwrap()
        else {
            panic!("no order")
        };
        let mut t = Transition::to(OrderState::Escalated, "rejected");
        t.escalation = Some(Escalation::order(id, EscalationReason::BackendRejected, "HTTP 400: bad product"));
        store.transition(id, OrderState::Received, t).await.unwrap();
        (id, store.open_case_for_order(id).await.unwrap().unwrap().id)
    }

    fn row<'a>(rows: &'a [OutboxCard], case: i64, kind: &str) -> &'a OutboxCard {
        rows.iter().find(|r| r.case_id == Some(case) && r.kind == kind).unwrap()
    }

    #[tokio::test]
    async fn an_escalation_stores_no_text_and_the_posted_card_shows_the_order() {
        let (_d, store) = store().await;
        let chat = Chat::default();
        let (order, case) = order_case(&store, 5, "my ID 123456, please hurry").await;
        let card = store.card_of_case(case).await.unwrap().unwrap();
        let stored = Escalation::order(order, EscalationReason::BackendRejected, "HTTP 400: bad product");
        assert_eq!(card.body, CardBody::Escalation(stored), "typed, no text");
        assert_eq!(post_due(&store, &chat, CHAT).await.unwrap().posted, 1);
        let text = &chat.texts()[0];
        assert!(text.starts_with(&format!("🚨 Case C{case} · order TA-")), "{text}");
        for fact in [
            "Why: the backend rejected the activation request as invalid (HTTP 400: bad product)",
            "Product: 100 Diamonds",
            "Price: €5.00",
            "Account ID: 123456",
            "Raw order:\n🆕 Custom Product Order",
            "Order Details: my ID 123456, please hurry",
            "Reply to this message with:",
        ] {
            assert!(text.contains(fact), "{fact:?} missing from {text}");
        }
    }

    #[tokio::test]
    async fn a_question_card_shows_the_conversation() {
        let (_d, store) = store().await;
        let chat = Chat::default();
        let c = case(&store, 11, "Когда придут алмазы?").await;
        assert_eq!(post_due(&store, &chat, CHAT).await.unwrap().posted, 1);
        let text = &chat.texts()[0];
        assert!(text.starts_with(&format!("❓ Case C{c} · a question from Иван (tg://user?id=11)")), "{text}");
        assert!(text.contains("Why: the customer asked a question (the agent had no answer)"), "{text}");
        assert!(text.contains("Conversation so far:\n") && text.contains("← customer: Когда придут алмазы?"), "{text}");
    }

    #[tokio::test]
    async fn a_too_long_card_is_posted_cut_and_the_cards_behind_it_too() {
        let (_d, store) = store().await;
        let chat = Chat::default();
        let (_, long) = order_case(&store, 5, &"ы".repeat(5000)).await;
        let next = case(&store, 12, "а где заказ?").await;
        let report = post_due(&store, &chat, CHAT).await.unwrap();
        assert_eq!(report, PostReport { posted: 2, ..Default::default() });
        let texts = chat.texts();
        assert!(sizing::utf16_len(&texts[0]) <= sizing::TELEGRAM_LIMIT);
        assert!(texts[0].contains(&format!("/case C{long} shows all]")), "{}", &texts[0][texts[0].len() - 200..]);
        assert!(texts[0].contains("Product: 100 Diamonds"), "the short lines stay whole");
        assert!(texts[0].ends_with("/note <text> (internal)"), "what to do is kept");
        assert!(texts[1].starts_with(&format!("❓ Case C{next} ·")), "{}", texts[1]);
        // The whole case is rendered for `/case`; replies to the posted card find its case.
        let case = store.case(long).await.unwrap().unwrap();
        assert_eq!(render::case_text(&store, &case).await.unwrap().matches('ы').count(), 5000);
        assert_eq!(store.case_for_message(CHAT, 1).await.unwrap().unwrap().id, long);
        assert!(store.pending_cards().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_card_refused_for_good_is_parked_and_the_next_one_posted() {
        let (_d, store) = store().await;
        let chat = Chat::default();
        chat.refuse("poison", MessengerError::Other("ENTITY_BOUNDS_INVALID".into()));
        let bad = case(&store, 11, "poison").await;
        let good = case(&store, 12, "fine").await;
        // An unknown error is retried a few times, then parked; a known permanent one at once.
        chat.refuse("worse", MessengerError::MessageEmpty);
        let worse = case(&store, 13, "worse").await;
        let r = post_due(&store, &chat, CHAT).await.unwrap();
        assert_eq!((r.posted, r.retrying, r.parked), (1, 1, 1));
        assert!(chat.texts()[0].starts_with(&format!("❓ Case C{good} ·")) && chat.texts()[0].contains("fine"));
        let notice = &chat.texts()[1];
        let first = format!("⚠️ ❓ Case C{worse} · a question from Иван (tg://user?id=13)\nTelegram refused");
        assert!(notice.starts_with(&first), "{notice}");
        assert_eq!(
            store.case_for_message(CHAT, 2).await.unwrap().unwrap().id,
            worse,
            "replies to the notice reach the case"
        );
        let parked = store.parked_cards().await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].case_id, Some(worse));
        assert!(parked[0].last_error.as_deref().unwrap().contains("MESSAGE_EMPTY"));
        let pending = store.pending_cards().await.unwrap();
        assert_eq!((pending.len(), pending[0].case_id, pending[0].attempts), (1, Some(bad), 1));
        assert!(pending[0].next_attempt_at > now_ms(), "not retried at once");
        assert!(store.due_cards(now_ms()).await.unwrap().is_empty());
        assert_eq!(post_due(&store, &chat, CHAT).await.unwrap(), PostReport::default(), "nothing due");
    }

    #[tokio::test]
    async fn flood_waits_and_failures_back_off() {
        let (_d, store) = store().await;
        let _clock = PausedClock::start();
        let chat = Chat::default();
        let a = case(&store, 11, "a").await;
        let b = case(&store, 12, "b").await;
        chat.fault(MessengerError::FloodWait(Duration::from_secs(30)), false);
        let t0 = now_ms();
        let r = post_due(&store, &chat, CHAT).await.unwrap();
        assert_eq!((r.posted, r.retrying, r.deferred), (0, 1, 1), "a flood wait stops the pass");
        assert_eq!(chat.state.lock().unwrap().attempts, 1, "nothing else is sent during a flood wait");
        let rows = store.pending_cards().await.unwrap();
        assert!(row(&rows, a, "card").next_attempt_at >= t0 + 30_000);
        assert_eq!(row(&rows, a, "card").attempts, 1);
        assert!(row(&rows, b, "card").next_attempt_at >= t0 + 30_000);
        assert_eq!(row(&rows, b, "card").attempts, 0, "deferred, not failed");
        assert_eq!(
            store.next_outbox_due().await.unwrap(),
            Some(row(&rows, a, "card").next_attempt_at.min(row(&rows, b, "card").next_attempt_at))
        );

        tokio::time::advance(Duration::from_secs(31)).await;
        // Timeouts without delivery: each retry waits about twice as long, up to the cap.
        let mut last_gap = 0;
        for attempt in 2..=4 {
            chat.fault(MessengerError::Timeout, false);
            chat.fault(MessengerError::Timeout, false);
            let rows = store.pending_cards().await.unwrap();
            let due = rows.iter().map(|r| r.next_attempt_at).max().unwrap();
            tokio::time::advance(Duration::from_millis((due - now_ms()).max(0) as u64)).await;
            let before = now_ms();
            let r = post_due(&store, &chat, CHAT).await.unwrap();
            assert_eq!(r.retrying, 2, "a timeout does not stop the pass");
            let rows = store.pending_cards().await.unwrap();
            let gap = row(&rows, b, "card").next_attempt_at - before;
            let base = 1000i64 << (row(&rows, b, "card").attempts - 1);
            assert!(gap >= base / 2 && gap <= base, "attempt {attempt}: {gap} ms for base {base}");
            assert!(gap > last_gap / 2);
            last_gap = gap;
        }
        assert!(backoff(30) <= BACKOFF_MAX && backoff(30) >= BACKOFF_MAX / 2);
        let due = store.next_outbox_due().await.unwrap().unwrap();
        tokio::time::advance(Duration::from_millis((due - now_ms()).max(0) as u64 + 10_000)).await;
        assert_eq!(post_due(&store, &chat, CHAT).await.unwrap().posted, 2);
        assert_eq!(store.next_outbox_due().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_retry_after_a_lost_answer_does_not_post_twice() {
        let (_d, store) = store().await;
        let _clock = PausedClock::start();
        let chat = Chat::default();
        let c = case(&store, 11, "once").await;
        // Telegram delivers it but the answer is lost.
        chat.fault(MessengerError::Timeout, true);
        assert_eq!(post_due(&store, &chat, CHAT).await.unwrap().retrying, 1);
        let random_id = store.pending_cards().await.unwrap()[0].random_id;
        // The customer writes again: the retry still sends the text of the
        // first attempt (kept on the row), and finds it in the chat by it.
        let conv = store.case(c).await.unwrap().unwrap().conversation_id.unwrap();
        said(&store, conv, "and again").await;
        tokio::time::advance(Duration::from_secs(2)).await;
        let r = post_due(&store, &chat, CHAT).await.unwrap();
        assert_eq!(r.posted, 1);
        let texts = chat.texts();
        assert_eq!(texts.len(), 1, "posted once");
        assert!(texts[0].contains("once") && !texts[0].contains("and again"), "the first attempt's text: {}", texts[0]);
        assert_eq!(chat.state.lock().unwrap().attempts, 2, "the retry used the same random_id and was refused");
        let card = store.card_of_case(c).await.unwrap().unwrap();
        assert_eq!((card.random_id, card.posted_message_id), (random_id, Some(1)), "found in the history");
        assert_eq!(card.rendered.as_deref(), Some(texts[0].as_str()), "the text of the first attempt is kept");
        assert_eq!(store.case_for_message(CHAT, 1).await.unwrap().unwrap().id, c);

        // The history cannot be read at first: looked up again on the next attempt.
        let d = case(&store, 12, "twice lost").await;
        chat.fault(MessengerError::Timeout, true);
        assert_eq!(post_due(&store, &chat, CHAT).await.unwrap().retrying, 1);
        chat.state.lock().unwrap().history_faults.push_back(MessengerError::Disconnected);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(post_due(&store, &chat, CHAT).await.unwrap().retrying, 1, "not marked posted blind");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(post_due(&store, &chat, CHAT).await.unwrap().posted, 1);
        assert_eq!(chat.texts().len(), 2);
        assert_eq!(store.card_of_case(d).await.unwrap().unwrap().posted_message_id, Some(2));
        assert_eq!(store.case_for_message(CHAT, 1).await.unwrap().unwrap().id, c);
    }

    /// A flood wait on reading the history (looking up a card Telegram
    /// already has) holds that card only: the cards behind it are posted.
    #[tokio::test]
    async fn a_flood_waited_history_look_up_does_not_hold_the_other_cards() {
        let (_d, store) = store().await;
        let _clock = PausedClock::start();
        let chat = Chat::default();
        let a = case(&store, 21, "delivered, answer lost").await;
        chat.fault(MessengerError::Timeout, true);
        assert_eq!(post_due(&store, &chat, CHAT).await.unwrap().retrying, 1);
        let b = case(&store, 22, "behind it").await;
        chat.state.lock().unwrap().history_faults.push_back(MessengerError::FloodWait(Duration::from_secs(1800)));
        tokio::time::advance(Duration::from_secs(2)).await;
        let r = post_due(&store, &chat, CHAT).await.unwrap();
        assert_eq!((r.posted, r.retrying, r.deferred), (1, 1, 0), "{r:?}");
        assert!(store.card_of_case(b).await.unwrap().unwrap().posted_message_id.is_some(), "posted at once");
        let held = store.card_of_case(a).await.unwrap().unwrap();
        assert!(
            held.posted_message_id.is_none() && held.next_attempt_at > crate::runtime::clock::now_ms() + 1_700_000,
            "{held:?}"
        );
    }

    #[tokio::test]
    async fn follow_ups_wait_for_their_card_and_answer_it() {
        let (_d, store) = store().await;
        let chat = Chat::default();
        let c = case(&store, 11, "card").await;
        store.case_update(c, "update 1").await.unwrap();
        chat.fault(MessengerError::Timeout, false);
        let r = post_due(&store, &chat, CHAT).await.unwrap();
        assert_eq!((r.retrying, r.deferred, r.posted), (1, 1, 0), "the follow-up waits for its card");
        let _clock = PausedClock::start();
        tokio::time::advance(Duration::from_secs(3)).await;
        let r = post_due(&store, &chat, CHAT).await.unwrap();
        assert_eq!(r.posted, 2);
        let msgs = chat.state.lock().unwrap().messages.clone();
        assert_eq!((msgs[1].text.as_str(), msgs[1].reply_to), ("update 1", Some(msgs[0].id)));
    }
}
