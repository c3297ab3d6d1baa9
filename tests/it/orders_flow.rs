//! The order flow end to end: SQLite file, reference backend on 127.0.0.1:0,
//! the Telegram simulator, and the daemon — restarted, starved and faulted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tribute_assistant::domain::{OrderRef, OrderState};
use tribute_assistant::orders::{ingest, Checkpoint, CheckpointHook, IngestConfig};
use tribute_assistant::store::Recorded;
use tribute_assistant::tribute::ParserConfig;
use tribute_testbed::sandbox::SandboxOptions;
use tribute_testbed::sim::{Fault, FaultLevel, FaultPlan, FaultRates};

use crate::support::app::TestApp;
use crate::support::sandbox::{moderator_texts, order_of, wait_cards_posted};
use crate::support::sim::{order, OrderBuilder, ACCOUNT, PRODUCT};
use crate::support::wait::{advance, eventually, pause_time, OUTAGE, SETTLE};

async fn state_of(app: &TestApp, msg: i32) -> OrderState {
    order_of(app, msg).await.state
}

#[tokio::test]
async fn valid_order_is_activated_replied_and_confirmed() {
    let app = TestApp::spawn().await;
    let msg = app.post_order(&order(501).details("Мой ID: 123456"));
    app.wait_settled(1, SETTLE).await.unwrap();

    assert_eq!(state_of(&app, msg).await, OrderState::Confirmed);
    assert_eq!(app.backend.stats().activations, 1);
    assert_eq!(app.world.send_presses(msg), 1);
    let deliveries = app.world.deliveries();
    assert_eq!(deliveries.len(), 1);
    let order_ref = OrderRef::for_message(app.tribute_chat(), msg);
    assert!(deliveries[0].text.contains("100 Diamonds"), "{}", deliveries[0].text);
    assert!(deliveries[0].text.contains(order_ref.as_str()), "{}", deliveries[0].text);
    assert!(deliveries[0].text.contains("123456"), "{}", deliveries[0].text);
    let events =
        app.store().order_events(app.store().order_by_ref(&order_ref).await.unwrap().unwrap().id).await.unwrap();
    let path: Vec<&str> = events.iter().map(|e| e.to_state.as_str()).collect();
    assert_eq!(path.first(), Some(&"received"));
    assert_eq!(path.last(), Some(&"confirmed"));
    for state in ["activation_requested", "activated", "replied"] {
        assert!(path.contains(&state), "missing {state} in {path:?}");
    }
    assert!(app.world.messages(app.moderator_chat).is_empty(), "nothing to escalate");
    app.shutdown().await;
}

