//! The simulator is as strict and as hostile as real Telegram: the rules
//! it always enforces (limits, RANDOM_ID_DUPLICATE, DATA_INVALID,
//! PEER_FLOOD, users' settings), what other people do to our account, and
//! the seeded fault plan, which must replay exactly from its seed.
//! Time-dependent tests run on a paused tokio clock.

use std::time::Duration;

use tribute_assistant::telegram::{ChatId, Event, Messenger, MessengerError, RandomId, MESSAGE_LENGTH_MAX};
use tribute_testbed::sim::{Fault, FaultLevel, FaultPlan, FaultRates, SimClient, SimConfig, SimWorld, SERVICE_USER_ID};

use crate::support::sim::{next_event, next_new, order, quiet_for, OrderBuilder};
use crate::support::wait::within;

/// A plan with exactly these rates.
fn only(rates: FaultRates) -> FaultPlan {
    FaultPlan::new(1, FaultLevel::None).with_rates(rates)
}

fn count(map: &std::collections::BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

async fn send(client: &SimClient, chat: ChatId, text: &str) -> Result<i32, MessengerError> {
    client.send_message(chat, text, None, RandomId::fresh()).await
}

// ---- rules ----------------------------------------------------------------

#[tokio::test]
async fn text_limits_are_counted_in_utf16_units() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let group = world.create_group("Moderators");

    // 2048 emoji: 2048 chars, 4096 UTF-16 units — exactly the limit.
    let at_limit = "😀".repeat(2048);
    assert_eq!(send(&client, group, &at_limit).await, Ok(1));
    // One more unit is too long, although it is only 2049 chars (8193 bytes).
    let over = format!("{at_limit}a");
    assert_eq!(over.chars().count(), 2049);
    assert_eq!(send(&client, group, &over).await, Err(MessengerError::MessageTooLong));
    assert_eq!(send(&client, group, &"b".repeat(4097)).await, Err(MessengerError::MessageTooLong));
    assert_eq!(send(&client, group, &"b".repeat(4096)).await, Ok(2));

    assert_eq!(send(&client, group, "").await, Err(MessengerError::MessageEmpty));
    assert_eq!(send(&client, group, " \n\t ").await, Err(MessengerError::MessageEmpty));

    assert_eq!(send(&client, group, &"#tag ".repeat(100)).await, Ok(3));
    assert_eq!(send(&client, group, &"#tag ".repeat(101)).await, Err(MessengerError::EntitiesTooLong));

    for e in [MessengerError::MessageTooLong, MessengerError::MessageEmpty, MessengerError::EntitiesTooLong] {
        assert!(!e.is_transient(), "{e} must not be retried");
    }
    // Nothing refused was stored; the counters say what and why.
    assert_eq!(world.messages(group).len(), 3);
    let refused = world.refused_sends();
    assert_eq!(count(&refused, "MESSAGE_TOO_LONG"), 2);
    assert_eq!(count(&refused, "MESSAGE_EMPTY"), 2);
    assert_eq!(count(&refused, "ENTITIES_TOO_LONG"), 1);
    assert_eq!(world.max_text_accepted_utf16(), MESSAGE_LENGTH_MAX);
}

#[tokio::test]
async fn callback_data_over_64_bytes_or_unknown_is_data_invalid() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(42).by("Anna"));
    next_new(&client).await;
    client.send_message(chat, "Premium", Some(order_id), RandomId::fresh()).await.unwrap();
    let follow_up = next_new(&client).await;
    let send_data = follow_up.buttons[0][0].data.clone();

    let mut long = send_data.clone();
    long.resize(65, b'x');
    assert_eq!(client.press_button(chat, follow_up.id, &long).await, Err(MessengerError::DataInvalid));
    assert_eq!(client.press_button(chat, follow_up.id, &[b'y'; 64]).await, Err(MessengerError::DataInvalid));
    assert!(!MessengerError::DataInvalid.is_transient());
    assert!(world.deliveries().is_empty());
    assert_eq!(count(&world.refused_presses(), "DATA_INVALID"), 2);

    // The real button still works.
    assert!(client.press_button(chat, follow_up.id, &send_data).await.is_ok());
    assert_eq!(world.deliveries().len(), 1);
}

