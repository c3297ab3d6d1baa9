//! The Telegram simulator behaves like Telegram and the Tribute bot where
//! the daemon depends on it. Every wait has a timeout so a hang fails.

use std::time::Duration;

use tribute_assistant::telegram::{CallbackAnswer, EntityKind, Event, Message, Messenger, MessengerError, RandomId};
use tribute_testbed::sim::{utf16_len, SimConfig, SimOrder, SimWorld, ALREADY_COMPLETED_TEXT, NOT_UNDERSTOOD_TEXT};

use crate::support::sim::{assert_quiet, next_edit, next_new, order, OrderBuilder};
use crate::support::wait::{until_idle, within};

#[tokio::test]
async fn exchange_end_to_end_delivers_once() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    assert_eq!(chat, 93372553);
    assert_eq!(client.self_id(), 1000);

    let order_id = world.post_order(&order(42).by("Anna"));
    let notification = next_new(&client).await;
    assert_eq!(notification.id, order_id);
    assert_eq!(notification.chat_id, chat);
    assert_eq!(notification.sender_id, Some(chat));
    assert!(!notification.outgoing);
    assert!(notification.text.starts_with("🆕 Custom Product Order\n\nCustomer: Anna\n"));

    let reply =
        client.send_message(chat, "Premium month, payment #A-1", Some(order_id), RandomId::fresh()).await.unwrap();
    let follow_up = next_new(&client).await;
    assert_eq!(follow_up.reply_to, Some(reply));
    assert_eq!(follow_up.sender_id, Some(chat));
    assert_eq!(
        follow_up.text,
        "Your answer to the order will be sent to Anna:\n\nPremium month, payment #A-1\n\nPress «Send» to deliver it."
    );
    assert_eq!(follow_up.buttons.len(), 2);
    assert_eq!(follow_up.buttons[1][0].text, "Edit");
    let send = follow_up.all_buttons().find(|b| b.text == "Send").expect("a Send button").clone();
    assert!(send.data.starts_with(format!("send:{order_id}:").as_bytes()));

    let answer = client.press_button(chat, follow_up.id, &send.data).await.unwrap();
    assert_eq!(answer, CallbackAnswer { text: Some("Sent".into()), alert: false });
    let edited = next_edit(&client).await;
    assert_eq!(edited.id, follow_up.id);
    assert!(edited.buttons.is_empty());
    assert_eq!(edited.text, "✅ Delivered to Anna.");

    let deliveries = world.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].order_message_id, order_id);
    assert_eq!(deliveries[0].customer_id, 42);
    assert_eq!(deliveries[0].text, "Premium month, payment #A-1");
    assert_eq!(world.send_presses(order_id), 1);

    let again = client.press_button(chat, follow_up.id, &send.data).await;
    assert_eq!(again, Err(MessengerError::ButtonNotFound(follow_up.id)));
    assert_eq!(world.deliveries().len(), 1);
    assert_eq!(world.send_presses(order_id), 1);

    // get_messages shows the state after the edit.
    let current = client.get_messages(chat, &[follow_up.id, 999]).await.unwrap();
    assert_eq!(current, vec![edited]);
}

