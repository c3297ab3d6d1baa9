//! Streams conversations out of the store one page at a time and assembles
//! each into its export record, redacting PII on the way.

use std::collections::{HashMap, VecDeque};

use crate::knowledge::redact::Redactor;
use crate::store::export::{ExportPage, ExportQuery};
use crate::store::{Store, StoreResult};

use super::model::*;

/// Conversations fetched per page: bounds memory (a page and its rows) while
/// keeping the query count per conversation low.
pub const PAGE_SIZE: i64 = 200;

/// Replaces PII when on; the identity otherwise.
#[derive(Debug, Clone)]
pub struct Pii {
    redactor: Option<Redactor>,
}

impl Pii {
    pub fn redact_with(redactor: Redactor) -> Self {
        Self { redactor: Some(redactor) }
    }

    pub fn keep() -> Self {
        Self { redactor: None }
    }

    pub fn is_on(&self) -> bool {
        self.redactor.is_some()
    }

    fn text(&self, s: &str) -> String {
        match &self.redactor {
            Some(r) => r.redact(s),
            None => s.to_owned(),
        }
    }

    fn name(&self, s: &str) -> String {
        if self.is_on() {
            REDACTED_NAME.to_owned()
        } else {
            s.to_owned()
        }
    }

    /// Account IDs are PII whole: no pattern needed to know it.
    fn account(&self, s: &str) -> String {
        if self.is_on() {
            crate::knowledge::redact::ACCOUNT_ID.to_owned()
        } else {
            s.to_owned()
        }
    }
}

/// Keyset-paginated stream of assembled conversations.
pub struct ConversationStream<'a> {
    store: &'a Store,
    query: ExportQuery,
    pii: Pii,
    after_id: i64,
    page_size: i64,
    buffer: VecDeque<ConversationExport>,
    done: bool,
}

impl<'a> ConversationStream<'a> {
    pub fn new(store: &'a Store, query: ExportQuery, pii: Pii) -> Self {
        Self { store, query, pii, after_id: 0, page_size: PAGE_SIZE, buffer: VecDeque::new(), done: false }
    }

    pub fn with_page_size(mut self, n: i64) -> Self {
        self.page_size = n.max(1);
        self
    }

    pub async fn next(&mut self) -> StoreResult<Option<ConversationExport>> {
        if self.buffer.is_empty() && !self.done {
            let page = self.store.export_page(&self.query, self.after_id, self.page_size).await?;
            match page.conversations.last() {
                Some(last) => self.after_id = last.id,
                None => self.done = true,
            }
            if (page.conversations.len() as i64) < self.page_size {
                self.done = true;
            }
            self.buffer = assemble(page, &self.pii).into();
        }
        Ok(self.buffer.pop_front())
    }
}

