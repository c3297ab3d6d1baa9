//! Moderator cards waiting to be posted (a transactional outbox).
//!
//! Every card opens a case (see `cases.rs`) in the same transaction; a
//! case's follow-ups (`kind = 'update'`) go through the same outbox and are
//! posted as replies to the case's card. The desk's answers to moderators'
//! messages (`kind = 'answer'`) go through it too, as replies to the message
//! they answer: an answer Telegram refused once (a flood wait, a dropped
//! link) is retried like a card instead of being lost.
//!
//! A card is stored as a typed [`Escalation`] (reason, what it is about, a
//! short detail), never as text: the desk renders it when it posts it
//! (`moderator::render`). Follow-ups are short texts and stored as such.
//!
//! The moderator desk (`moderator::outbox_worker`) posts the rows. Each row
//! carries its own retry state (`migrations/0006_desk_outbox.sql`): a due
//! time, the attempts so far and the last error, `parked_at` once Telegram
//! refused it for good, and the `random_id` drawn when it was stored and
//! reused on every retry, so a retry of a send that did go through cannot
//! post the card twice.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::case_ref::short_id;
use super::{Store, StoreError, StoreResult};
use crate::domain::EscalationReason;
use crate::runtime::clock::now_ms;
use crate::telegram::{ChatId, MessageId};

/// What a card is about: the desk reads it from the store to render the
/// card when it posts it (`moderator::render`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardSubject {
    /// An order: its record, raw Tribute text and conversation.
    Order(i64),
    /// A customer's conversation that is not about one order (a question case).
    Conversation(i64),
    /// A Tribute chat message that led to no order (malformed or not recognised).
    TributeMessage { chat_id: ChatId, message_id: MessageId },
    /// A Tribute purchase seen in webhooks, and its order once matched.
    Purchase { purchase_id: String, order_id: Option<i64> },
    /// A signed webhook body we could not read (its key in `tribute_webhook_events`).
    WebhookBody(String),
    /// A customer's or moderator's message the contact task could not
    /// handle (its row in `inbox`, quarantined).
    InboxMessage { chat_id: ChatId, message_id: MessageId },
    /// Orders held up by a failing backend or Telegram (a row of `outages`).
    Outage(i64),
    /// Questions waiting in the queue of the account-wide budget: one card
    /// per burst, showing the queue as it is (`queued_questions`).
    QuestionQueue,
}

impl CardSubject {
    /// The order the card's case is about.
    pub fn order_id(&self) -> Option<i64> {
        match self {
            CardSubject::Order(id) => Some(*id),
            CardSubject::Purchase { order_id, .. } => *order_id,
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            CardSubject::Order(_) => "order",
            CardSubject::Conversation(_) => "conversation",
            CardSubject::TributeMessage { .. } => "tribute_message",
            CardSubject::Purchase { .. } => "purchase",
            CardSubject::WebhookBody(_) => "webhook_body",
            CardSubject::InboxMessage { .. } => "inbox_message",
            CardSubject::Outage(_) => "outage",
            CardSubject::QuestionQueue => "question_queue",
        }
    }
}

/// A typed escalation: what callers commit with the state change that
/// causes it. No text: the desk renders the card from the store when it
/// posts it, so every card is written in one place and sized there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub reason: EscalationReason,
    pub subject: CardSubject,
    /// The specifics of the reason (e.g. "3 IDs refused, the last 123456"); may be empty.
    pub detail: String,
}

impl Escalation {
    /// An order handed to a person.
    pub fn order(order_id: i64, reason: EscalationReason, detail: impl Into<String>) -> Self {
        Self { reason, subject: CardSubject::Order(order_id), detail: detail.into() }
    }

    /// A customer's question no one automatic answered, and why.
    pub fn question(conversation_id: i64, verdict: &crate::domain::Verdict) -> Self {
        Self {
            reason: EscalationReason::CustomerQuestion,
            subject: CardSubject::Conversation(conversation_id),
            detail: verdict.to_detail(),
        }
    }
}

/// What an outbox row posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardBody {
    /// A card to render from the store when it is posted.
    Escalation(Escalation),
    /// Text as stored: follow-ups, and cards stored before migration 0011.
    Text(String),
}

