//! The SQLite store on a real file: idempotent ingestion and guarded transitions.

use tribute_assistant::domain::{AccountId, Currency, EscalationReason, Money, OrderRef, OrderState};
use tribute_assistant::store::{
    AccountStatus, DueOrders, MessageKind, NewOrder, Recorded, Store, StoreError, Transition,
};
use tribute_assistant::telegram::Message;

fn message(id: i32) -> Message {
    Message {
        chat_id: 93372553,
        id,
        sender_id: Some(93372553),
        outgoing: false,
        sender_is_bot: true,
        date: chrono::Utc::now().timestamp(),
        text: "🆕 Custom Product Order ...".into(),
        entities: vec![],
        reply_to: None,
        buttons: vec![],
    }
}

fn new_order(id: i32) -> NewOrder {
    NewOrder {
        order_ref: OrderRef::for_message(93372553, id),
        customer_name: "Иван".into(),
        customer_id: Some(7),
        customer_username: None,
        product: "100 Diamonds".into(),
        price: Money::new(500, Currency::Eur).unwrap(),
        details: "ID 123456".into(),
        account_candidates: vec![AccountId::parse("123456").unwrap()],
    }
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_message_is_stored_once_and_creates_one_order() {
    let (dir, store) = store().await;
    let first = store.record_tribute_message(&message(5), MessageKind::Order, None, Some(&new_order(5)), None).await;
    let Recorded::NewOrder(id) = first.unwrap() else { panic!("expected a new order") };
    let again = store.record_tribute_message(&message(5), MessageKind::Order, None, Some(&new_order(5)), None).await;
    assert_eq!(again.unwrap(), Recorded::Duplicate);
    assert_eq!(store.list_orders(None, 10).await.unwrap().len(), 1);
    assert_eq!(store.last_seen_message(93372553).await.unwrap(), 5);

    // Survives reopening the file.
    store.close().await;
    let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
    let order = store.order(id).await.unwrap();
    assert_eq!(order.state, OrderState::Received);
    assert_eq!(order.price.amount_minor(), 500);
    assert_eq!(store.due_orders(tribute_assistant::runtime::clock::now_ms(), 100).await.unwrap().ids, vec![id]);
}

#[tokio::test]
async fn transitions_are_guarded_by_the_current_state() {
    let (_dir, store) = store().await;
    let Recorded::NewOrder(id) =
        store.record_tribute_message(&message(1), MessageKind::Order, None, Some(&new_order(1)), None).await.unwrap()
    else {
        panic!()
    };
    // Impossible jump: rejected, nothing written.
    let err = store.transition(id, OrderState::Received, Transition::to(OrderState::Confirmed, "x")).await;
    assert!(matches!(err, Err(StoreError::Transition(_))), "{err:?}");
    store.transition(id, OrderState::Received, Transition::to(OrderState::ActivationRequested, "go")).await.unwrap();
    // A second worker holding the stale state loses.
    let err =
        store.transition(id, OrderState::Received, Transition::to(OrderState::ActivationRequested, "again")).await;
    assert!(matches!(err, Err(StoreError::StateChanged { .. })), "{err:?}");
    let events = store.order_events(id).await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(store.order(id).await.unwrap().state, OrderState::ActivationRequested);
}

#[tokio::test]
async fn every_state_change_is_a_compare_and_set_that_writes_nothing_when_it_loses() {
    let (_dir, store) = store().await;
    let Recorded::NewOrder(id) =
        store.record_tribute_message(&message(1), MessageKind::Order, None, Some(&new_order(1)), None).await.unwrap()
    else {
        panic!()
    };
    let events = || async { store.order_events(id).await.unwrap().len() };
    store.transition(id, OrderState::Received, Transition::to(OrderState::ActivationRequested, "go")).await.unwrap();
    store
        .park(id, OrderState::ActivationRequested, tribute_assistant::runtime::clock::now_ms() + 60_000, "down", true)
        .await
        .unwrap();

    // To the customer: the reason is recorded and the order is due at once.
    let reason = EscalationReason::UnknownAccount;
    store.hand_to_customer(id, OrderState::ActivationRequested, reason, "ask").await.unwrap();
    let order = store.order(id).await.unwrap();
    assert_eq!(order.state, OrderState::NeedsCustomer);
    assert_eq!(order.escalation_reason.map(|r| r.as_str()), Some(reason.as_str()));
    assert_eq!((order.next_attempt_at, order.activation_failures), (None, 1));
    let n = events().await;
    let err = store.hand_to_customer(id, OrderState::ActivationRequested, reason, "again").await;
    assert!(matches!(err, Err(StoreError::StateChanged { .. })), "{err:?}");
    assert_eq!(events().await, n, "a lost compare-and-set writes no event");

    // An account ID: it replaces the candidates and the failures start over.
    let account = AccountId::parse("654321").unwrap();
    store.give_account(id, OrderState::NeedsCustomer, &account, None, "given").await.unwrap();
    let order = store.order(id).await.unwrap();
    assert_eq!(order.state, OrderState::ActivationRequested);
    assert_eq!(order.account, AccountStatus::Found(account.clone()));
    assert_eq!(order.activation_failures, 0);
    let err = store.give_account(id, OrderState::NeedsCustomer, &account, None, "again").await;
    assert!(matches!(err, Err(StoreError::StateChanged { .. })), "{err:?}");

    // Once activated, no account ID moves it any more.
    let mut t = Transition::to(OrderState::Activated, "activated");
    t.activation_id = Some("act-1".into());
    store.transition(id, OrderState::ActivationRequested, t).await.unwrap();
    store.transition(id, OrderState::Activated, Transition::to(OrderState::Escalated, "reply failed")).await.unwrap();
    let n = events().await;
    let err = store.give_account(id, OrderState::Escalated, &account, None, "moderator").await;
    assert!(matches!(err, Err(StoreError::AlreadyActivated { .. })), "{err:?}");
    assert_eq!(store.order(id).await.unwrap().state, OrderState::Escalated);
    assert_eq!(events().await, n);
}

#[tokio::test]
async fn due_orders_come_furthest_along_first_and_say_when_the_next_waits() {
    let (_dir, store) = store().await;
    let mut ids = Vec::new();
    for n in 1..=4 {
        let recorded =
            store.record_tribute_message(&message(n), MessageKind::Order, None, Some(&new_order(n)), None).await;
        let Recorded::NewOrder(id) = recorded.unwrap() else { panic!("expected a new order") };
        ids.push(id);
    }
    let (received, activated, replied, parked) = (ids[0], ids[1], ids[2], ids[3]);
    let step = |id, path: &'static [OrderState]| {
        let store = store.clone();
        async move {
            for pair in path.windows(2) {
                store.transition(id, pair[0], Transition::to(pair[1], "step")).await.unwrap();
            }
        }
    };
    use OrderState::{Activated, ActivationRequested as Requested, Received, Replied};
    step(activated, &[Received, Requested, Activated]).await;
    step(replied, &[Received, Requested, Activated, Replied]).await;
    step(parked, &[Received, Requested]).await;
    let now = tribute_assistant::runtime::clock::now_ms();
    store.park(parked, Requested, now + 5_000, "backend down", true).await.unwrap();

    let due = store.due_orders(now, 10).await.unwrap();
    assert_eq!(due.ids, vec![replied, activated, received], "the Send press first, new orders last");
    assert_eq!(due.later, Some(now + 5_000), "the parked order's time comes with them");
    let due = store.due_orders(now, 2).await.unwrap();
    assert_eq!((due.ids, due.later), (vec![replied, activated], None), "a full batch: look again, no time");
}

