//! Parsing one "Custom Product Order" notification.

use std::cell::LazyCell;
use std::fmt;

use crate::domain::{Currency, Money, MoneyError};
use crate::telegram::{Entity, EntityKind};

use super::{AccountExtraction, ParserConfig};

/// Who paid, as far as the notification tells.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Customer {
    /// The text after "Customer:", trimmed (`@name` for a username mention).
    pub name: String,
    /// From a mention entity on the name; needed to write to the customer.
    pub user_id: Option<i64>,
    /// Without the `@`, when the name is (or contains a mention of) a username.
    pub username: Option<String>,
}

/// A parsed order notification. All strings are trimmed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CustomProductOrder {
    pub customer: Customer,
    pub product: String,
    pub price: Money,
    /// The customer's free text, LF line endings.
    pub details: String,
    /// The account ID found in `details`.
    pub account: AccountExtraction,
}

impl CustomProductOrder {
    /// The shape `tribute-assistant order parse` prints; stable for scripts.
    pub fn to_cli_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "custom_product_order",
            "customer": self.customer.name,
            "customer_id": self.customer.user_id,
            "product": self.product,
            "price": {
                "amount_minor": self.price.amount_minor(),
                "currency": self.price.currency().code(),
            },
            "details": self.details,
            "account_id": self.account.account().map(|a| a.as_str()),
            "account_problem": self.account.problem(),
        })
    }
}

/// A field of the notification, named in [`ParseError::Malformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderField {
    Customer,
    Product,
    Price,
    Details,
}

impl OrderField {
    /// The English label, as Tribute writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderField::Customer => "Customer",
            OrderField::Product => "Product",
            OrderField::Price => "Price",
            OrderField::Details => "Order Details",
        }
    }
}

impl fmt::Display for OrderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message is not a usable order. `NotAnOrder` is normal (donations,
/// subscriptions, chatter) and is ignored; `Malformed` means Tribute sent an
/// order we could not read, which a moderator must see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not an order: {0}")]
    NotAnOrder(String),
    #[error("malformed order: field \"{field}\": {reason}")]
    Malformed { field: OrderField, reason: String },
}

fn malformed(field: OrderField, reason: impl Into<String>) -> ParseError {
    ParseError::Malformed { field, reason: reason.into() }
}

/// Parses a Tribute "Custom Product Order" notification.
///
/// `entities` are the message's entities (UTF-16 offsets, as Telegram sends
/// them); a `MentionName` on the customer's name gives their user id.
pub fn parse_order(text: &str, entities: &[Entity], config: &ParserConfig) -> Result<CustomProductOrder, ParseError> {
    let mut lines = lines_with_offsets(text);
    let header = lines
        .by_ref()
        .map(|(_, line)| line)
        .find(|line| !normalise(line).is_empty())
        .ok_or_else(|| ParseError::NotAnOrder("the message is empty".into()))?;
    if !matches_any(header, &config.headers) {
        let shown: String = header.trim().chars().take(80).collect();
        return Err(ParseError::NotAnOrder(format!("the first line is {shown:?}")));
    }

    // Fields come only from the lines before the first details label: the
    // rest is the customer's own text.
    let wanted = [OrderField::Customer, OrderField::Product, OrderField::Price];
    let mut found: [Option<(usize, &str)>; 3] = [None; 3];
    let mut details_start = None;
    for (line_start, line) in lines {
        let (label, value_at) = split_label(line);
        if matches_any(label, &config.details_labels) {
            details_start = Some(line_start + value_at);
            break;
        }
        for (slot, field) in found.iter_mut().zip(wanted) {
            if matches_any(label, config.labels(field)) {
                if slot.is_some() {
                    return Err(malformed(field, "appears more than once"));
                }
                let value = &line[value_at..];
                let skipped = value.len() - value.trim_start().len();
                *slot = Some((line_start + value_at + skipped, value.trim()));
            }
        }
    }
    let details_start = details_start.ok_or_else(|| malformed(OrderField::Details, "no \"Order Details:\" line"))?;
    let required = |i: usize| match found[i] {
        None => Err(malformed(wanted[i], "missing")),
        Some((_, "")) => Err(malformed(wanted[i], "empty")),
        Some(value) => Ok(value),
    };
    let (customer_at, customer_name) = required(0)?;
    let (_, product) = required(1)?;
    let (_, price) = required(2)?;

    let price = parse_price(price).map_err(|reason| malformed(OrderField::Price, reason))?;
    let details = text[details_start..].replace("\r\n", "\n").replace('\r', "\n").trim().to_owned();
    let account = config.account_pattern.extract(&details);
    Ok(CustomProductOrder {
        customer: customer(text, customer_at, customer_name, entities),
        product: product.to_owned(),
        price,
        details,
        account,
    })
}