#[tokio::test]
async fn duplicate_delivery_of_a_message_creates_one_order_and_one_activation() {
    let mut app = TestApp::spawn().await;
    let msg = app.post_order(&order(501));
    app.wait_settled(1, SETTLE).await.unwrap();

    // The same update delivered again, as Telegram may after a reconnect.
    let again = app.world.messages(app.tribute_chat()).into_iter().find(|m| m.id == msg).unwrap();
    let cfg = IngestConfig { parser: ParserConfig::default(), tribute_bot: app.tribute_chat() };
    assert_eq!(ingest(app.store(), &cfg, &again).await.unwrap(), Recorded::Duplicate);
    // And a restart re-reads history that overlaps what is stored.
    app.stop().await;
    app.start().await;
    app.wait_settled(1, SETTLE).await.unwrap();

    assert_eq!(app.store().list_orders(None, 10).await.unwrap().len(), 1);
    assert_eq!(app.backend.stats().activations, 1);
    assert_eq!(app.world.send_presses(msg), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn backend_down_then_up_activates_exactly_once() {
    let opts = SandboxOptions { backend_attempts: 3, park_delay: Duration::from_millis(200), ..Default::default() };
    let mut app = TestApp::stopped(opts).await;
    // Two full rounds of attempts fail; the order is parked twice, then succeeds.
    app.backend.fail_next(7);
    app.start().await;
    let msg = app.post_order(&order(501));
    app.wait_settled(1, SETTLE).await.unwrap();

    assert_eq!(state_of(&app, msg).await, OrderState::Confirmed);
    let stats = app.backend.stats();
    assert_eq!(stats.activations, 1);
    assert_eq!(stats.requests, 8, "7 failures + 1 success: {stats:?}");
    assert_eq!(app.backend.activations_for(OrderRef::for_message(app.tribute_chat(), msg).as_str()), 1);
    let o = app.store().order_by_ref(&OrderRef::for_message(app.tribute_chat(), msg)).await.unwrap().unwrap();
    assert_eq!(o.activation_failures, 2);
    app.shutdown().await;
}

/// Stops the daemon at `point` for the first order that reaches it.
fn crash_at(point: Checkpoint) -> (CheckpointHook, Arc<AtomicBool>) {
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    let hook: CheckpointHook = Arc::new(move |p, _| p == point && !f.swap(true, Ordering::SeqCst));
    (hook, fired)
}

#[tokio::test]
async fn a_crash_between_any_two_steps_loses_nothing_and_activates_once() {
    for point in Checkpoint::ALL {
        let mut app = TestApp::stopped(SandboxOptions::default()).await;
        app.backend.add_pending("654321", "100 Diamonds");
        let (hook, fired) = crash_at(point);
        app.start_with(hook).await;
        let first = app.post_order(&order(501));
        let second = app.post_order(&order(502).details("ID 654321"));
        let crashed = app.join_daemon(SETTLE).await.unwrap();
        assert!(fired.load(Ordering::SeqCst), "{point:?} never reached");
        assert!(crashed.is_err(), "{point:?}: the daemon should have stopped like a crash");

        app.start().await;
        app.wait_settled(2, SETTLE).await.unwrap_or_else(|e| panic!("{point:?}: {e:#}"));
        for msg in [first, second] {
            assert_eq!(state_of(&app, msg).await, OrderState::Confirmed, "{point:?}");
            assert_eq!(app.world.send_presses(msg), 1, "{point:?}: one Send press per order");
            let ours = app
                .world
                .messages(app.tribute_chat())
                .into_iter()
                .filter(|m| m.outgoing && m.reply_to == Some(msg))
                .count();
            assert_eq!(ours, 1, "{point:?}: exactly one reply to order {msg}");
        }
        assert_eq!(app.backend.stats().activations, 2, "{point:?}");
        assert_eq!(app.world.deliveries().len(), 2, "{point:?}");
        app.shutdown().await;
    }
}

#[tokio::test]
async fn orders_posted_while_the_daemon_was_stopped_are_picked_up_from_history() {
    let mut app = TestApp::spawn().await;
    app.backend.add_pending("654321", "100 Diamonds");
    let first = app.post_order(&order(501));
    app.wait_settled(1, SETTLE).await.unwrap();
    app.stop().await;

    let missed = app.post_order(&order(502).details("ID 654321"));
    app.start().await;
    app.wait_settled(2, SETTLE).await.unwrap();
    assert_eq!(state_of(&app, first).await, OrderState::Confirmed);
    assert_eq!(state_of(&app, missed).await, OrderState::Confirmed);
    assert_eq!(app.backend.stats().activations, 2);
    app.shutdown().await;
}

#[tokio::test]
async fn malformed_and_missing_id_orders_reach_the_moderator_with_their_raw_text() {
    let app = TestApp::spawn().await;
    // A missing ID goes to the customer first (tests/contact.rs); one we
    // cannot write to reaches the moderator at once.
    app.world.add_user(501, "Иван Петров", None);
    app.world.fail_sends_to(501, tribute_assistant::telegram::MessengerError::PrivacyRestricted);
    let missing = app.post_order(&order(501).details("Спасибо, жду!"));
    let malformed_text =
        "🆕 Custom Product Order\n\nCustomer: Lena\nProduct: 100 Diamonds\nPrice: ¥500\nOrder Details:\nID 424242";
    app.world.post_bot_text(malformed_text, vec![]);
    app.wait_settled(1, SETTLE).await.unwrap();
    app.wait_state(missing, OrderState::Escalated).await;
    eventually("two cards", || async { (app.world.messages(app.moderator_chat).len() >= 2).then_some(()) }).await;
    wait_cards_posted(&app).await;
    let cards = app.world.messages(app.moderator_chat);
    assert_eq!(cards.len(), 2, "{cards:#?}");
    let missing_card = cards.iter().find(|c| c.text.contains("Спасибо, жду!")).expect("missing-ID card with raw text");
    assert!(missing_card.text.contains("no account ID"), "{}", missing_card.text);
    assert!(missing_card.text.contains(OrderRef::for_message(app.tribute_chat(), missing).as_str()));
    let malformed_card = cards.iter().find(|c| c.text.contains("Price: ¥500")).expect("malformed card with raw text");
    assert!(malformed_card.text.contains("malformed"), "{}", malformed_card.text);
    assert_eq!(state_of(&app, missing).await, OrderState::Escalated);
    assert_eq!(app.backend.stats().requests, 0, "nothing to activate");
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_account_and_no_pending_order_go_to_the_customer_not_retried() {
    let app = TestApp::spawn().await;
    app.backend.add_account("555555");
    let unknown = app.post_order(&order(501).details("ID 999999"));
    let first = app.post_order(&order(502));
    let no_pending = app.post_order(&order(503).details("ID 555555"));
    app.wait_settled(3, SETTLE).await.unwrap();
    // The customer is asked for another ID (the contact flow, tests/contact.rs).
    assert_eq!(state_of(&app, unknown).await, OrderState::NeedsCustomer);
    assert_eq!(state_of(&app, first).await, OrderState::Confirmed);
    assert_eq!(state_of(&app, no_pending).await, OrderState::NeedsCustomer);
    let mut asked = Vec::new();
    for (customer, account) in [(501, "999999"), (503, "555555")] {
        asked.push(
            eventually(&format!("customer {customer} asked"), || async {
                let mut ours = app.world.messages(customer).into_iter().filter(|m| m.outgoing);
                ours.find(|m| m.text.contains(account)).map(|m| m.text)
            })
            .await,
        );
    }
    // "Maybe a typo" only where the account does not exist.
    assert!(asked[0].contains("ошибкой"), "{}", asked[0]);
    assert!(!asked[1].contains("ошибкой") && asked[1].contains("есть на сайте"), "{}", asked[1]);
    assert!(app.world.messages(app.moderator_chat).is_empty(), "no person needed yet");
    let reasons: Vec<String> = app
        .store()
        .list_orders(Some(OrderState::NeedsCustomer), 10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| o.escalation_reason.map(|r| r.to_string()))
        .collect();
    assert!(reasons.contains(&"unknown_account".to_owned()), "{reasons:?}");
    assert!(reasons.contains(&"no_pending_order".to_owned()), "{reasons:?}");
    assert_eq!(app.backend.stats().requests, 3);
    app.shutdown().await;
}

/// A customer who pays twice with the right ID: the backend answers `409
/// already_fulfilled` to the second payment, the customer is told what
/// happened (never "maybe a typo", never asked for the ID again) and a
/// moderator gets the case.
#[tokio::test]
async fn a_second_payment_for_a_fulfilled_order_is_told_truthfully_and_goes_to_a_moderator() {
    let app = TestApp::spawn().await;
    let first = app.post_order(&order(501));
    app.wait_settled(1, SETTLE).await.unwrap();
    let second = app.post_order(&order(501));
    let escalated = app.wait_state(second, OrderState::Escalated).await;
    assert_eq!(escalated.escalation_reason.map(|r| r.as_str()), Some("already_fulfilled"));
    assert_eq!(state_of(&app, first).await, OrderState::Confirmed);
    let told = eventually("the customer told", || async {
        let ours: Vec<String> = app.world.messages(501).into_iter().filter(|m| m.outgoing).map(|m| m.text).collect();
        ours.iter().any(|t| t.contains("повторная оплата")).then_some(ours)
    })
    .await;
    let second_ref = OrderRef::for_message(app.tribute_chat(), second);
    assert!(told.iter().all(|t| !t.contains("ошибкой") && !t.contains("пришлите")), "{told:?}");
    assert!(told.iter().any(|t| t.contains(second_ref.as_str())), "the message names the payment: {told:?}");
    let card = app.wait_card("second payment").await;
    assert!(card.text.contains(second_ref.as_str()) && card.text.contains(ACCOUNT), "{}", card.text);
    assert_eq!(app.backend.requests_for(second_ref.as_str()), 1, "answered once, not retried");
    assert_eq!(app.backend.stats().activations, 1);
    assert_eq!(app.world.send_presses(second), 0, "nothing delivered for the second payment");
    app.shutdown().await;
}

#[tokio::test]
async fn a_send_button_that_never_comes_is_escalated() {
    let opts = SandboxOptions { button_timeout: Duration::from_millis(400), ..Default::default() };
    let app = TestApp::spawn_with(opts).await;
    // The order's message id is the next one in the Tribute chat.
    let next = app.world.messages(app.tribute_chat()).last().map_or(1, |m| m.id + 1);
    app.world.button_never_comes(next);
    let msg = app.post_order(&order(501));
    assert_eq!(msg, next);
    app.wait_settled(1, SETTLE).await.unwrap();
    assert_eq!(state_of(&app, msg).await, OrderState::Escalated);
    assert_eq!(app.world.deliveries().len(), 0);
    assert_eq!(app.backend.stats().activations, 1, "activated before the reply; a person finishes the Tribute side");
    let cards = app.world.messages(app.moderator_chat);
    assert!(cards.iter().any(|c| c.text.contains("Send button")), "{cards:#?}");
    app.shutdown().await;
}

#[tokio::test]
async fn flood_waits_and_a_dropped_connection_only_delay_the_order() {
    let app = TestApp::spawn().await;
    app.backend.add_pending("654321", "100 Diamonds");
    app.world.flood_wait_next_sends(2, Duration::from_millis(100));
    let first = app.post_order(&order(501));
    app.wait_settled(1, SETTLE).await.unwrap();
    assert_eq!(state_of(&app, first).await, OrderState::Confirmed);

    app.world.disconnect();
    let second = app.post_order(&order(502).details("ID 654321"));
    tokio::time::sleep(OUTAGE).await;
    app.world.reconnect();
    app.wait_settled(2, SETTLE).await.unwrap();
    assert_eq!(state_of(&app, second).await, OrderState::Confirmed);
    assert_eq!(app.backend.stats().activations, 2);
    assert_eq!(app.world.deliveries().len(), 2);
    app.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_parks_work_and_the_next_start_finishes_it() {
    let opts = SandboxOptions { button_timeout: Duration::from_secs(30), ..Default::default() };
    let mut app = TestApp::stopped(opts).await;
    app.world.button_delay(Duration::from_secs(3));
    app.start().await;
    let msg = app.post_order(&order(501));
    // Wait until the reply is out and the daemon waits for the button, then stop it.
    app.wait_state(msg, OrderState::Replied).await;
    let stop = tokio::time::timeout(Duration::from_secs(2), app.stop_daemon()).await;
    assert!(stop.expect("shutdown does not wait for the button").is_ok());
    assert_eq!(state_of(&app, msg).await, OrderState::Replied);

    app.world.button_delay(Duration::ZERO);
    app.start().await;
    app.wait_settled(1, SETTLE).await.unwrap();
    assert_eq!(state_of(&app, msg).await, OrderState::Confirmed);
    assert_eq!(app.world.send_presses(msg), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn an_unrecognised_bot_message_reaches_the_moderator_with_replayable_json() {
    let app = TestApp::spawn().await;
    app.world.post_bot_text("💰 New donation\n\nFrom: Sergey\nAmount: €3.00", vec![]);
    let valid = app.post_order(&order(501));
    app.wait_settled(1, SETTLE).await.unwrap();
    app.wait_card("New donation").await;
    wait_cards_posted(&app).await;
    let cards = app.world.messages(app.moderator_chat);
    assert_eq!(cards.len(), 1, "only the donation, not the bot's follow-ups: {cards:#?}");
    assert!(cards[0].text.contains("not recognised") && cards[0].text.contains("New donation"), "{}", cards[0].text);
    let json = cards[0].text.lines().last().unwrap();
    let raw: tribute_assistant::tribute::RawNotification =
        serde_json::from_str(json).expect("last line is the raw JSON");
    assert!(raw.text.starts_with("💰 New donation"));
    assert_eq!(state_of(&app, valid).await, OrderState::Confirmed);
    app.shutdown().await;
}

/// Orders parked on a failing backend (a moderator cannot tell from
/// silence): one card for the outage listing them, kept across a restart,
/// and one message when it is over — none per order. On a paused clock, so
/// the 15 minutes of the production bound pass in an instant.
#[tokio::test]
async fn a_backend_outage_makes_one_card_for_its_twenty_orders_and_one_message_when_it_is_over() {
    let opts = SandboxOptions { backend_attempts: 1, park_delay: Duration::from_secs(60), ..Default::default() };
    let mut app = TestApp::stopped(opts).await;
    for _ in 1..20 {
        app.backend.add_pending(ACCOUNT, PRODUCT);
    }
    app.backend.fail_next(u32::MAX);
    app.start().await;
    let msgs: Vec<i32> = (0..20).map(|i| app.post_order(&order(600 + i))).collect();
    let parked = || async {
        let orders = app.store().list_orders(Some(OrderState::ActivationRequested), 100).await.unwrap();
        (orders.len() == 20 && orders.iter().all(|o| o.activation_failures > 0)).then_some(())
    };
    eventually("every order tried once and parked", parked).await;
    let clock = pause_time().await;
    let minutes = |n: u64| async move {
        for _ in 0..n {
            advance(Duration::from_secs(60)).await;
        }
    };

    minutes(14).await;
    assert!(app.store().all_cards().await.unwrap().is_empty(), "not 15 minutes yet");
    minutes(2).await;
    let card = app.wait_card("the backend is unreachable: 20 order(s) wait").await;
    for msg in &msgs {
        let order_ref = OrderRef::for_message(app.tribute_chat(), *msg);
        assert!(card.text.contains(order_ref.as_str()), "{order_ref} listed: {}", card.text);
    }

    // A restart in the middle of the outage finds it in the store.
    app.stop().await;
    app.start().await;
    minutes(5).await;
    wait_cards_posted(&app).await;
    assert_eq!(moderator_texts(&app).len(), 1, "still the one card: {:#?}", moderator_texts(&app));

    app.backend.fail_next(0);
    let confirmed = || async {
        let n = app.store().list_orders(Some(OrderState::Confirmed), 100).await.unwrap().len();
        (n == 20).then_some(())
    };
    for _ in 0..40 {
        if confirmed().await.is_some() {
            break;
        }
        minutes(1).await;
    }
    eventually("every order confirmed once the backend is back", confirmed).await;
    minutes(1).await;
    let over = app.wait_card("the backend answers again after").await;
    clock.resume();
    wait_cards_posted(&app).await;
    assert_eq!(over.reply_to, Some(card.id), "the message answers the outage's card");
    assert!(over.text.contains("the 20 order(s) it held up: 20 confirmed."), "{}", over.text);
    assert_eq!(moderator_texts(&app).len(), 2, "one card, one message when it is over: {:#?}", moderator_texts(&app));
    assert_eq!(app.backend.stats().activations, 20);
    assert_eq!(app.world.deliveries().len(), 20);
    app.shutdown().await;
}

/// A plan that injects exactly these faults.
fn only(rates: FaultRates) -> FaultPlan {
    FaultPlan::new(7, FaultLevel::None).with_rates(rates)
}

#[tokio::test]
async fn a_press_whose_answer_was_lost_is_confirmed_by_the_delivery_the_chat_shows() {
    let mut app = TestApp::stopped(SandboxOptions::default()).await;
    // Every press takes effect and its answer is lost: the retry finds the button gone.
    app.world.set_fault_plan(only(FaultRates { press_timeout: 1000, ..FaultRates::default() }));
    app.start().await;
    let msg = app.post_order(&order(501));
    app.wait_settled(1, SETTLE).await.unwrap();

    let o = order_of(&app, msg).await;
    assert_eq!(o.state, OrderState::Confirmed);
    let events = app.store().order_events(o.id).await.unwrap();
    let last = &events.last().unwrap().note;
    assert!(last.contains("is gone") && last.contains("shows our reply delivered"), "{last}");
    assert_eq!((app.world.send_presses(msg), app.world.deliveries().len()), (1, 1));
    assert!(app.world.faults_injected().get(Fault::PressTimeoutDelivered.as_str()).is_some_and(|n| *n >= 1));
    assert!(app.world.messages(app.moderator_chat).is_empty(), "nothing for a person");
    app.shutdown().await;
}

#[tokio::test]
async fn a_send_button_gone_without_a_delivery_goes_to_a_moderator() {
    let mut app = TestApp::stopped(SandboxOptions::default()).await;
    // The bot takes the keyboard away as we press, delivering nothing.
    app.world.set_fault_plan(only(FaultRates { button_gone: 1000, ..FaultRates::default() }));
    app.start().await;
    let msg = app.post_order(&order(501));
    app.wait_settled(1, SETTLE).await.unwrap();

    let o = order_of(&app, msg).await;
    assert_eq!(o.state, OrderState::Escalated, "never confirmed without a delivery");
    assert_eq!(o.escalation_reason.map(|r| r.as_str()), Some("send_unconfirmed"));
    assert!(app.world.deliveries().is_empty());
    assert_eq!(app.world.faults_injected().get(Fault::ButtonGone.as_str()), Some(&1));
    let card = app.wait_card(o.order_ref.as_str()).await;
    assert!(card.text.contains("does not show our reply delivered"), "{}", card.text);
    assert_eq!(app.backend.stats().activations, 1, "activated; a person finishes the Tribute side");
    app.shutdown().await;
}

#[tokio::test]
async fn a_noted_send_button_whose_message_vanished_goes_to_a_moderator_after_a_restart() {
    let mut app = TestApp::stopped(SandboxOptions::default()).await;
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    let hook: CheckpointHook = Arc::new(move |p, _| p == Checkpoint::BeforePress && !f.swap(true, Ordering::SeqCst));
    app.start_with(hook).await;
    let msg = app.post_order(&order(501));
    assert!(app.join_daemon(SETTLE).await.unwrap().is_err(), "stopped like a crash before the press");
    let noted = order_of(&app, msg).await.button_message_id.expect("the button was noted");
    // The bot deletes its follow-up meanwhile.
    assert_eq!(app.world.delete_messages(app.tribute_chat(), &[noted]), vec![noted]);

    app.start().await;
    app.wait_settled(1, SETTLE).await.unwrap();
    let o = order_of(&app, msg).await;
    assert_eq!(o.state, OrderState::Escalated);
    assert_eq!(o.escalation_reason.map(|r| r.as_str()), Some("send_unconfirmed"));
    let card = app.wait_card(o.order_ref.as_str()).await;
    assert!(card.text.contains(&format!("Send button on message {noted}: its message is gone")), "{}", card.text);
    assert!(app.world.deliveries().is_empty());
    app.shutdown().await;
}
