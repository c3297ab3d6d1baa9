//! The dialogue itself: what a customer's message does in each state, and
//! what a look at a due dialogue does (ask, remind, time out, thank).

use tracing::{info, info_span, warn, Instrument};

use super::escalate::{order_lines, ToTeam};
use super::step::{step, Effect, Event, Facts, Step, Timers};
use super::{Contact, ContactError, Sent, MAX_REJECTIONS};
use crate::domain::{AccountId, Author, DialogueState, Direction, EscalationReason, Language, LinkStatus, OrderState};
use crate::runtime::clock::now_ms;
use crate::store::{
    AccountStatus, CaseRecord, CaseStatus, ConversationRecord, NewConversationMessage, OrderRecord, StoreError,
};
use crate::telegram::Message;
use crate::tribute::AccountExtraction;

type Result<T> = std::result::Result<T, ContactError>;

impl Contact {
    // ---- what is due --------------------------------------------------------

    /// Everything of the contact flow the store has due: waiting messages
    /// to customers, the orders' events (adopt, refused IDs, completed
    /// cases), the dialogues whose timer is due or that changed (ask,
    /// remind, time out, thank), a queued question. The contact task calls
    /// it when [`crate::store::Store::next_contact_due`] says so, or when
    /// woken; there is no periodic scan.
    pub async fn run_due(&self) -> Result<()> {
        self.deliver_due().await?;
        self.take_order_events().await?;
        for (conv, version) in self.store.conversations_to_look_at(now_ms()).await? {
            let span = info_span!("conversation", id = conv.id, customer = conv.customer_id);
            let (id, due) = (conv.id, self.advance(conv).instrument(span).await?);
            self.store.looked_at(id, version, due).await?;
        }
        self.release_queued().await
    }

    /// When [`Contact::run_due`] has work next (unix ms; None: only
    /// something new brings work).
    pub async fn next_due(&self) -> Result<Option<i64>> {
        Ok(self.store.next_contact_due().await?)
    }

    /// One dialogue's step: settle finished orders, then ask / remind / time
    /// out. Returns when its timer is next due (None: no timer runs).
    async fn advance(&self, conv: ConversationRecord) -> Result<Option<i64>> {
        let now = now_ms();
        let mut awaiting = Vec::new();
        let mut validating = None;
        let mut with_moderator = false;
        for link in self.store.conversation_orders(conv.id).await? {
            if matches!(link.status, LinkStatus::Done | LinkStatus::Closed) {
                continue;
            }
            let order = self.store.order(link.order_id).await?;
            match order.state {
                OrderState::Confirmed => {
                    self.thank(&conv, &order).await?;
                    self.store.set_link_status(order.id, LinkStatus::Done, false, now).await?;
                }
                OrderState::Failed | OrderState::Refunded => {
                    self.store.set_link_status(order.id, LinkStatus::Closed, false, now).await?
                }
                OrderState::Escalated => {
                    if link.status != LinkStatus::Moderator {
                        self.store.set_link_status(order.id, LinkStatus::Moderator, false, now).await?;
                    }
                    with_moderator = true;
                }
                OrderState::NeedsCustomer if link.status == LinkStatus::Awaiting => awaiting.push(order),
                _ if link.status == LinkStatus::Validating => {
                    validating = Some(link.account.clone().unwrap_or_default());
                }
                _ => with_moderator |= link.status == LinkStatus::Moderator,
            }
        }
        let conv = self.store.conversation(conv.id).await?;
        let case_open = match conv.state {
            DialogueState::WithModerator { case_id, .. } => {
                self.store.case(case_id).await?.is_some_and(|c| c.status == CaseStatus::Open)
            }
            _ => false,
        };
        let validating = validating.and_then(|a| AccountId::parse(&a).ok());
        let facts = Facts { awaiting: !awaiting.is_empty(), validating, with_moderator, case_open };
        let timers = self.timers();
        let Step { next, effects } = step(&conv.state, &Event::Tick(facts), now, timers);
        let ids: Vec<i64> = awaiting.iter().map(|o| o.id).collect();
        let (text, template) = match effects.first() {
            None => (None, ""),
            Some(Effect::EscalateSilent) => {
                let detail = format!("no answer {} h after we asked", self.cfg.escalate_after.as_secs() / 3600);
                self.escalate_orders(&conv, &ids, EscalationReason::CustomerSilent, &detail).await?;
                return Ok(None);
            }
            Some(Effect::Remind) => {
                let orders = order_lines(&awaiting, conv.language);
                let vars = [("name", conv.customer_name.as_str()), ("orders", orders.as_str())];
                (Some(self.templates.render("reminder", conv.language, &vars)), "reminder")
            }
            Some(Effect::Ask) => (Some(self.ask_text(&conv, &awaiting)), "ask_account"),
            Some(other) => unreachable!("a tick never {other:?} (contact::step)"),
        };
        if let Some(text) = text {
            match self.send(&conv, &text, Author::Assistant, None, Some(template), &ids).await? {
                Sent::Delivered(_) => info!(template, orders = ids.len(), "wrote to the customer"),
                Sent::Queued(e) => info!(template, error = %e, "the message to the customer waits to be retried"),
                other => {
                    self.escalate_after_send(&conv, &ids, other).await?;
                    return Ok(None);
                }
            }
        }
        if next != conv.state {
            self.store.set_dialogue_state(conv.id, &next, now).await?;
        }
        Ok(match next {
            DialogueState::AwaitingAccount { asked_at, reminded: false } => Some(asked_at + timers.reminder_after_ms),
            DialogueState::AwaitingAccount { asked_at, reminded: true } => Some(asked_at + timers.escalate_after_ms),
            _ => None,
        })
    }

