//! Streams conversations out of the store one page at a time and assembles
//! each into its export record, redacting PII on the way.

use std::collections::{HashMap, VecDeque};

use crate::domain::{Author, OrderState};
use crate::knowledge::redact::Redactor;
use crate::store::export::{ExportPage, ExportQuery};
use crate::store::{AccountStatus, CaseStatus, ConversationOrder, OrderRecord, Store, StoreResult};

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

    /// Redacts `s`: the conversation's own names and account IDs as whole
    /// words, then the redactor's patterns — with what must stay (payment
    /// numbers, activation numbers, products, amounts) set aside first, so a
    /// pattern for account IDs cannot eat the digits of `act-000042` or
    /// `₽12500.00`.
    fn text(&self, s: &mut String, known: &Known) {
        let Some(r) = &self.redactor else { return };
        let mut kept = Vec::new();
        let mut t = set_aside(s, known, &mut kept);
        for name in &known.names {
            t = replace_word(&t, name, REDACTED_NAME);
        }
        for account in &known.accounts {
            t = replace_word(&t, account, crate::knowledge::redact::ACCOUNT_ID);
        }
        *s = put_back(&r.redact(&t), &kept);
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

/// What one conversation's texts are redacted with: who the customer is
/// (names, account IDs: always hidden) and what is not personal data though
/// a pattern might take it for an account ID (kept).
#[derive(Debug, Default)]
pub(crate) struct Known {
    pub names: Vec<String>,
    /// Every account ID the store links to the conversation: its orders'
    /// candidates, the IDs given in the chat, on cases and by moderators.
    pub accounts: Vec<String>,
    /// Payment numbers, activation numbers, products and amounts of its orders.
    pub keep: Vec<String>,
}

impl Known {
    pub(crate) fn new(
        names: Vec<String>,
        accounts: impl IntoIterator<Item = String>,
        keep: impl IntoIterator<Item = String>,
    ) -> Self {
        let longest_first = |mut v: Vec<String>| {
            v.retain(|x| !x.trim().is_empty());
            v.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
            v.dedup();
            v
        };
        Self {
            names,
            accounts: longest_first(accounts.into_iter().map(|a| a.trim().to_owned()).collect()),
            keep: longest_first(keep.into_iter().collect()),
        }
    }
}

/// Money as our templates and people write it (`₽500.00`, `€ 9`,
/// `1,500 руб`, `9.00 EUR`), and the number after "activation": facts
/// about an order, never an account ID.
static KEPT_PATTERNS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)[€$₽£₴₸]\s?\d+(?:[,.\x{a0}]\d+)*|\b\d+(?:[,.\x{a0}]\d+)*\s?(?:[€$₽£₴₸]|(?:eur|usd|rub|gbp|uah|kzt|руб|грн)\b)|\bactivation\s+[A-Za-z0-9][A-Za-z0-9_\-]*",
    )
    .expect("valid regex")
});

/// Marks a set-aside text: private-use characters, which no redaction
/// pattern matches (no digit, no `@`, not a word character).
const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

/// A placeholder for the `i`-th kept text, its digits in private-use characters.
fn mark(i: usize) -> String {
    let digits: String = i.to_string().chars().filter_map(|d| char::from_u32(0xE010 + d.to_digit(10)?)).collect();
    format!("{MARK_OPEN}{digits}{MARK_CLOSE}")
}

/// `s` with each kept text replaced by its placeholder (recorded in `kept`).
fn set_aside(s: &str, known: &Known, kept: &mut Vec<String>) -> String {
    let mut t = s.to_owned();
    for k in &known.keep {
        if t.contains(k.as_str()) {
            let m = mark(kept.len());
            kept.push(k.clone());
            t = t.replace(k.as_str(), &m);
        }
    }
    let text = t.clone();
    KEPT_PATTERNS
        .replace_all(&t, |c: &regex::Captures| {
            let whole = c.get(0).expect("the whole match");
            // "48213 €5.00": the number before a sign that starts an amount is not money.
            let then_digit = text[whole.end()..].trim_start().starts_with(|ch: char| ch.is_ascii_digit());
            let ends_in_sign = whole.as_str().ends_with(|ch: char| "€$₽£₴₸".contains(ch));
            let has_account = known.accounts.iter().any(|a| replace_word(whole.as_str(), a, "") != whole.as_str());
            if (ends_in_sign && then_digit) || has_account {
                return whole.as_str().to_owned();
            }
            let m = mark(kept.len());
            kept.push(whole.as_str().to_owned());
            m
        })
        .into_owned()
}

/// Undoes [`set_aside`], last kept first (a later one may hold an earlier mark).
fn put_back(s: &str, kept: &[String]) -> String {
    let mut t = s.to_owned();
    for (i, k) in kept.iter().enumerate().rev() {
        t = t.replace(&mark(i), k);
    }
    t
}

/// The names a customer is known by in one conversation: each full name and
/// username, and every part of a name of two letters or more, longest first
/// (so "Мария Иванова" goes whole before "Мария" alone).
pub(crate) fn customer_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let name = name.trim().trim_start_matches('@');
        out.push(name.to_owned());
        out.extend(name.split_whitespace().filter(|p| p.chars().count() >= 2).map(str::to_owned));
    }
    out.retain(|n| n.chars().count() >= 2);
    out.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    out.dedup();
    out
}

/// `text` with every whole-word occurrence of `word` replaced.
pub(crate) fn replace_word(text: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        let whole = !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric);
        out.push_str(&rest[..i]);
        out.push_str(if whole { with } else { word });
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Keyset-paginated stream of assembled conversations.
pub struct ConversationStream<'a> {
    store: &'a Store,
    query: ExportQuery,
    pii: Pii,
    after_id: i64,
    buffer: VecDeque<ConversationExport>,
    done: bool,
}

