//! Fair under crowds: many senders at once must not crowd out a paying
//! customer's account ID or a moderator's command, must not make one agent
//! turn and one card each, and one customer must not flood the moderator
//! chat or open case after case for one order. Real SQLite files; the
//! daemon on the Telegram simulator with the clock paused where time
//! matters.

use std::num::NonZeroU32;
use std::time::Duration;

use sqlx::Row;
use tribute_assistant::contact::{AccountBudget, CASE_RELAY_EVERY};
use tribute_assistant::domain::{
    Currency, DialogueState, EscalationReason, Language, LinkStatus, Money, OrderRef, OrderState,
};
use tribute_assistant::runtime::clock::now_ms;
use tribute_assistant::store::{
    CardBody, CardSubject, Escalation, InboxKind, MessageKind, NewOrder, Recorded, Store, Transition,
};
use tribute_assistant::telegram::{Message, MessengerError};
use tribute_testbed::sandbox::SandboxOptions;

use crate::support::app::TestApp;
use crate::support::sandbox::{order_of, wait_cards_posted, wait_inbox_handled};
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::{eventually, pause_time};

const TRIBUTE: i64 = 93372553;
const MODERATORS: i64 = -100777;

fn message(chat: i64, sender: i64, id: i32, text: &str) -> Message {
    Message {
        chat_id: chat,
        id,
        sender_id: Some(sender),
        outgoing: false,
        sender_is_bot: false,
        date: chrono::Utc::now().timestamp(),
        text: text.into(),
        entities: vec![],
        reply_to: None,
        buttons: vec![],
    }
}

/// An order of `customer` with no account ID, stored from Tribute message `msg`.
async fn order_without_id(store: &Store, customer: i64, msg: i32) -> i64 {
    let tribute = Message { sender_is_bot: true, ..message(TRIBUTE, TRIBUTE, msg, "🆕 Custom Product Order") };
    let new = NewOrder {
        order_ref: OrderRef::for_message(TRIBUTE, msg),
        customer_name: "Иван".into(),
        customer_id: Some(customer),
        customer_username: None,
        product: "100 Diamonds".into(),
        price: Money::new(500, Currency::Eur).unwrap(),
        details: "—".into(),
        account_candidates: vec![],
    };
    match store.record_tribute_message(&tribute, MessageKind::Order, None, Some(&new), None).await.unwrap() {
        Recorded::NewOrder(id) => id,
        other => panic!("{other:?}"),
    }
}

async fn store_in(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("db.sqlite")).await.unwrap()
}

/// What `waiting_inbound` hands out next, as (kind, sender, text).
async fn next_batch(store: &Store) -> Vec<(InboxKind, i64, String)> {
    let batch = store.waiting_inbound(32).await.unwrap();
    for (_, m) in &batch {
        store.mark_inbound_handled(m.chat_id, m.id).await.unwrap();
    }
    batch.into_iter().map(|(k, m)| (k, m.sender_id.unwrap(), m.text)).collect()
}

#[tokio::test]
async fn a_moderators_retry_and_a_paying_customers_id_are_taken_before_100_waiting_stranger_questions() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    // Customer 7's order waits for them; customer 8 was asked for an ID
    // (their dialogue says so, whatever the order says).
    let order = order_without_id(&store, 7, 1).await;
    let note = "no account ID; asking the customer";
    store.hand_to_customer(order, OrderState::Received, EscalationReason::MissingAccount, note).await.unwrap();
    let asked = store.open_conversation(8, "Анна", Language::Ru, 0).await.unwrap();
    let state = DialogueState::AwaitingAccount { asked_at: 0, reminded: false };
    store.set_dialogue_state(asked.id, &state, 0).await.unwrap();

    for stranger in 1000..1100 {
        store
            .enqueue_inbound(InboxKind::Customer, &message(stranger, stranger, 1, "а как это работает?"), false)
            .await
            .unwrap();
    }
    // One stranger writes twice: still one turn at a time.
    store.enqueue_inbound(InboxKind::Customer, &message(1000, 1000, 2, "алло?"), false).await.unwrap();
    store.enqueue_inbound(InboxKind::Customer, &message(7, 7, 5, "мой ID 123456"), false).await.unwrap();
    store.enqueue_inbound(InboxKind::Customer, &message(8, 8, 3, "ID 654321"), false).await.unwrap();
    store.enqueue_inbound(InboxKind::Moderator, &message(MODERATORS, 42, 9, "/retry"), false).await.unwrap();

    assert_eq!(next_batch(&store).await, vec![(InboxKind::Moderator, 42, "/retry".to_owned())], "moderators first");
    let paying = next_batch(&store).await;
    let mut senders: Vec<i64> = paying.iter().map(|(_, s, _)| *s).collect();
    senders.sort();
    assert_eq!(senders, vec![7, 8], "then the customers an order waits for, alone: {paying:?}");
    // Then the questions, one per batch: the caller looks again after each.
    let mut strangers = Vec::new();
    loop {
        let batch = next_batch(&store).await;
        if batch.is_empty() {
            break;
        }
        assert_eq!(batch.len(), 1, "{batch:?}");
        strangers.push(batch[0].1);
        // A moderator writing meanwhile comes next, before the other 99.
        if strangers.len() == 1 {
            store.enqueue_inbound(InboxKind::Moderator, &message(MODERATORS, 42, 10, "/cases"), false).await.unwrap();
            assert_eq!(next_batch(&store).await[0].2, "/cases");
        }
    }
    assert_eq!(strangers.len(), 101, "nothing lost");
    assert_eq!(strangers.iter().rposition(|s| *s == 1000), Some(100), "a second message waits for everyone's first");
}

