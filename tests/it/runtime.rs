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
use tribute_assistant::testbed::sandbox::{Sandbox, SandboxOptions};
use tribute_assistant::tribute::ParserConfig;

use crate::support::sandbox::{
    order_of, sandbox_with, stopped_sandbox, try_order, wait_chat, wait_inbox_handled, wait_state,
};
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::{advance, eventually, pause_time, OUTAGE};

/// The daemon running, with 654321 pending on the backend too (besides
/// the default order's 123456).
async fn running(dir: &tempfile::TempDir, opts: SandboxOptions) -> Sandbox {
    let sb = sandbox_with(dir, opts).await;
    sb.backend.add_pending("654321", "100 Diamonds");
    sb
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
    let dir = tempfile::tempdir().unwrap();
    let mut sb = stopped_sandbox(&dir, SandboxOptions::default()).await;
    sb.world.disconnect();
    let msg = sb.world.post_order(&order(501));
    sb.start_daemon(None).await.unwrap();
    tokio::time::sleep(OUTAGE).await;
    sb.world.reconnect();
    wait_state(&sb, msg, OrderState::Confirmed).await;
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_order_stored_by_a_history_reread_without_a_wake_up_is_still_finished() {
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    // The live update is lost; the message reaches the store only through a
    // history read that does not tell the worker (as the workflow's own
    // catch-up did), and the live update would then be a duplicate.
    sb.world.disconnect();
    let msg = sb.world.post_order(&order(501));
    let stored = sb.world.messages(sb.tribute_chat()).into_iter().find(|m| m.id == msg).unwrap();
    let cfg = IngestConfig { parser: ParserConfig::default(), tribute_bot: sb.tribute_chat() };
    ingest(sb.store(), &cfg, &stored).await.unwrap();
    sb.world.reconnect();
    let order = wait_state(&sb, msg, OrderState::Confirmed).await;
    assert!(order.activation_id.is_some());
    assert_eq!(sb.backend.activations_for(order.order_ref.as_str()), 1);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_order_lost_below_the_newest_stored_message_is_found_by_the_periodic_reread() {
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    sb.world.disconnect();
    let lost = sb.world.post_order(&order(501));
    sb.world.reconnect();
    let live = sb.world.post_order(&order(502).details("ID 654321"));
    wait_state(&sb, live, OrderState::Confirmed).await;
    // The newest stored message is above the lost one: a re-read from the
    // newest on would never see it.
    let order = wait_state(&sb, lost, OrderState::Confirmed).await;
    assert_eq!(sb.backend.activations_for(order.order_ref.as_str()), 1);
    assert_eq!(sb.world.send_presses(lost), 1);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_flood_wait_longer_than_the_auto_sleep_parks_the_order_until_it_is_over() {
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    let clock = pause_time().await;
    // The reply is refused with a ten-minute flood wait (the daemon sleeps through 5 s at most).
    sb.world.flood_wait_next_sends(1, Duration::from_secs(600));
    let msg = sb.world.post_order(&order(501));
    let parked = eventually("the order to wait out the flood", || async {
        try_order(&sb, msg).await.filter(|o| o.state == OrderState::Activated && o.next_attempt_at.is_some())
    })
    .await;
    let wait_ms = parked.next_attempt_at.unwrap() - tribute_assistant::runtime::clock::now_ms();
    assert!(wait_ms > 590_000, "parked for the flood wait, not less: {wait_ms} ms");
    let second = sb.world.post_order(&order(502).details("ID 654321"));
    wait_state(&sb, second, OrderState::Confirmed).await;
    assert_eq!(order_of(&sb, msg).await.state, OrderState::Activated, "still waiting out the flood");
    advance(Duration::from_secs(601)).await;
    wait_state(&sb, msg, OrderState::Confirmed).await;
    clock.resume();
    assert_eq!(sb.world.send_presses(msg), 1);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_escalated_order_that_was_activated_keeps_its_account_and_resumes_at_send() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SandboxOptions { button_timeout: Duration::from_millis(300), ..SandboxOptions::default() };
    let sb = running(&dir, opts).await;
    // The Send button comes long after our deadline: the order is escalated after its reply.
    sb.world.button_delay(Duration::from_secs(2));
    let msg = sb.world.post_order(&order(501));
    let order = wait_state(&sb, msg, OrderState::Escalated).await;
    let order_ref = order.order_ref.clone();
    assert_eq!(order.escalation_reason.as_deref(), Some("button_never_came"));
    let card = eventually("the case card", || async {
        sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.text.contains(order_ref.as_str()))
    })
    .await;
    // A moderator gives another account: refused, nothing activated again.
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "654321", Some(card.id));
    eventually("the refusal", || async {
        sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.text.contains("cannot change"))
    })
    .await;
    assert_eq!(order_of(&sb, msg).await.state, OrderState::Escalated);
    // The late button has come meanwhile; /retry finishes the Tribute side.
    eventually("the late follow-up", || async {
        sb.world.messages(sb.tribute_chat()).into_iter().find(|m| !m.buttons.is_empty())
    })
    .await;
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/retry", Some(card.id));
    let done = wait_state(&sb, msg, OrderState::Confirmed).await;
    assert_eq!(sb.backend.activations_for(order_ref.as_str()), 1, "one activation, for the first account");
    assert_eq!(sb.backend.requests_for(order_ref.as_str()), 1);
    assert_eq!(done.account_candidates().iter().map(|a| a.as_str()).collect::<Vec<_>>(), vec!["123456"]);
    assert_eq!(sb.world.send_presses(msg), 1);
    let replies =
        sb.world.messages(sb.tribute_chat()).into_iter().filter(|m| m.outgoing && m.reply_to == Some(msg)).count();
    assert_eq!(replies, 1, "one Tribute reply");
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_401_that_is_not_a_replay_parks_the_order_with_one_alert_and_it_finishes_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    // The publisher rotated the secret and our config still has the old one.
    sb.backend.rotate_secret(SecretString::from("rotated-secret-the-daemon-does-not-know"));
    sb.backend.drop_previous_secret();
    let msg = sb.world.post_order(&order(501));
    eventually("several parked attempts", || async {
        try_order(&sb, msg).await.filter(|o| o.activation_failures >= 2)
    })
    .await;
    let order = order_of(&sb, msg).await;
    assert_eq!(order.state, OrderState::ActivationRequested, "not failed for good");
    let alerts = || {
        sb.world.messages(sb.moderator_chat).into_iter().filter(|m| m.text.contains("refuses our signature")).count()
    };
    eventually("the alert", || async { (alerts() > 0).then_some(()) }).await;
    // The operator fixes the secret; the next retry goes through.
    sb.backend.rotate_secret(sb.backend_secret().clone());
    wait_state(&sb, msg, OrderState::Confirmed).await;
    assert_eq!(alerts(), 1, "one alert however many retries");
    assert_eq!(sb.backend.activations_for(OrderRef::for_message(sb.tribute_chat(), msg).as_str()), 1);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn telegrams_service_account_bots_groups_and_channels_are_never_treated_as_customers() {
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    sb.world.add_user(777000, "Telegram", None);
    sb.world.post_as_user(777000, 777000, "Login code: 51234. Do not give this code to anyone", None);
    // Another bot writes to us: not a customer either.
    sb.world.post_from_bot(4242, "spam_bot", "Win 51234 stars! Click here");
    // Chatter in a group that is not the moderator chat, and a channel post.
    let group = sb.world.create_group("Some group");
    sb.world.add_user(4343, "Стас", None);
    sb.world.post_as_user(group, 4343, "кто знает код 51234?", None);
    let channel = sb.world.create_channel("News");
    sb.world.post_in_channel(channel, "51234 news");
    // A real customer afterwards, so we know the message above was handled (and ignored).
    sb.world.add_user(601, "Анна", None);
    sb.world.post_as_user(601, 601, "Здравствуйте, где мой заказ?", None);
    eventually("the customer's conversation", || async { sb.store().conversation_for_customer(601).await.unwrap() })
        .await;
    // Their question is a card; once every message taken in is handled and
    // every card posted, the moderator chat shows all there will be.
    wait_chat(&sb, "где мой заказ?").await;
    wait_inbox_handled(&sb).await;
    for user in [777000, 4242, 4343] {
        assert!(sb.store().conversation_for_customer(user).await.unwrap().is_none(), "{user}: not stored");
        assert!(sb.world.messages(user).iter().all(|m| !m.outgoing), "{user}: never answered");
    }
    assert!(sb.world.messages(group).iter().all(|m| !m.outgoing), "nothing said in the group");
    let leaked = sb.world.messages(sb.moderator_chat).into_iter().filter(|m| m.text.contains("51234")).count();
    assert_eq!(leaked, 0, "the login code never reaches a card");
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_burst_that_overflows_the_update_buffer_loses_no_order() {
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    // Like grammers' `updates_channel_capacity`: updates past it are dropped.
    sb.world.set_update_buffer(Some(5));
    for _ in 0..30 {
        sb.backend.add_pending("123456", "100 Diamonds");
    }
    let msgs: Vec<i32> = (0..30).map(|i| sb.world.post_order(&order(700 + i))).collect();
    let dropped = sb.world.faults_injected().get("update_overflow").copied().unwrap_or(0);
    assert!(dropped >= 20, "the burst overflowed the buffer: {:?}", sb.world.faults_injected());
    for msg in &msgs {
        wait_state(&sb, *msg, OrderState::Confirmed).await;
    }
    for msg in &msgs {
        assert_eq!(sb.world.send_presses(*msg), 1);
    }
    assert_eq!(sb.backend.stats().activations, 30, "one activation per order");
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_moderator_retry_takes_up_an_order_the_backend_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    sb.backend.reject_next(1);
    let msg = sb.world.post_order(&order(501));
    let failed = wait_state(&sb, msg, OrderState::Failed).await;
    let card = eventually("the case card", || async {
        sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.text.contains(failed.order_ref.as_str()))
    })
    .await;
    // The publisher fixed it on their side; the moderator retries.
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/retry", Some(card.id));
    wait_state(&sb, msg, OrderState::Confirmed).await;
    assert_eq!(sb.backend.activations_for(failed.order_ref.as_str()), 1);
    assert_eq!(sb.world.send_presses(msg), 1);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_message_to_a_customer_whose_answer_is_lost_is_delivered_once_and_counted_once() {
    use tribute_assistant::testbed::sim::{FaultLevel, FaultPlan, FaultRates};
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    // Every send is delivered, but Telegram's answer is lost (a timeout).
    let rates = FaultRates { send_timeout: 1000, ..FaultRates::for_level(FaultLevel::None) };
    sb.world.set_fault_plan(FaultPlan::new(7, FaultLevel::Normal).with_rates(rates));
    let msg = sb.world.post_order(&order(901).details("забыл айди"));
    wait_state(&sb, msg, OrderState::NeedsCustomer).await;
    eventually("the question to the customer", || async {
        let conv = sb.store().conversation_for_customer(901).await.unwrap()?;
        let stored = sb.store().conversation_messages(conv.id).await.unwrap();
        stored.iter().any(|m| m.template.as_deref() == Some("ask_account")).then_some(())
    })
    .await;
    // It is marked sent in the same transaction that stored it: nothing for 901 waits to be sent again.
    assert_eq!(sb.store().pending_customer_messages(901).await.unwrap(), 0);
    let ours: Vec<_> = sb.world.messages(901).into_iter().filter(|m| m.outgoing).collect();
    assert_eq!(ours.len(), 1, "asked once, however often the answer was lost: {ours:?}");
    let day = tribute_assistant::runtime::clock::day(tribute_assistant::runtime::clock::now_ms());
    assert_eq!(sb.store().daily_messages(901, &day).await.unwrap(), 1, "counted once against the daily cap");
    assert!(sb.world.faults_injected().get("send_timeout_delivered").copied().unwrap_or(0) >= 1);
    sb.shutdown().await.unwrap();
}

/// A message to a customer is a row in the store: Telegram refusing it for
/// a while costs a delay, a restart in between loses nothing, and it
/// arrives once.
#[tokio::test]
async fn a_message_to_a_customer_telegram_refuses_for_a_while_waits_in_the_store_and_arrives_once() {
    use tribute_assistant::domain::DialogueState;
    use tribute_assistant::telegram::MessengerError;
    let dir = tempfile::tempdir().unwrap();
    let mut sb = running(&dir, SandboxOptions::default()).await;
    sb.world.fail_sends_to(903, MessengerError::FloodWait(Duration::from_secs(2)));
    let msg = sb.world.post_order(&order(903).details("забыл айди"));
    wait_state(&sb, msg, OrderState::NeedsCustomer).await;
    // The question is stored first, the dialogue's state right after it (the step's effects, then its state).
    let conv = eventually("the question to wait in the store and the dialogue to have asked", || async {
        let conv = sb.store().conversation_for_customer(903).await.unwrap()?;
        let waiting = sb.store().pending_customer_messages(903).await.unwrap() == 1;
        (waiting && matches!(conv.state, DialogueState::AwaitingAccount { .. })).then_some(conv)
    })
    .await;
    assert!(sb.world.messages(903).iter().all(|m| !m.outgoing), "nothing reached the customer yet");
    sb.stop_daemon().await.unwrap();
    sb.world.clear_send_failure(903);
    sb.start_daemon(None).await.unwrap();
    eventually("the waiting question to arrive", || async {
        let stored = sb.store().conversation_messages(conv.id).await.unwrap();
        stored.iter().any(|m| m.template.as_deref() == Some("ask_account")).then_some(())
    })
    .await;
    let ours: Vec<_> = sb.world.messages(903).into_iter().filter(|m| m.outgoing).collect();
    assert_eq!(ours.len(), 1, "asked once: {ours:?}");
    assert_eq!(sb.store().pending_customer_messages(903).await.unwrap(), 0);
    // The customer answers the question that came late; the order finishes.
    sb.world.post_as_user(903, 903, "123456", None);
    wait_state(&sb, msg, OrderState::Confirmed).await;
    sb.shutdown().await.unwrap();
}

/// A message that cannot go out for hours is given up, and the order it
/// asked about goes to a moderator instead of waiting for an answer to a
/// question the customer never saw.
#[tokio::test]
async fn a_message_that_never_goes_out_hands_its_order_to_a_moderator_after_the_deadline() {
    use tribute_assistant::contact::MESSAGE_DEADLINE;
    use tribute_assistant::telegram::MessengerError;
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    sb.world.fail_sends_to(904, MessengerError::Disconnected);
    let msg = sb.world.post_order(&order(904).details("забыл айди"));
    wait_state(&sb, msg, OrderState::NeedsCustomer).await;
    eventually("the question to wait in the store", || async {
        (sb.store().pending_customer_messages(904).await.unwrap() == 1).then_some(())
    })
    .await;
    let clock = pause_time().await;
    for _ in 0..(MESSAGE_DEADLINE.as_secs() / 600 + 4) {
        advance(Duration::from_secs(600)).await;
    }
    clock.resume();
    wait_state(&sb, msg, OrderState::Escalated).await;
    let case = sb.store().open_case_for_order(order_of(&sb, msg).await.id).await.unwrap().expect("a case");
    assert_eq!(case.reason, "customer_unreachable");
    assert_eq!(sb.store().pending_customer_messages(904).await.unwrap(), 0, "given up, not retried for ever");
    assert!(sb.world.messages(904).iter().all(|m| !m.outgoing));
    sb.shutdown().await.unwrap();
}

/// RANDOM_ID_DUPLICATE is Telegram saying an earlier attempt got through:
/// the message counts as delivered even while the history that would give
/// its id cannot be read (a long flood wait), instead of being retried.
#[tokio::test]
async fn a_message_telegram_already_has_is_delivered_though_the_history_is_flood_waited() {
    use tribute_assistant::testbed::sim::{FaultLevel, FaultPlan, FaultRates};
    let dir = tempfile::tempdir().unwrap();
    let sb = running(&dir, SandboxOptions::default()).await;
    let rates = FaultRates { send_timeout: 1000, ..FaultRates::for_level(FaultLevel::None) };
    sb.world.set_fault_plan(FaultPlan::new(7, FaultLevel::Normal).with_rates(rates));
    sb.world.flood_wait_history(Duration::from_secs(3600));
    let msg = sb.world.post_order(&order(902).details("забыл айди"));
    wait_state(&sb, msg, OrderState::NeedsCustomer).await;
    eventually("the question marked delivered", || async {
        let conv = sb.store().conversation_for_customer(902).await.unwrap()?;
        let stored = sb.store().conversation_messages(conv.id).await.unwrap();
        stored.iter().any(|m| m.template.as_deref() == Some("ask_account")).then_some(())
    })
    .await;
    assert_eq!(sb.store().pending_customer_messages(902).await.unwrap(), 0, "nothing waits to be sent again");
    let ours: Vec<_> = sb.world.messages(902).into_iter().filter(|m| m.outgoing).collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(sb.world.refused_sends().get("RANDOM_ID_DUPLICATE").copied().unwrap_or(0) >= 1);
    sb.shutdown().await.unwrap();
}