#[tokio::test]
async fn a_resend_with_the_same_random_id_is_refused_and_sends_nothing() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let group = world.create_group("Moderators");
    let other = world.create_group("Other");
    let id = RandomId(4242);

    assert_eq!(client.send_message(group, "case #1", None, id).await, Ok(1));
    assert_eq!(client.send_message(group, "case #1", None, id).await, Err(MessengerError::RandomIdDuplicate));
    // Per account, not per chat.
    assert_eq!(client.send_message(other, "case #1", None, id).await, Err(MessengerError::RandomIdDuplicate));
    assert!(!MessengerError::RandomIdDuplicate.is_transient());

    assert_eq!(world.messages(group).len(), 1);
    assert!(world.messages(other).is_empty());
    assert_eq!(world.message_for_random_id(id), Some((group, 1)));
    assert_eq!(count(&world.refused_sends(), "RANDOM_ID_DUPLICATE"), 2);
    assert_eq!(client.send_message(group, "case #2", None, RandomId(4243)).await, Ok(2));
}

#[tokio::test(start_paused = true)]
async fn peer_flood_after_the_stranger_quota() {
    let config = SimConfig {
        stranger_quota: 3,
        stranger_window: Duration::from_secs(600),
        peer_flood_penalty: Duration::from_secs(6 * 3600),
        ..SimConfig::default()
    };
    let world = SimWorld::new(config);
    let client = world.connect();
    for id in 1..=8 {
        world.add_user(id, &format!("Customer {id}"), None);
    }
    // A customer who wrote to us first is no stranger.
    world.post_as_user(8, 8, "hello?", None);

    for id in 1..=3 {
        assert_eq!(send(&client, id, "Which account ID?").await, Ok(1), "stranger {id} is within the quota");
    }
    assert_eq!(send(&client, 4, "Which account ID?").await, Err(MessengerError::PeerFlood));
    assert!(!MessengerError::PeerFlood.is_transient());
    assert!(world.messages(4).is_empty());
    // People we already talk to are not limited.
    assert_eq!(send(&client, 1, "Thanks!").await, Ok(2));
    assert_eq!(send(&client, 8, "Hi!").await, Ok(2));
    assert_eq!(send(&client, world.tribute_chat(), "hello bot").await, Ok(1));

    // The window passed, the penalty did not.
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(send(&client, 5, "Which account ID?").await, Err(MessengerError::PeerFlood));
    tokio::time::advance(Duration::from_secs(5 * 3600)).await;
    assert_eq!(send(&client, 5, "Which account ID?").await, Ok(1));
    assert_eq!(count(&world.refused_sends(), "PEER_FLOOD"), 2);
}

#[tokio::test]
async fn users_block_us_delete_their_account_or_close_their_privacy() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    for id in [11, 12, 13] {
        world.add_user(id, "U", None);
    }
    world.set_blocked(11, true);
    world.set_deactivated(12, true);
    world.set_privacy_restricted(13, true);
    assert_eq!(send(&client, 11, "hi").await, Err(MessengerError::UserBlocked));
    assert_eq!(send(&client, 12, "hi").await, Err(MessengerError::UserDeactivated));
    assert_eq!(send(&client, 13, "hi").await, Err(MessengerError::PrivacyRestricted));
    // Privacy only stops first messages: once they wrote, we may answer.
    world.post_as_user(13, 13, "my ID is 123456", None);
    assert_eq!(send(&client, 13, "thanks").await, Ok(2));
    world.set_blocked(11, false);
    assert_eq!(send(&client, 11, "hi").await, Ok(1));
    let refused = world.refused_sends();
    assert_eq!((count(&refused, "USER_IS_BLOCKED"), count(&refused, "INPUT_USER_DEACTIVATED")), (1, 1), "{refused:?}");
    assert_eq!(count(&refused, "USER_PRIVACY_RESTRICTED"), 1);
}

#[tokio::test]
async fn the_seed_chooses_customers_who_blocked_us() {
    let rates = FaultRates { customer_blocked: 1000, ..FaultRates::default() };
    let world = SimWorld::new(SimConfig { fault_plan: only(rates), ..SimConfig::default() });
    let client = world.connect();
    world.post_order(&order(77).by("Blocked"));
    world.add_user(78, "Not a customer", None);
    assert_eq!(send(&client, 77, "hi").await, Err(MessengerError::UserBlocked));
    assert_eq!(send(&client, 77, "hi again").await, Err(MessengerError::UserBlocked));
    assert_eq!(send(&client, 78, "hi").await, Ok(1), "only customers get a fate from the seed");
    // Counted once per customer.
    assert_eq!(count(&world.faults_injected(), Fault::CustomerBlocked.as_str()), 1);
    // An explicit setting wins over the seed.
    world.set_blocked(77, false);
    assert_eq!(send(&client, 77, "hi").await, Ok(1));
}