#[tokio::test]
async fn the_store_refuses_a_second_open_case_for_one_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let order = order_without_id(&store, 7, 1).await;
    let mut t = Transition::to(OrderState::Escalated, "no account ID");
    t.escalation = Some(Escalation::order(order, EscalationReason::MissingAccount, ""));
    store.transition(order, OrderState::Received, t).await.unwrap();
    let case = store.open_case_for_order(order).await.unwrap().unwrap();

    // Straight into the table: refused by the index.
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("db.sqlite").display())).await.unwrap();
    let second = sqlx::query(
        "INSERT INTO cases (reason, order_id, status, opened_at) VALUES ('telegram_refused', ?, 'open', 0)",
    )
    .bind(order)
    .execute(&pool)
    .await;
    let err = second.expect_err("a second open case for one order");
    assert!(err.to_string().contains("UNIQUE"), "{err}");

    // Through the store: a second escalation joins the open case as a follow-up rendered like a card.
    let again =
        store.open_case(&Escalation::order(order, EscalationReason::TelegramRefused, "the reply")).await.unwrap();
    assert_eq!(again, case.id);
    assert_eq!(store.all_cases().await.unwrap().len(), 1);
    let rows = store.pending_cards().await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows[1].is_update() && rows[1].case_id == Some(case.id));
    assert!(
        matches!(&rows[1].body, CardBody::Escalation(e) if e.subject == CardSubject::Order(order) && e.detail == "the reply"),
        "{:?}",
        rows[1].body
    );

    // Once closed, the order may have a case again.
    store.close_case(case.id, "done", "closed").await.unwrap();
    let next = store.open_case(&Escalation::order(order, EscalationReason::TelegramRefused, "")).await.unwrap();
    assert_ne!(next, case.id);
    pool.close().await;
}

/// Waits until `n` customer messages are stored and handled, and every
/// card and follow-up due now is posted (coalesced ones wait for later).
async fn received(app: &TestApp, n: i64) {
    eventually(&format!("{n} customer messages stored"), || async {
        (app.store().customer_message_counts().await.unwrap().0 >= n).then_some(())
    })
    .await;
    eventually("every received message handled", || async {
        app.store().waiting_inbound(1).await.unwrap().is_empty().then_some(())
    })
    .await;
    posted_what_is_due(app).await;
}

async fn posted_what_is_due(app: &TestApp) {
    eventually("every card due now posted", || async {
        app.store().due_cards(now_ms()).await.unwrap().is_empty().then_some(())
    })
    .await;
}

/// An open case whose customer we cannot write to (privacy settings): the
/// card is posted at once, and their dialogue is with the moderator.
async fn customer_with_open_case(app: &TestApp, customer: i64) {
    app.world.add_user(customer, "Олег", None);
    app.world.fail_sends_to(customer, MessengerError::PrivacyRestricted);
    app.post_order(&order(customer).by("Олег").details("ID потом пришлю"));
    app.wait_card("Case C1").await;
    wait_cards_posted(app).await;
    eventually("the dialogue with the moderator", || async {
        let conv = app.store().conversation_for_customer(customer).await.unwrap()?;
        matches!(conv.state, DialogueState::WithModerator { .. }).then_some(())
    })
    .await;
}