#[derive(Debug, Clone)]
pub struct OutboxCard {
    pub id: i64,
    pub order_id: Option<i64>,
    pub reason: String,
    pub body: CardBody,
    pub posted_message_id: Option<MessageId>,
    /// The case this message belongs to.
    pub case_id: Option<i64>,
    /// What it is posted in reply to: for a follow-up the case's card, for
    /// a desk answer the moderator's message it answers.
    pub reply_to: Option<(ChatId, MessageId)>,
    /// `card` (the first message of a case), `update` (a follow-up) or
    /// `answer` (the desk answering a moderator's message).
    pub kind: String,
    pub created_at: i64,
    /// Failed posting attempts so far.
    pub attempts: u32,
    /// When it may be tried (again), unix ms; 0 = at once.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// Set when Telegram refused it for good; it is not tried again.
    pub parked_at: Option<i64>,
    /// Telegram's random_id for every attempt to post it.
    pub random_id: i64,
    /// For a follow-up whose card is not posted yet: when the card is due
    /// (`None` once the card is posted or parked).
    pub card_pending_until: Option<i64>,
    /// A card's text as rendered for its first attempt ([`Store::keep_card_text`]):
    /// every attempt sends exactly it. `None` before the first attempt (and
    /// for rows stored as text, whose body is their text).
    pub rendered: Option<String>,
}

impl OutboxCard {
    pub fn is_update(&self) -> bool {
        self.kind == "update"
    }

    /// The first message of a case (not a follow-up, not a desk answer).
    pub fn is_card(&self) -> bool {
        self.kind == "card"
    }
}

/// Stores a card and opens its case; returns the case id. An order has at
/// most one open case (the unique index `cases_one_open_per_order`): a card
/// about an order whose case is open becomes a follow-up on that case
/// instead, rendered like a card, and that case's id is returned.
pub(super) async fn insert_card(tx: &mut Transaction<'_, Sqlite>, card: &Escalation, now: i64) -> StoreResult<i64> {
    let order_id = card.subject.order_id();
    if let Some(open) = open_case_of_order(tx, order_id).await? {
        insert_row(tx, card, open, "update", now).await?;
        return Ok(open);
    }
    let conversation_id: Option<i64> = match (&card.subject, order_id) {
        (CardSubject::Conversation(c), _) => Some(*c),
        (_, Some(o)) => {
            sqlx::query_scalar("SELECT conversation_id FROM conversation_orders WHERE order_id = ?")
                .bind(o)
                .fetch_optional(&mut **tx)
                .await?
        }
        (_, None) => None,
    };
    let case_id = open_case_tx(tx, card.reason.as_str(), order_id, conversation_id, now).await?;
    if let CardSubject::Conversation(c) = card.subject {
        // The question the case is about (`/learn` anchors on it): the
        // contact task handles one customer message at a time and opens the
        // case while handling it, so the newest customer message of the
        // conversation is that message, and a later one is not stored yet.
        sqlx::query(
            "UPDATE cases SET question_message_id = (SELECT MAX(id) FROM conversation_messages
               WHERE conversation_id = ? AND direction = 'in' AND author = 'customer')
             WHERE id = ?",
        )
        .bind(c)
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
    }
    insert_row(tx, card, case_id, "card", now).await?;
    Ok(case_id)
}

