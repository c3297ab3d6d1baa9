//! The moderator desk posts every card, sized to Telegram, each on its own:
//! regression tests for the card of one long customer text that failed
//! forever (MESSAGE_TOO_LONG) and held back every later case.

use std::time::Duration;

use tribute_assistant::domain::OrderState;
use tribute_assistant::moderator::outbox_worker::post_due;
use tribute_assistant::moderator::sizing::{utf16_len, TELEGRAM_LIMIT};
use tribute_assistant::store::{CardBody, CardSubject, Escalation, Store};
use tribute_assistant::telegram::{Message, MessengerError};
use tribute_testbed::sim::{FaultLevel, FaultPlan, FaultRates, SimConfig, SimWorld};

use crate::support::app::TestApp;
use crate::support::sandbox::wait_cards_posted;
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::eventually;

/// Distinct words, so every part of the text can be found again.
fn long_text(words: usize) -> String {
    (0..words).map(|i| format!("слово{i:04}")).collect::<Vec<_>>().join(" ")
}

/// An order of a customer who cannot be written to (privacy settings):
/// its account problem goes to the moderator at once.
fn unreachable_order(app: &TestApp, customer: i64, name: &str, details: &str) -> i32 {
    app.world.add_user(customer, name, None);
    app.world.fail_sends_to(customer, MessengerError::PrivacyRestricted);
    app.post_order(&order(customer).by(name).details(details))
}

fn assert_all_fit(app: &TestApp) {
    for m in app.world.messages(app.moderator_chat) {
        assert!(utf16_len(&m.text) <= TELEGRAM_LIMIT, "message {} is {} units", m.id, utf16_len(&m.text));
    }
    assert_eq!(app.world.refused_sends().get("MESSAGE_TOO_LONG"), None, "{:?}", app.world.refused_sends());
}

#[tokio::test]
async fn a_long_customer_text_is_posted_cut_and_a_later_escalated_order_too() {
    let app = TestApp::spawn().await;
    // ~5000 characters of order details without an account ID: escalated.
    let details = long_text(550);
    assert!(details.chars().count() > 5000);
    let first = unreachable_order(&app, 901, "Иван Петров", &details);
    app.wait_state(first, OrderState::Escalated).await;
    let card = app.wait_card("order TA-").await;
    assert!(card.text.contains("/case C1 shows all]"), "the cut says where the rest is: {}", card.text);
    assert!(card.text.contains("слово0000"), "the beginning of the text is shown");
    assert!(card.text.contains("Reply to this message with:"), "what to do is kept: {}", card.text);
    // Rendered by the desk from the order: its facts, why, and the detail the caller gave.
    for fact in
        ["Product: 100 Diamonds", "Price: €5.00", "Account ID: — several: ", "Why: we cannot write to the customer ("]
    {
        assert!(card.text.contains(fact), "{fact:?} missing from {}", card.text);
    }

    // A later order with a problem: its card is posted too.
    let second = unreachable_order(&app, 902, "Олег", "забыл ID");
    app.wait_state(second, OrderState::Escalated).await;
    app.wait_card("Case C2").await;
    // Telegram has the card a moment before the store marks it posted.
    wait_cards_posted(&app).await;
    assert_all_fit(&app);
    assert!(app.store().parked_cards().await.unwrap().is_empty());
    // The card is stored typed, without text: the store keeps the raw order, `/case` shows all of it.
    let stored = app.store().all_cards().await.unwrap();
    match &stored[0].body {
        CardBody::Escalation(e) => assert!(matches!(e.subject, CardSubject::Order(_)) && !e.detail.is_empty(), "{e:?}"),
        other => panic!("stored as text: {other:?}"),
    }

    // `/case C1` shows every word, in pages within the limit.
    let mut bodies = String::new();
    let mut pages = None;
    let mut page = 1;
    loop {
        let cmd = if page == 1 { "/case C1".to_owned() } else { format!("/case C1 {page}") };
        let asked = app.moderator_says(&cmd);
        let shown = eventually(&format!("the answer to {cmd}"), || async {
            app.world.messages(app.moderator_chat).into_iter().find(|m| m.outgoing && m.reply_to == Some(asked))
        })
        .await;
        let header = format!("📄 C1 · page {page}/");
        assert!(shown.text.starts_with(&header), "{}", &shown.text[..80.min(shown.text.len())]);
        let n: usize = shown.text[header.len()..].split('\n').next().unwrap().parse().unwrap();
        assert_eq!(*pages.get_or_insert(n), n);
        let body = shown.text.split_once('\n').unwrap().1;
        let body = body.split("\n\n➡️ /case C1").next().unwrap();
        bodies.push_str(body);
        if page == n {
            break;
        }
        page += 1;
    }
    assert!(pages.unwrap() >= 2);
    assert_all_fit(&app);
    let flat = |s: &str| s.replace(['\n', ' '], "");
    assert!(flat(&bodies).contains(&flat(&details)), "every word of the case is on a page");
    assert!(bodies.contains("Status: open"));
    // A page past the end says how many there are.
    app.moderator_says("/case C1 99");
    app.wait_card(&format!("C1 has {} page(s)", pages.unwrap())).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_card_telegram_refuses_for_good_is_parked_and_the_next_one_is_posted() {
    let app = TestApp::spawn().await;
    // 150 hashtags: Telegram refuses the text (ENTITIES_TOO_LONG) however often it is sent.
    let tags = (0..150).map(|i| format!("#тег{i}")).collect::<Vec<_>>().join(" ");
    let first = unreachable_order(&app, 911, "Иван Петров", &tags);
    app.wait_state(first, OrderState::Escalated).await;
    let parked = eventually("the card parked", || async {
        let p = app.store().parked_cards().await.unwrap();
        (!p.is_empty()).then_some(p)
    })
    .await;
    assert!(parked[0].last_error.as_deref().unwrap().contains("ENTITIES_TOO_LONG"), "{parked:?}");
    // A notice stands in for it, and replies to the notice reach the case.
    let notice = app.wait_card("Telegram refused this case's card").await;
    assert!(notice.text.contains("/case C1"));
    // Telegram shows the notice a moment before the store records it as the case's message.
    let case = eventually("the notice recorded for its case", || async {
        app.store().case_for_message(app.moderator_chat, notice.id).await.unwrap()
    })
    .await;
    assert_eq!(case.short_id, "C1");

    let second = unreachable_order(&app, 912, "Олег", "забыл ID");
    app.wait_state(second, OrderState::Escalated).await;
    app.wait_card("🚨 Case C2").await;
    assert_eq!(app.store().parked_cards().await.unwrap().len(), 1);
    assert_eq!(app.world.refused_sends().get("ENTITIES_TOO_LONG"), Some(&1), "not retried");
    app.shutdown().await;
}

/// The desk on the simulator without the daemon: one world, one store.
async fn desk() -> (tempfile::TempDir, Store, SimWorld, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("desk.db")).await.unwrap();
    let world = SimWorld::new(SimConfig::default());
    let chat = world.create_group("Moderators");
    (dir, store, world, chat)
}

