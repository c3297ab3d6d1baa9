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
pub mod cmd;
pub mod outbox_worker;
pub mod render;
pub mod sizing;

use std::sync::Arc;

use tracing::{info_span, warn, Instrument};

use crate::contact::{ContactError, Customers};
use crate::domain::Language;
use crate::report::ReportSettings;
use crate::runtime::clock::now_ms;
use crate::runtime::wake::Wake;
use crate::store::{AnswerLink, ApprovedPair, CaseRecord, ConversationRecord, NewAudit, OrderRecord, Store};
use crate::telegram::{Message, UserId};
use crate::tribute::AccountPattern;
use cmd::{learn, Command, Input};

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
pub(crate) const LEARN_RETRY: std::time::Duration = std::time::Duration::from_secs(30);
pub(crate) const LEARN_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a moderator's reply waits for the card it answers to be mapped
/// to its case (the card is on its way) before it counts as a reply to no
/// case; and how often it looks again meanwhile. Five seconds was too short:
/// in `simulate --content hostile` a busy poster maps a card the moderator
/// already answered later than that, and the reply lost its case (1 run in 5;
/// 0 in 8 at a minute). Waiting costs nothing but that reply's own delay.
const MAPPING_GRACE: std::time::Duration = std::time::Duration::from_secs(60);
const MAPPING_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// What became of a message in the moderator chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Done,
    /// It waits in the inbox (its row is due again a moment later): it
    /// replies to a card whose case mapping is not written yet.
    Later,
}

/// What a reply replies to.
enum Mapping {
    Case(CaseRecord),
    /// No case yet, but a card is on its way: the reply waits.
    NotYet,
    /// Not a case's message.
    None,
}

/// Where an approved answer goes besides the store: the knowledge base, so
/// the agent can give it the next time without waiting for `kb ingest`.
#[async_trait::async_trait]
pub trait Learner: Send + Sync {
    async fn learn(&self, pair: &ApprovedPair) -> anyhow::Result<()>;
    /// Removes every pair learned from conversation `conversation_id` (its customer was erased).
    async fn unlearn(&self, conversation_id: i64) -> anyhow::Result<()>;
}

/// The moderator desk: it holds the store and reaches customers only
/// through the contact side's narrow port ([`Customers`]); each command is
/// one file in [`cmd`].
pub struct ModeratorDesk {
    store: Store,
    /// Relays a moderator's words to a customer.
    customers: Arc<dyn Customers>,
    /// Wakes the order worker (an order got an account ID or resumes).
    orders: Wake,
    /// Wakes the card poster (an answer or a follow-up waits in the outbox).
    cards: Wake,
    /// What an account ID looks like (a reply that is only one is given to the order).
    pattern: AccountPattern,
    /// The language of a conversation the desk opens for an order's customer who never wrote.
    default_language: Language,
    cfg: ModeratorConfig,
    /// Adds `/learn`ed pairs to the knowledge base at once; without it they
    /// wait in the store for `kb ingest --conversations`.
    learner: Option<Arc<dyn Learner>>,
    /// What `/report` counts with.
    report: ReportSettings,
}

/// What the desk is built from ([`ModeratorDesk::new`]).
pub struct DeskSetup {
    pub store: Store,
    pub customers: Arc<dyn Customers>,
    pub orders: Wake,
    pub cards: Wake,
    pub pattern: AccountPattern,
    pub default_language: Language,
    pub cfg: ModeratorConfig,
    pub learner: Option<Arc<dyn Learner>>,
    pub report: ReportSettings,
}

impl ModeratorDesk {
    pub fn new(s: DeskSetup) -> Self {
        Self {
            store: s.store,
            customers: s.customers,
            orders: s.orders,
            cards: s.cards,
            pattern: s.pattern,
            default_language: s.default_language,
            cfg: s.cfg,
            learner: s.learner,
            report: s.report,
        }
    }

    /// Asks the order worker to look at the store now.
    fn wake_orders(&self) {
        self.orders.wake();
    }

    /// Asks the poster to post what waits in the moderator outbox now.
    fn flush_cards(&self) {
        self.cards.wake();
    }

    /// A message in the moderator chat. Only replies to case messages and
    /// `/commands` are for us; other chatter is left alone.
    pub async fn on_message(&self, m: &Message) -> Result<Handled> {
        if m.outgoing {
            return Ok(Handled::Done);
        }
        let Some(from) = m.sender_id else { return Ok(Handled::Done) };
        let input = cmd::parse(&m.text, &self.pattern);
        // `/learn`, `/learn yes` or 👍 in reply to a `/learn` preview confirm it.
        let preview = match (m.reply_to, &input) {
            (Some(r), Input::Command(Command::Learn | Command::LearnYes)) => {
                self.store.learn_preview_for_message(m.chat_id, r).await?
            }
            _ => None,
        };
        let moderator = self.cfg.moderators.contains(&from);
        let case = match (m.reply_to, &preview) {
            (Some(r), None) if moderator => match self.case_replied_to(m, r).await? {
                Mapping::Case(case) => Some(case),
                Mapping::None => None,
                Mapping::NotYet => return Ok(Handled::Later),
            },
            // Anyone else's reply costs one read: no Telegram look-up, no wait.
            (Some(r), None) => self.store.case_for_message(m.chat_id, r).await?,
            _ => None,
        };
        if case.is_none() && !matches!(input, Input::Command(_)) {
            return Ok(Handled::Done);
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
        .map(|()| Handled::Done)
    }

    /// The case of the message replied to. A card is mapped to its case
    /// only once Telegram's answer to its send is in, so while a card is on
    /// its way a reply that finds no case waits in the inbox (its row due
    /// again [`MAPPING_RECHECK`] later, [`Handled::Later`]) for up to
    /// [`MAPPING_GRACE`] before it counts as a reply to no case. Nothing
    /// waits when no card is on its way.
    async fn case_replied_to(&self, m: &Message, reply_to: i32) -> Result<Mapping> {
        if let Some(case) = self.store.case_for_message(m.chat_id, reply_to).await? {
            return Ok(Mapping::Case(case));
        }
        if self.store.card_on_its_way().await?
            && self.store.defer_inbound(m.chat_id, m.id, MAPPING_GRACE, MAPPING_RECHECK).await?
        {
            return Ok(Mapping::NotYet);
        }
        Ok(Mapping::None)
    }

    /// The customer conversation of a case: its own, its order's, or (for an
    /// order whose customer never wrote) a new one for the order's customer.
    async fn conversation(&self, case: &CaseRecord) -> Result<Option<ConversationRecord>> {
        let store = &self.store;
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
            .unwrap_or(self.default_language);
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
        self.store
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
        self.store.enqueue_desk_answer(m.chat_id, m.id, text, link).await?;
        self.flush_cards();
        Ok(())
    }
}

const HELP: &str = "Reply to a case card with an account ID, a message for the customer, /done, /reject <reason>, \
                    /retry, /note <text> or /learn (👍: the case's question and the team's answer to it for the knowledge base); \
                    in the chat: /cases, /case <id>, /report [7d] (how the assistant is doing), \
                    /learn G<n> (a content gap the report listed), /forget <user id> (erase a customer's \
                    personal data). /learn shows the pair first; reply /learn yes to that preview to store it.";
