//! The moderator escalation chat: case cards are posted there (through the
//! transactional outbox, see `store::outbox`), and moderators act by
//! replying to a card: an account ID (validate, activate, finish), free
//! text (relayed to the customer as the team's answer), `/done`,
//! `/reject <reason>`, `/retry`, `/note <text>`; and in the chat `/cases`,
//! `/case <id>`, `/report [span]` (the automation report's summary),
//! `/learn G<n>` (approve a content gap of the report) and `/forget <user id>`
//! (erase a customer's personal data, `retention`). `/learn` (or 👍) on
//! a case and `/learn G<n>` first show the redacted pair they would store;
//! `/learn yes` in reply to that preview stores it (`learn.rs`). Replies
//! are mapped to cases by the card's message id, never by forward_from. Only
//! configured moderators are obeyed; everyone else is refused politely;
//! every action, obeyed or refused, is audited.
//!
//! The desk owns every card: the rest of the program stores only a typed
//! escalation (`store::Escalation`: reason, what it is about, a detail),
//! [`render`] writes the card from the store ([`cards`] holds the texts),
//! [`outbox_worker::post_due`] posts the outbox row by row with its own
//! retries (one refused card never blocks the rest), and [`sizing`] keeps
//! every text within Telegram's 4096 UTF-16 units (cards are cut with a
//! marker; `/case` pages the whole case, rendered by the same code).

pub mod cards;
pub mod commands;
mod forget;
mod learn;
pub mod outbox_worker;
pub mod render;
pub mod sizing;

use std::sync::Arc;

use tracing::{info, info_span, warn, Instrument};

use crate::contact::{unreachable_reason, Contact, ContactError, Sent};
use crate::domain::{Author, Direction, LinkStatus, OrderState};
use crate::report::range::parse_relative;
use crate::report::{summary, Range, ReportSettings};
use crate::runtime::backoff::{self, Jitter};
use crate::runtime::clock::now_ms;
use crate::store::{
    parse_short_id, AccountStatus, AnswerLink, ApprovedPair, CaseRecord, CaseStatus, ConversationRecord,
    NewApprovedPair, NewAudit, NewConversationMessage, OrderRecord, StoreError, Transition,
};
use crate::telegram::{Message, Messenger, UserId};
use commands::{Command, Input};

/// `[moderator]` in the config.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeratorConfig {
    /// Telegram user ids whose replies and commands are obeyed; anyone else is refused and logged.
    #[serde(default)]
    pub moderators: Vec<UserId>,
}

pub const REFUSAL: &str = "Sorry, only the moderators listed in the assistant's configuration can act on cases. \
                           Your message was logged. / Извините, действовать по обращениям могут только модераторы \
                           из настроек ассистента. Ваше сообщение записано.";

type Result<T> = std::result::Result<T, ContactError>;

/// First wait before indexing a `/learn`ed pair again; doubles per failure.
const LEARN_RETRY: std::time::Duration = std::time::Duration::from_secs(30);
const LEARN_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(3600);

/// Where an approved answer goes besides the store: the knowledge base, so
/// the agent can give it the next time without waiting for `kb ingest`.
#[async_trait::async_trait]
pub trait Learner: Send + Sync {
    async fn learn(&self, pair: &ApprovedPair) -> anyhow::Result<()>;
    /// Removes every pair learned from conversation `conversation_id` (its customer was erased).
    async fn unlearn(&self, conversation_id: i64) -> anyhow::Result<()>;
}

pub struct ModeratorDesk {
    contact: Arc<Contact>,
    messenger: Arc<dyn Messenger>,
    cfg: ModeratorConfig,
    /// Adds `/learn`ed pairs to the knowledge base at once; without it they
    /// wait in the store for `kb ingest --conversations`.
    learner: Option<Arc<dyn Learner>>,
    /// What `/report` counts with.
    report: ReportSettings,
}

impl ModeratorDesk {
    pub fn new(
        contact: Arc<Contact>,
        messenger: Arc<dyn Messenger>,
        cfg: ModeratorConfig,
        learner: Option<Arc<dyn Learner>>,
    ) -> Self {
        Self { contact, messenger, cfg, learner, report: ReportSettings::default() }
    }

    /// The report settings `/report` uses (the resolution window).
    pub fn with_report(mut self, settings: ReportSettings) -> Self {
        self.report = settings;
        self
    }

