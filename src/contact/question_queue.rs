//! Questions beyond the account-wide budget ([`super::AccountBudget`]) wait
//! in the store and are released oldest first as the budget has room; the
//! moderators get one card per burst instead of one per sender.
//!
//! Why a queue and not a refusal: every question is someone's, and a
//! crowd (a post gone viral, a bot swarm) must cost a delay, not answers.
//! Why in the store: a restart resumes the queue where it was. Why one
//! question per pass: a question can be an agent turn of up to a minute,
//! and the contact task must get back to account IDs and moderators in
//! between (`Store::waiting_inbound`'s lanes).
//!
//! The burst card (`CardSubject::QuestionQueue`) opens with the first
//! queued question, shows the queue as it is when posted, gets at most one
//! summary follow-up per [`QUEUE_CARD_EVERY`] (the figures as of the last
//! question queued or released), and closes itself with the final figures
//! once the queue is empty.

use std::time::Duration;

use tracing::{info, warn};

use super::escalate::ToTeam;
use super::{Contact, ContactError};
use crate::domain::EscalationReason;
use crate::runtime::clock::now_ms;
use crate::store::{CardSubject, CaseRecord, CoalescedUpdate, ConversationRecord, Escalation, QueueFigures};

/// At most one summary of the queue per this long on the burst's card.
pub const QUEUE_CARD_EVERY: Duration = Duration::from_secs(300);
/// Handing a queued question over failed (a store error) this often: it
/// is released with the error, so it never blocks the queue behind it.
const RELEASE_ATTEMPTS: i64 = 3;
/// Wait before trying a question again whose hand-over failed.
const RELEASE_RETRY: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, ContactError>;

impl Contact {
    /// A customer's question: to the question handler now if the
    /// account-wide budget has room and nobody is queued before it (oldest
    /// first), else into the queue. `row`: its stored conversation message.
    /// Returns whether it reached a person now (a question case), so what
    /// we say next can be true.
    ///
    /// A queued question is always acknowledged when it reaches a case
    /// later: whatever we say now cannot promise it was passed on.
    pub(super) async fn question(
        &self,
        conv: &ConversationRecord,
        text: &str,
        row: i64,
        acknowledge: bool,
    ) -> Result<ToTeam> {
        let now = now_ms();
        let budget = &self.cfg.account_budget;
        if self.store.questions_waiting().await? == 0 && budget.next_room(&self.store, now).await?.is_none() {
            return self.ask_handler(conv, text, row, acknowledge).await;
        }
        self.store.queue_question(conv.id, row, true, now).await?;
        info!(conversation = conv.id, "question queued: the account's budget of agent turns or new cases is used up");
        self.queue_card().await?;
        Ok(ToTeam(false))
    }

    /// From [`Contact::run_due`]: hands the oldest due queued question to the question
    /// handler if the budget has room (else makes the queue due when it
    /// has), one per pass; closes the burst's card once the queue is empty.
    pub(super) async fn release_queued(&self) -> Result<()> {
        let now = now_ms();
        if let Some(q) = self.store.next_queued_question(now).await? {
            if let Some(room) = self.cfg.account_budget.next_room(&self.store, now).await? {
                return Ok(self.store.defer_queued_questions(room).await?);
            }
            let Some(text) = &q.text else {
                warn!(queued = q.id, "a queued question's message is no longer stored; dropped from the queue");
                return Ok(self.store.release_queued_question(q.id, now, Some("message no longer stored")).await?);
            };
            let handed = async {
                let conv = self.store.conversation(q.conversation_id).await?;
                self.ask_handler(&conv, text, q.message_id, q.acknowledge).await.map(|_| ())
            };
            match handed.await {
                Ok(()) => {
                    info!(queued = q.id, waited_ms = now - q.queued_at, "a queued question was released");
                    self.store.release_queued_question(q.id, now_ms(), None).await?;
                    if let Some(case) = self.store.open_queue_case().await? {
                        self.queue_summary(&case).await?;
                    }
                }
                Err(e) if q.attempts + 1 < RELEASE_ATTEMPTS => {
                    warn!(queued = q.id, error = %e, "a queued question could not be handed over; retrying it later");
                    let at = now_ms() + RELEASE_RETRY.as_millis() as i64;
                    self.store.retry_queued_question(q.id, &e.to_string(), at).await?;
                }
                Err(e) => {
                    warn!(queued = q.id, error = %e, "a queued question could not be handed over; given up");
                    self.store.release_queued_question(q.id, now_ms(), Some(&e.to_string())).await?;
                }
            }
            return Ok(());
        }
        if self.store.questions_waiting().await? == 0 {
            self.close_queue_card().await?;
        }
        Ok(())
    }

    /// The burst's card: opened with the first queued question, else a
    /// summary follow-up with the newest figures.
    async fn queue_card(&self) -> Result<()> {
        match self.store.open_queue_case().await? {
            None => {
                let card = Escalation {
                    reason: EscalationReason::QuestionsQueued,
                    subject: CardSubject::QuestionQueue,
                    detail: self.cfg.account_budget.describe(),
                };
                let case = self.store.open_case(&card).await?;
                warn!(case, "questions are queued: more than the account's budget at once; one card for the burst");
                self.flush_cards();
                Ok(())
            }
            Some(case) => self.queue_summary(&case).await,
        }
    }

    /// The queue's figures as they are now, on the burst's card: merged
    /// into the summary that waits, posted at most every [`QUEUE_CARD_EVERY`].
    async fn queue_summary(&self, case: &CaseRecord) -> Result<()> {
        let figures = self.store.queue_figures(case.opened_at).await?;
        let text = format!("⏳ {}: {}", case.short_id, queue_summary(&figures));
        let every = QUEUE_CARD_EVERY.as_millis() as i64;
        let update = CoalescedUpdate::Replace(&text);
        self.store.coalesced_case_update(case.id, update, every, case.opened_at + every).await?;
        self.flush_cards();
        Ok(())
    }

    async fn close_queue_card(&self) -> Result<()> {
        let Some(case) = self.store.open_queue_case().await? else { return Ok(()) };
        let f = self.store.queue_figures(case.opened_at).await?;
        let outcome = format!("the queue emptied: {} questions of {} senders taken", f.questions, f.senders);
        let text = format!("☑️ {}: the queue is empty: {}. Closed.", case.short_id, queue_summary_final(&f));
        if self.store.close_case_dropping_summaries(case.id, &outcome, &text).await? {
            info!(case = %case.short_id, questions = f.questions, senders = f.senders, "the question queue is empty");
            self.flush_cards();
        }
        Ok(())
    }
}

/// "37 senders in 10 min, 52 questions queued; 40 still waiting".
pub fn queue_summary(f: &QueueFigures) -> String {
    format!(
        "{} in {}, {} queued; {} still waiting",
        plural(f.senders, "sender"),
        span(f),
        plural(f.questions, "question"),
        f.waiting
    )
}

fn queue_summary_final(f: &QueueFigures) -> String {
    format!(
        "the questions of {} ({} in all, queued in {}) were all taken",
        plural(f.senders, "sender"),
        f.questions,
        span(f)
    )
}

/// How long the burst has lasted so far, in whole minutes (at least one).
fn span(f: &QueueFigures) -> String {
    let ms = match (f.first_at, f.last_at) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    let minutes = (ms + 59_999) / 60_000;
    plural(minutes.max(1), "minute")
}

fn plural(n: i64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
