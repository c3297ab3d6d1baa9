//! Handing over: a question to the agent or a person, orders to a
//! moderator when the customer cannot finish them, and the texts that say
//! why we ask.

use tracing::{info, warn};

use super::{Contact, ContactError, Question, QuestionOutcome, Sent};
use crate::domain::{Author, DialogueState, EscalationReason, Language, LinkStatus, OrderState, Verdict};
use crate::runtime::clock::now_ms;
use crate::store::{ConversationRecord, Escalation, OrderRecord, StoreError, Transition};
use crate::telegram::MessengerError;

type Result<T> = std::result::Result<T, ContactError>;

impl Contact {
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
    pub(super) async fn after_reply(&self, conv: &ConversationRecord, order_ids: &[i64], sent: Sent) -> Result<()> {
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
            let first = order.escalation_reason.filter(|r| r.is_account_problem()).map(|r| r.explain());
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

    pub(super) fn ask_text(&self, conv: &ConversationRecord, orders: &[OrderRecord]) -> String {
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
    pub(super) fn problem(&self, order: &OrderRecord, account: Option<&str>, lang: Language) -> String {
        let name = match order.escalation_reason.filter(|r| r.is_account_problem()) {
            Some(reason) => reason.as_str(),
            None => EscalationReason::MissingAccount.as_str(),
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

pub(super) fn order_line(o: &OrderRecord, lang: Language) -> String {
    match lang {
        Language::Ru => format!("• {} — {} (платёж {})", o.product, o.price, o.order_ref),
        Language::En => format!("• {} — {} (payment {})", o.product, o.price, o.order_ref),
    }
}

pub(super) fn order_lines(orders: &[OrderRecord], lang: Language) -> String {
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