#[tokio::test]
async fn message_ids_are_per_chat_and_sends_are_stored() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    world.add_user(77, "Boris", Some("boris"));
    let group = world.create_group("Moderators");
    assert!(group < 0);
    assert_eq!(world.chat_title(group).as_deref(), Some("Moderators"));

    assert_eq!(client.send_message(77, "hello", None, RandomId::fresh()).await, Ok(1));
    assert_eq!(client.send_message(group, "case #1", None, RandomId::fresh()).await, Ok(1));
    assert_eq!(client.send_message(77, "again", Some(1), RandomId::fresh()).await, Ok(2));
    assert_eq!(world.post_as_user(group, 55, "moderator here", Some(1)), 2);
    assert_eq!(world.post_order(&order(42).by("Anna")), 1);

    let private = world.messages(77);
    assert_eq!(private.len(), 2);
    assert!(private.iter().all(|m| m.outgoing && m.sender_id == Some(1000) && m.chat_id == 77));
    assert_eq!(private[1].reply_to, Some(1));
    assert!(private[0].date > 1_700_000_000);

    // Our own sends are not echoed as events; other people's messages are.
    let moderator = next_new(&client).await;
    assert_eq!((moderator.chat_id, moderator.id, moderator.sender_id), (group, 2, Some(55)));
    assert_eq!(moderator.reply_to, Some(1));
    assert!(!moderator.outgoing);
    assert_eq!(next_new(&client).await.chat_id, world.tribute_chat());

    assert_eq!(client.send_message(-5, "x", None, RandomId::fresh()).await, Err(MessengerError::ChatNotFound(-5)));
    assert_eq!(
        client.send_message(31337, "x", None, RandomId::fresh()).await,
        Err(MessengerError::ChatNotFound(31337))
    );
    assert_eq!(client.history_since(-5, 0, 10).await, Err(MessengerError::ChatNotFound(-5)));
}

#[tokio::test]
async fn customer_writes_privately() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    world.post_order(&order(42).by("Anna"));
    next_new(&client).await;
    // Posting an order makes the customer a known user we can write to.
    let ours = client.send_message(42, "Which account ID?", None, RandomId::fresh()).await.unwrap();
    let theirs = world.post_as_user(42, 42, "It is 98765", Some(ours));
    let m = next_new(&client).await;
    assert_eq!((m.chat_id, m.id, m.sender_id, m.reply_to), (42, theirs, Some(42), Some(ours)));
    assert_eq!(m.text, "It is 98765");
}

#[tokio::test]
async fn entities_use_utf16_offsets_with_cyrillic_and_emoji() {
    let world = SimWorld::new(SimConfig::default());
    let name = "Дмитрий 🚀 Петров";
    let id = world.post_order(&SimOrder {
        customer_id: 4242,
        customer_name: name.into(),
        product: "Подписка".into(),
        price: "₽500.00".into(),
        details: "ID 7".into(),
    });
    let m = &world.messages(world.tribute_chat())[id as usize - 1];
    assert_eq!(
        m.text,
        "🆕 Custom Product Order\n\nCustomer: Дмитрий 🚀 Петров\nProduct: Подписка\nPrice: ₽500.00\nOrder Details:\nID 7"
    );
    let bold = &m.entities[0];
    assert_eq!((bold.offset, bold.length, &bold.kind), (3, 20, &EntityKind::Bold));
    let mention = &m.entities[1];
    assert_eq!(mention.kind, EntityKind::MentionName { user_id: 4242 });
    assert_eq!(mention.offset, utf16_len("🆕 Custom Product Order\n\nCustomer: "));
    assert_eq!(mention.offset, 35);
    assert_eq!(mention.length, 17); // 15 chars, the rocket counts twice
    let units: Vec<u16> = m.text.encode_utf16().collect();
    let covered = String::from_utf16(&units[mention.offset..mention.offset + mention.length]).unwrap();
    assert_eq!(covered, name);
}

#[tokio::test]
async fn history_since_is_oldest_first_and_limited() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    for i in 0..5 {
        world.post_order(&order(100 + i).by("C"));
    }
    let ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(client.history_since(chat, 0, 100).await.unwrap()), [1, 2, 3, 4, 5]);
    assert_eq!(ids(client.history_since(chat, 2, 2).await.unwrap()), [3, 4]);
    assert_eq!(ids(client.history_since(chat, 4, 10).await.unwrap()), [5]);
    assert!(client.history_since(chat, 5, 10).await.unwrap().is_empty());
    assert!(client.history_since(chat, 0, 0).await.unwrap().is_empty());
    assert_eq!(ids(client.history_since(chat, -3, 1).await.unwrap()), [1]);
}

#[tokio::test(start_paused = true)]
async fn events_without_a_client_are_lost_but_stay_in_history() {
    let world = SimWorld::new(SimConfig::default());
    let chat = world.tribute_chat();
    let missed = world.post_order(&order(1).by("Early"));
    let client = world.connect();
    assert_quiet(&client).await;
    let history = client.history_since(chat, 0, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].id, missed);

    let live = world.post_order(&order(2).by("Late"));
    assert_eq!(next_new(&client).await.id, live);
}

