//! The dialogue itself: what a customer's message does in each state, and
//! what the periodic tick does (adopt orders, ask, remind, time out, thank).

use tracing::{info, info_span, warn, Instrument};

use super::step::{step, Effect, Event, Facts, Step, Timers};
use super::{Contact, ContactError, Question, QuestionOutcome, Sent};
use crate::domain::{
    AccountId, Author, DialogueState, Direction, EscalationReason, Language, LinkStatus, OrderState, Verdict,
};
use crate::runtime::clock::now_ms;
use crate::store::{
    AccountStatus, CaseRecord, CaseStatus, ConversationOrder, ConversationRecord, Escalation, NewConversationMessage,
    OrderRecord, StoreError, Transition,
};
use crate::telegram::{Message, MessengerError};
use crate::tribute::AccountExtraction;

/// After this many refused account IDs from the customer, a person takes over.
pub const MAX_REJECTIONS: i64 = 3;

type Result<T> = std::result::Result<T, ContactError>;

impl Contact {
    // ---- the periodic tick ---------------------------------------------------

    /// Delivers waiting messages, adopts new `needs_customer` orders, moves
    /// the dialogues that are due or changed on (ask, remind, time out,
    /// thank) and closes cases whose order completed.
    pub async fn tick(&self) -> Result<()> {
        self.deliver_due().await?;
        self.adopt_orders().await?;
        for (conv, version) in self.store.conversations_to_look_at(now_ms()).await? {
            let span = info_span!("conversation", id = conv.id, customer = conv.customer_id);
            let (id, due) = (conv.id, self.advance(conv).instrument(span).await?);
            self.store.looked_at(id, version, due).await?;
        }
        self.close_completed_cases().await?;
        self.release_queued().await
    }

    /// After a restart: the first tick (what customers wrote while we were
    /// down reaches the inbox through the daemon's history re-read).
    pub async fn resume(&self) -> Result<()> {
        self.tick().await
    }

    async fn adopt_orders(&self) -> Result<()> {
        for id in self.store.orders_needing_customer().await? {
            let order = self.store.order(id).await?;
            let Some(customer) = order.customer_id else { continue };
            let link = self.store.order_link(id).await?;
            if let Some(case) = self.store.open_case_for_order(id).await? {
                if let Some(account) = case.pending_account.clone() {
                    self.moderator_account_refused(&order, &case, &account).await?;
                    continue;
                }
                if let Some(l) = link.as_ref().filter(|l| l.status == LinkStatus::Validating) {
                    self.late_account_refused(&order, &case, l).await?;
                    continue;
                }
            }
            if order.escalation_reason.as_deref() == Some(EscalationReason::AlreadyFulfilled.as_str()) {
                self.already_fulfilled(&order, customer, link).await?;
                continue;
            }
            match link {
                Some(l) if l.status == LinkStatus::Awaiting => {}
                Some(l) if l.status == LinkStatus::Validating => self.customer_account_refused(&order, &l).await?,
                _ => {
                    self.link_to_dialogue(&order, customer).await?;
                }
            }
        }
        Ok(())
    }

    /// Opens (or finds) the customer's dialogue and links the order to it,
    /// with why we need them.
    async fn link_to_dialogue(&self, order: &OrderRecord, customer: i64) -> Result<ConversationRecord> {
        let now = now_ms();
        let lang = Language::detect(&format!("{} {}", order.customer_name, order.details))
            .unwrap_or(self.cfg.default_language);
        let conv = self.store.open_conversation(customer, &order.customer_name, lang, now).await?;
        let reason = order.escalation_reason.clone().unwrap_or_else(|| "missing_account".to_owned());
        self.store.link_order(conv.id, order.id, &reason, now).await?;
        info!(order_ref = %order.order_ref, conversation = conv.id, "order handed to the customer dialogue");
        Ok(conv)
    }