/// Lines with the byte offset where each starts; a trailing `\r` is dropped.
fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n').scan(0, |pos, line| {
        let start = *pos;
        *pos += line.len() + 1;
        Some((start, line.strip_suffix('\r').unwrap_or(line)))
    })
}

/// Splits `Label: value` at the first colon, returning the label and the
/// byte offset of the value within `line` (after markdown like `**` that
/// closed a bold label). A line without a colon is all label.
fn split_label(line: &str) -> (&str, usize) {
    match line.find(':') {
        Some(colon) => {
            let rest = &line[colon + 1..];
            let markup = rest.len() - rest.trim_start_matches(['*', '_']).len();
            (&line[..colon], colon + 1 + markup)
        }
        None => (line, line.len()),
    }
}

/// Lowercase, without emoji/markdown/punctuation at the ends, single spaces.
fn normalise(s: &str) -> String {
    let core = s.trim_matches(|c: char| !c.is_alphanumeric());
    core.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn matches_any(text: &str, candidates: &[String]) -> bool {
    let text = normalise(text);
    !text.is_empty() && candidates.iter().any(|c| normalise(c) == text)
}

/// Reads `€5.00`, `5.00 €`, `₽1 500,00`, `1,500.00 RUB`: one currency
/// symbol or code before or after the amount, never a guess.
fn parse_price(text: &str) -> Result<Money, String> {
    let (Some(first), Some(last)) = (text.find(|c: char| c.is_ascii_digit()), text.rfind(|c: char| c.is_ascii_digit()))
    else {
        return Err(format!("no amount in {text:?}"));
    };
    let amount = &text[first..=last];
    let (before, after) = (text[..first].trim(), text[last + 1..].trim());
    let symbol = match (before.is_empty(), after.is_empty()) {
        (false, true) => before,
        (true, false) => after,
        (true, true) => return Err(format!("no currency in {text:?}")),
        (false, false) => return Err(format!("expected one currency before or after the amount in {text:?}")),
    };
    let currency = Currency::from_symbol_or_code(symbol)
        .ok_or_else(|| MoneyError::UnknownCurrency(symbol.to_owned()).to_string())?;
    Money::parse_amount(amount, currency).map_err(|e| e.to_string())
}

/// Builds the customer from the name at byte offset `name_at`, taking the
/// user id and username from entities that overlap it.
fn customer(text: &str, name_at: usize, name: &str, entities: &[Entity]) -> Customer {
    // Entities count UTF-16 code units, so locate the name in those units.
    let start = text[..name_at].encode_utf16().count();
    let end = start + name.encode_utf16().count();
    let overlapping = |e: &&Entity| e.offset < end && start < e.offset.saturating_add(e.length);
    let on_name: Vec<&Entity> = entities.iter().filter(overlapping).collect();

    let user_id = on_name.iter().find_map(|e| match e.kind {
        EntityKind::MentionName { user_id } => Some(user_id),
        _ => None,
    });
    let index = LazyCell::new(|| Utf16Index::new(text));
    let mention_text =
        on_name.iter().filter(|e| e.kind == EntityKind::Mention).find_map(|e| index.slice(e.offset, e.length));
    let username = [mention_text, Some(name)]
        .into_iter()
        .flatten()
        .find_map(|s| s.trim().strip_prefix('@').filter(|u| is_username(u)))
        .map(str::to_owned);
    Customer { name: name.to_owned(), user_id, username }
}

fn is_username(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where each character starts, in UTF-16 units and in bytes. Built once
/// per message, so each entity costs a binary search rather than a scan of
/// the text: a message with thousands of entities stays linear (the
/// `tribute_order` fuzz target found a scan per entity taking seconds).
struct Utf16Index<'a> {
    text: &'a str,
    /// (UTF-16 offset, byte offset) of every character start, then of the end.
    starts: Vec<(usize, usize)>,
}

impl<'a> Utf16Index<'a> {
    fn new(text: &'a str) -> Self {
        let mut units = 0;
        let mut starts = Vec::new();
        for (byte, c) in text.char_indices() {
            starts.push((units, byte));
            units += c.len_utf16();
        }
        starts.push((units, text.len()));
        Self { text, starts }
    }

    /// The part of the text covered by a UTF-16 range; `None` if the range
    /// is out of bounds or cuts a character in half.
    fn slice(&self, offset: usize, length: usize) -> Option<&'a str> {
        let byte = |unit: usize| self.starts.binary_search_by_key(&unit, |&(u, _)| u).ok().map(|i| self.starts[i].1);
        self.text.get(byte(offset)?..byte(offset.checked_add(length)?)?)
    }
}

#[cfg(test)]
mod tests;
