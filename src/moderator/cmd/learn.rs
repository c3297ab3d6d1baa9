//! `/learn`: a moderator's answer becomes an approved question/answer pair
//! of the knowledge base, in two steps.
//!
//! 1. `/learn` (or 👍) in reply to a case card, or `/learn G<n>` for a
//!    content gap the report listed, answers with a **preview**: the whole
//!    question and the whole answer, redacted, exactly as they would be
//!    stored. The preview is kept in the store (`learn_previews`); nothing
//!    is approved yet.
//! 2. `/learn yes` (or `/learn`, or 👍) in reply to that preview stores its
//!    pair in `approved_pairs` and adds it to the knowledge base. What is
//!    stored is the preview's text, not the conversation read again: what
//!    the moderator saw is what is learned.
//!
//! Which pair. A customer must not choose which of their messages becomes
//! FAQ text, so the question is never "the customer's last message":
//!
//! - On a case: the customer message the case was opened for. A question
//!   case records it when it is opened (`cases.question_message_id`, see
//!   `store::outbox::insert_card`): the contact task handles one message at
//!   a time and opens the case while handling it, so that is the message
//!   the agent escalated and the card shows, fixed before any moderator
//!   saw the case. It is the most precise anchor the store has: the agent
//!   turn of the question carries its text too, but not which message it
//!   was (and a question escalated without the agent, e.g. over the daily
//!   budget, has no turn), and a moderator's relayed answer does not record
//!   which chat message it replied to. Messages the customer sends later —
//!   before or after the moderator answered ("ignore that, the real answer
//!   is …") — are never the question. The answer is the first team answer
//!   sent to the customer after that question: the one that replied to it
//!   (the same rule as a content gap's pair). A case about an order or a
//!   payment was not opened for a question and has nothing to learn.
//! - `/learn G<n>`: only a gap the report listed with its `/learn G<n>`
//!   command (`listed_gaps`, written when the report lists it); its pair is
//!   the one the report suggested: the escalated question of agent turn `n`
//!   and the first answer a moderator sent the customer after it.
//!
//! Redaction: both texts pass through the knowledge base's redactor
//! (e-mails, cards, phones, @usernames, account IDs, the configured account
//! pattern) after every name the customer is known by (the conversation's
//! name, the names and usernames on their orders) is replaced by `[NAME]`.
//! Moderators are known to the desk only by their Telegram user id, so a
//! moderator's name typed into an answer is not recognised as one.

use tracing::{info, warn};

use super::Command;
use crate::domain::{Author, Direction};
use crate::export::model::REDACTED_NAME;
use crate::export::reader::{customer_names, replace_word};
use crate::knowledge::Redactor;
use crate::moderator::sizing::{self, utf16_len, TELEGRAM_LIMIT};
use crate::moderator::{ModeratorDesk, Result};
use crate::moderator::{LEARN_RETRY, LEARN_RETRY_MAX};
use crate::runtime::backoff::{self, Jitter};
use crate::runtime::clock::now_ms;
use crate::store::{AnswerLink, ApprovedPair, CaseRecord, LearnPreview, NewApprovedPair, NewLearnPreview};
use crate::telegram::{Message, UserId};

/// Where `/learn yes` goes.
pub(in crate::moderator) const CONFIRM_WHERE: &str =
    "/learn yes confirms a /learn preview: reply with it to the preview \
                                        (the answer to /learn on a case card or to /learn G<n>).";
pub(in crate::moderator) const USAGE: &str =
    "Use /learn (or 👍) in reply to a case card, /learn G<n> for a content gap of \
                                /report, and /learn yes in reply to the preview either shows.";
const CONFIRM: &str = "Nothing is stored yet. Reply to this message with /learn yes (or 👍) to add exactly this \
                       pair to the knowledge base; names and personal details are already replaced.";
/// Room a preview part keeps for its header and the confirmation line.
const PART_FRAME: usize = 400;

/// `/learn`, `/learn G<n>`, `/learn yes` (or `да`); anything else is a usage error.
pub(super) fn parse(arg: String) -> Command {
    match crate::report::gaps::parse_gap_id(&arg) {
        Some(turn) => Command::LearnGap(turn),
        None if arg.is_empty() => Command::Learn,
        None if ["yes", "да"].contains(&arg.to_lowercase().as_str()) => Command::LearnYes,
        None => Command::LearnUsage(arg),
    }
}

