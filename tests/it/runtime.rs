//! The runtime's promise, one regression test per defect found in review:
//! the store is the only queue (a lost wake-up or update costs a delay,
//! never an order), Telegram's refusals park one order instead of stalling
//! it, an activated product is never activated again for another account,
//! and nobody but a customer is treated as one.

use std::time::Duration;

use secrecy::SecretString;
use tribute_assistant::domain::{OrderRef, OrderState};
use tribute_assistant::orders::{ingest, IngestConfig};
use tribute_assistant::store::{MessageKind, Store};
use tribute_assistant::telegram::{InlineButton, Message};
use tribute_assistant::tribute::ParserConfig;
use tribute_testbed::sandbox::SandboxOptions;

use crate::support::app::TestApp;
use crate::support::sandbox::{order_of, try_order, wait_inbox_handled};
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::{eventually, pause_time, OUTAGE};

/// The daemon running, with 654321 pending on the backend too (besides
/// the default order's 123456).
async fn running(opts: SandboxOptions) -> TestApp {
    let app = TestApp::spawn_with(opts).await;
    app.backend.add_pending("654321", "100 Diamonds");
    app
}

fn bot_message(id: i32, reply_to: Option<i32>, send_data: &[u8]) -> Message {
    Message {
        chat_id: 93372553,
        id,
        sender_id: Some(93372553),
        outgoing: false,
        sender_is_bot: false,
        date: 1_700_000_000,
        text: "Your answer will be sent. Press «Send» to deliver it.".into(),
        entities: vec![],
        reply_to,
        buttons: vec![vec![InlineButton { text: "Send".into(), data: send_data.to_vec() }]],
    }
}

#[tokio::test]
async fn a_follow_up_that_answers_no_reply_of_ours_is_never_taken_for_the_send_button() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
    let texts = vec!["Send".to_owned()];
    // A keyboard message without reply_to (it could be another order's) after our reply 10.
    store
        .record_tribute_message(&bot_message(11, None, b"other"), MessageKind::FollowUp, None, None, None)
        .await
        .unwrap();
    // Another order's follow-up answering our reply 9.
    store
        .record_tribute_message(&bot_message(12, Some(9), b"nine"), MessageKind::FollowUp, None, None, None)
        .await
        .unwrap();
    assert_eq!(store.find_follow_up_button(93372553, 10, &texts).await.unwrap(), None);
    store
        .record_tribute_message(&bot_message(13, Some(10), b"ours"), MessageKind::FollowUp, None, None, None)
        .await
        .unwrap();
    assert_eq!(store.find_follow_up_button(93372553, 10, &texts).await.unwrap(), Some((13, b"ours".to_vec())));
}

#[tokio::test]
async fn a_daemon_started_while_telegram_is_unreachable_catches_up_once_it_is_back() {
    let mut app = TestApp::stopped(SandboxOptions::default()).await;
    app.world.disconnect();
    let msg = app.post_order(&order(501));
    app.start().await;
    tokio::time::sleep(OUTAGE).await;
    app.world.reconnect();
    app.wait_state(msg, OrderState::Confirmed).await;
    app.shutdown().await;
}