    /// A message in the moderator chat. Only replies to case messages and
    /// `/commands` are for us; other chatter is left alone.
    pub async fn on_message(&self, m: &Message) -> Result<()> {
        if m.outgoing {
            return Ok(());
        }
        let Some(from) = m.sender_id else { return Ok(()) };
        let input = commands::parse(&m.text, self.contact.pattern());
        // `/learn`, `/learn yes` or 👍 in reply to a `/learn` preview confirm it.
        let preview = match (m.reply_to, &input) {
            (Some(r), Input::Command(Command::Learn | Command::LearnYes)) => {
                self.contact.store().learn_preview_for_message(m.chat_id, r).await?
            }
            _ => None,
        };
        let moderator = self.cfg.moderators.contains(&from);
        let case = match (m.reply_to, &preview) {
            (Some(r), None) if moderator => self.case_replied_to(m.chat_id, r).await?,
            // Anyone else's reply costs one read: no Telegram look-up, no wait.
            (Some(r), None) => self.contact.store().case_for_message(m.chat_id, r).await?,
            _ => None,
        };
        if case.is_none() && !matches!(input, Input::Command(_)) {
            return Ok(());
        }
        let span = info_span!("moderator", from, case = case.as_ref().map(|c| c.short_id.clone()));
        async move {
            if !moderator {
                warn!(text = %m.text, "refused: not a configured moderator");
                self.audit(m, from, case.as_ref(), "refused", &m.text, false).await?;
                self.answer(m, REFUSAL).await?;
                return Ok(());
            }
            if let Some(preview) = &preview {
                return self.confirm_learn(m, from, preview).await;
            }
            match (input, case) {
                (Input::Command(Command::Cases), _) => self.list_cases(m, from).await,
                (Input::Command(Command::Case { id, page }), _) => self.show_case(m, from, &id, page).await,
                (Input::Command(Command::Report(span)), _) => self.report(m, from, &span).await,
                (Input::Command(Command::LearnGap(turn)), _) => self.learn_gap(m, from, turn).await,
                (Input::Command(Command::Forget(customer)), _) => self.forget(m, from, customer).await,
                (Input::Command(Command::ForgetUsage(arg)), _) => self.forget_usage(m, from, &arg).await,
                (Input::Command(Command::LearnYes), case) => {
                    self.audit(m, from, case.as_ref(), "unknown", &m.text, true).await?;
                    self.answer(m, learn::CONFIRM_WHERE).await?;
                    Ok(())
                }
                (Input::Command(Command::LearnUsage(arg)), case) => {
                    self.audit(m, from, case.as_ref(), "unknown", &m.text, true).await?;
                    self.answer(m, &format!("/learn does not take {arg:?}. {}", learn::USAGE)).await?;
                    Ok(())
                }
                (Input::Command(Command::Unknown(word)), case) => {
                    self.audit(m, from, case.as_ref(), "unknown", &m.text, true).await?;
                    self.answer(m, &format!("Unknown command /{word}. {HELP}")).await?;
                    Ok(())
                }
                (_, None) => {
                    self.audit(m, from, None, "unknown", &m.text, true).await?;
                    self.answer(m, &format!("Reply to a case card to act on it. {HELP}")).await?;
                    Ok(())
                }
                (Input::Command(Command::Done), Some(case)) => self.done(m, from, &case).await,
                (Input::Command(Command::Reject(reason)), Some(case)) => self.reject(m, from, &case, &reason).await,
                (Input::Command(Command::Retry), Some(case)) => self.retry(m, from, &case).await,
                (Input::Command(Command::Note(text)), Some(case)) => self.note(m, from, &case, &text).await,
                (Input::Command(Command::Learn), Some(case)) => self.learn(m, from, &case).await,
                (Input::Account(id), Some(case)) => self.account(m, from, &case, id).await,
                (Input::Text(text), Some(case)) => self.relay(m, from, &case, &text).await,
            }
        }
        .instrument(span)
        .await
    }