#[tokio::test(start_paused = true)]
async fn a_new_connect_closes_the_previous_stream() {
    let world = SimWorld::new(SimConfig::default());
    let first = world.connect();
    world.post_order(&order(1).by("Queued"));
    let waiting = {
        let first = first.clone();
        tokio::spawn(async move {
            // Drain the queued event, then wait for more.
            let _ = first.next_event().await;
            first.next_event().await
        })
    };
    until_idle().await;
    let second = world.connect();
    let result = within("the old stream to end", waiting).await.unwrap();
    assert_eq!(result, Err(MessengerError::Closed));
    assert_eq!(first.next_event().await, Err(MessengerError::Closed));

    let id = world.post_order(&order(2).by("New"));
    assert_eq!(next_new(&second).await.id, id);
    // The old session can still make requests.
    assert_eq!(first.history_since(world.tribute_chat(), 0, 10).await.unwrap().len(), 2);

    world.close_client();
    assert_eq!(second.next_event().await, Err(MessengerError::Closed));
}

#[tokio::test(start_paused = true)]
async fn disconnect_fails_calls_and_loses_live_events() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(1).by("Anna"));
    next_new(&client).await;

    world.disconnect();
    assert!(!world.is_connected());
    assert_eq!(
        client.send_message(chat, "x", Some(order_id), RandomId::fresh()).await,
        Err(MessengerError::Disconnected)
    );
    assert_eq!(client.press_button(chat, order_id, b"x").await, Err(MessengerError::Disconnected));
    assert_eq!(client.history_since(chat, 0, 10).await, Err(MessengerError::Disconnected));
    assert_eq!(client.get_messages(chat, &[1]).await, Err(MessengerError::Disconnected));
    assert!(MessengerError::Disconnected.is_transient());

    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { client.next_event().await })
    };
    let lost = world.post_order(&order(2).by("Lost"));
    until_idle().await;
    assert!(!waiter.is_finished(), "next_event waits while disconnected");

    world.reconnect();
    let after = world.post_order(&order(3).by("After"));
    let event = within("the waiter to wake after the reconnect", waiter).await.unwrap().unwrap();
    match event {
        Event::NewMessage(m) => assert_eq!(m.id, after),
        other => panic!("unexpected {other:?}"),
    }
    let history = client.history_since(chat, order_id, 10).await.unwrap();
    assert_eq!(history.iter().map(|m| m.id).collect::<Vec<_>>(), [lost, after]);
}

#[tokio::test]
async fn flood_wait_fails_the_next_sends_without_sending() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    world.add_user(5, "Eve", None);
    world.flood_wait_next_sends(2, Duration::from_secs(7));
    for _ in 0..2 {
        let e = client.send_message(5, "hi", None, RandomId::fresh()).await.unwrap_err();
        assert_eq!(e, MessengerError::FloodWait(Duration::from_secs(7)));
        assert!(e.is_transient());
    }
    assert!(world.messages(5).is_empty());
    assert_eq!(client.send_message(5, "hi", None, RandomId::fresh()).await, Ok(1));
}

#[tokio::test]
async fn persistent_send_failures_per_chat() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    world.add_user(5, "Eve", None);
    world.fail_sends_to(5, MessengerError::PrivacyRestricted);
    assert_eq!(client.send_message(5, "hi", None, RandomId::fresh()).await, Err(MessengerError::PrivacyRestricted));
    world.clear_send_failure(5);
    assert_eq!(client.send_message(5, "hi", None, RandomId::fresh()).await, Ok(1));
}

