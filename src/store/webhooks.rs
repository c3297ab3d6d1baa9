//! Tribute webhook events and the purchases merged from them.
//!
//! An event is stored (unique on name + purchase) in the same transaction
//! that folds it into its purchase row, so the HTTP handler can answer 200
//! as soon as this returns and a replay changes nothing.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::cases::close_order_cases_tx;
use super::orders::{cas_order_state, OrderChanges};
use super::outbox::{insert_card, CardSubject, Escalation};
use super::{Store, StoreError, StoreResult};
use crate::domain::{Currency, EscalationReason, Money, OrderState};
use crate::runtime::clock::now_ms;

/// A verified event as the store keeps it.
#[derive(Debug, Clone)]
pub struct NewWebhookEvent {
    pub name: String,
    /// The purchase id, or `sha256:<hex>` of the body for events without one.
    pub purchase_key: String,
    pub created_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub raw_body: String,
    /// What the event says about a purchase (known event names only).
    pub purchase: Option<PurchaseFacts>,
}

/// The purchase fields of `new_digital_product` / `digital_product_refunded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseFacts {
    pub purchase_id: String,
    pub product_id: Option<String>,
    pub product_name: String,
    pub price: Money,
    pub telegram_user_id: i64,
    pub transaction_id: Option<String>,
    /// `new_digital_product`: when it was paid (unix ms).
    pub paid_at: Option<i64>,
    /// `digital_product_refunded`: when and why it was refunded.
    pub refund: Option<(i64, Option<String>)>,
}

/// Whether a delivery was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredEvent {
    New,
    /// The same event (name + purchase) was stored before: nothing changed.
    Duplicate,
}

/// A purchase as stored.
#[derive(Debug, Clone)]
pub struct PurchaseRecord {
    pub purchase_id: String,
    pub product_id: Option<String>,
    pub product_name: String,
    pub price: Money,
    pub telegram_user_id: i64,
    pub transaction_id: Option<String>,
    pub paid_at: Option<i64>,
    pub order_id: Option<i64>,
    pub unmatched_flagged_at: Option<i64>,
    pub refunded_at: Option<i64>,
    pub refund_reason: Option<String>,
    pub refund_handled_at: Option<i64>,
    pub deactivation: Option<String>,
    pub created_at: i64,
}

fn purchase_from_row(row: &SqliteRow) -> StoreResult<PurchaseRecord> {
    let id: String = row.get("purchase_id");
    let corrupt = |what: &str| StoreError::Corrupt(format!("purchase {id}: {what}"));
    let currency: Currency = row.get::<&str, _>("currency").parse().map_err(|_| corrupt("currency"))?;
    let price = Money::new(row.get("amount_minor"), currency).map_err(|_| corrupt("amount"))?;
    Ok(PurchaseRecord {
        purchase_id: id.clone(),
        product_id: row.get("product_id"),
        product_name: row.get("product_name"),
        price,
        telegram_user_id: row.get("telegram_user_id"),
        transaction_id: row.get("transaction_id"),
        paid_at: row.get("paid_at"),
        order_id: row.get("order_id"),
        unmatched_flagged_at: row.get("unmatched_flagged_at"),
        refunded_at: row.get("refunded_at"),
        refund_reason: row.get("refund_reason"),
        refund_handled_at: row.get("refund_handled_at"),
        deactivation: row.get("deactivation"),
        created_at: row.get("created_at"),
    })
}

/// A Telegram order that a purchase may belong to.
#[derive(Debug, Clone)]
pub struct MatchCandidate {
    pub order_id: i64,
    pub product: String,
    pub price: Money,
    pub created_at: i64,
}