#[tokio::test]
async fn parked_orders_become_due_and_a_transition_unparks_them() {
    let (_dir, store) = store().await;
    let Recorded::NewOrder(id) =
        store.record_tribute_message(&message(1), MessageKind::Order, None, Some(&new_order(1)), None).await.unwrap()
    else {
        panic!()
    };
    store.transition(id, OrderState::Received, Transition::to(OrderState::ActivationRequested, "go")).await.unwrap();
    let now = tribute_assistant::runtime::clock::now_ms();
    store.park(id, OrderState::ActivationRequested, now + 60_000, "backend down", true).await.unwrap();
    let due = store.due_orders(now, 100).await.unwrap();
    assert_eq!((due.ids, due.later), (vec![], Some(now + 60_000)), "not due yet; the same look says when");
    assert_eq!(store.due_orders(now + 60_000, 100).await.unwrap().ids, vec![id]);
    assert_eq!(store.order(id).await.unwrap().activation_failures, 1);
    store.transition(id, OrderState::ActivationRequested, Transition::to(OrderState::Activated, "ok")).await.unwrap();
    let due = store.due_orders(now, 100).await.unwrap();
    assert_eq!((due.ids, due.later), (vec![id], None), "a transition makes the next step due at once");
    store.transition(id, OrderState::Activated, Transition::to(OrderState::Replied, "replied")).await.unwrap();
    store.transition(id, OrderState::Replied, Transition::to(OrderState::Confirmed, "pressed")).await.unwrap();
    assert_eq!(
        store.due_orders(now + 60_000, 100).await.unwrap(),
        DueOrders::default(),
        "settled orders are never due"
    );
}

