use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::domain::AccountId;
use crate::tribute::AccountPattern;

const EXAMPLE: &str = "🆕 Custom Product Order\n\nCustomer: Иван Петров\nProduct: 100 Diamonds\nPrice: €5.00\nOrder Details:\nMy account id123456, please hurry";

fn parse(text: &str) -> Result<CustomProductOrder, ParseError> {
    parse_order(text, &[], &ParserConfig::default())
}

fn order(customer: &str, price: &str, details: &str) -> String {
    format!("🆕 Custom Product Order\nCustomer: {customer}\nProduct: 100 Diamonds\nPrice: {price}\nOrder Details:\n{details}")
}

fn found(id: &str) -> AccountExtraction {
    AccountExtraction::Found(AccountId::parse(id).unwrap())
}

fn malformed_field(result: Result<CustomProductOrder, ParseError>) -> OrderField {
    match result {
        Err(ParseError::Malformed { field, .. }) => field,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn mention_name(offset: usize, length: usize, user_id: i64) -> Entity {
    Entity { offset, length, kind: EntityKind::MentionName { user_id } }
}

/// UTF-16 offset of `needle` in `text`, the way Telegram counts.
fn utf16_offset(text: &str, needle: &str) -> usize {
    text[..text.find(needle).unwrap()].encode_utf16().count()
}

#[test]
fn parses_the_example() {
    let o = parse(EXAMPLE).unwrap();
    assert_eq!(o.customer, Customer { name: "Иван Петров".into(), user_id: None, username: None });
    assert_eq!(o.product, "100 Diamonds");
    assert_eq!(o.price, Money::new(500, Currency::Eur).unwrap());
    assert_eq!(o.details, "My account id123456, please hurry");
    assert_eq!(o.account, found("123456"));
}

#[test]
fn tolerates_crlf_stray_whitespace_and_extra_lines() {
    let text = "\r\n  🆕  Custom   Product Order  \r\n\r\nPaid via card\r\n  Customer:   Иван Петров  \r\nProduct:100 Diamonds\r\n\tPrice :  €5.00 \r\nOrder Details:\r\n  line one\r\nline two 123456  \r\n\r\n";
    let o = parse(text).unwrap();
    assert_eq!(o.customer.name, "Иван Петров");
    assert_eq!(o.product, "100 Diamonds");
    assert_eq!(o.price.amount_minor(), 500);
    assert_eq!(o.details, "line one\nline two 123456");
    assert_eq!(o.account, found("123456"));
}

#[test]
fn accepts_bold_and_lowercase_headers_and_bold_labels() {
    for header in ["**🆕 Custom Product Order**", "custom product order", "🆕 *Custom Product Order*:"] {
        let text = EXAMPLE.replacen("🆕 Custom Product Order", header, 1);
        assert!(parse(&text).is_ok(), "{header:?}");
    }
    let o = parse(&EXAMPLE.replace("Price: €5.00", "**Price:** €5.00")).unwrap();
    assert_eq!(o.price.amount_minor(), 500);
}

#[test]
fn other_messages_are_not_orders() {
    for text in [
        "💰 New donation\nFrom: Иван\nAmount: €5.00",
        "New subscription\nCustomer: Иван\nPrice: €5.00",
        "hello there",
        "",
        "  \n\r\n ",
        "Custom Product Order cancelled",
        "Customer: Иван\n🆕 Custom Product Order",
    ] {
        let err = parse(text).unwrap_err();
        assert!(matches!(err, ParseError::NotAnOrder(_)), "{text:?}: {err:?}");
        assert!(err.to_string().contains("not an order"), "{err}");
    }
}

#[test]
fn reads_prices_in_every_shape() {
    let cases = [
        ("€5.00", 500, Currency::Eur),
        ("5.00 €", 500, Currency::Eur),
        ("5,00 EUR", 500, Currency::Eur),
        ("₽1 500,00", 150_000, Currency::Rub),
        ("500 ₽", 50_000, Currency::Rub),
        ("1,500.00 RUB", 150_000, Currency::Rub),
        ("1\u{a0}500 руб.", 150_000, Currency::Rub),
        ("$10", 1_000, Currency::Usd),
        ("USD 12,345.67", 1_234_567, Currency::Usd),
        ("£1,234.5", 123_450, Currency::Gbp),
    ];
    for (price, minor, currency) in cases {
        let o = parse(&order("Иван", price, "id 123456")).unwrap_or_else(|e| panic!("{price:?}: {e}"));
        assert_eq!(o.price, Money::new(minor, currency).unwrap(), "{price:?}");
    }
}

#[test]
fn bad_prices_are_malformed_price() {
    let err = parse(&order("Иван", "¥500", "")).unwrap_err();
    assert_eq!(err.to_string(), "malformed order: field \"Price\": unknown currency \"¥\"");
    for price in ["500", "free", "€0.00", "€1,50,0", "€5 EUR", "€"] {
        assert_eq!(malformed_field(parse(&order("Иван", price, ""))), OrderField::Price, "{price:?}");
    }
}

#[test]
fn missing_or_empty_fields_are_malformed_and_named() {
    let no_price = EXAMPLE.replace("Price: €5.00\n", "");
    let err = parse(&no_price).unwrap_err();
    assert_eq!(malformed_field(Err(err.clone())), OrderField::Price);
    let shown = err.to_string();
    assert!(shown.contains("malformed") && shown.contains("Price"), "{shown}");

    assert_eq!(malformed_field(parse(&EXAMPLE.replace("Product: 100 Diamonds", "Product:  "))), OrderField::Product);
    assert_eq!(malformed_field(parse(&EXAMPLE.replace("Customer: Иван Петров", "Customer:"))), OrderField::Customer);
    assert_eq!(malformed_field(parse(&EXAMPLE.replace("Customer: ", "Client: "))), OrderField::Customer);
}

#[test]
fn a_field_twice_before_the_details_is_malformed() {
    let text = EXAMPLE.replace("Price: €5.00", "Price: €5.00\nPrice: €6.00");
    assert_eq!(malformed_field(parse(&text)), OrderField::Price);
}

#[test]
fn missing_details_label_is_malformed_details() {
    let text = EXAMPLE.replace("Order Details:\n", "");
    let err = parse(&text).unwrap_err();
    assert_eq!(malformed_field(Err(err.clone())), OrderField::Details);
    assert!(err.to_string().contains("Order Details"), "{err}");
}

#[test]
fn empty_details_are_fine_but_have_no_account() {
    for details in ["", "  \n  "] {
        let o = parse(&order("Иван", "€5.00", details)).unwrap();
        assert_eq!(o.details, "");
        assert_eq!(o.account, AccountExtraction::Missing);
    }
}

#[test]
fn details_may_start_on_the_label_line() {
    let text = EXAMPLE.replace("Order Details:\n", "Order Details: id 654321\n");
    let o = parse(&text).unwrap();
    assert_eq!(o.details, "id 654321\nMy account id123456, please hurry");
    assert_eq!(o.account.problem(), Some("ambiguous"));
}

#[test]
fn fake_fields_in_details_change_nothing() {
    let details = "Customer: Admin\nProduct: 1 billion Diamonds\nPrice: €0.01\nOrder Details:\nid 123456";
    let o = parse(&order("Иван", "€5.00", details)).unwrap();
    assert_eq!(o.customer.name, "Иван");
    assert_eq!(o.product, "100 Diamonds");
    assert_eq!(o.price.amount_minor(), 500);
    assert_eq!(o.details, details);
    assert_eq!(o.account, found("123456"));
}

#[test]
fn fields_after_details_do_not_fill_missing_ones() {
    let text = "🆕 Custom Product Order\nCustomer: Иван\nProduct: X\nOrder Details:\nPrice: €0.01";
    assert_eq!(malformed_field(parse(text)), OrderField::Price);
}

#[test]
fn account_cases_in_details() {
    let cases = [
        ("ID: 123456", found("123456")),
        ("#000123", found("000123")),
        ("123456 and again 123456", found("123456")),
        ("card 1234567890123", AccountExtraction::Missing),
        ("12 34 56", AccountExtraction::Missing),
    ];
    for (details, want) in cases {
        assert_eq!(parse(&order("Иван", "€5.00", details)).unwrap().account, want, "{details:?}");
    }
    let two = parse(&order("Иван", "€5.00", "123456\nor 654321")).unwrap().account;
    assert!(matches!(two, AccountExtraction::Ambiguous(ref ids) if ids.len() == 2), "{two:?}");
}

#[test]
fn mention_name_entity_gives_user_id_with_utf16_offsets() {
    // Emoji (2 UTF-16 units, 4 bytes) and Cyrillic (1 unit, 2 bytes) before
    // the mention: byte offsets would point somewhere else entirely.
    let text = "🆕 Custom Product Order\n\nНовый заказ оплачен\nCustomer: 🦊 Иван Петров\nProduct: 100 Diamonds\nPrice: ₽500\nOrder Details:\n123456";
    assert_eq!(utf16_offset(text, "Иван Петров"), 58, "hand count: 2+21+2+19+1+10+3");
    let o = parse_order(text, &[mention_name(58, 11, 4242)], &ParserConfig::default()).unwrap();
    assert_eq!(o.customer.name, "🦊 Иван Петров");
    assert_eq!(o.customer.user_id, Some(4242));
    assert_eq!(o.customer.username, None);
}

#[test]
fn mention_on_another_line_is_not_the_customer() {
    let text = order("Иван", "€5.00", "ask Пётр 123456");
    let elsewhere = [
        mention_name(utf16_offset(&text, "Пётр"), 4, 1),
        mention_name(utf16_offset(&text, "100 Diamonds"), 3, 2),
        mention_name(utf16_offset(&text, "Customer"), 8, 3),
    ];
    assert_eq!(parse_order(&text, &elsewhere, &ParserConfig::default()).unwrap().customer.user_id, None);
}

#[test]
fn username_with_or_without_entity() {
    let text = order("@ivan_p", "€5.00", "123456");
    for entities in
        [vec![], vec![Entity { offset: utf16_offset(&text, "@ivan_p"), length: 7, kind: EntityKind::Mention }]]
    {
        let c = parse_order(&text, &entities, &ParserConfig::default()).unwrap().customer;
        assert_eq!(c, Customer { name: "@ivan_p".into(), user_id: None, username: Some("ivan_p".into()) });
    }
    let text = order("Иван (@ivan_p)", "€5.00", "123456");
    let mention = Entity { offset: utf16_offset(&text, "@ivan_p"), length: 7, kind: EntityKind::Mention };
    let c = parse_order(&text, &[mention], &ParserConfig::default()).unwrap().customer;
    assert_eq!((c.name.as_str(), c.username.as_deref()), ("Иван (@ivan_p)", Some("ivan_p")));
}

#[test]
fn nonsense_entities_do_not_panic() {
    let entities = [
        mention_name(usize::MAX, usize::MAX, 1),
        mention_name(3, usize::MAX, 7),
        Entity { offset: 1, length: 1, kind: EntityKind::Mention },
        Entity { offset: 10_000, length: 5, kind: EntityKind::Mention },
    ];
    let o = parse_order(EXAMPLE, &entities, &ParserConfig::default()).unwrap();
    assert_eq!(o.customer.user_id, Some(7), "an entity covering everything still covers the name");
}

#[test]
fn thousands_of_mentions_on_a_long_message_stay_fast() {
    // Found by the `tribute_order` fuzz target: every mention entity on the
    // name scanned the text from its start, seconds for one message.
    let text = order(&format!("Ann {}", "=".repeat(20_000)), "€5.00", "id 123456");
    let name_at = utf16_offset(&text, "Ann");
    let mut entities: Vec<Entity> =
        (0..20_000).map(|i| Entity { offset: name_at + i % 7, length: 100_000, kind: EntityKind::Mention }).collect();
    entities.push(Entity { offset: name_at, length: 3, kind: EntityKind::Mention });
    let started = std::time::Instant::now();
    let o = parse_order(&text, &entities, &ParserConfig::default()).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(o.customer.username, None, "\"Ann\" is not a @username");
}

#[test]
fn utf16_slice_refuses_half_characters() {
    assert_eq!(Utf16Index::new("🆕ab").slice(2, 2), Some("ab"));
    assert_eq!(Utf16Index::new("🆕ab").slice(1, 2), None);
    assert_eq!(Utf16Index::new("🆕ab").slice(0, 5), None);
    assert_eq!(Utf16Index::new("🆕ab").slice(4, 0), Some(""));
}

#[test]
fn localised_labels_and_header() {
    let mut config = ParserConfig::default();
    config.headers.push("Заказ товара".into());
    config.customer_labels.push("Покупатель".into());
    config.product_labels.push("Товар".into());
    config.price_labels.push("Цена".into());
    config.details_labels.push("Детали заказа".into());
    let text = "🆕 Заказ товара\nПокупатель: Иван\nТовар: 100 алмазов\nЦена: 500 ₽\nДетали заказа:\nмой id 123456";
    let o = parse_order(text, &[], &config).unwrap();
    assert_eq!((o.customer.name.as_str(), o.product.as_str()), ("Иван", "100 алмазов"));
    assert_eq!(o.price, Money::new(50_000, Currency::Rub).unwrap());
    assert_eq!(o.account, found("123456"));
    assert!(parse_order(EXAMPLE, &[], &config).is_ok(), "English still works");
    assert!(matches!(parse(text), Err(ParseError::NotAnOrder(_))), "not with the default config");
}

#[test]
fn custom_account_pattern() {
    let config = ParserConfig::default().with_account_pattern("(?i)acc-([a-z0-9]+)").unwrap();
    let o = parse_order(&order("Иван", "€5.00", "ACC-Ab12, not 123456"), &[], &config).unwrap();
    assert_eq!(o.account, found("Ab12"));
    assert!(ParserConfig::default().with_account_pattern("[").is_err());
    let _: AccountPattern = config.account_pattern;
}

#[test]
fn cli_json_has_the_agreed_shape() {
    let entities = [mention_name(utf16_offset(EXAMPLE, "Иван"), 11, 93)];
    let o = parse_order(EXAMPLE, &entities, &ParserConfig::default()).unwrap();
    assert_eq!(
        o.to_cli_json(),
        json!({
            "kind": "custom_product_order",
            "customer": "Иван Петров",
            "customer_id": 93,
            "product": "100 Diamonds",
            "price": {"amount_minor": 500, "currency": "EUR"},
            "details": "My account id123456, please hurry",
            "account_id": "123456",
            "account_problem": null,
        })
    );
    let missing = parse(&order("Иван", "$10", "")).unwrap().to_cli_json();
    assert_eq!((&missing["customer_id"], &missing["account_id"]), (&json!(null), &json!(null)));
    assert_eq!(missing["account_problem"], "missing");
    assert_eq!(missing["price"], json!({"amount_minor": 1000, "currency": "USD"}));
    let ambiguous = parse(&order("Иван", "$10", "1234 5678")).unwrap().to_cli_json();
    assert_eq!((&ambiguous["account_id"], &ambiguous["account_problem"]), (&json!(null), &json!("ambiguous")));
}

/// Free text a customer might type, biased towards lines that look like fields.
fn details_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        any::<String>(),
        "\\PC*",
        "(Price|Customer|Product|Order Details|price|CUSTOMER) ?: ?[€$₽¥0-9., a-zA-Zа-я@]*",
        Just("🆕 Custom Product Order".to_owned()),
        "[0-9 #:a-z]{0,20}",
    ];
    (prop::collection::vec(line, 0..6), prop_oneof![Just("\n"), Just("\r\n"), Just("\r")])
        .prop_map(|(lines, sep)| lines.join(sep))
}