    /// The backend says the account already received this product for an
    /// earlier payment: most likely the customer paid twice. Asking for the
    /// ID again cannot help (it is right), so a person takes the order, and
    /// the customer is told what happened instead of "maybe a typo".
    /// Escalated first: a crash in between costs the customer's notice,
    /// never a second one, and the moderator has the case either way.
    async fn already_fulfilled(
        &self,
        order: &OrderRecord,
        customer: i64,
        link: Option<ConversationOrder>,
    ) -> Result<()> {
        let conv = match link {
            Some(l) => self.store.conversation(l.conversation_id).await?,
            None => self.link_to_dialogue(order, customer).await?,
        };
        let account = order.account_candidates().first().map(|a| a.to_string()).unwrap_or_default();
        let detail = format!("account {account}; the customer is told it looks like a second payment");
        self.escalate_orders(&conv, &[order.id], EscalationReason::AlreadyFulfilled, &detail).await?;
        let line = order_line(order, conv.language);
        let vars = [("name", conv.customer_name.as_str()), ("account", account.as_str()), ("orders", line.as_str())];
        let text = self.templates.render("already_fulfilled", conv.language, &vars);
        match self.send(&conv, &text, Author::Assistant, None, Some("already_fulfilled"), &[order.id]).await? {
            Sent::Delivered(_) | Sent::Queued(_) => info!(order_ref = %order.order_ref, "told the customer"),
            other => {
                warn!(order_ref = %order.order_ref, outcome = ?other, "could not tell the customer; the case has it")
            }
        }
        Ok(())
    }

    /// The backend refused the ID the customer gave: ask again, or after
    /// [`MAX_REJECTIONS`] hand it to a person.
    async fn customer_account_refused(&self, order: &OrderRecord, link: &ConversationOrder) -> Result<()> {
        let now = now_ms();
        let rejections = link.rejections + 1;
        self.store.set_link_status(order.id, LinkStatus::Awaiting, true, now).await?;
        let conv = self.store.conversation(link.conversation_id).await?;
        let account = link.account.clone().unwrap_or_default();
        warn!(order_ref = %order.order_ref, %account, rejections, "the backend refused the customer's account ID");
        if rejections >= MAX_REJECTIONS {
            let detail = format!("{rejections} IDs refused, the last {account}");
            self.escalate_orders(&conv, &[order.id], EscalationReason::AccountRejectedThrice, &detail).await?;
            // Escalated first: a crash in between costs the customer's
            // notice, never a second case.
            return self.tell_a_person_takes_over(&conv, order, &account).await;
        }
        let lang = conv.language;
        let problem = self.problem(order, Some(&account), lang);
        let text = self.templates.render(
            "id_rejected",
            lang,
            &[
                ("account", &account),
                ("problem", &problem),
                ("orders", &order_line(order, lang)),
                ("name", &conv.customer_name),
            ],
        );
        let state = match self.send(&conv, &text, Author::Assistant, None, Some("id_rejected"), &[order.id]).await? {
            Sent::Delivered(_) => DialogueState::AwaitingAccount { asked_at: now, reminded: false },
            // It waits in the store; the sweep delivers it.
            Sent::Queued(_) => DialogueState::AwaitingAccount { asked_at: now, reminded: false },
            other => {
                self.escalate_after_send(&conv, &[order.id], other).await?;
                return Ok(());
            }
        };
        self.store.set_dialogue_state(conv.id, &state, now).await?;
        Ok(())
    }

    /// The third refused ID: the customer is told that a person takes the
    /// order over, so they do not wait for an answer that never comes
    /// (`id_rejected_thrice`; we no longer ask for an ID).
    async fn tell_a_person_takes_over(
        &self,
        conv: &ConversationRecord,
        order: &OrderRecord,
        account: &str,
    ) -> Result<()> {
        let lang = conv.language;
        let problem = self.problem(order, Some(account), lang);
        let line = order_line(order, lang);
        let vars = [
            ("account", account),
            ("problem", problem.as_str()),
            ("orders", line.as_str()),
            ("name", conv.customer_name.as_str()),
        ];
        let text = self.templates.render("id_rejected_thrice", lang, &vars);
        match self.send(conv, &text, Author::Assistant, None, Some("id_rejected_thrice"), &[order.id]).await? {
            Sent::Delivered(_) | Sent::Queued(_) => {
                info!(order_ref = %order.order_ref, "told the customer a person takes over")
            }
            other => {
                warn!(order_ref = %order.order_ref, outcome = ?other, "could not tell the customer; the case has it")
            }
        }
        Ok(())
    }