#[tokio::test]
async fn an_approved_pair_stays_due_for_indexing_until_the_knowledge_base_has_it() {
    use tribute_assistant::store::NewApprovedPair;
    let (_dir, store) = store().await;
    let conv = store.open_conversation(42, "Аня", tribute_assistant::domain::Language::Ru, 0).await.unwrap();
    let pair = store
        .add_approved_pair(&NewApprovedPair {
            conversation_id: conv.id,
            question: "Можно оплатить картой?".into(),
            answer: "Да, любой картой.".into(),
            language: Some("ru".into()),
            approved_by: 7001,
        })
        .await
        .unwrap();
    let now = tribute_assistant::runtime::clock::now_ms();
    assert_eq!(
        store.pairs_to_index(now, 10).await.unwrap().iter().map(|(p, _)| p.id).collect::<Vec<_>>(),
        vec![pair.id]
    );
    store.retry_pair_later(pair.id, now + 30_000).await.unwrap();
    assert!(store.pairs_to_index(now, 10).await.unwrap().is_empty(), "not before its retry time");
    let due = store.pairs_to_index(now + 30_000, 10).await.unwrap();
    assert_eq!((due[0].0.id, due[0].1), (pair.id, 1), "due again, one failed attempt counted");
    store.mark_pair_indexed(pair.id).await.unwrap();
    assert!(store.pairs_to_index(now + 3_600_000, 10).await.unwrap().is_empty(), "indexed pairs are done");
}

/// The contact tick's work list is what is due or changed, not every
/// dialogue: an order's transition, a new link or a state change brings a
/// dialogue back; looking at it puts it to rest until its timer.
#[tokio::test]
async fn a_dialogue_comes_back_to_the_tick_when_its_order_changes_or_its_timer_is_due() {
    use tribute_assistant::domain::{DialogueState, Language};
    let (_dir, store) = store().await;
    let ids =
        |v: Vec<(tribute_assistant::store::ConversationRecord, i64)>| v.iter().map(|(c, _)| c.id).collect::<Vec<_>>();
    let Recorded::NewOrder(order) =
        store.record_tribute_message(&message(1), MessageKind::Order, None, Some(&new_order(1)), None).await.unwrap()
    else {
        panic!()
    };
    let conv = store.open_conversation(7, "Иван", Language::Ru, 0).await.unwrap();
    let look = |v: &Vec<(tribute_assistant::store::ConversationRecord, i64)>| v[0].1;
    let seen = store.conversations_to_look_at(0).await.unwrap();
    assert_eq!(ids(seen.clone()), vec![conv.id], "a new dialogue is looked at once");
    store.looked_at(conv.id, look(&seen), None).await.unwrap();
    assert!(store.conversations_to_look_at(i64::MAX).await.unwrap().is_empty(), "at rest: no timer, no change");

    store.link_order(conv.id, order, tribute_assistant::domain::EscalationReason::MissingAccount, 1).await.unwrap();
    let seen = store.conversations_to_look_at(0).await.unwrap();
    assert_eq!(ids(seen.clone()), vec![conv.id], "a new link");
    store.looked_at(conv.id, look(&seen), Some(5_000)).await.unwrap();
    assert!(store.conversations_to_look_at(4_999).await.unwrap().is_empty());
    assert_eq!(ids(store.conversations_to_look_at(5_000).await.unwrap()), vec![conv.id], "the timer");

    // A change while the tick looks is not lost: the tick hands back the version it saw.
    let seen = store.conversations_to_look_at(5_000).await.unwrap();
    store.transition(order, OrderState::Received, Transition::to(OrderState::ActivationRequested, "go")).await.unwrap();
    store.looked_at(conv.id, look(&seen), None).await.unwrap();
    assert_eq!(ids(store.conversations_to_look_at(0).await.unwrap()), vec![conv.id], "the order's transition");
    let seen = store.conversations_to_look_at(0).await.unwrap();
    store.looked_at(conv.id, look(&seen), None).await.unwrap();
    store.set_dialogue_state(conv.id, &DialogueState::Idle, 9).await.unwrap();
    assert_eq!(ids(store.conversations_to_look_at(0).await.unwrap()), vec![conv.id], "a state change");
}

