//! What an order's move means for its customer: the contact task takes
//! the dialogue events the order's transitions wrote (`needs_customer`,
//! `completed`; `store::dialogue_events`) and acts on each: adopt the order
//! into the customer's dialogue, send a refused ID back to whoever gave it,
//! close the case of a completed order. Each handler re-reads the order and
//! does nothing when it moved on, so an event handled twice does no harm.

use std::time::Duration;

use tracing::{info, info_span, warn, Instrument};

use super::escalate::order_line;
use super::step::{returned, OpenCase, Return, Returned};
use super::{Contact, ContactError, Sent, MAX_REJECTIONS};
use crate::domain::{Author, DialogueState, EscalationReason, Language, LinkStatus, OrderState};
use crate::runtime::backoff::{self, Jitter};
use crate::runtime::clock::now_ms;
use crate::store::{
    CaseRecord, ConversationOrder, ConversationRecord, DialogueEvent, DialogueEventKind, OrderRecord, StoreError,
    Transition,
};

type Result<T> = std::result::Result<T, ContactError>;

/// Events taken per pass; the rest wait for the next pass.
const EVENT_BATCH: i64 = 50;
/// A failed event is retried after this, doubling up to [`EVENT_RETRY_LAST`].
const EVENT_RETRY_FIRST: Duration = Duration::from_secs(1);
const EVENT_RETRY_LAST: Duration = Duration::from_secs(300);