async fn question_case(store: &Store, customer: i64, why: &str) -> i64 {
    let conv = store.open_conversation(customer, "Иван", tribute_assistant::domain::Language::Ru, 0).await.unwrap();
    store.open_case(&Escalation::question(conv.id, &tribute_assistant::domain::Verdict::because(why))).await.unwrap()
}

#[tokio::test]
async fn a_card_whose_send_timed_out_after_delivery_is_not_posted_twice() {
    let (_dir, store, world, chat) = desk().await;
    let client = world.connect();
    let case = question_case(&store, 921, "posted once").await;
    // Telegram stores the message but the answer is lost.
    world.set_fault_plan(
        FaultPlan::new(7, FaultLevel::Hostile).with_rates(FaultRates { send_timeout: 1000, ..Default::default() }),
    );
    let r = post_due(&store, &client, chat).await.unwrap();
    assert_eq!((r.posted, r.retrying), (0, 1));
    let row = store.card_of_case(case).await.unwrap().unwrap();
    assert_eq!(row.attempts, 1);
    assert!(row.last_error.as_deref().unwrap().contains("timed out"));
    assert!(row.next_attempt_at > tribute_assistant::runtime::clock::now_ms(), "retried later, not at once");
    world.set_fault_plan(FaultPlan::none());
    // Due again: wait until the time the store gave it.
    let wait_ms = row.next_attempt_at - tribute_assistant::runtime::clock::now_ms() + 1;
    tokio::time::sleep(Duration::from_millis(wait_ms.max(0) as u64)).await;
    let r = post_due(&store, &client, chat).await.unwrap();
    assert_eq!(r.posted, 1);
    let ours: Vec<Message> = world.messages(chat).into_iter().filter(|m| m.outgoing).collect();
    assert_eq!(ours.len(), 1, "posted once: {ours:?}");
    assert_eq!(world.refused_sends().get("RANDOM_ID_DUPLICATE"), Some(&1), "the retry reused the random_id");
    let row = store.card_of_case(case).await.unwrap().unwrap();
    assert_eq!(row.posted_message_id, Some(ours[0].id), "found in the history and mapped");
    assert_eq!(store.case_for_message(chat, ours[0].id).await.unwrap().unwrap().id, case);
}