#[tokio::test]
async fn a_deferred_message_waits_until_its_recheck_and_only_within_its_grace() {
    use std::time::Duration;
    use tribute_assistant::store::InboxKind;
    let (_dir, store) = store().await;
    let m = Message { chat_id: -100, sender_id: Some(7001), ..message(5) };
    assert!(store.enqueue_inbound(InboxKind::Moderator, &m, false).await.unwrap());
    assert_eq!(store.waiting_inbound(10).await.unwrap().len(), 1);

    let (grace, recheck) = (Duration::from_secs(60), Duration::from_secs(30));
    assert!(store.defer_inbound(m.chat_id, m.id, grace, recheck).await.unwrap(), "received just now: it waits");
    assert!(store.waiting_inbound(10).await.unwrap().is_empty(), "not before its recheck");
    assert!(store.next_inbound_due().await.unwrap().unwrap() > tribute_assistant::runtime::clock::now_ms());
    // Past its grace it is not put back: the caller handles it as it is.
    assert!(!store.defer_inbound(m.chat_id, m.id, Duration::ZERO, recheck).await.unwrap());
    store.mark_inbound_handled(m.chat_id, m.id).await.unwrap();
    assert!(!store.defer_inbound(m.chat_id, m.id, grace, recheck).await.unwrap(), "a handled message never waits");
}

/// `advance` is `transition` that hands back the order as committed (the
/// worker's next step starts from it): the same row a fresh read gives,
/// and the same compare-and-set (a second advance from the old state fails
/// and writes nothing).
#[tokio::test]
async fn advance_returns_the_order_as_committed() {
    let (_dir, store) = store().await;
    let Recorded::NewOrder(id) =
        store.record_tribute_message(&message(1), MessageKind::Order, None, Some(&new_order(1)), None).await.unwrap()
    else {
        panic!()
    };
    let now = tribute_assistant::runtime::clock::now_ms();
    store.transition(id, OrderState::Received, Transition::to(OrderState::ActivationRequested, "go")).await.unwrap();
    store.park(id, OrderState::ActivationRequested, now + 60_000, "backend down", true).await.unwrap();
    let mut t = Transition::to(OrderState::Activated, "ok");
    t.activation_id = Some("act-1".into());
    let got = store.advance(id, OrderState::ActivationRequested, t).await.unwrap();
    let read = store.order(id).await.unwrap();
    assert_eq!(format!("{got:?}"), format!("{read:?}"));
    assert_eq!(
        (got.state, got.activation_id.as_deref(), got.next_attempt_at),
        (OrderState::Activated, Some("act-1"), None)
    );
    let events = store.order_events(id).await.unwrap().len();
    let again =
        store.advance(id, OrderState::ActivationRequested, Transition::to(OrderState::Activated, "twice")).await;
    assert!(matches!(again, Err(StoreError::StateChanged { .. })), "{again:?}");
    assert_eq!(store.order_events(id).await.unwrap().len(), events, "nothing written");
}