impl Store {
    /// Stores a verified event and folds it into its purchase, atomically.
    pub async fn store_webhook_event(&self, ev: &NewWebhookEvent) -> StoreResult<StoredEvent> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO tribute_webhook_events
               (name, purchase_key, purchase_id, created_at, sent_at, raw_body, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (name, purchase_key) DO NOTHING",
        )
        .bind(&ev.name)
        .bind(&ev.purchase_key)
        .bind(ev.purchase.as_ref().map(|p| p.purchase_id.as_str()))
        .bind(ev.created_at)
        .bind(ev.sent_at)
        .bind(&ev.raw_body)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(StoredEvent::Duplicate);
        }
        if let Some(p) = &ev.purchase {
            // The first event of a purchase creates the row; later ones fill in
            // what they know (a refund may even arrive before the purchase).
            sqlx::query(
                "INSERT INTO tribute_purchases
                   (purchase_id, product_id, product_name, amount_minor, currency, telegram_user_id,
                    transaction_id, paid_at, refunded_at, refund_reason, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
                 ON CONFLICT (purchase_id) DO UPDATE SET
                    product_id = COALESCE(excluded.product_id, product_id),
                    transaction_id = COALESCE(excluded.transaction_id, transaction_id),
                    paid_at = COALESCE(paid_at, excluded.paid_at),
                    refunded_at = COALESCE(refunded_at, excluded.refunded_at),
                    refund_reason = COALESCE(refund_reason, excluded.refund_reason),
                    updated_at = excluded.updated_at",
            )
            .bind(&p.purchase_id)
            .bind(&p.product_id)
            .bind(&p.product_name)
            .bind(p.price.amount_minor())
            .bind(p.price.currency().code())
            .bind(p.telegram_user_id)
            .bind(&p.transaction_id)
            .bind(p.paid_at)
            .bind(p.refund.as_ref().map(|(at, _)| *at))
            .bind(p.refund.as_ref().and_then(|(_, why)| why.clone()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(StoredEvent::New)
    }

    /// Keeps a correctly signed body we could not read, with its raw text,
    /// and writes a moderator card for it (why: `error`) the first time it
    /// arrives. Returns false for a repeat (Tribute retries non-2xx answers).
    pub async fn store_invalid_webhook(&self, body_key: &str, raw_body: &str, error: &str) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO tribute_webhook_events (name, purchase_key, raw_body, error, received_at)
             VALUES ('invalid', ?, ?, ?, ?) ON CONFLICT (name, purchase_key) DO NOTHING",
        )
        .bind(body_key)
        .bind(raw_body)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted > 0 {
            let card = Escalation {
                reason: EscalationReason::WebhookInvalid,
                subject: CardSubject::WebhookBody(body_key.to_owned()),
                detail: error.to_owned(),
            };
            insert_card(&mut tx, &card, now).await?;
        }
        tx.commit().await?;
        Ok(inserted > 0)
    }

    /// The raw text of a signed body we could not read (its card shows it).
    pub async fn invalid_webhook_body(&self, body_key: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT raw_body FROM tribute_webhook_events WHERE name = 'invalid' AND purchase_key = ?",
        )
        .bind(body_key)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// How many events of each name are stored.
    #[cfg(feature = "test-support")]
    pub async fn webhook_event_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT name, COUNT(*) AS n FROM tribute_webhook_events GROUP BY name ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get("name"), r.get("n"))).collect())
    }

    pub async fn purchase(&self, purchase_id: &str) -> StoreResult<Option<PurchaseRecord>> {
        let row = sqlx::query("SELECT * FROM tribute_purchases WHERE purchase_id = ?")
            .bind(purchase_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(purchase_from_row).transpose()
    }

    /// Paid purchases not yet matched to a Telegram order, oldest first;
    /// not those past the matching deadline (a moderator has them).
    pub async fn unmatched_purchases(&self) -> StoreResult<Vec<PurchaseRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM tribute_purchases
             WHERE order_id IS NULL AND paid_at IS NOT NULL AND matching_stopped_at IS NULL ORDER BY paid_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(purchase_from_row).collect()
    }

    /// Refunded purchases whose refund was not acted on yet and is due.
    pub async fn refunds_due(&self, now: i64) -> StoreResult<Vec<PurchaseRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM tribute_purchases
             WHERE refunded_at IS NOT NULL AND refund_handled_at IS NULL
               AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
             ORDER BY refunded_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(purchase_from_row).collect()
    }

    /// Orders of this customer created within `[from, to]` (unix ms) that
    /// no purchase has claimed yet.
    pub async fn match_candidates(&self, customer_id: i64, from: i64, to: i64) -> StoreResult<Vec<MatchCandidate>> {
        let rows = sqlx::query(
            "SELECT id, product, amount_minor, currency, created_at FROM orders
             WHERE customer_id = ? AND tribute_purchase_id IS NULL AND created_at BETWEEN ? AND ?
             ORDER BY id",
        )
        .bind(customer_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get("id");
                let corrupt = || StoreError::Corrupt(format!("order {id}: price"));
                let currency: Currency = r.get::<&str, _>("currency").parse().map_err(|_| corrupt())?;
                Ok(MatchCandidate {
                    order_id: id,
                    product: r.get("product"),
                    price: Money::new(r.get("amount_minor"), currency).map_err(|_| corrupt())?,
                    created_at: r.get("created_at"),
                })
            })
            .collect()
    }

    /// Links a purchase and an order (both ways), notes it in the order's
    /// history and, when their amounts differ, writes the card for it, in
    /// one transaction. False when either side was claimed meanwhile.
    pub async fn match_purchase(&self, purchase_id: &str, order_id: i64, amounts_differ: bool) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // The history line is the row's own (migration 0021's trigger),
        // undone with the rest if the purchase was claimed meanwhile.
        let note = format!("Tribute webhook: matched to purchase {purchase_id}");
        let order = sqlx::query(
            "UPDATE orders SET tribute_purchase_id = ?, last_note = ?, updated_at = ?
             WHERE id = ? AND tribute_purchase_id IS NULL",
        )
        .bind(purchase_id)
        .bind(&note)
        .bind(now)
        .bind(order_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let purchase = sqlx::query(
            "UPDATE tribute_purchases SET order_id = ?, matched_at = ?, updated_at = ?
             WHERE purchase_id = ? AND order_id IS NULL AND matching_stopped_at IS NULL",
        )
        .bind(order_id)
        .bind(now)
        .bind(now)
        .bind(purchase_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if order == 0 || purchase == 0 {
            return Ok(false);
        }
        if amounts_differ {
            let card = purchase_card(EscalationReason::WebhookAmountMismatch, purchase_id, Some(order_id), "");
            insert_card(&mut tx, &card, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Writes the "paid, but no Telegram order" card once (`detail`: e.g. how long we waited).
    pub async fn flag_unmatched_purchase(&self, purchase_id: &str, detail: &str) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let flagged = sqlx::query(
            "UPDATE tribute_purchases SET unmatched_flagged_at = ?, updated_at = ?
             WHERE purchase_id = ? AND unmatched_flagged_at IS NULL AND order_id IS NULL",
        )
        .bind(now)
        .bind(now)
        .bind(purchase_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if flagged > 0 {
            let card = purchase_card(EscalationReason::WebhookUnmatchedPurchase, purchase_id, None, detail);
            insert_card(&mut tx, &card, now).await?;
        }
        tx.commit().await?;
        Ok(flagged > 0)
    }

    /// Records that a deactivation is about to be requested (the recovery
    /// point before the backend call; the call itself is idempotent).
    pub async fn note_deactivation_requested(&self, purchase_id: &str) -> StoreResult<()> {
        let now = now_ms();
        sqlx::query("UPDATE tribute_purchases SET deactivation = 'requested', updated_at = ? WHERE purchase_id = ?")
            .bind(now)
            .bind(purchase_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A deactivation the backend could not take now: try again at `until`.
    pub async fn park_refund(&self, purchase_id: &str, until: i64) -> StoreResult<()> {
        sqlx::query("UPDATE tribute_purchases SET next_attempt_at = ?, updated_at = ? WHERE purchase_id = ?")
            .bind(until)
            .bind(now_ms())
            .bind(purchase_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes a refund: what happened on the backend (if anything), a note
    /// on the order, and the moderator card saying `what` was done, in one
    /// transaction.
    pub async fn finish_refund(
        &self,
        purchase_id: &str,
        deactivation: Option<&str>,
        order: Option<(i64, OrderState)>,
        what: &str,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE tribute_purchases SET refund_handled_at = ?, deactivation = COALESCE(?, deactivation),
                next_attempt_at = NULL, updated_at = ? WHERE purchase_id = ?",
        )
        .bind(now)
        .bind(deactivation)
        .bind(now)
        .bind(purchase_id)
        .execute(&mut *tx)
        .await?;
        if let Some((order_id, state)) = order {
            let note = match deactivation {
                Some(d) => format!("Tribute webhook: refunded (purchase {purchase_id}); backend deactivation: {d}"),
                None => format!("Tribute webhook: refunded (purchase {purchase_id})"),
            };
            refund_order(&mut tx, order_id, state, &note, now).await?;
        }
        let card = purchase_card(EscalationReason::WebhookRefund, purchase_id, order.map(|(id, _)| id), what);
        insert_card(&mut tx, &card, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A card about a Tribute purchase (and its order, once matched).
fn purchase_card(reason: EscalationReason, purchase_id: &str, order_id: Option<i64>, detail: &str) -> Escalation {
    let subject = CardSubject::Purchase { purchase_id: purchase_id.to_owned(), order_id };
    Escalation { reason, subject, detail: detail.to_owned() }
}

/// Settles a refunded order for good, in the caller's transaction: the
/// order becomes `refunded` (only from the state the caller saw, so an
/// activation racing the refund makes the whole refund retry later), its
/// conversation link closes and its open cases close. Afterwards no
/// account ID, from the customer or a moderator, can activate it.
async fn refund_order(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    order_id: i64,
    state: OrderState,
    note: &str,
    now: i64,
) -> StoreResult<()> {
    // A refund writes no dialogue event: closing the link below tells the dialogue.
    if cas_order_state(&mut **tx, order_id, state, OrderState::Refunded, &OrderChanges::default(), note, now)
        .await?
        .is_none()
    {
        return Err(StoreError::StateChanged { order_id, expected: state });
    }
    sqlx::query("UPDATE conversation_orders SET status = 'closed', updated_at = ? WHERE order_id = ?")
        .bind(now)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    close_order_cases_tx(tx, order_id, "refunded", "💸 The payment was refunded; this case is closed.", now).await
}