/// Our posts relaying what the customer wrote to a case.
fn relays(app: &TestApp) -> Vec<String> {
    app.world
        .messages(app.moderator_chat)
        .into_iter()
        .filter(|m| m.text.contains("Олег wrote:"))
        .map(|m| m.text)
        .collect()
}

#[tokio::test]
async fn a_customers_messages_to_an_open_case_reach_the_moderators_coalesced_at_a_bounded_rate() {
    let app = TestApp::spawn().await;
    customer_with_open_case(&app, 701).await;

    let clock = pause_time().await;
    for i in 1..=10 {
        app.customer_says(701, &format!("сообщение номер {i}"));
    }
    received(&app, 10).await;
    let first = relays(&app);
    assert_eq!(first.len(), 1, "the first at once, the rest wait: {first:#?}");
    assert_no_failed_messages(&app).await;
    let talk = app.store().conversation_for_customer(701).await.unwrap().unwrap();
    let stored = app.store().conversation_messages(talk.id).await.unwrap();
    assert_eq!(stored.iter().filter(|m| m.text.starts_with("сообщение номер")).count(), 10, "all stored at once");

    app.advance(CASE_RELAY_EVERY + Duration::from_secs(1)).await;
    posted_what_is_due(&app).await;
    let all = relays(&app);
    assert_eq!(all.len(), 2, "one more post for the other nine: {all:#?}");
    let messages = |post: &str| post.split_once('\n').unwrap().1.split("\n\n").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(messages(&all[0]), vec!["сообщение номер 1".to_owned()]);
    let rest: Vec<String> = (2..=10).map(|i| format!("сообщение номер {i}")).collect();
    assert_eq!(messages(&all[1]), rest, "in order, each once");
    clock.resume();
    app.shutdown().await;
}

/// No inbox message failed (e.g. a write refused while another connection wrote).
async fn assert_no_failed_messages(app: &TestApp) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.db_path.display())).await.unwrap();
    let failed: Vec<(i64, String)> =
        sqlx::query_as("SELECT message_id, error FROM inbox WHERE error IS NOT NULL").fetch_all(&pool).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    pool.close().await;
}

/// What our account wrote to the customer, once nothing for them waits to be sent.
async fn all_sent_to(app: &TestApp, customer: i64) -> Vec<Message> {
    eventually(&format!("nothing waiting to be sent to customer {customer}"), || async {
        (app.store().pending_customer_messages(customer).await.unwrap() == 0).then_some(())
    })
    .await;
    app.world.messages(customer).into_iter().filter(|m| m.outgoing).collect()
}