impl Contact {
    /// Acts on every due order event; a failed one is retried with backoff
    /// (its error on its row), so one bad order never stops the others.
    pub(super) async fn take_order_events(&self) -> Result<()> {
        for event in self.store.due_dialogue_events(now_ms(), EVENT_BATCH).await? {
            let span = info_span!("order_event", order = event.order_id, kind = event.kind.as_str());
            match self.on_order_event(&event).instrument(span).await {
                Ok(()) => self.store.dialogue_event_handled(event.id).await?,
                Err(e) => {
                    let wait = backoff::delay(event.attempts, EVENT_RETRY_FIRST, EVENT_RETRY_LAST, Jitter::Spread);
                    warn!(order = event.order_id, error = %e, attempts = event.attempts + 1, "acting on an order's move failed; retried later");
                    self.store
                        .dialogue_event_failed(event.id, &e.to_string(), now_ms() + wait.as_millis() as i64)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn on_order_event(&self, event: &DialogueEvent) -> Result<()> {
        let order = self.store.order(event.order_id).await?;
        match event.kind {
            DialogueEventKind::NeedsCustomer if order.state == OrderState::NeedsCustomer => self.returned(&order).await,
            DialogueEventKind::Completed if order.state == OrderState::Confirmed => self.close_completed(&order).await,
            // Moved on since: what it became wrote its own event, if any.
            _ => Ok(()),
        }
    }

    /// An order came back to its customer: where it goes ([`returned`]).
    async fn returned(&self, order: &OrderRecord) -> Result<()> {
        let Some(customer) = order.customer_id else { return Ok(()) };
        let link = self.store.order_link(order.id).await?;
        let case = self.store.open_case_for_order(order.id).await?;
        let facts = Returned {
            reason: order.escalation_reason,
            link: link.as_ref().map(|l| l.status),
            case: case.as_ref().map(|c| OpenCase { pending_account: c.pending_account.is_some() }),
        };
        match (returned(&facts), case, link) {
            (Return::ModeratorIdRefused, Some(case), _) => {
                let account = case.pending_account.clone().unwrap_or_default();
                self.moderator_account_refused(order, &case, &account).await
            }
            (Return::LateIdRefused, Some(case), Some(link)) => self.late_account_refused(order, &case, &link).await,
            (Return::AlreadyFulfilled, _, link) => self.already_fulfilled(order, customer, link).await,
            (Return::CustomerIdRefused, _, Some(link)) => self.customer_account_refused(order, &link).await,
            (Return::AlreadyAsked, ..) => Ok(()),
            _ => self.link_to_dialogue(order, customer).await.map(|_| ()),
        }
    }

    /// Opens (or finds) the customer's dialogue and links the order to it,
    /// with why we need them.
    async fn link_to_dialogue(&self, order: &OrderRecord, customer: i64) -> Result<ConversationRecord> {
        let now = now_ms();
        let lang = Language::detect(&format!("{} {}", order.customer_name, order.details))
            .unwrap_or(self.cfg.default_language);
        let conv = self.store.open_conversation(customer, &order.customer_name, lang, now).await?;
        let reason = order.escalation_reason.unwrap_or(EscalationReason::MissingAccount);
        self.store.link_order(conv.id, order.id, reason, now).await?;
        info!(order_ref = %order.order_ref, conversation = conv.id, "order handed to the customer dialogue");
        Ok(conv)
    }

    /// The backend says the account already received this product for an
    /// earlier payment: most likely the customer paid twice. Asking for the
    /// ID again cannot help (it is right), so a person takes the order, and
    /// the customer is told what happened instead of "maybe a typo".
    /// Told first ([`Contact::notice_once`]), then escalated: a crash in
    /// between re-runs this from the order's event, which neither tells
    /// the customer twice nor loses the notice.
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
        let line = order_line(order, conv.language);
        let vars = [("name", conv.customer_name.as_str()), ("account", account.as_str()), ("orders", line.as_str())];
        let text = self.templates.render("already_fulfilled", conv.language, &vars);
        self.notice_once(&conv, order, "already_fulfilled", &text).await?;
        let detail = format!("account {account}; the customer is told it looks like a second payment");
        self.escalate_orders(&conv, &[order.id], EscalationReason::AlreadyFulfilled, &detail).await
    }

    /// The backend refused the ID the customer gave: ask again, or after
    /// [`MAX_REJECTIONS`] hand it to a person.
    async fn customer_account_refused(&self, order: &OrderRecord, link: &ConversationOrder) -> Result<()> {
        let now = now_ms();
        let rejections = link.rejections + 1;
        let conv = self.store.conversation(link.conversation_id).await?;
        let account = link.account.clone().unwrap_or_default();
        warn!(order_ref = %order.order_ref, %account, rejections, "the backend refused the customer's account ID");
        if rejections >= MAX_REJECTIONS {
            // Told, handed over, then counted: a crash in between re-runs
            // this from the order's event without a second notice or case.
            self.tell_a_person_takes_over(&conv, order, &account).await?;
            let detail = format!("{rejections} IDs refused, the last {account}");
            self.escalate_orders(&conv, &[order.id], EscalationReason::AccountRejectedThrice, &detail).await?;
            return Ok(self.store.set_link_status(order.id, LinkStatus::Moderator, true, now).await?);
        }
        self.store.set_link_status(order.id, LinkStatus::Awaiting, true, now).await?;
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
        self.notice_once(conv, order, "id_rejected_thrice", &text).await
    }

    /// Tells the customer `text` (`template`) about `order` unless a message
    /// of that template about it was written before: the handlers that tell
    /// and then hand the order over are re-run whole after a crash.
    async fn notice_once(
        &self,
        conv: &ConversationRecord,
        order: &OrderRecord,
        template: &str,
        text: &str,
    ) -> Result<()> {
        if self.store.customer_notice_written(conv.id, template, order.id).await? {
            info!(order_ref = %order.order_ref, template, "the customer was told already");
            return Ok(());
        }
        match self.send(conv, text, Author::Assistant, None, Some(template), &[order.id]).await? {
            Sent::Delivered(_) | Sent::Queued(_) => info!(order_ref = %order.order_ref, template, "told the customer"),
            other => {
                warn!(order_ref = %order.order_ref, template, outcome = ?other, "could not tell the customer; the case has it")
            }
        }
        Ok(())
    }

    /// The backend refused an ID a moderator gave: back to the moderator.
    async fn moderator_account_refused(&self, order: &OrderRecord, case: &CaseRecord, account: &str) -> Result<()> {
        let why = order.escalation_reason.map_or("refused", EscalationReason::as_str);
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
        let why = order.escalation_reason.map_or("refused", EscalationReason::as_str);
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

    /// An order with an open case completed (a moderator's ID, `/retry`,
    /// a late ID from the customer): the case closes with what happened.
    async fn close_completed(&self, order: &OrderRecord) -> Result<()> {
        let Some(case) = self.store.open_case_for_order(order.id).await? else { return Ok(()) };
        let account = order.account_candidates().first().map(|a| a.to_string()).unwrap_or_default();
        let outcome = format!("completed: {} activated for account {account}", order.product);
        let text = format!(
            "✅ {}: completed. {} ({}) activated for account {account}; the Tribute reply was sent and Send pressed.",
            case.short_id, order.product, order.price
        );
        if self.store.close_case(case.id, &outcome, &text).await? {
            info!(case = %case.short_id, "case closed: its order completed");
            self.flush_cards();
        }
        Ok(())
    }
}