// ---- other people ---------------------------------------------------------

#[tokio::test]
async fn service_bot_channel_and_group_messages_arrive_as_events() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();

    world.post_service_message("Login code: 12345. Do not give this code to anyone.");
    let m = next_new(&client).await;
    assert_eq!((m.chat_id, m.sender_id, m.outgoing), (SERVICE_USER_ID, Some(SERVICE_USER_ID), false));
    assert!(m.text.starts_with("Login code"));

    world.post_from_bot(5_000_001, "weatherbot", "Sunny, 21°C");
    let m = next_new(&client).await;
    assert_eq!((m.chat_id, m.sender_id), (5_000_001, Some(5_000_001)));
    assert_eq!(world.user_info(5_000_001).and_then(|u| u.username).as_deref(), Some("weatherbot"));

    let channel = world.create_channel("News");
    world.post_in_channel(channel, "A channel post");
    let m = next_new(&client).await;
    assert_eq!((m.chat_id, m.sender_id), (channel, None));
    assert!(channel < 0);

    let moderators = world.create_group("Moderators");
    let chatter = world.create_group("Some other group");
    assert_ne!(moderators, chatter);
    world.post_as_user(chatter, 321, "hello everyone", None);
    let m = next_new(&client).await;
    assert_eq!((m.chat_id, m.sender_id), (chatter, Some(321)));
}

#[tokio::test]
async fn edits_and_deletions_are_events_and_deleted_messages_leave_history() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    world.add_user(42, "Anna", None);
    let first = world.post_as_user(42, 42, "My ID is 12345", None);
    let second = world.post_as_user(42, 42, "hello", None);
    next_new(&client).await;
    next_new(&client).await;

    assert!(world.edit_message(42, first, "My ID is 54321"));
    match next_event(&client).await {
        Event::MessageEdited(m) => assert_eq!((m.id, m.text.as_str()), (first, "My ID is 54321")),
        other => panic!("expected MessageEdited, got {other:?}"),
    }

    assert_eq!(world.delete_messages(42, &[second, 99]), vec![second]);
    assert_eq!(next_event(&client).await, Event::MessagesDeleted { chat: 42, ids: vec![second] });
    assert!(!world.edit_message(42, second, "gone"));
    assert_eq!(client.get_messages(42, &[first, second]).await.unwrap().len(), 1);
    assert_eq!(client.history_since(42, 0, 10).await.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(), [first]);
    assert_eq!(
        client.send_message(42, "re", Some(second), RandomId::fresh()).await,
        Err(MessengerError::MessageNotFound(42, second))
    );
    // Ids are never reused.
    assert_eq!(send(&client, 42, "answer").await, Ok(3));
}

// ---- the fault plan -------------------------------------------------------

#[tokio::test]
async fn a_send_that_times_out_was_delivered_and_its_resend_is_a_duplicate() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(42).by("Anna"));
    next_new(&client).await;

    world.set_fault_plan(only(FaultRates { send_timeout: 1000, ..FaultRates::default() }));
    let id = RandomId(7);
    assert_eq!(client.send_message(chat, "Premium", Some(order_id), id).await, Err(MessengerError::Timeout));
    // It was stored and the bot answered it.
    let ours = world.messages(chat).into_iter().find(|m| m.outgoing).expect("our reply is in history");
    assert_eq!(ours.text, "Premium");
    let follow_up = next_new(&client).await;
    assert_eq!(follow_up.reply_to, Some(ours.id));
    assert_eq!(world.message_for_random_id(id), Some((chat, ours.id)));
    // The retry with the same id is refused: nothing is sent twice.
    assert_eq!(client.send_message(chat, "Premium", Some(order_id), id).await, Err(MessengerError::RandomIdDuplicate));
    assert_eq!(world.messages(chat).iter().filter(|m| m.outgoing).count(), 1);
    assert_eq!(count(&world.faults_injected(), Fault::SendTimeoutDelivered.as_str()), 1);
}

