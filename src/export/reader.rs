//! Streams conversations out of the store one page at a time and assembles
//! each into its export record, redacting PII on the way.

use std::collections::{HashMap, VecDeque};

use crate::domain::{Author, OrderState};
use crate::knowledge::redact::Redactor;
use crate::store::export::{ExportPage, ExportQuery};
use crate::store::{CaseStatus, ConversationOrder, OrderRecord, Store, StoreResult};

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

    fn text(&self, s: &mut String) {
        if let Some(r) = &self.redactor {
            *s = r.redact(s);
        }
    }

    fn name(&self, s: &mut String) {
        if self.is_on() {
            *s = REDACTED_NAME.to_owned();
        }
    }

    /// Account IDs are PII whole: no pattern needed to know it.
    fn account(&self, s: &mut String) {
        if self.is_on() {
            *s = crate::knowledge::redact::ACCOUNT_ID.to_owned();
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
    // An order has one link, which says whose conversation it is in.
    let mut links: HashMap<i64, ConversationOrder> = page.links.into_iter().map(|l| (l.order_id, l)).collect();
    let mut orders: HashMap<i64, Vec<(OrderRecord, ConversationOrder)>> = HashMap::new();
    for o in page.orders {
        if let Some(link) = links.remove(&o.id) {
            orders.entry(link.conversation_id).or_default().push((o, link));
        }
    }
    // A moderator action belongs to its case's conversation.
    let case_conversation: HashMap<i64, i64> =
        page.cases.iter().filter_map(|k| Some((k.id, k.conversation_id?))).collect();
    let mut audit =
        group(page.audit, |a| a.case_id.and_then(|k| case_conversation.get(&k).copied()).unwrap_or_default());
    let mut messages = group(page.messages, |r| r.conversation_id);
    let mut events = group(page.order_events, |e| e.order_id);
    let mut turns = group(page.agent_turns, |r| r.conversation_id.unwrap_or_default());
    let mut cases = group(page.cases, |r| r.conversation_id.unwrap_or_default());

    page.conversations
        .into_iter()
        .map(|c| {
            let msgs = messages.remove(&c.id).unwrap_or_default();
            let ords = orders.remove(&c.id).unwrap_or_default();
            let mut trs = turns.remove(&c.id).unwrap_or_default();
            let mut css = cases.remove(&c.id).unwrap_or_default();
            let mut aud = audit.remove(&c.id).unwrap_or_default();

            let flags = Flags {
                escalated: trs.iter().any(|t| t.escalated)
                    || !css.is_empty()
                    || ords.iter().any(|(o, _)| o.state == OrderState::Escalated),
                answered_by_agent: false,
                moderator: !css.is_empty() || msgs.iter().any(|m| m.author == Author::Moderator),
                failed: ords.iter().any(|(o, _)| o.state == OrderState::Failed),
            };
            let flags = Flags { answered_by_agent: !flags.escalated && trs.iter().any(|t| !t.escalated), ..flags };
            let outcome = if flags.failed {
                Outcome::Failed
            } else if css.iter().any(|k| k.status == CaseStatus::Open) {
                Outcome::WithModerator
            } else if !css.is_empty() {
                Outcome::ClosedByModerator
            } else if flags.escalated {
                Outcome::Escalated
            } else if !ords.is_empty()
                && ords.iter().all(|(o, _)| matches!(o.state, OrderState::Replied | OrderState::Confirmed))
            {
                Outcome::Completed
            } else if flags.answered_by_agent {
                Outcome::AnsweredByAgent
            } else {
                Outcome::Open
            };

            let ref_by_id: HashMap<i64, &str> = ords.iter().map(|(o, _)| (o.id, o.order_ref.as_str())).collect();
            // An agent message is the reply of the turn with the same text, else the closest turn before it.
            let mut used = vec![false; trs.len()];
            let messages = msgs
                .into_iter()
                .map(|mut m| {
                    let agent_turn_id = (m.author == Author::Agent)
                        .then(|| {
                            let exact = trs.iter().enumerate().find(|(i, t)| !used[*i] && t.reply == m.text);
                            let before = || trs.iter().enumerate().rfind(|(i, t)| !used[*i] && t.at <= m.at);
                            exact.or_else(before).map(|(i, t)| {
                                used[i] = true;
                                t.id
                            })
                        })
                        .flatten();
                    let order_refs =
                        m.order_ids.iter().filter_map(|id| ref_by_id.get(id).map(|r| (*r).to_owned())).collect();
                    pii.text(&mut m.text);
                    MessageExport { message: m, order_refs, agent_turn_id }
                })
                .collect();

            let orders = ords
                .into_iter()
                .map(|(mut order, mut link)| {
                    let mut history = events.remove(&order.id).unwrap_or_default();
                    for e in &mut history {
                        pii.text(&mut e.note);
                    }
                    pii.name(&mut order.customer_name);
                    if let Some(u) = &mut order.customer_username {
                        pii.name(u);
                    }
                    pii.text(&mut order.details);
                    if let Some(a) = &mut link.account {
                        pii.account(a);
                    }
                    OrderExport { order, link, history }
                })
                .collect();
            for t in &mut trs {
                pii.text(&mut t.question);
                if let Some(a) = &mut t.answer {
                    pii.text(a);
                }
                pii.text(&mut t.reply);
            }
            for k in &mut css {
                if let Some(a) = &mut k.pending_account {
                    pii.account(a);
                }
            }
            for a in &mut aud {
                pii.text(&mut a.detail);
            }
            let mut name = c.customer_name;
            pii.name(&mut name);
            ConversationExport {
                schema_version: SCHEMA_VERSION,
                id: c.id,
                customer: Customer { telegram_id: c.customer_id, name },
                language: c.language,
                state: c.state.name(),
                created_at: c.created_at,
                updated_at: c.updated_at,
                redacted: pii.is_on(),
                flags,
                outcome,
                messages,
                orders,
                agent_turns: trs,
                cases: css,
                moderator_actions: aud,
            }
        })
        .collect()
}