#[tokio::test(start_paused = true)]
async fn button_never_comes_for_that_order_only() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let silent = world.post_order(&order(1).by("A"));
    let normal = world.post_order(&order(2).by("B"));
    next_new(&client).await;
    next_new(&client).await;
    world.button_never_comes(silent);

    client.send_message(chat, "answer", Some(silent), RandomId::fresh()).await.unwrap();
    assert_quiet(&client).await;
    client.send_message(chat, "answer", Some(normal), RandomId::fresh()).await.unwrap();
    let f = next_new(&client).await;
    assert_eq!(f.buttons.len(), 2);
    assert_eq!(world.messages(chat).len(), 5);
}

#[tokio::test]
async fn button_delay_posts_the_follow_up_later() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(1).by("A"));
    next_new(&client).await;
    world.button_delay(Duration::from_millis(200));
    let reply = client.send_message(chat, "answer", Some(order_id), RandomId::fresh()).await.unwrap();
    assert_eq!(world.messages(chat).len(), 2, "no follow-up yet");
    let f = next_new(&client).await;
    assert_eq!(f.reply_to, Some(reply));
    assert!(!f.buttons.is_empty());
}

#[tokio::test]
async fn russian_send_button_text() {
    let world = SimWorld::new(SimConfig { send_button_text: "Отправить".into(), ..SimConfig::default() });
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(1).by("Ольга"));
    next_new(&client).await;
    client.send_message(chat, "Готово", Some(order_id), RandomId::fresh()).await.unwrap();
    let f = next_new(&client).await;
    assert!(f.text.contains("Press «Отправить»"));
    assert_eq!(f.buttons[0][0].text, "Отправить");
    let data = f.buttons[0][0].data.clone();
    assert_eq!(client.press_button(chat, f.id, &data).await.unwrap().text.as_deref(), Some("Sent"));
    assert_eq!(next_edit(&client).await.text, "✅ Delivered to Ольга.");
    assert_eq!(world.deliveries()[0].text, "Готово");
}

#[tokio::test]
async fn replies_to_non_orders_are_not_understood() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let donation = world.post_bot_text("💸 New donation: €3.00", vec![]);
    next_new(&client).await;
    let reply = client.send_message(chat, "thanks", Some(donation), RandomId::fresh()).await.unwrap();
    let answer = next_new(&client).await;
    assert_eq!((answer.text.as_str(), answer.reply_to), (NOT_UNDERSTOOD_TEXT, Some(reply)));
    assert!(answer.buttons.is_empty());

    // A reply to the bot's own "not understood" is not an order either.
    client.send_message(chat, "?", Some(answer.id), RandomId::fresh()).await.unwrap();
    assert_eq!(next_new(&client).await.text, NOT_UNDERSTOOD_TEXT);
    assert!(world.deliveries().is_empty());

    // Replying to a message that does not exist is an error, like Telegram.
    assert_eq!(
        client.send_message(chat, "x", Some(999), RandomId::fresh()).await,
        Err(MessengerError::MessageNotFound(chat, 999))
    );
}

#[tokio::test]
async fn reply_to_a_delivered_order_is_already_completed() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(1).by("A"));
    next_new(&client).await;
    client.send_message(chat, "first", Some(order_id), RandomId::fresh()).await.unwrap();
    let f = next_new(&client).await;
    client.press_button(chat, f.id, &f.buttons[0][0].data).await.unwrap();
    next_edit(&client).await;

    client.send_message(chat, "second", Some(order_id), RandomId::fresh()).await.unwrap();
    let answer = next_new(&client).await;
    assert_eq!(answer.text, ALREADY_COMPLETED_TEXT);
    assert!(answer.buttons.is_empty());
    assert_eq!(world.deliveries().len(), 1);
}

#[tokio::test]
async fn second_reply_replaces_the_keyboard() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(1).by("A"));
    next_new(&client).await;
    client.send_message(chat, "first", Some(order_id), RandomId::fresh()).await.unwrap();
    let old = next_new(&client).await;
    client.send_message(chat, "second", Some(order_id), RandomId::fresh()).await.unwrap();

    let stripped = next_edit(&client).await;
    assert_eq!(stripped.id, old.id);
    assert!(stripped.buttons.is_empty());
    assert_eq!(stripped.text, old.text);
    let fresh = next_new(&client).await;
    assert_ne!(fresh.buttons[0][0].data, old.buttons[0][0].data);

    let stale = client.press_button(chat, old.id, &old.buttons[0][0].data).await;
    assert_eq!(stale, Err(MessengerError::ButtonNotFound(old.id)));
    client.press_button(chat, fresh.id, &fresh.buttons[0][0].data).await.unwrap();
    assert_eq!(world.deliveries().len(), 1);
    assert_eq!(world.deliveries()[0].text, "second");
}