#[tokio::test]
async fn a_press_that_times_out_delivered_once() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(42).by("Anna"));
    next_new(&client).await;
    client.send_message(chat, "Premium", Some(order_id), RandomId::fresh()).await.unwrap();
    let follow_up = next_new(&client).await;
    let data = follow_up.buttons[0][0].data.clone();

    world.set_fault_plan(only(FaultRates { press_timeout: 1000, ..FaultRates::default() }));
    assert_eq!(client.press_button(chat, follow_up.id, &data).await, Err(MessengerError::Timeout));
    assert_eq!(world.deliveries().len(), 1, "the press took effect");
    match next_event(&client).await {
        Event::MessageEdited(m) => assert!(m.buttons.is_empty(), "the keyboard is gone"),
        other => panic!("expected the edit, got {other:?}"),
    }
    // The retry finds the keyboard gone; still one delivery.
    assert_eq!(client.press_button(chat, follow_up.id, &data).await, Err(MessengerError::ButtonNotFound(follow_up.id)));
    assert_eq!(world.deliveries().len(), 1);
    assert_eq!(world.send_presses(order_id), 1);
    assert_eq!(count(&world.faults_injected(), Fault::PressTimeoutDelivered.as_str()), 1);
}

#[tokio::test(start_paused = true)]
async fn flood_waits_are_per_method_and_report_the_remaining_time() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    world.post_order(&order(42).by("Anna"));
    world.set_fault_plan(only(FaultRates { flood_wait: 1000, ..FaultRates::default() }));

    let Err(MessengerError::FloodWait(wait)) = client.history_since(chat, 0, 10).await else {
        panic!("a flood wait on history");
    };
    assert!((1..=5).contains(&wait.as_secs()), "short waits are 1–5 s, got {wait:?}");
    world.set_fault_plan(FaultPlan::none());
    // Within the wait, the same method is still refused with what is left.
    tokio::time::advance(Duration::from_millis(500)).await;
    match client.history_since(chat, 0, 10).await {
        Err(MessengerError::FloodWait(left)) => assert!(left <= wait && left >= Duration::from_secs(1), "{left:?}"),
        other => panic!("still flood-waited, got {other:?}"),
    }
    // Another method is not affected.
    assert_eq!(client.get_messages(chat, &[1]).await.unwrap().len(), 1);
    tokio::time::advance(wait).await;
    assert_eq!(client.history_since(chat, 0, 10).await.unwrap().len(), 1);
    assert_eq!(count(&world.refused_sends(), "FLOOD_WAIT"), 0);

    // Long waits exist too.
    world.set_fault_plan(only(FaultRates { flood_wait: 1000, flood_wait_long: 1000, ..FaultRates::default() }));
    let group = world.create_group("G");
    let Err(MessengerError::FloodWait(long)) = send(&client, group, "x").await else { panic!("a long flood wait") };
    assert!((60..=3600).contains(&long.as_secs()), "{long:?}");
    let injected = world.faults_injected();
    assert_eq!((count(&injected, "flood_wait.send"), count(&injected, "flood_wait.long")), (1, 1));
    assert_eq!(count(&world.refused_sends(), "FLOOD_WAIT"), 1);
    assert!(world.messages(group).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_disconnect_fault_heals_by_itself_and_loses_live_events() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    world.set_fault_plan(only(FaultRates { disconnect: 1000, ..FaultRates::default() }));
    assert_eq!(client.history_since(chat, 0, 10).await, Err(MessengerError::Disconnected));
    world.set_fault_plan(FaultPlan::none());
    assert!(!world.is_connected());
    assert_eq!(client.get_messages(chat, &[1]).await, Err(MessengerError::Disconnected));

    let lost = world.post_order(&order(1).by("Lost"));
    // The stream resumes by itself within 8 s, with new events only.
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { client.next_event().await })
    };
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(world.is_connected());
    let after = world.post_order(&order(2).by("After"));
    match within("the order after the outage", waiter).await.unwrap() {
        Ok(Event::NewMessage(m)) => assert_eq!(m.id, after),
        other => panic!("expected the order after the outage, got {other:?}"),
    }
    let history = client.history_since(chat, 0, 10).await.unwrap();
    assert_eq!(history.iter().map(|m| m.id).collect::<Vec<_>>(), [lost, after]);
}

