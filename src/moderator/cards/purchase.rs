//! Cards about Tribute purchases seen in webhooks: an amount that differs
//! from the Telegram order, a payment without an order, a refund.

use crate::domain::EscalationReason;
use crate::store::{OrderRecord, PurchaseRecord};

/// The card of a purchase case; `order` is the Telegram order it was
/// matched to, if any, and `detail` what the caller found (e.g. what the
/// backend did about a refund).
pub fn purchase_card(
    case: &str,
    reason: EscalationReason,
    detail: &str,
    p: &PurchaseRecord,
    order: Option<&OrderRecord>,
) -> String {
    // The case id on the first line: it tells cards apart in the chat (see `outbox_worker`).
    match (reason, order) {
        (EscalationReason::WebhookAmountMismatch, Some(order)) => mismatch(case, order, p),
        (EscalationReason::WebhookRefund, _) => refund(case, p, order, detail),
        _ => unmatched(case, p, detail),
    }
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn customer(id: i64) -> String {
    format!("tg://user?id={id}")
}

fn mismatch(case: &str, order: &OrderRecord, p: &PurchaseRecord) -> String {
    format!(
        "💱 Amounts differ for order {order_ref} · Case {case}\n\
         Telegram notification: {tg}\n\
         Tribute webhook (purchase {pid}): {wh}\n\
         Customer: {name} ({customer})\n\
         Product: {product}\n\
         State: {state}\n\
         Check in Tribute which amount was really paid before doing anything by hand.",
        order_ref = order.order_ref,
        tg = order.price,
        pid = p.purchase_id,
        wh = p.price,
        name = order.customer_name,
        customer = customer(p.telegram_user_id),
        product = order.product,
        state = order.state,
    )
}

fn unmatched(case: &str, p: &PurchaseRecord, detail: &str) -> String {
    format!(
        "🔎 Paid in Tribute, but no Telegram order · Case {case}\n\
         Purchase {pid}{tx}: {product}, {price}\n\
         Customer: {customer}\n\
         Paid at: {paid}\n\
         No Custom Product Order from the Tribute bot matched it{detail}. \
         Check the Tribute chat: the product may have to be activated by hand.",
        pid = p.purchase_id,
        tx = p.transaction_id.as_deref().map(|t| format!(" (transaction {t})")).unwrap_or_default(),
        product = p.product_name,
        price = p.price,
        customer = customer(p.telegram_user_id),
        paid = p.paid_at.map(fmt_ms).unwrap_or_default(),
        detail = if detail.is_empty() { String::new() } else { format!(" ({detail})") },
    )
}

fn refund(case: &str, p: &PurchaseRecord, order: Option<&OrderRecord>, what: &str) -> String {
    let title = match order {
        Some(o) => format!("💸 Refund of order {}", o.order_ref),
        None => format!("💸 Refund of Tribute purchase {}", p.purchase_id),
    };
    format!(
        "{title} · Case {case}\n\
         Purchase {pid}: {product}, {price}\n\
         Customer: {customer}\n\
         Refunded at: {at}{why}\n\
         {what}",
        pid = p.purchase_id,
        product = p.product_name,
        price = p.price,
        customer = customer(p.telegram_user_id),
        at = p.refunded_at.map(fmt_ms).unwrap_or_default(),
        why = p.refund_reason.as_deref().map(|r| format!("\nReason: {r}")).unwrap_or_default(),
    )
}