impl ModeratorDesk {
    /// `/learn` (or 👍) on a case: previews the question the case was opened
    /// for and the first team answer after it (see the module comment).
    pub(in crate::moderator) async fn learn(&self, m: &Message, from: UserId, case: &CaseRecord) -> Result<()> {
        let store = &self.store;
        let id = &case.short_id;
        self.audit(m, from, Some(case), "learn", &format!("preview {id}"), true).await?;
        let (Some(question_id), Some(conversation_id)) =
            (store.case_question_message(case.id).await?, case.conversation_id)
        else {
            let text = format!(
                "{id} was not opened for a customer's question, so there is nothing to learn from it. \
                 /learn works on question cases (❓) and on content gaps the report lists (/learn G<n>)."
            );
            self.answer(m, &text).await?;
            return Ok(());
        };
        let conv = store.conversation(conversation_id).await?;
        let messages = store.conversation_messages(conv.id).await?;
        let question = messages.iter().find(|x| x.id == question_id);
        let answer = messages
            .iter()
            .find(|x| x.id > question_id && x.author == Author::Moderator && x.direction == Direction::Out);
        let (Some(question), Some(answer)) = (question, answer) else {
            self.answer(
                m,
                &format!("{id}: nothing to learn yet — answer the customer first (reply to the card), then /learn."),
            )
            .await?;
            return Ok(());
        };
        let target = Target { case_id: Some(case.id), gap_turn_id: None, label: id.clone() };
        let lang = Some(conv.language.as_str().to_owned());
        self.preview(m, from, conv.id, target, &question.text, &answer.text, lang).await
    }

    /// `/learn G<turn>`: previews a content gap's pair, if the report listed it.
    pub(in crate::moderator) async fn learn_gap(&self, m: &Message, from: UserId, turn: i64) -> Result<()> {
        let store = &self.store;
        self.audit(m, from, None, "learn", &format!("preview G{turn}"), true).await?;
        if !store.is_listed_gap(turn).await? {
            let text = format!(
                "G{turn} is not a content gap the report listed, so it cannot be approved. \
                 /report lists the current gaps, each with its /learn G… command."
            );
            self.answer(m, &text).await?;
            return Ok(());
        }
        let Some(found) = store.answered_questions(&[turn]).await?.into_iter().next() else {
            let text = format!(
                "G{turn}: no customer question with a moderator's answer. Answer the customer on the case first \
                 (reply to its card), then approve."
            );
            self.answer(m, &text).await?;
            return Ok(());
        };
        let target = Target { case_id: None, gap_turn_id: Some(turn), label: format!("G{turn}") };
        self.preview(m, from, found.conversation_id, target, &found.question, &found.answer, Some(found.language)).await
    }

    /// Redacts the pair, keeps it as a preview and shows it in the chat.
    #[allow(clippy::too_many_arguments)]
    async fn preview(
        &self,
        m: &Message,
        from: UserId,
        conversation_id: i64,
        target: Target,
        question: &str,
        answer: &str,
        language: Option<String>,
    ) -> Result<()> {
        let store = &self.store;
        let known = store.customer_names(conversation_id).await?;
        let names = customer_names(known.iter().map(String::as_str));
        let redactor = Redactor::new(self.pattern.custom_regex().cloned());
        let question = redact(question, &names, &redactor);
        let answer = redact(answer, &names, &redactor);
        let preview_id = store
            .add_learn_preview(&NewLearnPreview {
                conversation_id,
                case_id: target.case_id,
                gap_turn_id: target.gap_turn_id,
                question: question.clone(),
                answer: answer.clone(),
                language,
                asked_by: from,
            })
            .await?;
        // The last part is the preview a `/learn yes` replies to.
        let parts = preview_texts(&target.label, &question, &answer);
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.iter().enumerate() {
            let link = if i == last { AnswerLink::LearnPreview(preview_id) } else { AnswerLink::None };
            self.answer_linked(m, part, link).await?;
        }
        Ok(())
    }

    /// `/learn yes` (or `/learn`, 👍) in reply to a preview: stores its pair.
    pub(in crate::moderator) async fn confirm_learn(
        &self,
        m: &Message,
        from: UserId,
        preview: &LearnPreview,
    ) -> Result<()> {
        let store = &self.store;
        let case = match preview.case_id {
            Some(c) => store.case(c).await?,
            None => None,
        };
        let label = match (&case, preview.gap_turn_id) {
            (Some(c), _) => c.short_id.clone(),
            (None, Some(turn)) => format!("G{turn}"),
            (None, None) => format!("preview {}", preview.id),
        };
        self.audit(m, from, case.as_ref(), "approve", &label, true).await?;
        if preview.approved_pair_id.is_some() {
            self.answer(m, &format!("📚 {label}: this pair is approved already.")).await?;
            return Ok(());
        }
        let (pair_id, indexed) = self
            .approve(NewApprovedPair {
                conversation_id: preview.conversation_id,
                question: preview.question.clone(),
                answer: preview.answer.clone(),
                language: preview.language.clone(),
                approved_by: from,
            })
            .await?;
        store.mark_learn_preview_approved(preview.id, pair_id).await?;
        info!(what = %label, pair = pair_id, "moderator approved a pair for the knowledge base");
        self.answer(m, &format!("📚 {label}: answer approved{indexed}.")).await?;
        Ok(())
    }
}