#[tokio::test(start_paused = true)]
async fn updates_are_lost_duplicated_or_reordered_in_transit() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let group = world.create_group("G");

    world.set_fault_plan(only(FaultRates { update_lost: 1000, ..FaultRates::default() }));
    let lost = world.post_as_user(group, 5, "lost", None);
    quiet_for(&client, Duration::from_secs(5)).await;
    assert_eq!(world.messages(group).last().map(|m| m.id), Some(lost), "history keeps it");

    world.set_fault_plan(only(FaultRates { update_duplicated: 1000, ..FaultRates::default() }));
    let twice = world.post_as_user(group, 5, "twice", None);
    assert_eq!(next_new(&client).await.id, twice);
    assert_eq!(next_new(&client).await.id, twice);

    world.set_fault_plan(only(FaultRates { update_reordered: 1000, ..FaultRates::default() }));
    let a = world.post_as_user(group, 5, "a", None);
    let b = world.post_as_user(group, 5, "b", None);
    let c = world.post_as_user(group, 5, "c", None);
    let order: Vec<_> = [next_new(&client).await.id, next_new(&client).await.id, next_new(&client).await.id].into();
    // a is held back and follows b; c is held back, and with nothing after
    // it, it comes late by itself.
    assert_eq!(order, [b, a, c]);

    let injected = world.faults_injected();
    assert_eq!(count(&injected, "update_reordered"), 2, "{injected:?}");
}

#[tokio::test(start_paused = true)]
async fn a_burst_overflows_the_update_buffer() {
    let world = SimWorld::new(SimConfig { update_buffer: Some(3), ..SimConfig::default() });
    let client = world.connect();
    let group = world.create_group("G");
    for i in 0..10 {
        world.post_as_user(group, 5, &format!("burst {i}"), None);
    }
    let ids: Vec<_> = [next_new(&client).await.id, next_new(&client).await.id, next_new(&client).await.id].into();
    assert_eq!(ids, [1, 2, 3]);
    quiet_for(&client, Duration::from_millis(100)).await;
    assert_eq!(count(&world.faults_injected(), Fault::UpdateOverflow.as_str()), 7);
    assert_eq!(world.messages(group).len(), 10, "history has the whole burst");
    // Once read, there is room again.
    world.post_as_user(group, 5, "after", None);
    assert_eq!(next_new(&client).await.id, 11);
}

#[tokio::test(start_paused = true)]
async fn the_bot_follow_up_comes_late_or_never() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let first = world.post_order(&order(1).by("A"));
    let second = world.post_order(&order(2).by("B"));
    next_new(&client).await;
    next_new(&client).await;

    world.set_fault_plan(only(FaultRates { followup_missing: 1000, ..FaultRates::default() }));
    client.send_message(chat, "answer", Some(first), RandomId::fresh()).await.unwrap();
    quiet_for(&client, Duration::from_secs(600)).await;
    assert_eq!(count(&world.faults_injected(), Fault::FollowupMissing.as_str()), 1);

    let rates = FaultRates { followup_late: 1000, followup_late_max_secs: 30, ..FaultRates::default() };
    world.set_fault_plan(only(rates));
    let sent_at = tokio::time::Instant::now();
    let reply = client.send_message(chat, "answer", Some(second), RandomId::fresh()).await.unwrap();
    let follow_up = next_new(&client).await;
    let waited = sent_at.elapsed();
    assert_eq!(follow_up.reply_to, Some(reply));
    assert!(!follow_up.buttons.is_empty());
    assert!(waited >= Duration::from_secs(2) && waited <= Duration::from_secs(31), "late by {waited:?}");
    assert_eq!(count(&world.faults_injected(), Fault::FollowupLate.as_str()), 1);
}

#[tokio::test]
async fn no_faults_means_none_injected() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    for i in 0..50 {
        let o = world.post_order(&order(100 + i).by("C"));
        next_new(&client).await;
        client.send_message(chat, "answer", Some(o), RandomId::fresh()).await.unwrap();
        let f = next_new(&client).await;
        client.press_button(chat, f.id, &f.buttons[0][0].data).await.unwrap();
        next_event(&client).await;
    }
    assert_eq!(world.deliveries().len(), 50);
    assert!(world.faults_injected().is_empty());
    assert!(world.fault_log().is_empty());
    assert!(world.refused_sends().is_empty());
}

// ---- determinism ----------------------------------------------------------