/// The open case of `order_id`, if it has one.
async fn open_case_of_order(tx: &mut Transaction<'_, Sqlite>, order_id: Option<i64>) -> StoreResult<Option<i64>> {
    let Some(order_id) = order_id else { return Ok(None) };
    Ok(sqlx::query_scalar("SELECT id FROM cases WHERE order_id = ? AND status = 'open'")
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Stores a typed escalation of case `case_id` as its card (`kind` =
/// `card`) or as a follow-up rendered like one (`update`).
async fn insert_row(
    tx: &mut Transaction<'_, Sqlite>,
    card: &Escalation,
    case_id: i64,
    kind: &str,
    now: i64,
) -> StoreResult<()> {
    let order_id = card.subject.order_id();
    let (source, key) = match &card.subject {
        CardSubject::TributeMessage { chat_id, message_id } | CardSubject::InboxMessage { chat_id, message_id } => {
            (Some((*chat_id, *message_id)), None)
        }
        CardSubject::Purchase { purchase_id: k, .. } | CardSubject::WebhookBody(k) => (None, Some(k.clone())),
        CardSubject::Outage(id) => (None, Some(id.to_string())),
        CardSubject::Order(_) | CardSubject::Conversation(_) | CardSubject::QuestionQueue => (None, None),
    };
    let card_conversation = match card.subject {
        CardSubject::Conversation(c) => Some(c),
        _ => None,
    };
    sqlx::query(
        "INSERT INTO moderator_outbox
           (order_id, source_chat_id, source_message_id, reason, subject, conversation_id, subject_key, detail,
            created_at, case_id, kind, random_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, random())",
    )
    .bind(order_id)
    .bind(source.map(|(c, _)| c))
    .bind(source.map(|(_, m)| m))
    .bind(card.reason.as_str())
    .bind(card.subject.kind())
    .bind(card_conversation)
    .bind(key)
    .bind(&card.detail)
    .bind(now)
    .bind(case_id)
    .bind(kind)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Opens the case a card belongs to; its short id is its row id.
async fn open_case_tx(
    tx: &mut Transaction<'_, Sqlite>,
    reason: &str,
    order_id: Option<i64>,
    conversation_id: Option<i64>,
    now: i64,
) -> StoreResult<i64> {
    let id = sqlx::query(
        "INSERT INTO cases (reason, order_id, conversation_id, status, opened_at) VALUES (?, ?, ?, 'open', ?)",
    )
    .bind(reason)
    .bind(order_id)
    .bind(conversation_id)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .last_insert_rowid();
    sqlx::query("UPDATE cases SET short_id = ? WHERE id = ?").bind(short_id(id)).bind(id).execute(&mut **tx).await?;
    Ok(id)
}

/// The body of a stored row: its text, or the typed escalation read back.
fn body_from_row(r: &SqliteRow) -> StoreResult<CardBody> {
    let id: i64 = r.get("id");
    let Some(subject) = r.get::<Option<String>, _>("subject") else {
        let text: Option<String> = r.get("text");
        return text.map(CardBody::Text).ok_or_else(|| StoreError::Corrupt(format!("outbox row {id}: no text")));
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("outbox row {id}: {what}"));
    let reason: String = r.get("reason");
    let reason = EscalationReason::parse(&reason).ok_or_else(|| corrupt(&format!("reason {reason:?}")))?;
    let key = || r.get::<Option<String>, _>("subject_key").ok_or_else(|| corrupt("no subject key"));
    let subject = match subject.as_str() {
        "order" => CardSubject::Order(r.get::<Option<i64>, _>("order_id").ok_or_else(|| corrupt("no order"))?),
        "conversation" => CardSubject::Conversation(
            r.get::<Option<i64>, _>("conversation_id").ok_or_else(|| corrupt("no conversation"))?,
        ),
        "tribute_message" => {
            match (r.get::<Option<i64>, _>("source_chat_id"), r.get::<Option<i64>, _>("source_message_id")) {
                (Some(chat_id), Some(m)) => CardSubject::TributeMessage { chat_id, message_id: m as MessageId },
                _ => return Err(corrupt("no Tribute message")),
            }
        }
        "inbox_message" => {
            match (r.get::<Option<i64>, _>("source_chat_id"), r.get::<Option<i64>, _>("source_message_id")) {
                (Some(chat_id), Some(m)) => CardSubject::InboxMessage { chat_id, message_id: m as MessageId },
                _ => return Err(corrupt("no inbox message")),
            }
        }
        "purchase" => CardSubject::Purchase { purchase_id: key()?, order_id: r.get("order_id") },
        "webhook_body" => CardSubject::WebhookBody(key()?),
        "outage" => CardSubject::Outage(key()?.parse().map_err(|_| corrupt("outage id"))?),
        "question_queue" => CardSubject::QuestionQueue,
        other => return Err(corrupt(&format!("subject {other:?}"))),
    };
    let detail = r.get::<Option<String>, _>("detail").unwrap_or_default();
    Ok(CardBody::Escalation(Escalation { reason, subject, detail }))
}

/// Queues a follow-up message for a case (posted as a reply to its card);
/// returns its row id.
pub(super) async fn insert_update(
    tx: &mut Transaction<'_, Sqlite>,
    case_id: i64,
    text: &str,
    now: i64,
) -> StoreResult<i64> {
    let res = sqlx::query(
        "INSERT INTO moderator_outbox
           (order_id, source_chat_id, source_message_id, reason, text, created_at, case_id, kind, random_id)
         SELECT order_id, 0, 0, reason, ?, ?, id, 'update', random() FROM cases WHERE id = ?",
    )
    .bind(text)
    .bind(now)
    .bind(case_id)
    .execute(&mut **tx)
    .await?;
    Ok(res.last_insert_rowid())
}

/// What a posted desk answer stands for, beyond being an answer: replies
/// to it then act on what it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerLink {
    /// A plain answer.
    None,
    /// A case shown by `/case`: replies to it act on the case.
    Case(i64),
    /// The last part of a `/learn` preview: `/learn yes` in reply to it stores the pair.
    LearnPreview(i64),
}

impl Store {
    /// Queues the desk's answer to moderator message `reply_to` in `chat`
    /// (posted as a reply to it, retried like a card); returns its row id.
    pub async fn enqueue_desk_answer(
        &self,
        chat: ChatId,
        reply_to: MessageId,
        text: &str,
        link: AnswerLink,
    ) -> StoreResult<i64> {
        let (case_id, preview) = match link {
            AnswerLink::None => (None, None),
            AnswerLink::Case(c) => (Some(c), None),
            AnswerLink::LearnPreview(p) => (None, Some(p.to_string())),
        };
        let res = sqlx::query(
            "INSERT INTO moderator_outbox
               (source_chat_id, source_message_id, reason, text, created_at, case_id, subject_key, kind, random_id)
             VALUES (?, ?, 'answer', ?, ?, ?, ?, 'answer', random())",
        )
        .bind(chat)
        .bind(reply_to)
        .bind(text)
        .bind(now_ms())
        .bind(case_id)
        .bind(preview)
        .execute(&self.pool)
        .await?;
        Ok(res.last_insert_rowid())
    }

    /// Cards and follow-ups still to be posted (not posted, not parked), oldest first.
    pub async fn pending_cards(&self) -> StoreResult<Vec<OutboxCard>> {
        self.cards("WHERE o.posted_at IS NULL AND o.parked_at IS NULL", None).await
    }

    /// Rows to be posted that are due at `now`, oldest first.
    pub async fn due_cards(&self, now: i64) -> StoreResult<Vec<OutboxCard>> {
        self.cards("WHERE o.posted_at IS NULL AND o.parked_at IS NULL AND o.next_attempt_at <= ?1", Some(now)).await
    }

    /// Rows Telegram refused for good (a person has to look), oldest first.
    pub async fn parked_cards(&self) -> StoreResult<Vec<OutboxCard>> {
        self.cards("WHERE o.parked_at IS NOT NULL AND o.posted_at IS NULL", None).await
    }

    /// One outbox row.
    pub async fn outbox_row(&self, id: i64) -> StoreResult<Option<OutboxCard>> {
        Ok(self.cards("WHERE o.id = ?1", Some(id)).await?.pop())
    }

    /// The card of a case (its first message, not its follow-ups), posted or not.
    pub async fn card_of_case(&self, case_id: i64) -> StoreResult<Option<OutboxCard>> {
        Ok(self.cards("WHERE o.case_id = ?1 AND o.kind = 'card'", Some(case_id)).await?.into_iter().next())
    }

    /// When the next row to post is due (unix ms; possibly in the past), or
    /// `None` when nothing waits: a worker sleeps until then.
    pub async fn next_outbox_due(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM moderator_outbox WHERE posted_at IS NULL AND parked_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// A failed attempt to be retried at `next_at`.
    pub async fn retry_card_later(&self, id: i64, error: &str, next_at: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE moderator_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
        )
        .bind(error)
        .bind(next_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Not tried now (e.g. during a flood wait, or a follow-up whose card is
    /// not posted yet): due again at `until`, no attempt counted.
    pub async fn defer_card(&self, id: i64, until: i64) -> StoreResult<()> {
        sqlx::query("UPDATE moderator_outbox SET next_attempt_at = MAX(next_attempt_at, ?) WHERE id = ?")
            .bind(until)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Telegram refused the row for good: it is kept with the error and never tried again.
    pub async fn park_card(&self, id: i64, error: &str) -> StoreResult<()> {
        sqlx::query("UPDATE moderator_outbox SET attempts = attempts + 1, last_error = ?, parked_at = ? WHERE id = ?")
            .bind(error)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Posted, but its message id is unknown (Telegram said the random_id
    /// was already used and the message was not found in the history):
    /// replies to it cannot be mapped to its case.
    pub async fn mark_card_posted_unmapped(&self, id: i64, chat: ChatId) -> StoreResult<()> {
        sqlx::query("UPDATE moderator_outbox SET posted_chat_id = ?, posted_at = ? WHERE id = ?")
            .bind(chat)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest of our messages in `chat` known to be older than anything
    /// row `id` can have posted (posted before the row was stored): where a
    /// search of the chat history for the row's message starts.
    pub async fn outbox_search_anchor(&self, id: i64, chat: ChatId) -> StoreResult<MessageId> {
        let anchor: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(p.posted_message_id) FROM moderator_outbox p, moderator_outbox o
             WHERE o.id = ? AND p.posted_chat_id = ? AND p.posted_at < o.created_at",
        )
        .bind(id)
        .bind(chat)
        .fetch_one(&self.pool)
        .await?;
        Ok(anchor.unwrap_or(0) as MessageId)
    }

    /// Every card (the first message of each case, not its follow-ups), oldest first.
    pub async fn all_cards(&self) -> StoreResult<Vec<OutboxCard>> {
        self.cards("WHERE o.kind = 'card'", None).await
    }

    /// The rows `filter` selects; its `?1` is `param`. The value is bound,
    /// never written into the text: each distinct text is one more prepared
    /// statement in every connection's cache (the poster's `due_cards` with
    /// the time in it prepared a new one on every pass and pushed the
    /// order path's statements out).
    async fn cards(&self, filter: &str, param: Option<i64>) -> StoreResult<Vec<OutboxCard>> {
        let sql = format!(
            "SELECT o.id, o.order_id, o.reason, o.text, o.rendered, o.subject, o.conversation_id, o.subject_key, o.detail,
                    o.source_chat_id, o.source_message_id, o.posted_message_id, o.case_id, o.kind,
                    o.created_at, o.attempts, o.next_attempt_at, o.last_error, o.parked_at, o.random_id,
                    (SELECT c.posted_chat_id FROM moderator_outbox c
                      WHERE c.case_id = o.case_id AND c.kind = 'card' AND c.posted_at IS NOT NULL) AS card_chat,
                    (SELECT c.posted_message_id FROM moderator_outbox c
                      WHERE c.case_id = o.case_id AND c.kind = 'card' AND c.posted_at IS NOT NULL) AS card_msg,
                    (SELECT MIN(c.next_attempt_at) FROM moderator_outbox c
                      WHERE c.case_id = o.case_id AND c.kind = 'card' AND c.id < o.id
                        AND c.posted_at IS NULL AND c.parked_at IS NULL) AS card_pending_until
             FROM moderator_outbox o {filter} ORDER BY o.id"
        );
        let mut query = sqlx::query(&sql);
        if let Some(param) = param {
            query = query.bind(param);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.get("kind");
                let reply_to = match kind.as_str() {
                    "update" => r.get::<Option<i64>, _>("card_chat").zip(r.get::<Option<i64>, _>("card_msg")),
                    "answer" => {
                        r.get::<Option<i64>, _>("source_chat_id").zip(r.get::<Option<i64>, _>("source_message_id"))
                    }
                    _ => None,
                }
                .map(|(chat, msg)| (chat, msg as MessageId));
                Ok(OutboxCard {
                    id: r.get("id"),
                    order_id: r.get("order_id"),
                    reason: r.get("reason"),
                    body: body_from_row(r)?,
                    posted_message_id: r.get::<Option<i64>, _>("posted_message_id").map(|v| v as MessageId),
                    case_id: r.get("case_id"),
                    reply_to,
                    kind,
                    created_at: r.get("created_at"),
                    attempts: r.get::<i64, _>("attempts").clamp(0, u32::MAX as i64) as u32,
                    next_attempt_at: r.get("next_attempt_at"),
                    last_error: r.get("last_error"),
                    parked_at: r.get("parked_at"),
                    random_id: r.get::<Option<i64>, _>("random_id").unwrap_or_default(),
                    card_pending_until: r.get("card_pending_until"),
                    rendered: r.get::<Option<String>, _>("rendered").filter(|t| !t.is_empty()),
                })
            })
            .collect()
    }

    /// Keeps the text a card was rendered to for its first attempt, so that
    /// a retry sends the same text with the same `random_id` and a lost
    /// answer is found in the chat by that exact text. Erasing a customer
    /// clears it; the card is then rendered again from what is left.
    pub async fn keep_card_text(&self, id: i64, text: &str) -> StoreResult<()> {
        sqlx::query("UPDATE moderator_outbox SET rendered = ? WHERE id = ? AND rendered IS NULL")
            .bind(text)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether a card of a case waits to be posted to the moderator chat or
    /// is on its way (sent, Telegram's answer not in yet): until it is
    /// marked posted, a reply to it cannot be mapped to its case.
    pub async fn card_on_its_way(&self) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM moderator_outbox
                            WHERE kind = 'card' AND posted_at IS NULL AND parked_at IS NULL AND case_id IS NOT NULL)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Marks a card posted and maps its message to its case, so a
    /// moderator's reply to it finds the case.
    pub async fn mark_card_posted(&self, id: i64, chat: ChatId, message: MessageId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE moderator_outbox SET posted_chat_id = ?, posted_message_id = ?, posted_at = ? WHERE id = ?",
        )
        .bind(chat)
        .bind(message)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT OR IGNORE INTO case_messages (chat_id, message_id, case_id)
             SELECT ?, ?, case_id FROM moderator_outbox WHERE id = ? AND case_id IS NOT NULL",
        )
        .bind(chat)
        .bind(message)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE learn_previews SET chat_id = ?, message_id = ?
             WHERE id = (SELECT CAST(subject_key AS INTEGER) FROM moderator_outbox
                         WHERE id = ? AND kind = 'answer' AND subject_key IS NOT NULL)",
        )
        .bind(chat)
        .bind(message)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Language;

    #[tokio::test]
    async fn rows_get_a_random_id_and_their_own_retry_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        assert_eq!(store.next_outbox_due().await.unwrap(), None);
        let conv = store.open_conversation(5, "Иван", Language::Ru, 0).await.unwrap();
        let card = Escalation::question(conv.id, &crate::domain::Verdict::because("no answer"));
        let case = store.open_case(&card).await.unwrap();
        store.case_update(case, "later").await.unwrap();
        let rows = store.pending_cards().await.unwrap();
        assert_eq!(rows[0].body, CardBody::Escalation(card), "a card is stored typed");
        assert_eq!(rows[1].body, CardBody::Text("later".into()), "a follow-up as text");
        assert_eq!(store.case(case).await.unwrap().unwrap().conversation_id, Some(conv.id));
        assert_ne!(rows[0].random_id, rows[1].random_id);
        assert!(rows.iter().all(|r| r.attempts == 0 && r.next_attempt_at == 0 && r.parked_at.is_none()));
        assert_eq!(store.next_outbox_due().await.unwrap(), Some(0));
        assert_eq!(rows[1].card_pending_until, Some(0), "the follow-up knows its card is not posted");

        store.retry_card_later(rows[0].id, "flood", 5_000).await.unwrap();
        store.defer_card(rows[1].id, 7_000).await.unwrap();
        assert!(store.due_cards(4_999).await.unwrap().is_empty());
        assert_eq!(store.due_cards(5_000).await.unwrap().len(), 1);
        let again = store.outbox_row(rows[0].id).await.unwrap().unwrap();
        assert_eq!(
            (again.attempts, again.last_error.as_deref(), again.random_id),
            (1, Some("flood"), rows[0].random_id)
        );
        store.park_card(rows[0].id, "MESSAGE_TOO_LONG").await.unwrap();
        assert_eq!(store.next_outbox_due().await.unwrap(), Some(7_000));
        assert_eq!(store.parked_cards().await.unwrap().len(), 1);
        assert_eq!(store.pending_cards().await.unwrap()[0].card_pending_until, None, "a parked card is not waited for");
    }

    /// Rows written before migration 0011 hold rendered text: they are kept
    /// through the table rebuild and read back as text (posted as stored).
    #[tokio::test]
    async fn a_written_card_is_hinted_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        assert!(!store.take_card_hint(), "nothing written yet");
        let conv = store.open_conversation(5, "Иван", Language::Ru, 0).await.unwrap();
        assert!(!store.take_card_hint(), "a conversation is not a card");
        store.open_case(&Escalation::question(conv.id, &crate::domain::Verdict::because("no answer"))).await.unwrap();
        assert!(store.take_card_hint());
        assert!(!store.take_card_hint(), "taken");
    }

    #[tokio::test]
    async fn cards_stored_as_text_before_0011_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let before = dir.path().join("migrations");
        std::fs::create_dir(&before).unwrap();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().as_ref() < "0011" {
                std::fs::copy(entry.path(), before.join(entry.file_name())).unwrap();
            }
        }
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::migrate::Migrator::new(before.as_path()).await.unwrap().run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO cases (id, short_id, reason, status, opened_at) VALUES (1, 'C1', 'customer_question', 'open', 0)",
            "INSERT INTO moderator_outbox (source_chat_id, source_message_id, reason, text, created_at, case_id, kind,
                random_id) VALUES (0, 0, 'customer_question', '❓ Case C1 · an old card', 0, 1, 'card', 42)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let store = Store::open(&path).await.unwrap();
        let rows = store.pending_cards().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].body, CardBody::Text("❓ Case C1 · an old card".into()));
        assert_eq!((rows[0].random_id, rows[0].case_id), (42, Some(1)));
    }
}