#[tokio::test]
async fn a_flood_wait_sets_the_due_time_and_holds_the_rest() {
    let (_dir, store, world, chat) = desk().await;
    let client = world.connect();
    let a = question_case(&store, 931, "a").await;
    let b = question_case(&store, 932, "b").await;
    world.flood_wait_next_sends(1, Duration::from_secs(120));
    let before = tribute_assistant::runtime::clock::now_ms();
    let r = post_due(&store, &client, chat).await.unwrap();
    assert_eq!((r.posted, r.retrying, r.deferred), (0, 1, 1));
    for case in [a, b] {
        let row = store.card_of_case(case).await.unwrap().unwrap();
        assert!(row.next_attempt_at >= before + 120_000, "case {case}: due {}", row.next_attempt_at - before);
    }
    let due = store.next_outbox_due().await.unwrap().unwrap();
    assert!(due >= before + 120_000);
    assert_eq!(post_due(&store, &client, chat).await.unwrap().posted, 0, "nothing is sent before it is due");
    assert!(world.messages(chat).iter().all(|m| !m.outgoing));
}

/// The desk's own answers (a `/learn` preview here) go through the outbox:
/// a flood wait delays them instead of losing them, they answer the
/// moderator's message, and the posted preview is the message a
/// `/learn yes` reply is matched to.
#[tokio::test]
async fn a_desk_answer_refused_for_now_is_posted_later_and_linked() {
    use tribute_assistant::store::{AnswerLink, NewLearnPreview};
    let (_dir, store, world, chat) = desk().await;
    let client = world.connect();
    let case = question_case(&store, 941, "can I pay by card").await;
    let conversation_id = store.case(case).await.unwrap().unwrap().conversation_id.unwrap();
    store.mark_card_posted(store.card_of_case(case).await.unwrap().unwrap().id, chat, 1).await.unwrap();
    let preview = store
        .add_learn_preview(&NewLearnPreview {
            conversation_id,
            case_id: Some(case),
            gap_turn_id: None,
            question: "Можно оплатить картой?".into(),
            answer: "Да, любой картой.".into(),
            language: Some("ru".into()),
            asked_by: 1,
        })
        .await
        .unwrap();
    world.add_user(1, "Модератор", None);
    let command = world.post_as_user(chat, 1, "/learn", None);
    let plain = store.enqueue_desk_answer(chat, command, "Usage: /learn …", AnswerLink::None).await.unwrap();
    let linked = store
        .enqueue_desk_answer(chat, command, "Preview: Можно оплатить картой?", AnswerLink::LearnPreview(preview))
        .await
        .unwrap();

    world.flood_wait_next_sends(1, Duration::from_secs(1));
    let r = post_due(&store, &client, chat).await.unwrap();
    assert_eq!((r.posted, r.retrying, r.deferred), (0, 1, 1), "the flood wait holds both answers");
    assert!(world.messages(chat).iter().all(|m| !m.outgoing), "nothing posted yet");
    // The refused row waits out the flood wait plus up to 1 s of jitter.
    let due = store.outbox_row(plain).await.unwrap().unwrap().next_attempt_at;
    tokio::time::sleep(Duration::from_millis((due - tribute_assistant::runtime::clock::now_ms() + 1).max(0) as u64))
        .await;
    let r = post_due(&store, &client, chat).await.unwrap();
    assert_eq!(r.posted, 2);

    let ours: Vec<Message> = world.messages(chat).into_iter().filter(|m| m.outgoing).collect();
    assert_eq!(ours.len(), 2, "each answer once: {ours:?}");
    assert!(ours.iter().all(|m| m.reply_to == Some(command)), "both answer the command: {ours:?}");
    let posted = store.outbox_row(linked).await.unwrap().unwrap().posted_message_id.unwrap();
    let found = store.learn_preview_for_message(chat, posted).await.unwrap().expect("the preview is mapped");
    assert_eq!(found.id, preview);
    assert!(store.outbox_row(plain).await.unwrap().unwrap().posted_message_id.is_some());
    assert!(store.case_for_message(chat, posted).await.unwrap().is_none(), "an answer is not a case card");
}