    /// The backend refused an ID a moderator gave: back to the moderator.
    async fn moderator_account_refused(&self, order: &OrderRecord, case: &CaseRecord, account: &str) -> Result<()> {
        let why = order.escalation_reason.as_deref().unwrap_or("refused");
        let note = format!("the backend refused account ID {account} from the moderator ({why})");
        match self
            .store
            .transition(order.id, OrderState::NeedsCustomer, Transition::to(OrderState::Escalated, note))
            .await
        {
            Ok(()) | Err(StoreError::StateChanged { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.set_case_pending_account(case.id, None).await?;
        if self.store.order_link(order.id).await?.is_some() {
            self.store.set_link_status(order.id, LinkStatus::Moderator, false, now_ms()).await?;
        }
        let text = format!(
            "❌ {}: the backend refused account ID {account} ({why}). Reply with another ID, /reject <reason> or /done.",
            case.short_id
        );
        self.store.case_update(case.id, &text).await?;
        self.flush_cards();
        Ok(())
    }

    /// The backend refused an account ID the customer sent while a
    /// moderator had the order's case: the order goes back to that case
    /// (an order never has two open cases), and the refusal counts against
    /// the same three strikes as the IDs refused before the case. Below
    /// them the customer is asked for another ID (it reaches the case like
    /// the last one); at them, the customer's IDs are no longer taken.
    async fn late_account_refused(
        &self,
        order: &OrderRecord,
        case: &CaseRecord,
        link: &ConversationOrder,
    ) -> Result<()> {
        let now = now_ms();
        let account = link.account.clone().unwrap_or_default();
        let why = order.escalation_reason.as_deref().unwrap_or("refused");
        let note =
            format!("the backend refused account ID {account} the customer sent ({why}); back to {}", case.short_id);
        match self.store.back_to_case(order.id, &note).await {
            Ok(()) => {}
            Err(StoreError::StateChanged { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let conv = self.store.conversation(link.conversation_id).await?;
        self.store
            .set_dialogue_state(conv.id, &DialogueState::WithModerator { case_id: case.id, since: now }, now)
            .await?;
        let strikes = link.rejections + 1;
        warn!(order_ref = %order.order_ref, %account, strikes, case = %case.short_id, "the backend refused a late account ID");
        let next = if strikes < MAX_REJECTIONS {
            "the customer is asked for another"
        } else {
            "so the customer's IDs are no longer taken"
        };
        let text = format!(
            "❌ {}: the backend refused account ID {account} the customer sent ({why}); {strikes} of {MAX_REJECTIONS} \
             refused, {next}. Reply with an ID, /reject <reason> or /done.",
            case.short_id
        );
        self.store.case_update(case.id, &text).await?;
        self.flush_cards();
        if strikes < MAX_REJECTIONS {
            let lang = conv.language;
            let problem = self.problem(order, Some(&account), lang);
            let vars = [
                ("account", account.as_str()),
                ("problem", problem.as_str()),
                ("orders", &order_line(order, lang)),
                ("name", conv.customer_name.as_str()),
            ];
            let text = self.templates.render("id_rejected", lang, &vars);
            // The moderator has the case whatever becomes of this message.
            let sent = self.send(&conv, &text, Author::Assistant, None, Some("id_rejected"), &[order.id]).await?;
            info!(outcome = ?sent, "told the customer their late account ID was refused");
        } else {
            self.tell_a_person_takes_over(&conv, order, &account).await?;
        }
        Ok(())
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

    async fn close_completed_cases(&self) -> Result<()> {
        let mut closed = false;
        for case in self.store.open_cases_of_confirmed_orders().await? {
            let Some(order_id) = case.order_id else { continue };
            let order = self.store.order(order_id).await?;
            let account = order.account_candidates().first().map(|a| a.to_string()).unwrap_or_default();
            let outcome = format!("completed: {} activated for account {account}", order.product);
            let text = format!(
                "✅ {}: completed. {} ({}) activated for account {account}; the Tribute reply was sent and Send pressed.",
                case.short_id, order.product, order.price
            );
            closed |= self.store.close_case(case.id, &outcome, &text).await?;
            info!(case = %case.short_id, "case closed: its order completed");
        }
        if closed {
            self.flush_cards();
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

    /// Hands a message to the question handler (the agent's seam) and acts
    /// on its decision. `acknowledge`: tell the customer their question was
    /// passed on when a new case is opened for it. Only through
    /// [`Contact::question`]'s account-wide budget.
    pub(super) async fn ask_handler(
        &self,
        conv: &ConversationRecord,
        text: &str,
        row: i64,
        acknowledge: bool,
    ) -> Result<ToTeam> {
        let q = Question {
            conversation_id: conv.id,
            customer_id: conv.customer_id,
            text: text.to_owned(),
            language: conv.language,
            message_id: row,
        };
        let outcome = match self.questions.on_question(&q).await {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "the question handler failed; the moderator gets the question");
                QuestionOutcome::Escalate(Verdict::because(format!("the question handler failed: {e:#}")))
            }
        };
        let verdict = match outcome {
            QuestionOutcome::Answer(answer) => match self.send(conv, &answer, Author::Agent, None, None, &[]).await? {
                // Queued: the sweep delivers it, or hands the question over if it cannot.
                Sent::Delivered(_) | Sent::Queued(_) => return Ok(ToTeam(false)),
                other => Verdict::because(format!("the agent's answer could not be sent: {other:?}")),
            },
            QuestionOutcome::Escalate(verdict) => verdict,
            QuestionOutcome::Defer { why } => {
                info!(%why, "question kept in the conversation without an answer");
                return Ok(ToTeam(false));
            }
        };
        self.escalate_question(conv, OnCase::Wrote(text), &verdict, acknowledge).await?;
        Ok(ToTeam(true))
    }

    /// A question for a person: `on_case` goes to the conversation's open
    /// question case, or a new case is opened. `acknowledge`: tell the
    /// customer their question was passed on when a new case is opened.
    pub(super) async fn escalate_question(
        &self,
        conv: &ConversationRecord,
        on_case: OnCase<'_>,
        verdict: &Verdict,
        acknowledge: bool,
    ) -> Result<()> {
        if let Some(case) = self.store.open_question_case(conv.id).await? {
            match on_case {
                OnCase::Wrote(text) => self.relay_to_case(conv, &case, text, None).await?,
                OnCase::Notice(notice) => self.store.case_update(case.id, &notice(&case.short_id)).await?,
            }
        } else {
            let case = self.store.open_case(&Escalation::question(conv.id, verdict)).await?;
            info!(case, "question case opened for the moderator");
            if acknowledge {
                let ack = self.templates.render("question_forwarded", conv.language, &[]);
                let _ = self.send(conv, &ack, Author::Assistant, None, Some("question_forwarded"), &[]).await?;
            }
        }
        self.flush_cards();
        Ok(())
    }

    /// After a reply in the dialogue: a refused send hands the orders over.
    async fn after_reply(&self, conv: &ConversationRecord, order_ids: &[i64], sent: Sent) -> Result<()> {
        match sent {
            Sent::Delivered(_) | Sent::Queued(_) => Ok(()),
            other => self.escalate_after_send(conv, order_ids, other).await,
        }
    }

    // ---- sending and escalating --------------------------------------------

    pub(super) async fn escalate_after_send(
        &self,
        conv: &ConversationRecord,
        order_ids: &[i64],
        sent: Sent,
    ) -> Result<()> {
        match self.undelivered_reason(&sent) {
            Some((reason, detail)) => self.escalate_orders(conv, order_ids, reason, &detail).await,
            None => Ok(()),
        }
    }

    /// Hands orders waiting for this customer to the moderator: one case
    /// each (card with the conversation so far), committed with the order's
    /// transition to `escalated`.
    pub async fn escalate_orders(
        &self,
        conv: &ConversationRecord,
        order_ids: &[i64],
        reason: EscalationReason,
        detail: &str,
    ) -> Result<()> {
        let now = now_ms();
        let mut last_case = None;
        for &id in order_ids {
            let order = self.store.order(id).await?;
            if order.state != OrderState::NeedsCustomer {
                continue;
            }
            // Why we had to ask in the first place, so the card tells the whole story.
            let first = order.escalation_reason.as_deref().and_then(account_problem).map(|r| r.explain());
            let detail = match first {
                Some(first) => format!("{detail}; we had asked because {first}"),
                None => detail.to_owned(),
            };
            let card = Escalation::order(id, reason, &detail);
            let mut t = Transition::to(
                OrderState::Escalated,
                format!("escalated to the moderator: {} ({detail})", reason.explain()),
            );
            t.escalation = Some(card);
            match self.store.transition(id, OrderState::NeedsCustomer, t).await {
                Ok(()) => {}
                Err(StoreError::StateChanged { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
            self.store.set_link_status(id, LinkStatus::Moderator, false, now).await?;
            warn!(order_ref = %order.order_ref, %reason, detail, "order handed to the moderator");
            last_case = self.store.open_case_for_order(id).await?.map(|c| c.id);
        }
        if let Some(case_id) = last_case {
            self.store.set_dialogue_state(conv.id, &DialogueState::WithModerator { case_id, since: now }, now).await?;
        }
        self.flush_cards();
        Ok(())
    }

    // ---- texts -----------------------------------------------------------------

    fn ask_text(&self, conv: &ConversationRecord, orders: &[OrderRecord]) -> String {
        let lang = conv.language;
        let mut problems: Vec<String> = Vec::new();
        for o in orders {
            let p = self.problem(o, None, lang);
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
        self.templates.render(
            "ask_account",
            lang,
            &[("name", &conv.customer_name), ("orders", &order_lines(orders, lang)), ("problem", &problems.join("\n"))],
        )
    }

    /// Why we need the account, in the customer's language.
    fn problem(&self, order: &OrderRecord, account: Option<&str>, lang: Language) -> String {
        let reason = order.escalation_reason.as_deref().unwrap_or("missing_account");
        let name = match reason {
            "ambiguous_account" | "no_pending_order" | "unknown_account" => reason,
            _ => "missing_account",
        };
        let candidates = order.account_candidates().iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
        let account = account.map(str::to_owned).unwrap_or_else(|| candidates.clone());
        self.templates.render(&format!("problem_{name}"), lang, &[("candidates", &candidates), ("account", &account)])
    }
}

/// Whether a customer's question reached a person (a question case, new
/// or open): only then may we tell them we passed it to the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ToTeam(pub bool);

/// What an open question case gets when a question goes to a person.
pub(super) enum OnCase<'a> {
    /// The customer's own words: relayed, coalesced at a bounded rate.
    Wrote(&'a str),
    /// A notice of ours, given the case's short id.
    Notice(&'a (dyn Fn(&str) -> String + Sync)),
}

/// The account problems the contact flow asks customers about.
fn account_problem(reason: &str) -> Option<EscalationReason> {
    [
        EscalationReason::MissingAccount,
        EscalationReason::AmbiguousAccount,
        EscalationReason::NoPendingOrder,
        EscalationReason::UnknownAccount,
    ]
    .into_iter()
    .find(|r| r.as_str() == reason)
}

fn order_line(o: &OrderRecord, lang: Language) -> String {
    match lang {
        Language::Ru => format!("• {} — {} (платёж {})", o.product, o.price, o.order_ref),
        Language::En => format!("• {} — {} (payment {})", o.product, o.price, o.order_ref),
    }
}

fn order_lines(orders: &[OrderRecord], lang: Language) -> String {
    orders.iter().map(|o| order_line(o, lang)).collect::<Vec<_>>().join("\n")
}

/// The reason a moderator reads when we could not write to a customer.
pub fn unreachable_reason(e: &MessengerError) -> String {
    match e {
        MessengerError::PrivacyRestricted => {
            "the customer's privacy settings forbid our messages (PRIVACY_RESTRICTED)".into()
        }
        MessengerError::UserBlocked => "the customer blocked our account (USER_IS_BLOCKED)".into(),
        MessengerError::PeerFlood => "Telegram does not let us write to new people for now (PEER_FLOOD)".into(),
        MessengerError::UserDeactivated => "the customer's Telegram account is deleted (USER_DEACTIVATED)".into(),
        other => format!("Telegram refused the message: {other}"),
    }
}
