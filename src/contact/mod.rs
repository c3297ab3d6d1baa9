//! Customer contact: the assistant writes to a customer whose order's
//! account ID is missing, ambiguous or refused by the backend, reads their
//! answers, and finishes the order (docs/contact.md).
//!
//! One dialogue per customer ([`DialogueState`], persisted in
//! `conversations`), covering all their open orders. The order itself stays
//! a workflow state machine: the workflow parks it in `needs_customer`,
//! which writes a dialogue event in the same commit; [`Contact::run_due`]
//! takes the event, adopts the order into the customer's dialogue and
//! asks; an account ID from the customer moves it to `activation_requested`
//! and the workflow validates it with the (idempotent) backend call and
//! finishes the Tribute side; the dialogue, told by the change, thanks the
//! customer, or (a new event) asks again when the backend refused the ID. Everything the customer cannot finish goes
//! to the moderator as a case (`moderator`).
//!
//! All of it runs in one task (the daemon's contact loop), so the dialogue
//! never races itself; the order workflow runs in its own task and the two
//! meet only through compare-and-set state transitions in the store.

mod account_budget;
mod budget;
mod case_relay;
mod delivery;
mod dialogue;
mod escalate;
mod order_events;
mod question;
mod question_queue;
mod settings;
pub mod step;
mod templates;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use account_budget::AccountBudget;
pub use budget::{Budgeted, QuestionLimits};
pub use case_relay::CASE_RELAY_EVERY;
pub use delivery::MESSAGE_DEADLINE;
pub use escalate::unreachable_reason;
pub use question::{ModeratorQuestions, Question, QuestionHandler, QuestionOutcome};
pub use question_queue::queue_summary;
pub use settings::ContactSection;
pub use templates::{names as template_names, Templates};

use crate::domain::Language;
use crate::runtime::wake::Wake;
use crate::store::{Store, StoreError};
use crate::telegram::{ChatId, Messenger, MessengerError};
use crate::tribute::AccountPattern;

/// After this many refused account IDs from the customer, a person takes over.
pub const MAX_REJECTIONS: i64 = 3;

/// Settings of the contact flow (`[contact]` in the config).
#[derive(Debug, Clone)]
pub struct ContactConfig {
    /// No answer this long after we asked → one reminder.
    pub reminder_after: Duration,
    /// No answer this long after we asked (the reminder did not help) → moderator.
    pub escalate_after: Duration,
    /// At most this many messages to one customer per UTC day; the next one goes to the moderator instead.
    pub max_messages_per_day: u32,
    /// Where `contact/*.md` templates are read from (embedded defaults otherwise).
    pub prompts_dir: Option<PathBuf>,
    /// The language for customers whose name, details and messages show none (`Language::detect`).
    pub default_language: Language,
    /// How often the store is looked at when nothing says work is due: the
    /// contact task otherwise sleeps until its next due time or a hint, so
    /// this only finds what another process wrote (a command on the same
    /// database).
    pub recheck: Duration,
    /// How many questions per customer reach the agent or the moderator.
    pub question_limits: QuestionLimits,
    /// How many agent turns and new question cases the whole account
    /// makes; questions beyond it wait in the store's queue.
    pub account_budget: AccountBudget,
}

impl Default for ContactConfig {
    fn default() -> Self {
        Self {
            reminder_after: Duration::from_secs(3600),
            escalate_after: Duration::from_secs(24 * 3600),
            max_messages_per_day: 10,
            prompts_dir: None,
            default_language: Language::Ru,
            recheck: Duration::from_secs(60),
            question_limits: QuestionLimits::default(),
            account_budget: AccountBudget::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What happened to a message for a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// In the customer's chat; its id when we know it (Telegram said the
    /// message was already sent, but the history could not be read).
    Delivered(Option<crate::telegram::MessageId>),
    /// Telegram refused for good (privacy, blocked, PEER_FLOOD, deleted account…).
    Unreachable(MessengerError),
    /// Today's cap for this customer is reached; nothing was sent.
    CapReached,
    /// Not through yet (disconnected, flood wait, no answer): the message
    /// waits in the store and the sweep retries it.
    Queued(MessengerError),
    /// It waited longer than [`MESSAGE_DEADLINE`] and was given up.
    Expired,
}

/// What the moderator desk may do to a customer: the contact side's narrow
/// port, so the desk never reaches into the dialogue.
#[async_trait::async_trait]
pub trait Customers: Send + Sync {
    /// A moderator's words as the customer reads them (the `team_answer` template).
    fn team_answer(&self, conv: &crate::store::ConversationRecord, text: &str) -> String;
    /// Sends `body` ([`Customers::team_answer`]) to the customer as the team's answer.
    async fn relay_from_moderator(
        &self,
        conv: &crate::store::ConversationRecord,
        moderator: i64,
        body: &str,
        order_ids: &[i64],
    ) -> Result<Sent, ContactError>;
}

#[async_trait::async_trait]
impl Customers for Contact {
    fn team_answer(&self, conv: &crate::store::ConversationRecord, text: &str) -> String {
        self.templates.render("team_answer", conv.language, &[("text", text)])
    }

    async fn relay_from_moderator(
        &self,
        conv: &crate::store::ConversationRecord,
        moderator: i64,
        body: &str,
        order_ids: &[i64],
    ) -> Result<Sent, ContactError> {
        let author = crate::domain::Author::Moderator;
        self.send(conv, body, author, Some(moderator), Some("team_answer"), order_ids).await
    }
}

/// The customer side of the assistant. Cheap to share (`Arc`).
pub struct Contact {
    store: Store,
    messenger: Arc<dyn Messenger>,
    cfg: ContactConfig,
    templates: Templates,
    pattern: AccountPattern,
    questions: Arc<dyn QuestionHandler>,
    /// Wakes the order worker (an order got an account ID).
    orders: Wake,
    /// Wakes the moderator desk's poster (a card or case follow-up waits).
    cards: Wake,
    /// The moderator chat, only to know where case follow-ups go.
    moderator_chat: Option<ChatId>,
}

impl Contact {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        messenger: Arc<dyn Messenger>,
        cfg: ContactConfig,
        pattern: AccountPattern,
        questions: Arc<dyn QuestionHandler>,
        orders: Wake,
        cards: Wake,
        moderator_chat: Option<ChatId>,
    ) -> Self {
        let templates = Templates::new(cfg.prompts_dir.clone());
        Self { store, messenger, cfg, templates, pattern, questions, orders, cards, moderator_chat }
    }

    pub fn config(&self) -> &ContactConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Asks the order worker to look at the store now (an order got an
    /// account ID; the order itself is due in the store already).
    fn wake_orders(&self) {
        self.orders.wake();
    }

    /// Asks the desk to post what is waiting in the moderator outbox now.
    fn flush_cards(&self) {
        if self.moderator_chat.is_some() {
            self.cards.wake();
        }
    }
}