    /// The case of the message replied to. A card is mapped to its case just
    /// after Telegram accepted it, so a reply that races that write gets a
    /// moment before it counts as "not a case".
    async fn case_replied_to(&self, chat: crate::telegram::ChatId, reply_to: i32) -> Result<Option<CaseRecord>> {
        let store = self.contact.store();
        for _ in 0..20 {
            if let Some(case) = store.case_for_message(chat, reply_to).await? {
                return Ok(Some(case));
            }
            // Only our own message can be a card whose mapping is not written yet.
            let ours = self.messenger.get_messages(chat, &[reply_to]).await.ok().and_then(|v| v.into_iter().next());
            if !ours.is_some_and(|m| m.outgoing) {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(None)
    }

    async fn done(&self, m: &Message, from: UserId, case: &CaseRecord) -> Result<()> {
        let store = self.contact.store();
        self.audit(m, from, Some(case), "done", "handled by hand", true).await?;
        let outcome = format!("handled by hand by moderator {from}");
        let closed =
            store.close_case(case.id, &outcome, &format!("☑️ {}: closed, handled by hand.", case.short_id)).await?;
        if let Some(order_id) = case.order_id {
            if store.order_link(order_id).await?.is_some() {
                store.set_link_status(order_id, LinkStatus::Closed, false, now_ms()).await?;
            }
        }
        if !closed {
            self.answer(m, &format!("{} was already closed.", case.short_id)).await?;
        }
        self.contact.flush_cards();
        info!(case = %case.short_id, "closed by hand");
        Ok(())
    }

    async fn reject(&self, m: &Message, from: UserId, case: &CaseRecord, reason: &str) -> Result<()> {
        let store = self.contact.store();
        if reason.is_empty() {
            self.answer(m, "Say why: /reject <reason>").await?;
            return Ok(());
        }
        self.audit(m, from, Some(case), "reject", reason, true).await?;
        if case.status == CaseStatus::Closed {
            // Its order moved on meanwhile (completed, or a newer case has it).
            let outcome = case.outcome.as_deref().unwrap_or("closed");
            self.answer(m, &format!("{} was already closed ({outcome}); nothing rejected.", case.short_id)).await?;
            return Ok(());
        }
        if let Some(order_id) = case.order_id {
            let order = store.order(order_id).await?;
            if matches!(order.state, OrderState::Escalated | OrderState::NeedsCustomer) {
                let note = format!("rejected by moderator {from}: {reason}");
                match store.transition(order_id, order.state, Transition::to(OrderState::Failed, note)).await {
                    Ok(()) | Err(StoreError::StateChanged { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if store.order_link(order_id).await?.is_some() {
                store.set_link_status(order_id, LinkStatus::Closed, false, now_ms()).await?;
            }
        }
        let text = format!("⛔ {}: rejected by the moderator: {reason}", case.short_id);
        if !store.close_case(case.id, &format!("rejected: {reason}"), &text).await? {
            self.answer(m, &format!("{} was already closed.", case.short_id)).await?;
        }
        self.contact.flush_cards();
        Ok(())
    }

    async fn retry(&self, m: &Message, from: UserId, case: &CaseRecord) -> Result<()> {
        let store = self.contact.store();
        self.audit(m, from, Some(case), "retry", "", true).await?;
        let Some(order_id) = case.order_id else {
            self.answer(m, &format!("{} is not about an order.", case.short_id)).await?;
            return Ok(());
        };
        let order = store.order(order_id).await?;
        if order.state == OrderState::Escalated && order.activation_id.is_some() {
            return self.resume_activated(m, from, case, order_id).await;
        }
        let account = match (&order.account, order.state) {
            (AccountStatus::Found(a), OrderState::Escalated | OrderState::Failed) => a.clone(),
            (_, OrderState::Escalated | OrderState::Failed) => {
                self.answer(m, &format!("{}: the order has no single account ID; reply with one.", case.short_id))
                    .await?;
                return Ok(());
            }
            (_, state) => {
                self.answer(m, &format!("{}: the order is {state}; nothing to retry.", case.short_id)).await?;
                return Ok(());
            }
        };
        let note = format!("moderator {from} asked to activate again with {account}");
        store.give_account(order_id, order.state, &account, None, &note).await?;
        store.set_case_pending_account(case.id, Some(account.as_str())).await?;
        self.contact.wake_orders();
        self.answer(m, &format!("🔁 {}: activating {account} again…", case.short_id)).await?;
        Ok(())
    }

    /// An escalated order whose product is already activated: back to the
    /// Tribute reply or the Send press, with the activated account.
    async fn resume_activated(&self, m: &Message, from: UserId, case: &CaseRecord, order_id: i64) -> Result<()> {
        let note = format!("moderator {from} resumed the order at the Tribute side");
        let to = match self.contact.store().resume_activated(order_id, &note).await {
            Ok(to) => to,
            Err(StoreError::StateChanged { .. }) => {
                self.answer(m, &format!("{}: the order changed meanwhile; look again with /case.", case.short_id))
                    .await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        self.contact.wake_orders();
        let step = if to == OrderState::Replied { "pressing Send" } else { "replying to Tribute" };
        self.answer(m, &format!("🔁 {}: already activated; {step} again…", case.short_id)).await?;
        Ok(())
    }

    async fn note(&self, m: &Message, from: UserId, case: &CaseRecord, text: &str) -> Result<()> {
        self.audit(m, from, Some(case), "note", text, true).await?;
        if let Some(conv) = self.conversation(case).await? {
            self.contact
                .store()
                .record_conversation_message(&NewConversationMessage {
                    conversation_id: conv.id,
                    at: now_ms(),
                    direction: Direction::Internal,
                    author: Author::Moderator,
                    author_id: Some(from),
                    text: text.to_owned(),
                    template: None,
                    telegram: Some((m.chat_id, m.id)),
                    order_ids: case.order_id.into_iter().collect(),
                })
                .await?;
        }
        self.answer(m, &format!("📝 {}: noted.", case.short_id)).await?;
        Ok(())
    }

    /// An account ID from the moderator: the same activation call (the
    /// backend is the validation); the workflow finishes the order and the
    /// case closes when it completes.
    async fn account(&self, m: &Message, from: UserId, case: &CaseRecord, id: crate::domain::AccountId) -> Result<()> {
        let store = self.contact.store();
        self.audit(m, from, Some(case), "account", id.as_str(), true).await?;
        let Some(order_id) = case.order_id else {
            return self.relay(m, from, case, &m.text).await;
        };
        let order = store.order(order_id).await?;
        if let Some(activation) = &order.activation_id {
            let activated_for = order.account_candidates().first().map(|a| a.to_string()).unwrap_or_default();
            if activated_for == id.as_str() && order.state == OrderState::Escalated {
                return self.resume_activated(m, from, case, order_id).await;
            }
            let text = format!(
                "{}: the product is already activated for account {activated_for} (activation {activation}); \
                 the account cannot change. /retry finishes the Tribute side, /done if it was handled by hand.",
                case.short_id
            );
            self.answer(m, &text).await?;
            return Ok(());
        }
        if !matches!(order.state, OrderState::Escalated | OrderState::NeedsCustomer) || case.status != CaseStatus::Open
        {
            self.answer(
                m,
                &format!("{}: the order is {}; an account ID cannot be applied now.", case.short_id, order.state),
            )
            .await?;
            return Ok(());
        }
        let link = store.order_link(order_id).await?.map(|_| LinkStatus::Moderator);
        let note = format!("moderator {from} gave account ID {id}; asking the backend");
        match store.give_account(order_id, order.state, &id, link, &note).await {
            Ok(()) => {}
            Err(StoreError::StateChanged { .. }) => {
                self.answer(
                    m,
                    &format!(
                        "{}: the order changed meanwhile; look again with /case {}.",
                        case.short_id, case.short_id
                    ),
                )
                .await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        store.set_case_pending_account(case.id, Some(id.as_str())).await?;
        self.contact.wake_orders();
        info!(case = %case.short_id, account = %id, "moderator gave an account ID");
        self.answer(m, &format!("⏳ {}: activating {} for account {id}…", case.short_id, order.product)).await?;
        Ok(())
    }

    /// Stores an approved pair and adds it to the knowledge base; returns
    /// its id and says how far it got.
    async fn approve(&self, pair: NewApprovedPair) -> Result<(i64, &'static str)> {
        let pair = self.contact.store().add_approved_pair(&pair).await?;
        let indexed = match &self.learner {
            Some(_) if self.index_pair(&pair, 0).await? => " and added to the knowledge base",
            Some(_) => "; indexing failed for now, it is retried until the knowledge base has it",
            None => "; `kb ingest --conversations` adds it to the knowledge base",
        };
        Ok((pair.id, indexed))
    }

    /// `/report [span]`: the report's summary for the last `span` (7 days
    /// unless given: `30d`, `2w`, `12h`), sized to one message.
    async fn report(&self, m: &Message, from: UserId, span: &str) -> Result<()> {
        self.audit(m, from, None, "report", span, true).await?;
        let back =
            if span.is_empty() { Some(std::time::Duration::from_secs(7 * 86_400)) } else { parse_relative(span) };
        let now = now_ms();
        if back.is_some_and(|d| d > CHAT_REPORT_LONGEST) {
            let text = "In the chat /report covers at most a year (e.g. /report 52w): it is built while other \
                        messages wait. For longer ranges run `tribute-assistant report --since DATE` on the server.";
            self.answer(m, text).await?;
            return Ok(());
        }
        let Some(range) = back.and_then(|d| Range::last(d, now).ok()) else {
            self.answer(m, &format!("Usage: /report [span], e.g. /report, /report 30d, /report 12w (not {span:?})."))
                .await?;
            return Ok(());
        };
        let text = summary::build_text(self.contact.store(), &range, &self.report, now).await?;
        self.answer(m, &text).await?;
        Ok(())
    }

    /// Adds an approved pair to the knowledge base; on failure it stays a
    /// work item in the store, retried with backoff by [`Self::index_due_pairs`].
    async fn index_pair(&self, pair: &ApprovedPair, attempts: i64) -> Result<bool> {
        let Some(learner) = &self.learner else { return Ok(false) };
        let store = self.contact.store();
        match learner.learn(pair).await {
            Ok(()) => {
                store.mark_pair_indexed(pair.id).await?;
                Ok(true)
            }
            Err(e) => {
                let wait = backoff::delay(attempts, LEARN_RETRY, LEARN_RETRY_MAX, Jitter::Spread);
                warn!(error = format!("{e:#}"), pair = pair.id, retry_in = ?wait, "an approved pair is not indexed yet");
                store.retry_pair_later(pair.id, now_ms() + wait.as_millis() as i64).await?;
                Ok(false)
            }
        }
    }

    /// Retries the approved pairs the knowledge base does not have yet (the
    /// contact task calls it on every tick; cheap when nothing is due).
    pub async fn index_due_pairs(&self) -> Result<()> {
        if self.learner.is_none() {
            return Ok(());
        }
        self.remove_erased_from_index().await?;
        for (pair, attempts) in self.contact.store().pairs_to_index(now_ms(), 10).await? {
            if self.index_pair(&pair, attempts).await? {
                info!(pair = pair.id, "an approved pair reached the knowledge base on a retry");
            }
        }
        Ok(())
    }

    /// Free text: the team's answer to the customer.
    async fn relay(&self, m: &Message, from: UserId, case: &CaseRecord, text: &str) -> Result<()> {
        self.audit(m, from, Some(case), "relay", text, true).await?;
        let Some(conv) = self.conversation(case).await? else {
            self.answer(m, &format!("{} has no customer to write to.", case.short_id)).await?;
            return Ok(());
        };
        let body = self.contact.team_answer(&conv, text);
        let units = sizing::utf16_len(&body);
        if units > sizing::TELEGRAM_LIMIT {
            // Telegram would refuse it; the moderator still has the text to split.
            let over = units - sizing::TELEGRAM_LIMIT;
            let reply = format!(
                "❌ {}: not sent: with the greeting it is {units} characters, {over} more than one Telegram \
                 message holds ({}). Send it in two replies.",
                case.short_id,
                sizing::TELEGRAM_LIMIT
            );
            self.answer(m, &reply).await?;
            return Ok(());
        }
        let order_ids: Vec<i64> = case.order_id.into_iter().collect();
        let reply = match self.contact.relay_from_moderator(&conv, from, &body, &order_ids).await? {
            Sent::Delivered(_) => format!("✉️ {}: sent to {}.", case.short_id, conv.customer_name),
            Sent::Unreachable(e) => format!("❌ {}: not delivered: {}", case.short_id, unreachable_reason(&e)),
            Sent::CapReached => {
                format!("❌ {}: not sent: today's message limit for this customer is reached.", case.short_id)
            }
            Sent::Queued(e) => format!(
                "⏳ {}: Telegram did not take it yet ({e}); it goes out to {} automatically.",
                case.short_id, conv.customer_name
            ),
            Sent::Expired => format!("❌ {}: not delivered in time.", case.short_id),
        };
        self.answer(m, &reply).await?;
        Ok(())
    }

    async fn list_cases(&self, m: &Message, from: UserId) -> Result<()> {
        self.audit(m, from, None, "cases", "", true).await?;
        let store = self.contact.store();
        let open = store.open_cases().await?;
        let mut lines = vec![format!("Open cases: {}", open.len())];
        for case in open.iter().take(30) {
            let order = match case.order_id {
                Some(id) => Some(store.order(id).await?),
                None => None,
            };
            let customer = match case.conversation_id {
                Some(c) => Some(store.conversation(c).await?.customer_name),
                None => None,
            };
            lines.push(cards::case_line(case, order.as_ref(), customer.as_deref()));
        }
        if open.len() > 30 {
            lines.push(format!("… and {} more", open.len() - 30));
        }
        self.answer(m, &lines.join("\n")).await?;
        Ok(())
    }

    /// `/case <id> [page]`: the whole case (raw text, every message), in
    /// pages when it is longer than one Telegram message.
    async fn show_case(&self, m: &Message, from: UserId, id: &str, page: usize) -> Result<()> {
        let store = self.contact.store();
        let case = match parse_short_id(id) {
            Some(n) => store.case(n).await?,
            None => None,
        };
        self.audit(m, from, case.as_ref(), "case", id, true).await?;
        let Some(case) = case else {
            self.answer(m, &format!("No case {id:?}. /cases lists the open ones.")).await?;
            return Ok(());
        };
        let body = render::case_text(store, &case).await?;
        let status = match case.status {
            CaseStatus::Open => "open".to_owned(),
            CaseStatus::Closed => format!("closed ({})", case.outcome.as_deref().unwrap_or("")),
        };
        let text = format!("{body}\n\nStatus: {status}");
        let text = match cards::case_page(&text, &case.short_id, page) {
            Ok(text) => text,
            Err(n) => {
                let s = &case.short_id;
                self.answer(m, &format!("{s} has {n} page(s); /case {s} {n} shows the last.")).await?;
                return Ok(());
            }
        };
        self.answer_linked(m, &text, AnswerLink::Case(case.id)).await
    }

    /// The customer conversation of a case: its own, its order's, or (for an
    /// order whose customer never wrote) a new one for the order's customer.
    async fn conversation(&self, case: &CaseRecord) -> Result<Option<ConversationRecord>> {
        let store = self.contact.store();
        if let Some(c) = case.conversation_id {
            return Ok(Some(store.conversation(c).await?));
        }
        let Some(order_id) = case.order_id else { return Ok(None) };
        if let Some(link) = store.order_link(order_id).await? {
            store.set_case_conversation(case.id, link.conversation_id).await?;
            return Ok(Some(store.conversation(link.conversation_id).await?));
        }
        let order: OrderRecord = store.order(order_id).await?;
        let Some(customer) = order.customer_id else { return Ok(None) };
        let lang = crate::domain::Language::detect(&format!("{} {}", order.customer_name, order.details))
            .unwrap_or(self.contact.config().default_language);
        let conv = store.open_conversation(customer, &order.customer_name, lang, now_ms()).await?;
        store.set_case_conversation(case.id, conv.id).await?;
        Ok(Some(conv))
    }

    async fn audit(
        &self,
        m: &Message,
        from: UserId,
        case: Option<&CaseRecord>,
        action: &str,
        detail: &str,
        allowed: bool,
    ) -> Result<()> {
        self.contact
            .store()
            .record_audit(&NewAudit {
                at: now_ms(),
                moderator_id: from,
                case_id: case.map(|c| c.id),
                action: action.to_owned(),
                detail: detail.to_owned(),
                allowed,
                chat_id: m.chat_id,
                message_id: m.id,
            })
            .await?;
        Ok(())
    }

    /// Answers in the chat as a reply, through the outbox: an answer
    /// Telegram refuses for now (a flood wait, a dropped link) is retried
    /// with the same `random_id` instead of being lost.
    async fn answer(&self, m: &Message, text: &str) -> Result<()> {
        self.answer_linked(m, text, AnswerLink::None).await
    }

    pub(super) async fn answer_linked(&self, m: &Message, text: &str, link: AnswerLink) -> Result<()> {
        self.contact.store().enqueue_desk_answer(m.chat_id, m.id, text, link).await?;
        self.contact.flush_cards();
        Ok(())
    }
}

/// The longest span `/report` builds in the chat (the desk waits for it).
const CHAT_REPORT_LONGEST: std::time::Duration = std::time::Duration::from_secs(371 * 86_400);

const HELP: &str = "Reply to a case card with an account ID, a message for the customer, /done, /reject <reason>, \
                    /retry, /note <text> or /learn (👍: the case's question and the team's answer to it for the knowledge base); \
                    in the chat: /cases, /case <id>, /report [7d] (how the assistant is doing), \
                    /learn G<n> (a content gap the report listed), /forget <user id> (erase a customer's \
                    personal data). /learn shows the pair first; reply /learn yes to that preview to store it.";