    fn timers(&self) -> Timers {
        Timers {
            reminder_after_ms: self.cfg.reminder_after.as_millis() as i64,
            escalate_after_ms: self.cfg.escalate_after.as_millis() as i64,
        }
    }

    async fn thank(&self, conv: &ConversationRecord, order: &OrderRecord) -> Result<()> {
        let account = match &order.account {
            AccountStatus::Found(a) => a.to_string(),
            _ => String::new(),
        };
        let lang = conv.language;
        let text = self.templates.render(
            "thanks",
            lang,
            &[
                ("name", &conv.customer_name),
                ("product", &order.product),
                ("price", &order.price.to_string()),
                ("account", &account),
                ("order_ref", order.order_ref.as_str()),
            ],
        );
        match self.send(conv, &text, Author::Assistant, None, Some("thanks"), &[order.id]).await? {
            Sent::Delivered(_) => info!(order_ref = %order.order_ref, %account, "thanked the customer"),
            other => warn!(order_ref = %order.order_ref, outcome = ?other, "could not thank the customer"),
        }
        Ok(())
    }

    // ---- a customer's message ------------------------------------------------

    /// A private message from a customer. Stored first; then, by the
    /// dialogue's state: an account ID for their awaiting orders, a question,
    /// or a message for the moderator who has their case. Never a command.
    pub async fn on_customer_message(&self, m: &Message) -> Result<()> {
        let Some(customer) = m.sender_id else { return Ok(()) };
        let span = info_span!("customer_message", customer, message = m.id);
        async move {
            let now = now_ms();
            let conv = match self.store.conversation_for_customer(customer).await? {
                Some(c) => c,
                None => {
                    let name = self.store.customer_name(customer).await?.unwrap_or_else(|| format!("user {customer}"));
                    let lang = Language::detect(&m.text).unwrap_or(self.cfg.default_language);
                    self.store.open_conversation(customer, &name, lang, now).await?
                }
            };
            let stored = self
                .store
                .record_conversation_message(&NewConversationMessage {
                    conversation_id: conv.id,
                    at: now,
                    direction: Direction::In,
                    author: Author::Customer,
                    author_id: Some(customer),
                    text: m.text.clone(),
                    template: None,
                    telegram: Some((m.chat_id, m.id)),
                    order_ids: vec![],
                })
                .await?;
            let Some(row) = stored else { return Ok(()) };
            if let Some(lang) = Language::detect(&m.text).filter(|l| *l != conv.language) {
                self.store.set_conversation_language(conv.id, lang).await?;
            }
            let conv = self.store.conversation(conv.id).await?;
            let mut awaiting = Vec::new();
            for link in self.store.conversation_orders(conv.id).await? {
                if link.status == LinkStatus::Awaiting {
                    let order = self.store.order(link.order_id).await?;
                    if order.state == OrderState::NeedsCustomer {
                        awaiting.push(order);
                    }
                }
            }
            let case_open = match conv.state {
                DialogueState::WithModerator { case_id, .. } => {
                    self.store.case(case_id).await?.is_some_and(|c| c.status == CaseStatus::Open)
                }
                _ => false,
            };
            let extraction = self.pattern.extract(&m.text);
            let facts = Facts { awaiting: !awaiting.is_empty(), case_open, ..Facts::default() };
            let event = Event::Wrote { extraction: extraction.clone(), facts };
            let order_ids: Vec<i64> = awaiting.iter().map(|o| o.id).collect();
            // Only `TakeAccount` changes the state, and it persists it itself
            // once an order took the ID.
            let mut to_team = ToTeam(false);
            for effect in step(&conv.state, &event, now, self.timers()).effects {
                match effect {
                    Effect::TakeAccount(id) => self.take_account(&conv, &awaiting, id).await?,
                    Effect::AskWhichOne(ids) => {
                        let list = ids.iter().map(AccountId::as_str).collect::<Vec<_>>().join(", ");
                        let text = self.templates.render("ask_again_several", conv.language, &[("candidates", &list)]);
                        let sent = self
                            .send(&conv, &text, Author::Assistant, None, Some("ask_again_several"), &order_ids)
                            .await?;
                        self.after_reply(&conv, &order_ids, sent).await?;
                    }
                    Effect::AskAgain => {
                        // "I passed it to the team" only when a person has it
                        // (the question effect comes first); an answered,
                        // kept or queued question was not passed to anyone.
                        let template = if to_team.0 { "ask_again_none_forwarded" } else { "ask_again_none" };
                        let text = self.templates.render(template, conv.language, &[]);
                        let sent = self.send(&conv, &text, Author::Assistant, None, Some(template), &order_ids).await?;
                        self.after_reply(&conv, &order_ids, sent).await?;
                    }
                    Effect::Question { acknowledge } => {
                        to_team = self.question(&conv, &m.text, row, acknowledge).await?;
                    }
                    Effect::ToCase { case_id } => {
                        if let Some(case) = self.store.case(case_id).await? {
                            self.to_open_case(&conv, &case, &m.text, extraction.clone()).await?;
                        }
                    }
                    Effect::Ask | Effect::Remind | Effect::EscalateSilent => {
                        unreachable!("a customer's message never moves a timer (contact::step)")
                    }
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// The customer's account ID for their awaiting orders (only theirs:
    /// the dialogue holds only orders whose customer is this user).
    async fn take_account(&self, conv: &ConversationRecord, awaiting: &[OrderRecord], id: AccountId) -> Result<()> {
        let now = now_ms();
        let mut given = 0;
        for order in awaiting {
            let note = format!("the customer sent account ID {id} in the chat; asking the backend");
            match self
                .store
                .give_account(order.id, OrderState::NeedsCustomer, &id, Some(LinkStatus::Validating), &note)
                .await
            {
                Ok(()) => {
                    info!(order_ref = %order.order_ref, account = %id, "the customer gave an account ID");
                    self.wake_orders();
                    given += 1;
                }
                Err(StoreError::StateChanged { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if given > 0 {
            self.store.set_dialogue_state(conv.id, &DialogueState::Validating { account: id, since: now }, now).await?;
        }
        Ok(())
    }

    /// A message while a moderator has the customer's case: a late account
    /// ID for an order that was waiting for one is taken, unless the
    /// backend refused three of this customer's IDs for it already;
    /// anything else is relayed to the moderator on the case (coalesced).
    async fn to_open_case(
        &self,
        conv: &ConversationRecord,
        case: &CaseRecord,
        text: &str,
        extraction: AccountExtraction,
    ) -> Result<()> {
        let mut note = None;
        if let (AccountExtraction::Found(id), Some(order_id)) = (&extraction, case.order_id) {
            let order = self.store.order(order_id).await?;
            let link = self.store.order_link(order_id).await?.filter(|l| l.conversation_id == conv.id);
            if let (Some(link), OrderState::Escalated, None) = (&link, order.state, &case.pending_account) {
                if link.rejections >= MAX_REJECTIONS {
                    note = Some(format!(
                        "not activated: the backend refused {} IDs from this customer already; reply with the ID \
                         to activate it",
                        link.rejections
                    ));
                } else {
                    let note =
                        format!("the customer sent account ID {id} after the case was opened; asking the backend");
                    match self
                        .store
                        .give_account(order_id, OrderState::Escalated, id, Some(LinkStatus::Validating), &note)
                        .await
                    {
                        Ok(()) => {
                            self.wake_orders();
                            let now = now_ms();
                            let state = DialogueState::Validating { account: id.clone(), since: now };
                            self.store.set_dialogue_state(conv.id, &state, now).await?;
                            let update =
                                format!("💬 {}: the customer sent account ID {id}; activating it.", case.short_id);
                            self.store.case_update(case.id, &update).await?;
                            self.flush_cards();
                            return Ok(());
                        }
                        // Moved meanwhile, or activated already (the account cannot change): the moderator reads it.
                        Err(StoreError::StateChanged { .. } | StoreError::AlreadyActivated { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        self.relay_to_case(conv, case, text, note.as_deref()).await
    }
}