/// One scripted run: orders, replies, presses and reads on a world under
/// `plan`, with fixed random ids and a paused clock. Returns what our
/// client saw and the world's fault log.
async fn scripted_run(plan: FaultPlan) -> (Vec<String>, Vec<String>, std::collections::BTreeMap<String, u64>) {
    let world = SimWorld::new(SimConfig { fault_plan: plan, update_buffer: Some(50), ..SimConfig::default() });
    let client = world.connect();
    let chat = world.tribute_chat();
    let mut seen = Vec::new();
    for i in 0..40_i64 {
        let o = world.post_order(&order(500 + i).by("Customer"));
        let r = client.send_message(chat, &format!("answer {i}"), Some(o), RandomId(i + 1)).await;
        seen.push(format!("send {i}: {r:?}"));
        let r = client.send_message(500 + i, "Which account ID?", None, RandomId(1000 + i)).await;
        seen.push(format!("dm {i}: {r:?}"));
        seen.push(format!("history {i}: {:?}", client.history_since(chat, 0, 500).await.map(|h| h.len())));
        while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(800), client.next_event()).await {
            match event {
                Event::NewMessage(m) if !m.buttons.is_empty() => {
                    let r = client.press_button(chat, m.id, &m.buttons[0][0].data).await;
                    seen.push(format!("press {}: {r:?}", m.id));
                }
                Event::NewMessage(m) => seen.push(format!("new {}/{}", m.chat_id, m.id)),
                Event::MessageEdited(m) => seen.push(format!("edit {}/{}", m.chat_id, m.id)),
                Event::MessagesDeleted { chat, ids } => seen.push(format!("deleted {chat}/{ids:?}")),
            }
        }
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    (seen, world.fault_log(), world.faults_injected())
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_replays_the_same_faults_and_another_seed_differs() {
    let (seen_a, log_a, injected_a) = scripted_run(FaultPlan::new(2026, FaultLevel::Hostile)).await;
    let (seen_b, log_b, injected_b) = scripted_run(FaultPlan::new(2026, FaultLevel::Hostile)).await;
    assert!(log_a.len() >= 10, "a hostile plan injects plenty: {injected_a:?}");
    assert!(injected_a.len() >= 5, "of several kinds: {injected_a:?}");
    assert_eq!(log_a, log_b);
    assert_eq!(injected_a, injected_b);
    assert_eq!(seen_a, seen_b, "our client saw exactly the same run");

    let (seen_c, log_c, _) = scripted_run(FaultPlan::new(2027, FaultLevel::Hostile)).await;
    assert_ne!(log_a, log_c, "another seed, other faults");
    assert_ne!(seen_a, seen_c);
}

/// A Send button gone at the press means one of two things, and the seed
/// can produce both: the bot took our earlier press (its answer was lost;
/// the follow-up says it delivered) or it took the keyboard away without
/// delivering (the follow-up says nothing of the kind).
#[tokio::test]
async fn a_send_button_is_gone_after_a_delivery_or_without_one() {
    let delivered = tribute_assistant::telegram::TelegramSection::default().delivered_texts;
    for (rates, fault, delivers) in [
        (FaultRates { press_timeout: 1000, ..FaultRates::default() }, Fault::PressTimeoutDelivered, true),
        (FaultRates { button_gone: 1000, ..FaultRates::default() }, Fault::ButtonGone, false),
    ] {
        let world = SimWorld::new(SimConfig::default());
        let client = world.connect();
        let chat = world.tribute_chat();
        let order_id = world.post_order(&order(42).by("Anna"));
        next_new(&client).await;
        let reply = client.send_message(chat, "Premium", Some(order_id), RandomId::fresh()).await.unwrap();
        let follow_up = next_new(&client).await;
        let data = follow_up.buttons[0][0].data.clone();

        world.set_fault_plan(only(rates));
        let first = client.press_button(chat, follow_up.id, &data).await;
        let again = client.press_button(chat, follow_up.id, &data).await;
        assert_eq!(again, Err(MessengerError::ButtonNotFound(follow_up.id)), "{fault}");
        assert_eq!(count(&world.faults_injected(), fault.as_str()), 1, "{fault}");
        let now = world.message(chat, follow_up.id).expect("the follow-up is still there");
        assert!(now.buttons.is_empty() && now.reply_to == Some(reply), "{fault}: {now:?}");
        let says_delivered = delivered.iter().any(|t| now.text.starts_with(t.as_str()));
        if delivers {
            assert_eq!(first, Err(MessengerError::Timeout));
            assert_eq!(world.deliveries().len(), 1);
            assert!(says_delivered, "the delivery is worded as the daemon expects: {:?}", now.text);
        } else {
            assert_eq!(first, Err(MessengerError::ButtonNotFound(follow_up.id)));
            assert!(world.deliveries().is_empty());
            assert_eq!(world.send_presses(order_id), 0);
            assert_eq!(now.text, follow_up.text, "the text stays: nothing was delivered");
            assert!(!says_delivered);
        }
    }
}
