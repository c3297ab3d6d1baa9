//! What the Tribute bot sends and does about a Custom Product Order:
//! the order itself, its notification text, and the record of a delivery.

use super::text::TextBuilder;
use tribute_assistant::telegram::{Entity, EntityKind, MessageId, UserId};

/// A paid Custom Product Order as the Tribute bot knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SimOrder {
    pub customer_id: UserId,
    pub customer_name: String,
    pub product: String,
    /// As Tribute shows it, e.g. "€5.00".
    pub price: String,
    /// The customer's free text ("Order Details").
    pub details: String,
}

impl SimOrder {
    /// The notification exactly as the bot posts it: a bold title and a
    /// mention of the customer that carries their user id, with UTF-16
    /// offsets.
    pub fn render_notification(&self) -> (String, Vec<Entity>) {
        let mut b = TextBuilder::new();
        b.push("🆕 ")
            .push_entity("Custom Product Order", EntityKind::Bold)
            .push("\n\nCustomer: ")
            .push_entity(&self.customer_name, EntityKind::MentionName { user_id: self.customer_id })
            .push("\nProduct: ")
            .push(&self.product)
            .push("\nPrice: ")
            .push(&self.price)
            .push("\nOrder Details:\n")
            .push(&self.details);
        b.finish()
    }
}

/// One answer the bot actually delivered to a customer after Send was
/// pressed. Tests assert on these: "the customer got exactly one answer".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    /// The order notification the answer belongs to.
    pub order_message_id: MessageId,
    pub customer_id: UserId,
    /// Our reply text, as delivered.
    pub text: String,
    /// When the bot accepted the Send press (the benchmark's end point).
    #[serde(skip, default = "std::time::Instant::now")]
    pub delivered_at: std::time::Instant,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::text::entity_text;

    #[test]
    fn notification_has_the_agreed_shape_and_entities() {
        let order = SimOrder {
            customer_id: 42,
            customer_name: "Мария Иванова".into(),
            product: "Premium".into(),
            price: "₽500.00".into(),
            details: "ID: 12345".into(),
        };
        let (text, entities) = order.render_notification();
        assert_eq!(
            text,
            "🆕 Custom Product Order\n\nCustomer: Мария Иванова\nProduct: Premium\nPrice: ₽500.00\nOrder Details:\nID: 12345"
        );
        assert_eq!(entities.len(), 2);
        assert_eq!(entities[0], Entity { offset: 3, length: 20, kind: EntityKind::Bold });
        assert_eq!(entity_text(&text, &entities[0]), "Custom Product Order");
        assert_eq!(entities[1].kind, EntityKind::MentionName { user_id: 42 });
        assert_eq!(entities[1].offset, 3 + 20 + 2 + 10);
        assert_eq!(entities[1].length, 13);
        assert_eq!(entity_text(&text, &entities[1]), "Мария Иванова");
    }
}