#[tokio::test]
async fn three_late_wrong_ids_go_to_the_one_case_of_their_order_and_count_as_strikes() {
    let app = TestApp::spawn().await;
    let msg = app.post_order(&order(604).by("Мария").details("жду"));
    eventually("asked for the ID", || async { (all_sent_to(&app, 604).await.len() == 1).then_some(()) }).await;
    // Silent past the reminder and the day: the order goes to a moderator.
    let clock = pause_time().await;
    app.advance(Duration::from_secs(61 * 60)).await;
    eventually("reminded", || async { (all_sent_to(&app, 604).await.len() == 2).then_some(()) }).await;
    app.advance(Duration::from_secs(23 * 3600)).await;
    let o = app.wait_state(msg, OrderState::Escalated).await;
    assert_eq!(o.escalation_reason.map(|r| r.as_str()), Some("customer_silent"));
    app.wait_card("Case C1").await;
    clock.resume();

    // Three late IDs, each refused: each one goes back to C1 and counts.
    for (n, id) in ["111111", "222222", "333333"].into_iter().enumerate() {
        app.customer_says(604, id);
        let refused = app.wait_card(&format!("refused account ID {id}")).await;
        assert!(refused.text.starts_with("❌ C1:") && refused.text.contains(&format!("{} of 3 refused", n + 1)));
        eventually("the order back with its case", || async {
            (order_of(&app, msg).await.state == OrderState::Escalated).then_some(())
        })
        .await;
    }
    app.wait_card("the customer's IDs are no longer taken").await;
    assert_eq!(app.backend.stats().requests, 3, "one backend call per ID");

    // A fourth is not taken: the moderator reads it on the case.
    app.customer_says(604, "444444");
    let relayed = app.wait_card("444444").await;
    assert!(relayed.text.starts_with("💬 C1 · Мария wrote:"), "{}", relayed.text);
    assert!(relayed.text.contains("not activated: the backend refused 3 IDs"), "{}", relayed.text);
    wait_inbox_handled(&app).await;
    assert_eq!(app.backend.stats().requests, 3, "no fourth activation call");
    assert_eq!(app.backend.stats().activations, 0);

    let cases = app.store().all_cases().await.unwrap();
    assert_eq!(cases.len(), 1, "one case for the order, never C2, C3, C4: {cases:#?}");
    let o = order_of(&app, msg).await;
    assert_eq!(o.state, OrderState::Escalated);
    let link = app.store().order_link(o.id).await.unwrap().unwrap();
    assert_eq!((link.rejections, link.status), (3, LinkStatus::Moderator));
    let conv = app.store().conversation_for_customer(604).await.unwrap().unwrap();
    assert!(
        matches!(conv.state, DialogueState::WithModerator { case_id, .. } if case_id == cases[0].id),
        "{:?}",
        conv.state
    );
    let templates: Vec<Option<String>> = app
        .store()
        .conversation_messages(conv.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == tribute_assistant::domain::Direction::Out)
        .map(|m| m.template)
        .collect();
    let id_rejected = Some("id_rejected".to_owned());
    let thrice = Some("id_rejected_thrice".to_owned());
    assert_eq!(
        templates,
        vec![Some("ask_account".to_owned()), Some("reminder".to_owned()), id_rejected.clone(), id_rejected, thrice],
        "asked for another ID after the first two refusals only; after the third, told a person takes over"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_crowd_of_100_senders_is_queued_and_released_oldest_first_behind_one_card_with_nothing_lost() {
    let mut opts = SandboxOptions::default();
    let n = |v| NonZeroU32::new(v).unwrap();
    opts.contact.as_mut().unwrap().account_budget = AccountBudget {
        agent_turns_per_minute: n(10),
        agent_turns_per_hour: n(1000),
        question_cases_per_minute: n(10),
        question_cases_per_hour: n(1000),
    };
    let mut app = TestApp::spawn_with(opts).await;
    let crowd = 2000..2100;
    for c in crowd.clone() {
        app.world.add_user(c, &format!("Гость {c}"), None);
    }
    let clock = pause_time().await;
    for c in crowd.clone() {
        app.world.post_as_user(c, c, "Здравствуйте! Как получить алмазы?", None);
    }
    received(&app, 100).await;
    assert_eq!(app.store().questions_waiting().await.unwrap(), 90, "ten a minute go on at once, the rest wait");
    let bursts = |app: &TestApp| -> Vec<String> {
        app.world
            .messages(app.moderator_chat)
            .into_iter()
            .filter(|m| m.text.starts_with("⏳ Case"))
            .map(|m| m.text)
            .collect()
    };
    let card = bursts(&app);
    assert_eq!(card.len(), 1, "{card:#?}");
    assert!(
        card[0].contains("questions are queued") && card[0].contains("10 new question cases a minute"),
        "{}",
        card[0]
    );

    // Time passes; halfway, a restart: the queue is in the store.
    let mut restarted = false;
    for _ in 0..600 {
        let waiting = app.store().questions_waiting().await.unwrap();
        if waiting == 0 && app.store().open_queue_case().await.unwrap().is_none() {
            break;
        }
        if waiting < 45 && !restarted {
            app.stop().await;
            app.start().await;
            restarted = true;
        }
        app.advance(Duration::from_secs(7)).await;
    }
    assert!(restarted);
    posted_what_is_due(&app).await;
    assert_eq!(app.store().questions_waiting().await.unwrap(), 0);
    assert_eq!(bursts(&app).len(), 1, "one card for the whole burst");
    assert_no_failed_messages(&app).await;
    let chat: Vec<String> = app.world.messages(app.moderator_chat).into_iter().map(|m| m.text).collect();
    let closed: Vec<&String> =
        chat.iter().filter(|t| t.starts_with("☑️ C") && t.contains("the queue is empty")).collect();
    assert_eq!(closed.len(), 1, "{closed:#?}");
    assert!(closed[0].contains("90 senders"), "{}", closed[0]);
    // How it went, every five minutes at most: the figures as they were then.
    let summaries: Vec<&String> = chat.iter().filter(|t| t.starts_with("⏳ C") && !t.starts_with("⏳ Case")).collect();
    assert!(!summaries.is_empty() && summaries.len() <= 3, "{summaries:#?}");
    assert!(!summaries[0].contains("90 still waiting"), "{}", summaries[0]);

    // Nothing lost: every sender has exactly one question case, and the
    // queue was released in the order it was filled.
    let cases = app.store().all_cases().await.unwrap();
    let questions: Vec<_> = cases.iter().filter(|c| c.reason.as_str() == "customer_question").collect();
    assert_eq!(questions.len(), 100);
    let mut conversations: Vec<i64> = questions.iter().map(|c| c.conversation_id.unwrap()).collect();
    conversations.dedup();
    assert_eq!(conversations.len(), 100);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.db_path.display())).await.unwrap();
    let rows = sqlx::query(
        "SELECT q.released_at, q.error, c.id AS case_id FROM queued_questions q
           JOIN cases c ON c.conversation_id = q.conversation_id AND c.reason = 'customer_question'
         ORDER BY q.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 90);
    let case_ids: Vec<i64> = rows.iter().map(|r| r.get("case_id")).collect();
    assert!(case_ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {case_ids:?}");
    assert!(rows
        .iter()
        .all(|r| r.get::<Option<i64>, _>("released_at").is_some() && r.get::<Option<String>, _>("error").is_none()));
    pool.close().await;
    clock.resume();
    app.shutdown().await;
}

/// A database from before migration 0016 may hold several open cases for
/// one order (each refused late ID opened one): the newest stays open, the
/// others are closed with a follow-up saying where the order is, and the
/// outbox keeps every row through its rebuild.
#[tokio::test]
async fn duplicate_open_cases_of_older_databases_are_closed_into_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let before = dir.path().join("migrations");
    std::fs::create_dir(&before).unwrap();
    for entry in std::fs::read_dir(crate::support::repo().join("migrations")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().as_ref() < "0016" {
            std::fs::copy(entry.path(), before.join(entry.file_name())).unwrap();
        }
    }
    // The order's Tribute message is left out (foreign keys off while setting up).
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true).foreign_keys(false);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(before.as_path()).await.unwrap().run(&pool).await.unwrap();
    for sql in [
        "INSERT INTO orders (id, order_ref, chat_id, message_id, customer_name, product, amount_minor, currency,
            details, account_candidates, state, created_at, updated_at)
         VALUES (7, 'TA-1-7', 1, 7, 'Мария', '100 Diamonds', 500, 'EUR', '—', '[]', 'escalated', 0, 0)",
        "INSERT INTO cases (id, short_id, reason, order_id, status, opened_at) VALUES
            (1, 'C1', 'customer_silent', 7, 'open', 0), (2, 'C2', 'account_rejected_thrice', 7, 'open', 1),
            (3, 'C3', 'account_rejected_thrice', 7, 'open', 2), (4, 'C4', 'customer_question', NULL, 'open', 3)",
        "INSERT INTO moderator_outbox (order_id, reason, subject, detail, created_at, case_id, kind, random_id,
            posted_at) VALUES (7, 'customer_silent', 'order', '', 0, 1, 'card', 42, 5)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = Store::open(&path).await.unwrap();
    let cases = store.all_cases().await.unwrap();
    let open: Vec<&str> = cases
        .iter()
        .filter(|c| c.status == tribute_assistant::store::CaseStatus::Open)
        .map(|c| c.short_id.as_str())
        .collect();
    assert_eq!(open, vec!["C3", "C4"], "the newest case of the order, and the question case");
    assert_eq!(cases[0].outcome.as_deref(), Some("closed as a duplicate of C3"));
    let card = store.card_of_case(1).await.unwrap().unwrap();
    assert_eq!(
        (card.random_id, card.body.clone()),
        (42, CardBody::Escalation(Escalation::order(7, EscalationReason::CustomerSilent, "")))
    );
    let follow_ups: Vec<String> = store
        .pending_cards()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.body {
            CardBody::Text(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(
        follow_ups,
        vec!["☑️ C1: closed as a duplicate; C3 has this order.", "☑️ C2: closed as a duplicate; C3 has this order."]
    );
}
