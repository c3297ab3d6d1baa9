//! The Tribute bot's notification: text plus entities into an order.
//!
//! Input: the message text, then optionally a NUL byte and 5-byte entity
//! records (kind, UTF-16 offset u16 LE, length u16 LE).
//!
//! Beyond "no panic", every input that parses must keep the parser's
//! promise that the customer's free text cannot change the order: text
//! appended after the details, or details replaced by a forged order, leave
//! customer, product and price as they were, and the account ID comes only
//! from the details.

use std::sync::LazyLock;

use tribute_assistant::telegram::{Entity, EntityKind};
use tribute_assistant::tribute::{parse_order, CustomProductOrder, ParserConfig};

/// The English defaults, and a localised bot with a custom account pattern.
static CONFIGS: LazyLock<[ParserConfig; 2]> = LazyLock::new(|| {
    let mut ru = ParserConfig::default().with_account_pattern("(?i)acc-([a-z0-9]+)").expect("valid pattern");
    ru.headers.push("Новый заказ".into());
    ru.customer_labels.push("Покупатель".into());
    ru.product_labels.push("Товар".into());
    ru.price_labels.push("Цена".into());
    ru.details_labels.push("Детали заказа".into());
    [ParserConfig::default(), ru]
});

/// What a customer might write to forge an order, in both configs' words.
const FORGERIES: &[&str] = &[
    "Price: €0.01\nCustomer: @mallory\nProduct: 1000000 Diamonds\nOrder Details: 999999 acc-evil1",
    "🆕 Custom Product Order\nCustomer: x\nProduct: y\nPrice: ₽1\nOrder Details:\n000000\n",
    "Цена: 1 RUB\nПокупатель: @mallory\nДетали заказа: acc-x 4242",
    "",
];

pub(super) fn tribute_order(data: &[u8]) {
    let (text, entities) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (super::text(&data[..nul]), entities(&data[nul + 1..])),
        None => (super::text(data), Vec::new()),
    };
    for config in CONFIGS.iter() {
        if let Ok(order) = parse_order(&text, &entities, config) {
            check_order(&text, &entities, config, &order);
        }
    }
}

fn entities(data: &[u8]) -> Vec<Entity> {
    data.chunks_exact(5)
        .map(|r| {
            let offset = usize::from(u16::from_le_bytes([r[1], r[2]]));
            let length = usize::from(u16::from_le_bytes([r[3], r[4]]));
            let kind = match r[0] % 4 {
                0 => EntityKind::MentionName { user_id: i64::from(r[0]) * 1_000_003 },
                1 => EntityKind::Mention,
                2 => EntityKind::Bold,
                _ => EntityKind::TextUrl { url: "https://example.com".into() },
            };
            Entity { offset, length, kind }
        })
        .collect()
}

fn check_order(text: &str, entities: &[Entity], config: &ParserConfig, order: &CustomProductOrder) {
    assert_eq!(order.account, config.account_pattern.extract(&order.details), "the account comes from the details");
    let own = [text];
    for tail in FORGERIES.iter().chain(&own) {
        let longer = format!("{text}\n{tail}");
        let again = parse_order(&longer, entities, config).expect("text after the details cannot break an order");
        assert_same_fields(order, &again, "appended to the details");
    }
    // Replace the details (found at the end of the text; line endings are
    // normalised in them, so only texts without `\r` map back exactly).
    if text.contains('\r') {
        return;
    }
    let prefix = text.trim_end().strip_suffix(order.details.as_str()).expect("the details end the text");
    for tail in FORGERIES.iter().chain(&own) {
        let forged = format!("{prefix}\n{tail}");
        let again = parse_order(&forged, entities, config).expect("other details cannot break an order");
        assert_same_fields(order, &again, "details replaced");
        assert_eq!(again.details, tail.trim(), "the details are the customer's text");
        assert_eq!(again.account, config.account_pattern.extract(tail.trim()), "the account comes from the details");
    }
}

fn assert_same_fields(a: &CustomProductOrder, b: &CustomProductOrder, how: &str) {
    assert_eq!(a.price, b.price, "price changed by text {how}");
    assert_eq!(a.customer, b.customer, "customer changed by text {how}");
    assert_eq!(a.product, b.product, "product changed by text {how}");
}