/// What a preview approves, and how the chat names it (`C12`, `G5`).
struct Target {
    case_id: Option<i64>,
    gap_turn_id: Option<i64>,
    label: String,
}

/// `text` without the customer's names (whole words) and without the
/// personal details the redactor finds.
fn redact(text: &str, names: &[String], redactor: &Redactor) -> String {
    let mut s = text.to_owned();
    for name in names {
        s = replace_word(&s, name, REDACTED_NAME);
    }
    redactor.redact(&s)
}

/// The preview: one message when it fits, else parts that together show
/// every character of both texts; the last one asks for the confirmation.
fn preview_texts(label: &str, question: &str, answer: &str) -> Vec<String> {
    let body =
        format!("📚 {label}: add this pair to the knowledge base?\n\nQuestion:\n{question}\n\nAnswer:\n{answer}");
    let whole = format!("{body}\n\n{CONFIRM}");
    if utf16_len(&whole) <= TELEGRAM_LIMIT {
        return vec![whole];
    }
    let parts = sizing::pages(&body, TELEGRAM_LIMIT - PART_FRAME);
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let part = part.trim_end_matches('\n');
            let tail = if i + 1 == n { format!("\n\n{CONFIRM}") } else { String::new() };
            format!("📄 {label} · part {}/{n}\n{part}{tail}", i + 1)
        })
        .collect()
}

/// Approved pairs into the knowledge base, with retries.
impl ModeratorDesk {
    /// Stores an approved pair and adds it to the knowledge base; returns
    /// its id and says how far it got.
    pub(in crate::moderator) async fn approve(&self, pair: NewApprovedPair) -> Result<(i64, &'static str)> {
        let pair = self.store.add_approved_pair(&pair).await?;
        let indexed = match &self.learner {
            Some(_) if self.index_pair(&pair, 0).await? => " and added to the knowledge base",
            Some(_) => "; indexing failed for now, it is retried until the knowledge base has it",
            None => "; `kb ingest --conversations` adds it to the knowledge base",
        };
        Ok((pair.id, indexed))
    }

    /// Adds an approved pair to the knowledge base; on failure it stays a
    /// work item in the store, retried with backoff by [`Self::index_due_pairs`].
    pub(in crate::moderator) async fn index_pair(&self, pair: &ApprovedPair, attempts: i64) -> Result<bool> {
        let Some(learner) = &self.learner else { return Ok(false) };
        let store = &self.store;
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
        for (pair, attempts) in self.store.pairs_to_index(now_ms(), 10).await? {
            if self.index_pair(&pair, attempts).await? {
                info!(pair = pair.id, "an approved pair reached the knowledge base on a retry");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_customers_name_phone_and_card_are_redacted() {
        let names = customer_names(["Мария Иванова", "maria_iv"].into_iter());
        let text = "Мария, позвоните +7 912 345-67-89 или оплатите картой 4111 1111 1111 1111; @maria_iv, Иванова М.";
        let out = redact(text, &names, &Redactor::default());
        for leak in ["Мария", "Иванова", "maria_iv", "912", "4111"] {
            assert!(!out.contains(leak), "{leak} leaked: {out}");
        }
        assert!(out.contains(REDACTED_NAME) && out.contains("[PHONE]") && out.contains("[CARD]"), "{out}");
        // Only whole words: a longer word that starts with the name stays.
        assert_eq!(redact("Марияна", &names, &Redactor::default()), "Марияна");
    }

    #[test]
    fn a_long_pair_is_shown_whole_in_parts_within_the_limit() {
        let question = "вопрос ".repeat(300);
        let answer = (0..900).map(|i| format!("слово{i}")).collect::<Vec<_>>().join(" ");
        let parts = preview_texts("C7", &question, &answer);
        assert!(parts.len() >= 2, "{}", parts.len());
        assert!(parts.iter().all(|p| utf16_len(p) <= TELEGRAM_LIMIT));
        assert!(parts.last().unwrap().ends_with(CONFIRM));
        assert!(parts[..parts.len() - 1].iter().all(|p| !p.contains("/learn yes")));
        let flat: String = parts.iter().map(|p| p.split_once('\n').unwrap().1).collect::<Vec<_>>().join("\n");
        let flat = flat.replace(['\n', ' '], "");
        for text in [&question, &answer] {
            assert!(flat.contains(&text.replace(['\n', ' '], "")), "every character is shown");
        }
        let short = preview_texts("G5", "Есть скидки?", "Да, 10%.");
        assert_eq!(short.len(), 1);
        assert!(short[0].contains("Question:\nЕсть скидки?") && short[0].contains("Answer:\nДа, 10%."), "{}", short[0]);
    }
}