#[tokio::test]
async fn an_order_stored_by_a_history_reread_without_a_wake_up_is_still_finished() {
    let app = running(SandboxOptions::default()).await;
    // The live update is lost; the message reaches the store only through a
    // history read that does not tell the worker (as the workflow's own
    // catch-up did), and the live update would then be a duplicate.
    app.world.disconnect();
    let msg = app.post_order(&order(501));
    let stored = app.world.messages(app.tribute_chat()).into_iter().find(|m| m.id == msg).unwrap();
    let cfg = IngestConfig { parser: ParserConfig::default(), tribute_bot: app.tribute_chat() };
    ingest(app.store(), &cfg, &stored).await.unwrap();
    app.world.reconnect();
    let order = app.wait_state(msg, OrderState::Confirmed).await;
    assert!(order.activation_id.is_some());
    assert_eq!(app.backend.activations_for(order.order_ref.as_str()), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn an_order_lost_below_the_newest_stored_message_is_found_by_the_periodic_reread() {
    let app = running(SandboxOptions::default()).await;
    app.world.disconnect();
    let lost = app.post_order(&order(501));
    app.world.reconnect();
    let live = app.post_order(&order(502).details("ID 654321"));
    app.wait_state(live, OrderState::Confirmed).await;
    // The newest stored message is above the lost one: a re-read from the
    // newest on would never see it.
    let order = app.wait_state(lost, OrderState::Confirmed).await;
    assert_eq!(app.backend.activations_for(order.order_ref.as_str()), 1);
    assert_eq!(app.world.send_presses(lost), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_flood_wait_longer_than_the_auto_sleep_parks_the_order_until_it_is_over() {
    let app = running(SandboxOptions::default()).await;
    let clock = pause_time().await;
    // The reply is refused with a ten-minute flood wait (the daemon sleeps through 5 s at most).
    app.world.flood_wait_next_sends(1, Duration::from_secs(600));
    let msg = app.post_order(&order(501));
    let parked = eventually("the order to wait out the flood", || async {
        try_order(&app, msg).await.filter(|o| o.state == OrderState::Activated && o.next_attempt_at.is_some())
    })
    .await;
    let wait_ms = parked.next_attempt_at.unwrap() - tribute_assistant::runtime::clock::now_ms();
    assert!(wait_ms > 590_000, "parked for the flood wait, not less: {wait_ms} ms");
    let second = app.post_order(&order(502).details("ID 654321"));
    app.wait_state(second, OrderState::Confirmed).await;
    assert_eq!(order_of(&app, msg).await.state, OrderState::Activated, "still waiting out the flood");
    app.advance(Duration::from_secs(601)).await;
    app.wait_state(msg, OrderState::Confirmed).await;
    clock.resume();
    assert_eq!(app.world.send_presses(msg), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn an_escalated_order_that_was_activated_keeps_its_account_and_resumes_at_send() {
    let opts = SandboxOptions { button_timeout: Duration::from_millis(300), ..SandboxOptions::default() };
    let app = running(opts).await;
    // The Send button comes long after our deadline: the order is escalated after its reply.
    app.world.button_delay(Duration::from_secs(2));
    let msg = app.post_order(&order(501));
    let order = app.wait_state(msg, OrderState::Escalated).await;
    let order_ref = order.order_ref.clone();
    assert_eq!(order.escalation_reason.map(|r| r.as_str()), Some("button_never_came"));
    let card = eventually("the case card", || async {
        app.world.messages(app.moderator_chat).into_iter().find(|m| m.text.contains(order_ref.as_str()))
    })
    .await;
    // A moderator gives another account: refused, nothing activated again.
    app.moderator_replies(&card, "654321");
    eventually("the refusal", || async {
        app.world.messages(app.moderator_chat).into_iter().find(|m| m.text.contains("cannot change"))
    })
    .await;
    assert_eq!(order_of(&app, msg).await.state, OrderState::Escalated);
    // The late button has come meanwhile; /retry finishes the Tribute side.
    eventually("the late follow-up", || async {
        app.world.messages(app.tribute_chat()).into_iter().find(|m| !m.buttons.is_empty())
    })
    .await;
    app.moderator_replies(&card, "/retry");
    let done = app.wait_state(msg, OrderState::Confirmed).await;
    assert_eq!(app.backend.activations_for(order_ref.as_str()), 1, "one activation, for the first account");
    assert_eq!(app.backend.requests_for(order_ref.as_str()), 1);
    assert_eq!(done.account_candidates().iter().map(|a| a.as_str()).collect::<Vec<_>>(), vec!["123456"]);
    assert_eq!(app.world.send_presses(msg), 1);
    let replies =
        app.world.messages(app.tribute_chat()).into_iter().filter(|m| m.outgoing && m.reply_to == Some(msg)).count();
    assert_eq!(replies, 1, "one Tribute reply");
    app.shutdown().await;
}

#[tokio::test]
async fn a_401_that_is_not_a_replay_parks_the_order_with_one_alert_and_it_finishes_once_fixed() {
    let app = running(SandboxOptions::default()).await;
    // The publisher rotated the secret and our config still has the old one.
    app.backend.rotate_secret(SecretString::from("rotated-secret-the-daemon-does-not-know"));
    app.backend.drop_previous_secret();
    let msg = app.post_order(&order(501));
    eventually("several parked attempts", || async {
        try_order(&app, msg).await.filter(|o| o.activation_failures >= 2)
    })
    .await;
    let order = order_of(&app, msg).await;
    assert_eq!(order.state, OrderState::ActivationRequested, "not failed for good");
    let alerts = || {
        app.world.messages(app.moderator_chat).into_iter().filter(|m| m.text.contains("refuses our signature")).count()
    };
    eventually("the alert", || async { (alerts() > 0).then_some(()) }).await;
    // The operator fixes the secret; the next retry goes through.
    app.backend.rotate_secret(app.backend_secret().clone());
    app.wait_state(msg, OrderState::Confirmed).await;
    assert_eq!(alerts(), 1, "one alert however many retries");
    assert_eq!(app.backend.activations_for(OrderRef::for_message(app.tribute_chat(), msg).as_str()), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn telegrams_service_account_bots_groups_and_channels_are_never_treated_as_customers() {
    let app = running(SandboxOptions::default()).await;
    app.world.add_user(777000, "Telegram", None);
    app.customer_says(777000, "Login code: 51234. Do not give this code to anyone");
    // Another bot writes to us: not a customer either.
    app.world.post_from_bot(4242, "spam_bot", "Win 51234 stars! Click here");
    // Chatter in a group that is not the moderator chat, and a channel post.
    let group = app.world.create_group("Some group");
    app.world.add_user(4343, "Стас", None);
    app.world.post_as_user(group, 4343, "кто знает код 51234?", None);
    let channel = app.world.create_channel("News");
    app.world.post_in_channel(channel, "51234 news");
    // A real customer afterwards, so we know the message above was handled (and ignored).
    app.world.add_user(601, "Анна", None);
    app.customer_says(601, "Здравствуйте, где мой заказ?");
    eventually("the customer's conversation", || async { app.store().conversation_for_customer(601).await.unwrap() })
        .await;
    // Their question is a card; once every message taken in is handled and
    // every card posted, the moderator chat shows all there will be.
    app.wait_card("где мой заказ?").await;
    wait_inbox_handled(&app).await;
    for user in [777000, 4242, 4343] {
        assert!(app.store().conversation_for_customer(user).await.unwrap().is_none(), "{user}: not stored");
        assert!(app.world.messages(user).iter().all(|m| !m.outgoing), "{user}: never answered");
    }
    assert!(app.world.messages(group).iter().all(|m| !m.outgoing), "nothing said in the group");
    let leaked = app.world.messages(app.moderator_chat).into_iter().filter(|m| m.text.contains("51234")).count();
    assert_eq!(leaked, 0, "the login code never reaches a card");
    app.shutdown().await;
}

#[tokio::test]
async fn a_burst_that_overflows_the_update_buffer_loses_no_order() {
    let app = running(SandboxOptions::default()).await;
    // Like grammers' `updates_channel_capacity`: updates past it are dropped.
    app.world.set_update_buffer(Some(5));
    for _ in 0..30 {
        app.backend.add_pending("123456", "100 Diamonds");
    }
    let msgs: Vec<i32> = (0..30).map(|i| app.post_order(&order(700 + i))).collect();
    let dropped = app.world.faults_injected().get("update_overflow").copied().unwrap_or(0);
    assert!(dropped >= 20, "the burst overflowed the buffer: {:?}", app.world.faults_injected());
    for msg in &msgs {
        app.wait_state(*msg, OrderState::Confirmed).await;
    }
    for msg in &msgs {
        assert_eq!(app.world.send_presses(*msg), 1);
    }
    assert_eq!(app.backend.stats().activations, 30, "one activation per order");
    app.shutdown().await;
}

#[tokio::test]
async fn a_moderator_retry_takes_up_an_order_the_backend_rejected() {
    let app = running(SandboxOptions::default()).await;
    app.backend.reject_next(1);
    let msg = app.post_order(&order(501));
    let failed = app.wait_state(msg, OrderState::Failed).await;
    let card = eventually("the case card", || async {
        app.world.messages(app.moderator_chat).into_iter().find(|m| m.text.contains(failed.order_ref.as_str()))
    })
    .await;
    // The publisher fixed it on their side; the moderator retries.
    app.moderator_replies(&card, "/retry");
    app.wait_state(msg, OrderState::Confirmed).await;
    assert_eq!(app.backend.activations_for(failed.order_ref.as_str()), 1);
    assert_eq!(app.world.send_presses(msg), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_message_to_a_customer_whose_answer_is_lost_is_delivered_once_and_counted_once() {
    use tribute_testbed::sim::{FaultLevel, FaultPlan, FaultRates};
    let app = running(SandboxOptions::default()).await;
    // Every send is delivered, but Telegram's answer is lost (a timeout).
    let rates = FaultRates { send_timeout: 1000, ..FaultRates::for_level(FaultLevel::None) };
    app.world.set_fault_plan(FaultPlan::new(7, FaultLevel::Normal).with_rates(rates));
    let msg = app.post_order(&order(901).details("забыл айди"));
    app.wait_state(msg, OrderState::NeedsCustomer).await;
    eventually("the question to the customer", || async {
        let conv = app.store().conversation_for_customer(901).await.unwrap()?;
        let stored = app.store().conversation_messages(conv.id).await.unwrap();
        stored.iter().any(|m| m.template.as_deref() == Some("ask_account")).then_some(())
    })
    .await;
    // It is marked sent in the same transaction that stored it: nothing for 901 waits to be sent again.
    assert_eq!(app.store().pending_customer_messages(901).await.unwrap(), 0);
    let ours: Vec<_> = app.world.messages(901).into_iter().filter(|m| m.outgoing).collect();
    assert_eq!(ours.len(), 1, "asked once, however often the answer was lost: {ours:?}");
    let day = tribute_assistant::runtime::clock::day(tribute_assistant::runtime::clock::now_ms());
    assert_eq!(app.store().daily_messages(901, &day).await.unwrap(), 1, "counted once against the daily cap");
    assert!(app.world.faults_injected().get("send_timeout_delivered").copied().unwrap_or(0) >= 1);
    app.shutdown().await;
}

/// A message to a customer is a row in the store: Telegram refusing it for
/// a while costs a delay, a restart in between loses nothing, and it
/// arrives once.
#[tokio::test]
async fn a_message_to_a_customer_telegram_refuses_for_a_while_waits_in_the_store_and_arrives_once() {
    use tribute_assistant::domain::DialogueState;
    use tribute_assistant::telegram::MessengerError;
    let mut app = running(SandboxOptions::default()).await;
    app.world.fail_sends_to(903, MessengerError::FloodWait(Duration::from_secs(2)));
    let msg = app.post_order(&order(903).details("забыл айди"));
    app.wait_state(msg, OrderState::NeedsCustomer).await;
    // The question is stored first, the dialogue's state right after it (the step's effects, then its state).
    let conv = eventually("the question to wait in the store and the dialogue to have asked", || async {
        let conv = app.store().conversation_for_customer(903).await.unwrap()?;
        let waiting = app.store().pending_customer_messages(903).await.unwrap() == 1;
        (waiting && matches!(conv.state, DialogueState::AwaitingAccount { .. })).then_some(conv)
    })
    .await;
    assert!(app.world.messages(903).iter().all(|m| !m.outgoing), "nothing reached the customer yet");
    app.stop().await;
    app.world.clear_send_failure(903);
    app.start().await;
    eventually("the waiting question to arrive", || async {
        let stored = app.store().conversation_messages(conv.id).await.unwrap();
        stored.iter().any(|m| m.template.as_deref() == Some("ask_account")).then_some(())
    })
    .await;
    let ours: Vec<_> = app.world.messages(903).into_iter().filter(|m| m.outgoing).collect();
    assert_eq!(ours.len(), 1, "asked once: {ours:?}");
    assert_eq!(app.store().pending_customer_messages(903).await.unwrap(), 0);
    // The customer answers the question that came late; the order finishes.
    app.customer_says(903, "123456");
    app.wait_state(msg, OrderState::Confirmed).await;
    app.shutdown().await;
}

/// A message that cannot go out for hours is given up, and the order it
/// asked about goes to a moderator instead of waiting for an answer to a
/// question the customer never saw.
#[tokio::test]
async fn a_message_that_never_goes_out_hands_its_order_to_a_moderator_after_the_deadline() {
    use tribute_assistant::contact::MESSAGE_DEADLINE;
    use tribute_assistant::telegram::MessengerError;
    let app = running(SandboxOptions::default()).await;
    app.world.fail_sends_to(904, MessengerError::Disconnected);
    let msg = app.post_order(&order(904).details("забыл айди"));
    app.wait_state(msg, OrderState::NeedsCustomer).await;
    eventually("the question to wait in the store", || async {
        (app.store().pending_customer_messages(904).await.unwrap() == 1).then_some(())
    })
    .await;
    let clock = pause_time().await;
    for _ in 0..(MESSAGE_DEADLINE.as_secs() / 600 + 4) {
        app.advance(Duration::from_secs(600)).await;
    }
    clock.resume();
    app.wait_state(msg, OrderState::Escalated).await;
    let case = app.store().open_case_for_order(order_of(&app, msg).await.id).await.unwrap().expect("a case");
    assert_eq!(case.reason.as_str(), "customer_unreachable");
    assert_eq!(app.store().pending_customer_messages(904).await.unwrap(), 0, "given up, not retried for ever");
    assert!(app.world.messages(904).iter().all(|m| !m.outgoing));
    app.shutdown().await;
}

/// RANDOM_ID_DUPLICATE is Telegram saying an earlier attempt got through:
/// the message counts as delivered even while the history that would give
/// its id cannot be read (a long flood wait), instead of being retried.
#[tokio::test]
async fn a_message_telegram_already_has_is_delivered_though_the_history_is_flood_waited() {
    use tribute_testbed::sim::{FaultLevel, FaultPlan, FaultRates};
    let app = running(SandboxOptions::default()).await;
    let rates = FaultRates { send_timeout: 1000, ..FaultRates::for_level(FaultLevel::None) };
    app.world.set_fault_plan(FaultPlan::new(7, FaultLevel::Normal).with_rates(rates));
    app.world.flood_wait_history(Duration::from_secs(3600));
    let msg = app.post_order(&order(902).details("забыл айди"));
    app.wait_state(msg, OrderState::NeedsCustomer).await;
    eventually("the question marked delivered", || async {
        let conv = app.store().conversation_for_customer(902).await.unwrap()?;
        let stored = app.store().conversation_messages(conv.id).await.unwrap();
        stored.iter().any(|m| m.template.as_deref() == Some("ask_account")).then_some(())
    })
    .await;
    assert_eq!(app.store().pending_customer_messages(902).await.unwrap(), 0, "nothing waits to be sent again");
    let ours: Vec<_> = app.world.messages(902).into_iter().filter(|m| m.outgoing).collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(app.world.refused_sends().get("RANDOM_ID_DUPLICATE").copied().unwrap_or(0) >= 1);
    app.shutdown().await;
}

/// Telegram's flood wait on reading history is waited out: the re-read does
/// not ask again (and get refused) on every pass while Telegram said to
/// wait, and reads again once the wait is over (an order whose update was
/// lost meanwhile is found then).
#[tokio::test]
async fn the_re_read_waits_out_a_flood_wait_on_history_then_reads_again() {
    use tribute_testbed::sim::{FaultLevel, FaultPlan, FaultRates};
    let app = running(SandboxOptions::default()).await; // a re-read every second
    app.world.flood_wait_history(Duration::from_secs(600));
    let lost = FaultRates { update_lost: 1000, ..FaultRates::for_level(FaultLevel::None) };
    app.world.set_fault_plan(FaultPlan::new(7, FaultLevel::Normal).with_rates(lost));
    let msg = app.post_order(&order(905));
    let clock = pause_time().await;
    for _ in 0..300 {
        app.advance(Duration::from_secs(1)).await;
    }
    let refused = app.world.refused_reads().get("FLOOD_WAIT").copied().unwrap_or(0);
    assert!(refused < 10, "{refused} history reads refused in five minutes of one-second re-reads");
    assert!(try_order(&app, msg).await.is_none(), "read while Telegram said to wait");
    for _ in 0..310 {
        app.advance(Duration::from_secs(1)).await;
    }
    clock.resume();
    eventually("the lost order read once the wait is over", || try_order(&app, msg)).await;
    app.shutdown().await;
}