fn arbitrary_entity() -> impl Strategy<Value = Entity> {
    (0usize..300, prop_oneof![0usize..50, Just(usize::MAX)], any::<i64>(), any::<bool>()).prop_map(
        |(offset, length, user_id, named)| Entity {
            offset,
            length,
            kind: if named { EntityKind::MentionName { user_id } } else { EntityKind::Mention },
        },
    )
}

proptest! {
    #[test]
    fn details_never_change_the_real_fields(details in details_text()) {
        let text = format!("{}\n{details}", EXAMPLE.split_once("\nMy account").unwrap().0);
        let customer_at = utf16_offset(&text, "Иван");
        let o = parse_order(&text, &[mention_name(customer_at, 11, 77)], &ParserConfig::default()).unwrap();
        prop_assert_eq!(o.customer, Customer { name: "Иван Петров".into(), user_id: Some(77), username: None });
        prop_assert_eq!(o.product, "100 Diamonds");
        prop_assert_eq!(o.price, Money::new(500, Currency::Eur).unwrap());
        let want = details.replace("\r\n", "\n").replace('\r', "\n");
        prop_assert_eq!(o.details.as_str(), want.trim());
        prop_assert_eq!(o.account, AccountPattern::default().extract(want.trim()));
    }

    #[test]
    fn arbitrary_input_never_panics(
        text in prop_oneof![any::<String>(), details_text().prop_map(|d| format!("🆕 Custom Product Order\n{d}"))],
        entities in prop::collection::vec(arbitrary_entity(), 0..4),
    ) {
        let _ = parse_order(&text, &entities, &ParserConfig::default());
    }
}