impl<'a> ConversationStream<'a> {
    pub fn new(store: &'a Store, query: ExportQuery, pii: Pii) -> Self {
        Self { store, query, pii, after_id: 0, buffer: VecDeque::new(), done: false }
    }

    pub async fn next(&mut self) -> StoreResult<Option<ConversationExport>> {
        if self.buffer.is_empty() && !self.done {
            let page = self.store.export_page(&self.query, self.after_id, PAGE_SIZE).await?;
            match page.conversations.last() {
                Some(last) => self.after_id = last.id,
                None => self.done = true,
            }
            if (page.conversations.len() as i64) < PAGE_SIZE {
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

            let names = customer_names(
                std::iter::once(c.customer_name.as_str())
                    .chain(ords.iter().map(|(o, _)| o.customer_name.as_str()))
                    .chain(ords.iter().filter_map(|(o, _)| o.customer_username.as_deref())),
            );
            let known = Known::new(
                names,
                ords.iter()
                    .flat_map(|(o, link)| {
                        let candidates = match &o.account {
                            AccountStatus::Found(a) => vec![a.as_str().to_owned()],
                            AccountStatus::Ambiguous(v) => v.iter().map(|a| a.as_str().to_owned()).collect(),
                            AccountStatus::Missing => Vec::new(),
                        };
                        candidates.into_iter().chain(link.account.clone())
                    })
                    .chain(css.iter().filter_map(|k| k.pending_account.clone()))
                    .chain(aud.iter().filter(|a| a.action == "account").map(|a| a.detail.clone())),
                ords.iter().flat_map(|(o, _)| {
                    [o.order_ref.as_str().to_owned(), o.product.clone(), o.price.to_string()]
                        .into_iter()
                        .chain(o.activation_id.clone())
                }),
            );
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
                    pii.text(&mut m.text, &known);
                    MessageExport { message: m, order_refs, agent_turn_id }
                })
                .collect();

            let orders = ords
                .into_iter()
                .map(|(mut order, mut link)| {
                    let mut history = events.remove(&order.id).unwrap_or_default();
                    for e in &mut history {
                        pii.text(&mut e.note, &known);
                    }
                    pii.name(&mut order.customer_name);
                    if let Some(u) = &mut order.customer_username {
                        pii.name(u);
                    }
                    pii.text(&mut order.details, &known);
                    if let Some(a) = &mut link.account {
                        pii.account(a);
                    }
                    OrderExport { order, link, history }
                })
                .collect();
            for t in &mut trs {
                pii.text(&mut t.question, &known);
                if let Some(a) = &mut t.answer {
                    pii.text(a, &known);
                }
                pii.text(&mut t.reply, &known);
            }
            for k in &mut css {
                if let Some(a) = &mut k.pending_account {
                    pii.account(a);
                }
                // "completed: 100 Diamonds activated for account 271828".
                if let Some(o) = &mut k.outcome {
                    pii.text(o, &known);
                }
            }
            for a in &mut aud {
                if a.action == "account" {
                    // The detail of `account` is the account ID the moderator gave.
                    pii.account(&mut a.detail);
                } else {
                    pii.text(&mut a.detail, &known);
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::redact::ACCOUNT_ID;

    fn known(names: Vec<String>, accounts: &[&str], keep: &[&str]) -> Known {
        Known::new(names, accounts.iter().map(|a| a.to_string()), keep.iter().map(|k| k.to_string()))
    }

    #[test]
    fn a_customer_is_unnamed_in_our_own_words_too() {
        let names = customer_names(["Мария Иванова", "maria_iv"].into_iter());
        let k = known(names, &[], &[]);
        let pii = Pii::redact_with(Redactor::default());
        let mut greeting =
            "Здравствуйте, Мария! Заказ TA-93372553-10 для Мария Иванова (@maria_iv). Марияна".to_owned();
        pii.text(&mut greeting, &k);
        assert_eq!(
            greeting,
            format!(
                "Здравствуйте, {REDACTED_NAME}! Заказ TA-93372553-10 для {REDACTED_NAME} (@{REDACTED_NAME}). Марияна"
            )
        );
        let mut kept = "Здравствуйте, Мария!".to_owned();
        Pii::keep().text(&mut kept, &k);
        assert_eq!(kept, "Здравствуйте, Мария!");
    }

    #[test]
    fn account_ids_go_and_payment_facts_stay() {
        let k =
            known(Vec::new(), &["4821", "271828"], &["TA-93372553-10", "act-000042", "10000 Diamonds", "₽12500.00"]);
        let pii = Pii::redact_with(Redactor::default());
        let mut t = "completed: 10000 Diamonds activated for account 271828 (activation act-000042), \
                     ₽12500.00, payment TA-93372553-10; my id is 4821, the old one 99887766; 48213 €5.00; \
                     also act-000077 and 9.00 EUR"
            .to_owned();
        pii.text(&mut t, &k);
        for gone in ["271828", "4821 ", "99887766", "48213"] {
            assert!(!t.contains(gone), "{gone} leaked: {t}");
        }
        for kept in ["10000 Diamonds", "act-000042", "₽12500.00", "TA-93372553-10", "€5.00", "9.00 EUR"] {
            assert!(t.contains(kept), "{kept} lost: {t}");
        }
        assert!(t.contains(&format!("account {ACCOUNT_ID}")) && t.contains(&format!("is {ACCOUNT_ID},")), "{t}");
        assert!(!t.contains('\u{E000}'), "no placeholder left: {t}");
    }
}