/// Splits the page's per-table lists by conversation and builds records.
pub fn assemble(page: ExportPage, pii: &Pii) -> Vec<ConversationExport> {
    fn group<T>(rows: Vec<T>, key: impl Fn(&T) -> i64) -> HashMap<i64, Vec<T>> {
        let mut m: HashMap<i64, Vec<T>> = HashMap::new();
        for r in rows {
            m.entry(key(&r)).or_default().push(r);
        }
        m
    }
    let mut messages = group(page.messages, |r| r.conversation_id);
    let mut orders = group(page.orders, |r| r.conversation_id);
    let mut events = group(page.order_events, |r| r.conversation_id);
    let mut turns = group(page.agent_turns, |r| r.conversation_id);
    let mut cases = group(page.cases, |r| r.conversation_id);
    let mut audit = group(page.audit, |r| r.conversation_id);

    page.conversations
        .into_iter()
        .map(|c| {
            let msgs = messages.remove(&c.id).unwrap_or_default();
            let ords = orders.remove(&c.id).unwrap_or_default();
            let mut evs = group(events.remove(&c.id).unwrap_or_default(), |e| e.order_id);
            let trs = turns.remove(&c.id).unwrap_or_default();
            let css = cases.remove(&c.id).unwrap_or_default();
            let aud = audit.remove(&c.id).unwrap_or_default();

            let ref_by_id: HashMap<i64, String> = ords.iter().map(|o| (o.id, o.order_ref.clone())).collect();
            // An agent message is the reply of the turn with the same text, else the closest turn before it.
            let mut used = vec![false; trs.len()];
            let messages = msgs
                .iter()
                .map(|m| {
                    let agent_turn_id = (m.author == "agent")
                        .then(|| {
                            let exact = trs.iter().enumerate().find(|(i, t)| !used[*i] && t.reply == m.text);
                            let before = || trs.iter().enumerate().rfind(|(i, t)| !used[*i] && t.at <= m.at);
                            exact.or_else(before).map(|(i, t)| {
                                used[i] = true;
                                t.id
                            })
                        })
                        .flatten();
                    let order_refs = serde_json::from_str::<Vec<i64>>(&m.order_ids)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|id| ref_by_id.get(id).cloned())
                        .collect();
                    MessageExport {
                        id: m.id,
                        at: rfc3339(m.at),
                        direction: m.direction.clone(),
                        author: m.author.clone(),
                        author_id: m.author_id,
                        text: pii.text(&m.text),
                        template: m.template.clone(),
                        order_refs,
                        agent_turn_id,
                    }
                })
                .collect();

            let flags = Flags {
                escalated: trs.iter().any(|t| t.escalated)
                    || !css.is_empty()
                    || ords.iter().any(|o| o.state == "escalated"),
                answered_by_agent: false,
                moderator: !css.is_empty() || msgs.iter().any(|m| m.author == "moderator"),
                failed: ords.iter().any(|o| o.state == "failed"),
            };
            let flags = Flags { answered_by_agent: !flags.escalated && trs.iter().any(|t| !t.escalated), ..flags };
            let outcome = if flags.failed {
                Outcome::Failed
            } else if css.iter().any(|k| k.status == "open") {
                Outcome::WithModerator
            } else if !css.is_empty() {
                Outcome::ClosedByModerator
            } else if flags.escalated {
                Outcome::Escalated
            } else if !ords.is_empty() && ords.iter().all(|o| o.state == "replied" || o.state == "confirmed") {
                Outcome::Completed
            } else if flags.answered_by_agent {
                Outcome::AnsweredByAgent
            } else {
                Outcome::Open
            };

            let orders = ords
                .into_iter()
                .map(|o| OrderExport {
                    history: evs
                        .remove(&o.id)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|e| OrderEventExport {
                            at: rfc3339(e.at),
                            from_state: e.from_state,
                            to_state: e.to_state,
                            note: pii.text(&e.note),
                        })
                        .collect(),
                    order_ref: o.order_ref,
                    state: o.state,
                    product: o.product,
                    amount_minor: o.amount_minor,
                    currency: o.currency,
                    customer_name: pii.name(&o.customer_name),
                    customer_username: o.customer_username.as_deref().map(|u| pii.name(u)),
                    details: pii.text(&o.details),
                    account: o.account.as_deref().map(|a| pii.account(a)),
                    link_status: o.link_status,
                    link_reason: o.link_reason,
                    account_rejections: o.rejections,
                    escalation_reason: o.escalation_reason,
                    activation_id: o.activation_id,
                    created_at: rfc3339(o.created_at),
                    updated_at: rfc3339(o.updated_at),
                })
                .collect();
            let json = |s: &str| serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.to_owned()));
            let agent_turns = trs
                .into_iter()
                .map(|t| AgentTurnExport {
                    id: t.id,
                    at: rfc3339(t.at),
                    question: pii.text(&t.question),
                    answer: t.answer.as_deref().map(|a| pii.text(a)),
                    reply: pii.text(&t.reply),
                    language: t.language,
                    confidence: t.confidence,
                    sources: json(&t.sources_json),
                    reasons: json(&t.reasons_json),
                    escalated: t.escalated,
                    mode: t.mode,
                    latency_ms: t.latency_ms,
                })
                .collect();
            let cases = css
                .into_iter()
                .map(|k| CaseExport {
                    id: k.id,
                    short_id: k.short_id,
                    reason: k.reason,
                    order_ref: k.order_ref,
                    status: k.status,
                    outcome: k.outcome,
                    pending_account: k.pending_account.as_deref().map(|a| pii.account(a)),
                    opened_at: rfc3339(k.opened_at),
                    closed_at: k.closed_at.map(rfc3339),
                })
                .collect();
            let moderator_actions = aud
                .into_iter()
                .map(|a| ModeratorActionExport {
                    id: a.id,
                    at: rfc3339(a.at),
                    moderator_id: a.moderator_id,
                    case_id: a.case_id,
                    action: a.action,
                    detail: pii.text(&a.detail),
                    allowed: a.allowed,
                })
                .collect();
            ConversationExport {
                schema_version: SCHEMA_VERSION,
                id: c.id,
                customer: Customer { telegram_id: c.customer_id, name: pii.name(&c.customer_name) },
                language: c.language,
                state: c.state,
                created_at: rfc3339(c.created_at),
                updated_at: rfc3339(c.updated_at),
                redacted: pii.is_on(),
                flags,
                outcome,
                messages,
                orders,
                agent_turns,
                cases,
                moderator_actions,
            }
        })
        .collect()
}
