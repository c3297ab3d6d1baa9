//! Tribute notifications: text + entities in, typed order out. No I/O.
//!
//! The Tribute bot (@tribute) tells the publisher about a paid order with a
//! message like:
//!
//! ```text
//! 🆕 Custom Product Order
//!
//! Customer: Иван Петров
//! Product: 100 Diamonds
//! Price: €5.00
//! Order Details:
//! My account id123456, please hurry
//! ```
//!
//! [`parse_order`] turns it into a [`CustomProductOrder`]. Everything after
//! "Order Details:" is typed by the customer, so it is never read for the
//! other fields: a customer cannot lower the price or change who they are
//! by writing `Price: €0.01` there. The account ID is taken from the
//! details with a configurable [`AccountPattern`].

mod account;
mod order;
mod settings;

pub use account::{AccountExtraction, AccountPattern, PatternError};
pub use order::{parse_order, CustomProductOrder, Customer, OrderField, ParseError};
pub use settings::ParserSection;

/// A Tribute message as stored and shown to the moderator: text plus
/// entities (UTF-16 offsets). `order parse` accepts it as JSON, so a new
/// message format seen in production can be replayed through the parser.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RawNotification {
    pub text: String,
    #[serde(default)]
    pub entities: Vec<crate::telegram::Entity>,
}

/// What the parser looks for. The defaults match Tribute's English
/// messages; every list can take more entries (e.g. `"Покупатель"`,
/// `"Товар"`, `"Цена"`, `"Детали заказа"`) for a localised bot.
///
/// Headers and labels are compared case-insensitively, ignoring emoji,
/// markdown and punctuation around them and runs of whitespace inside.
#[derive(Debug, Clone)]
pub struct ParserConfig {
    /// The first line of an order notification (without its emoji).
    pub headers: Vec<String>,
    pub customer_labels: Vec<String>,
    pub product_labels: Vec<String>,
    pub price_labels: Vec<String>,
    /// The label that starts the customer's free text.
    pub details_labels: Vec<String>,
    /// How the account ID is found in the details.
    pub account_pattern: AccountPattern,
}

impl Default for ParserConfig {
    fn default() -> Self {
        let one = |s: &str| vec![s.to_owned()];
        Self {
            headers: one("Custom Product Order"),
            customer_labels: one("Customer"),
            product_labels: one("Product"),
            price_labels: one("Price"),
            details_labels: one("Order Details"),
            account_pattern: AccountPattern::default(),
        }
    }
}

impl ParserConfig {
    /// Replaces the account pattern with a custom regex (see [`AccountPattern::new`]).
    pub fn with_account_pattern(mut self, regex: &str) -> Result<Self, PatternError> {
        self.account_pattern = AccountPattern::new(regex)?;
        Ok(self)
    }

    /// The labels that introduce `field`.
    pub fn labels(&self, field: OrderField) -> &[String] {
        match field {
            OrderField::Customer => &self.customer_labels,
            OrderField::Product => &self.product_labels,
            OrderField::Price => &self.price_labels,
            OrderField::Details => &self.details_labels,
        }
    }
}
