//! The Telegram simulator from the test's side: the orders the Tribute bot
//! posts, and reading events as a client of the simulated world.

use std::time::Duration;

use tribute_assistant::telegram::{Event, Message, Messenger};
use tribute_testbed::sim::{SimClient, SimOrder};

use super::wait::{within, EVENT};

/// The account ID of the default [`order`]; `support::sandbox` puts it on
/// the backend as pending for [`PRODUCT`].
pub const ACCOUNT: &str = "123456";

/// The product of the default [`order`].
pub const PRODUCT: &str = "100 Diamonds";

/// A "Custom Product Order" as the Tribute bot posts it: [`PRODUCT`] at
/// €5.00 for Иван Петров, with the account ID [`ACCOUNT`] in its details.
/// The [`OrderBuilder`] methods change what a test is about.
pub fn order(customer_id: i64) -> SimOrder {
    SimOrder {
        customer_id,
        customer_name: "Иван Петров".into(),
        product: PRODUCT.into(),
        price: "€5.00".into(),
        details: format!("ID {ACCOUNT}"),
    }
}

/// Changes one field of an [`order`].
pub trait OrderBuilder {
    /// The customer's name as Tribute shows it.
    fn by(self, name: &str) -> Self;
    /// The free-text "Order Details" (where the account ID is, or is not).
    fn details(self, details: &str) -> Self;
}

impl OrderBuilder for SimOrder {
    fn by(self, name: &str) -> Self {
        SimOrder { customer_name: name.into(), ..self }
    }

    fn details(self, details: &str) -> Self {
        SimOrder { details: details.into(), ..self }
    }
}

/// The next event on `client`, within [`EVENT`] of tokio time.
pub async fn next_event(client: &SimClient) -> Event {
    within("an event", client.next_event()).await.expect("an event, not an error")
}

pub async fn next_new(client: &SimClient) -> Message {
    match next_event(client).await {
        Event::NewMessage(m) => m,
        other => panic!("expected NewMessage, got {other:?}"),
    }
}

pub async fn next_edit(client: &SimClient) -> Message {
    match next_event(client).await {
        Event::MessageEdited(m) => m,
        other => panic!("expected MessageEdited, got {other:?}"),
    }
}

/// No event within `for_` of tokio time. On a paused clock (the only
/// place to use it) the clock moves on only once nothing else can run, so
/// an event on its way has arrived by then.
pub async fn quiet_for(client: &SimClient, for_: Duration) {
    if let Ok(r) = tokio::time::timeout(for_, client.next_event()).await {
        panic!("expected no event, got {r:?}");
    }
}

/// No event is coming: [`quiet_for`] [`EVENT`], on a paused clock.
pub async fn assert_quiet(client: &SimClient) {
    quiet_for(client, EVENT).await;
}