#[tokio::test]
async fn unknown_callback_data_is_data_invalid() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(1).by("A"));
    next_new(&client).await;
    client.send_message(chat, "answer", Some(order_id), RandomId::fresh()).await.unwrap();
    let f = next_new(&client).await;

    let invalid = Err(MessengerError::DataInvalid);
    assert_eq!(client.press_button(chat, f.id, format!("send:{order_id}:0").as_bytes()).await, invalid);
    assert_eq!(client.press_button(chat, order_id, b"anything").await, invalid);
    assert_eq!(client.press_button(chat, 999, b"x").await, Err(MessengerError::MessageNotFound(chat, 999)));
    assert_eq!(client.press_button(-1, 1, b"x").await, Err(MessengerError::ChatNotFound(-1)));
    assert!(world.deliveries().is_empty());
}

#[tokio::test]
async fn edit_button_withdraws_the_answer() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let order_id = world.post_order(&order(1).by("A"));
    next_new(&client).await;
    client.send_message(chat, "typo", Some(order_id), RandomId::fresh()).await.unwrap();
    let f = next_new(&client).await;
    let answer = client.press_button(chat, f.id, &f.buttons[1][0].data).await.unwrap();
    assert_eq!(answer.text, None);
    assert!(next_edit(&client).await.buttons.is_empty());
    assert_eq!(client.press_button(chat, f.id, &f.buttons[0][0].data).await, Err(MessengerError::ButtonNotFound(f.id)));

    client.send_message(chat, "fixed", Some(order_id), RandomId::fresh()).await.unwrap();
    let g = next_new(&client).await;
    client.press_button(chat, g.id, &g.buttons[0][0].data).await.unwrap();
    assert_eq!(world.deliveries()[0].text, "fixed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_orders_are_cheap() {
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    let chat = world.tribute_chat();
    let started = std::time::Instant::now();
    for i in 0..2000 {
        let order_id = world.post_order(&order(10_000 + i).by("Bulk"));
        let reply = client.send_message(chat, "ok", Some(order_id), RandomId::fresh()).await.unwrap();
        let f = client.history_since(chat, reply, 1).await.unwrap().pop().unwrap();
        client.press_button(chat, f.id, &f.buttons[0][0].data).await.unwrap();
    }
    assert_eq!(world.deliveries().len(), 2000);
    // Generous even for debug builds; the point is "no sleeps, no O(n²) blow-up".
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

/// Telegram stores a message without its surrounding whitespace; a look for
/// a message we may have sent must still find it, pages back.
#[tokio::test]
async fn sent_text_is_trimmed_and_found_again_in_a_long_history() {
    use tribute_assistant::telegram::history::find_sent;
    let world = SimWorld::new(SimConfig::default());
    let client = world.connect();
    world.add_user(4242, "Аня", None);
    world.post_as_user(4242, 4242, "привет", None);
    let text = "Здравствуйте!\nПришлите ID аккаунта.\n";
    let id = client.send_message(4242, text, None, RandomId::fresh()).await.unwrap();
    let stored = world.messages(4242).into_iter().find(|m| m.id == id).unwrap();
    assert_eq!(stored.text, text.trim(), "Telegram trims");
    for i in 0..250 {
        world.post_as_user(4242, 4242, &format!("сообщение {i}"), None);
    }
    assert_eq!(find_sent(&client, 4242, text, 0, 10).await.unwrap(), Some(id));
    assert_eq!(find_sent(&client, 4242, text, id, 10).await.unwrap(), None, "only after `after`");
    assert_eq!(find_sent(&client, 4242, "другой текст", 0, 10).await.unwrap(), None);
}
