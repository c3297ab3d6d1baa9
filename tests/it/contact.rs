//! Customer contact end to end: the daemon on the Telegram simulator, the
//! reference backend on 127.0.0.1:0 and a SQLite file per test. Customers
//! are simulated users writing into their private chat with our account.

use std::time::Duration;

use tribute_assistant::domain::{Author, DialogueState, Direction, OrderState};
use tribute_assistant::telegram::{Message, MessengerError};
use tribute_testbed::sandbox::SandboxOptions;

use crate::support::app::TestApp;
use crate::support::sandbox::order_of;
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::{eventually, pause_time};

/// What our account wrote to the customer, once nothing for them waits to
/// be sent any more (a message is marked sent a moment after Telegram took
/// it): the final count of what was sent so far.
async fn all_sent_to(app: &TestApp, customer: i64) -> Vec<Message> {
    eventually(&format!("nothing waiting to be sent to customer {customer}"), || async {
        (app.store().pending_customer_messages(customer).await.unwrap() == 0).then_some(())
    })
    .await;
    app.sent_to(customer)
}

/// The customer's conversation as stored, oldest first, once it holds `n`
/// messages (our message is stored right after Telegram took it).
async fn stored_talk(app: &TestApp, customer: i64, n: usize) -> Vec<tribute_assistant::store::ConversationMessage> {
    eventually(&format!("{n} stored message(s) with customer {customer}"), || async {
        let conv = app.store().conversation_for_customer(customer).await.unwrap()?;
        let talk = app.store().conversation_messages(conv.id).await.unwrap();
        (talk.len() >= n).then_some(talk)
    })
    .await
}

/// Messages in the moderator chat that are case cards.
async fn wait_cards(app: &TestApp, n: usize) -> Vec<Message> {
    eventually(&format!("{n} case card(s)"), || async {
        let cards: Vec<Message> =
            app.world.messages(app.moderator_chat).into_iter().filter(|m| m.text.contains("Case C")).collect();
        (cards.len() >= n).then_some(cards)
    })
    .await
}

#[tokio::test]
async fn missing_id_the_customer_is_asked_answers_and_the_order_completes_once() {
    let app = TestApp::spawn().await;
    let msg = app.post_order(&order(601).details("Спасибо, жду алмазы!"));

    let asked = app.wait_sent(601, 1).await;
    assert!(asked[0].text.contains("ID"), "{}", asked[0].text);
    assert!(asked[0].text.contains("100 Diamonds"), "says what was paid: {}", asked[0].text);
    assert!(asked[0].text.contains("Здравствуйте"), "Russian for a Russian customer: {}", asked[0].text);
    assert_eq!(order_of(&app, msg).await.state, OrderState::NeedsCustomer);
    assert_eq!(app.backend.stats().requests, 0, "nothing to activate before the customer answers");

    app.customer_says(601, "вот мой ID: 123456");
    let done = app.wait_state(msg, OrderState::Confirmed).await;
    let thanks = app.wait_sent(601, 2).await;
    assert!(thanks[1].text.contains("123456") && thanks[1].text.contains("100 Diamonds"), "{}", thanks[1].text);

    assert_eq!(app.backend.activations_for(done.order_ref.as_str()), 1, "one activation only");
    assert_eq!(app.world.send_presses(msg), 1);
    let deliveries = app.world.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].text.contains("123456"), "the Tribute reply names the account: {}", deliveries[0].text);
    assert!(app.world.messages(app.moderator_chat).is_empty(), "no person needed");

    // Every message in and out is stored with direction and author.
    let talk = stored_talk(&app, 601, 3).await;
    let shape: Vec<(Direction, Author, Option<&str>)> =
        talk.iter().map(|m| (m.direction, m.author, m.template.as_deref())).collect();
    assert_eq!(
        shape,
        vec![
            (Direction::Out, Author::Assistant, Some("ask_account")),
            (Direction::In, Author::Customer, None),
            (Direction::Out, Author::Assistant, Some("thanks")),
        ]
    );
    assert_eq!(talk[0].order_ids, vec![done.id]);
    let (after_contact, by_moderator) = app.store().completion_counts().await.unwrap();
    assert_eq!((after_contact, by_moderator), (1, 0));
    app.shutdown().await;
}

#[tokio::test]
async fn an_english_customer_with_two_ids_is_asked_again() {
    let app = TestApp::spawn().await;
    let msg = app.post_order(&order(602).by("Anna Smith").details("thanks, waiting"));
    let asked = app.wait_sent(602, 1).await;
    assert!(asked[0].text.starts_with("Hello Anna Smith"), "English for a clearly English customer: {}", asked[0].text);

    app.customer_says(602, "it is 123456 or maybe 654321");
    let again = app.wait_sent(602, 2).await;
    assert!(again[1].text.contains("123456") && again[1].text.contains("654321"), "{}", again[1].text);
    assert_eq!(order_of(&app, msg).await.state, OrderState::NeedsCustomer);
    assert_eq!(app.backend.stats().requests, 0, "an ambiguous answer is not guessed");

    app.customer_says(602, "123456");
    app.wait_state(msg, OrderState::Confirmed).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_refused_id_is_asked_again_and_the_third_refusal_goes_to_the_moderator() {
    let app = TestApp::spawn().await;
    let msg = app.post_order(&order(603).by("Пётр").details("оплатил"));
    app.wait_sent(603, 1).await;
    for (i, id) in ["111111", "222222"].into_iter().enumerate() {
        app.customer_says(603, id);
        let sent = app.wait_sent(603, i + 2).await;
        assert!(sent[i + 1].text.contains(id), "the refusal names the ID: {}", sent[i + 1].text);
        assert_eq!(order_of(&app, msg).await.state, OrderState::NeedsCustomer);
    }
    app.customer_says(603, "333333");
    let o = app.wait_state(msg, OrderState::Escalated).await;
    assert_eq!(o.escalation_reason.map(|r| r.as_str()), Some("account_rejected_thrice"));
    let cards = wait_cards(&app, 1).await;
    assert!(cards[0].text.contains("333333"), "the card shows the conversation: {}", cards[0].text);
    assert_eq!(app.backend.stats().requests, 3, "one backend call per ID, no loop");
    assert_eq!(app.backend.stats().activations, 0);
    let sent = all_sent_to(&app, 603).await;
    assert_eq!(sent.len(), 4, "no third 'try again' after the last refusal, one notice: {sent:#?}");
    let last = &sent[3].text;
    assert!(last.contains("333333") && last.contains("сотрудник"), "a person takes over: {last}");
    assert!(!last.contains("ещё раз"), "not asked for the ID again: {last}");
    let talk = stored_talk(&app, 603, 7).await;
    assert_eq!(talk.last().unwrap().template.as_deref(), Some("id_rejected_thrice"));
    app.shutdown().await;
}

/// A question that waits in the queue (the account's budget of new cases
/// is used up) was passed to nobody yet: no promise now, and the customer
/// is told once it reaches a person.
#[tokio::test]
async fn a_queued_answer_without_an_id_is_acknowledged_when_it_reaches_a_case() {
    use std::num::NonZeroU32;
    use tribute_assistant::contact::AccountBudget;

    let mut opts = SandboxOptions::default();
    let one = NonZeroU32::new(1).unwrap();
    opts.contact.as_mut().unwrap().account_budget = AccountBudget {
        question_cases_per_minute: one,
        question_cases_per_hour: NonZeroU32::new(60).unwrap(),
        ..Default::default()
    };
    let app = TestApp::spawn_with(opts).await;
    // A stranger's question takes this minute's one new case.
    app.world.add_user(620, "Гость", None);
    app.customer_says(620, "а как это работает?");
    app.wait_sent(620, 1).await;
    assert_eq!(app.store().all_cases().await.unwrap().len(), 1);

    app.post_order(&order(621).by("Игорь").details("оплатил"));
    app.wait_sent(621, 1).await;
    app.customer_says(621, "а когда придут алмазы?");
    let sent = app.wait_sent(621, 2).await;
    assert!(!sent[1].text.contains("передал"), "the question only waits: {}", sent[1].text);
    assert_eq!(app.store().questions_waiting().await.unwrap(), 1);

    let clock = pause_time().await;
    app.advance(Duration::from_secs(61)).await;
    let sent = app.wait_sent(621, 3).await;
    clock.resume();
    assert!(sent[2].text.contains("передал его команде"), "told once a person has it: {}", sent[2].text);
    let talk = stored_talk(&app, 621, 4).await;
    assert_eq!(talk[3].template.as_deref(), Some("question_forwarded"));
    assert!(app.store().open_question_case(talk[0].conversation_id).await.unwrap().is_some());
    app.shutdown().await;
}

/// "I passed it to the team" only when a person has the message: an
/// answer without an ID that the agent answered was passed to nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_an_id_says_the_team_has_it_only_when_a_case_does() {
    // The agent answers the question from the FAQ: no case, no promise.
    let app = TestApp::spawn_with(SandboxOptions { agent: true, ..Default::default() }).await;
    let msg = app.post_order(&order(611).by("Света").details("оплатила"));
    app.wait_sent(611, 1).await;
    app.customer_says(611, "Где мне найти ID аккаунта для оплаты?");
    let sent = app.wait_sent(611, 3).await;
    let talk = stored_talk(&app, 611, 4).await;
    let templates: Vec<Option<&str>> = talk.iter().map(|m| m.template.as_deref()).collect();
    assert_eq!(templates, vec![Some("ask_account"), None, None, Some("ask_again_none")], "{talk:#?}");
    assert_eq!(talk[2].author, Author::Agent, "the agent answered: {talk:#?}");
    assert!(!sent[2].text.contains("передал"), "nobody has the question: {}", sent[2].text);
    assert!(app.store().open_question_case(talk[0].conversation_id).await.unwrap().is_none());
    assert_eq!(order_of(&app, msg).await.state, OrderState::NeedsCustomer);
    app.shutdown().await;

    // Without an agent the question goes to a case, and the customer is told so.
    let app = TestApp::spawn().await;
    app.post_order(&order(612).by("Игорь").details("оплатил"));
    app.wait_sent(612, 1).await;
    app.customer_says(612, "а когда придут алмазы?");
    let sent = app.wait_sent(612, 2).await;
    assert!(sent[1].text.contains("передал его команде"), "{}", sent[1].text);
    let talk = stored_talk(&app, 612, 3).await;
    assert_eq!(talk[2].template.as_deref(), Some("ask_again_none_forwarded"));
    assert!(app.store().open_question_case(talk[0].conversation_id).await.unwrap().is_some());
    app.shutdown().await;
}

#[tokio::test]
async fn a_silent_customer_is_reminded_after_an_hour_and_handed_over_after_a_day() {
    let app = TestApp::spawn().await;
    let msg = app.post_order(&order(604).by("Мария").details("жду"));
    app.wait_sent(604, 1).await;

    let clock = pause_time().await;
    // Half an hour, then past the hour: the reminder's stored time says
    // which of the two it came after.
    app.advance(Duration::from_secs(30 * 60)).await;
    app.advance(Duration::from_secs(31 * 60)).await;
    let sent = app.wait_sent(604, 2).await;
    assert!(sent[1].text.contains("напоминаем"), "{}", sent[1].text);
    let talk = stored_talk(&app, 604, 2).await;
    let (asked, reminded) = (&talk[0], &talk[1]);
    assert_eq!(reminded.template.as_deref(), Some("reminder"), "{talk:#?}");
    let waited = Duration::from_millis((reminded.at - asked.at) as u64);
    assert!(waited >= Duration::from_secs(3600), "no reminder before an hour: it came after {waited:?}");
    assert_eq!(order_of(&app, msg).await.state, OrderState::NeedsCustomer);
    assert!(app.world.messages(app.moderator_chat).is_empty());

    app.advance(Duration::from_secs(23 * 3600)).await;
    let o = app.wait_state(msg, OrderState::Escalated).await;
    assert_eq!(o.escalation_reason.map(|r| r.as_str()), Some("customer_silent"));
    let cards = wait_cards(&app, 1).await;
    assert!(cards[0].text.contains("did not answer"), "{}", cards[0].text);
    assert_eq!(all_sent_to(&app, 604).await.len(), 2, "one reminder only");
    clock.resume();
    app.shutdown().await;
}

#[tokio::test]
async fn a_privacy_restricted_customer_goes_to_the_moderator_at_once() {
    let app = TestApp::spawn().await;
    app.world.add_user(605, "Олег", None);
    app.world.fail_sends_to(605, MessengerError::PrivacyRestricted);
    let msg = app.post_order(&order(605).by("Олег").details("ID потом пришлю"));
    let o = app.wait_state(msg, OrderState::Escalated).await;
    assert_eq!(o.escalation_reason.map(|r| r.as_str()), Some("customer_unreachable"));
    let cards = wait_cards(&app, 1).await;
    let card = &cards[0].text;
    assert!(card.contains("PRIVACY_RESTRICTED"), "names the reason: {card}");
    assert!(card.contains("ID потом пришлю"), "raw details: {card}");
    assert!(card.contains("tg://user?id=605"), "profile link: {card}");
    assert!(card.contains("no account ID"), "and why we asked: {card}");
    let case = app.store().open_case_for_order(o.id).await.unwrap().expect("an open case");
    assert!(card.contains(&case.short_id), "{card}");
    app.shutdown().await;
}

#[tokio::test]
async fn restart_in_the_middle_of_a_dialogue_resumes_it() {
    let mut app = TestApp::spawn().await;
    app.backend.add_pending("777001", "100 Diamonds");
    let msg = app.post_order(&order(606).by("Kate").details("paid, thanks"));
    app.wait_sent(606, 1).await;
    app.stop().await;
    let conv = app.store().conversation_for_customer(606).await.unwrap().unwrap();
    assert!(matches!(conv.state, DialogueState::AwaitingAccount { .. }), "{:?}", conv.state);

    // The customer answers while we are down.
    app.customer_says(606, "777001");
    app.start().await;
    app.wait_state(msg, OrderState::Confirmed).await;
    let sent = app.wait_sent(606, 2).await;
    assert_eq!(sent.len(), 2, "not asked again after the restart: {sent:#?}");
    assert!(sent[1].text.contains("777001"), "{}", sent[1].text);
    assert_eq!(app.backend.stats().activations, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn ids_count_only_for_the_customers_own_orders_and_customer_text_is_never_a_command() {
    let app = TestApp::spawn().await;
    let msg = app.post_order(&order(607).by("Иван").details("без ID"));
    app.wait_sent(607, 1).await;

    // Someone else sends an ID and a "command": neither touches order 607.
    app.world.add_user(608, "Чужой", None);
    app.customer_says(608, "123456");
    app.customer_says(608, "/done");
    let cards = wait_cards(&app, 1).await;
    assert!(cards[0].text.contains("question"), "a stranger's message is a question: {}", cards[0].text);
    eventually("both messages on the question case", || async {
        let msgs = app.world.messages(app.moderator_chat);
        msgs.iter().any(|m| m.text.contains("/done")).then_some(())
    })
    .await;
    assert_eq!(order_of(&app, msg).await.state, OrderState::NeedsCustomer);
    assert_eq!(app.backend.stats().requests, 0);
    let open = app.store().open_cases().await.unwrap();
    assert_eq!(open.len(), 1, "\"/done\" from a customer closes nothing: {open:#?}");
    app.shutdown().await;
}

#[tokio::test]
async fn the_daily_message_cap_hands_the_order_to_the_moderator() {
    let mut opts = SandboxOptions::default();
    opts.contact.as_mut().unwrap().max_messages_per_day = 1;
    let app = TestApp::spawn_with(opts).await;
    let msg = app.post_order(&order(609).by("Лена").details("—"));
    app.wait_sent(609, 1).await;
    app.customer_says(609, "111111 222222");
    let o = app.wait_state(msg, OrderState::Escalated).await;
    assert_eq!(o.escalation_reason.map(|r| r.as_str()), Some("message_cap_reached"));
    assert_eq!(all_sent_to(&app, 609).await.len(), 1, "never more than the cap");
    app.shutdown().await;
}

/// The order's move to `needs_customer` writes a dialogue event in its
/// own commit and hints the contact task: on a clock that does not move,
/// the customer is still asked (a scan, or the slow re-check, would
/// never come).
#[tokio::test]
async fn the_customer_is_asked_as_the_order_is_handed_over_with_the_clock_standing_still() {
    let app = TestApp::spawn().await;
    let clock = pause_time().await;
    let msg = app.post_order(&order(641).details("оплатил, жду"));
    let asked = app.wait_sent(641, 1).await;
    clock.resume();
    assert!(asked[0].text.contains("ID"), "{}", asked[0].text);
    assert_eq!(order_of(&app, msg).await.state, OrderState::NeedsCustomer);
    app.shutdown().await;
}

/// The customer's ID completes the order while the dialogue waits for
/// it: the order's move tells the dialogue, which thanks the customer at
/// once, not at the contact task's one-minute re-check.
#[tokio::test]
async fn the_customer_is_thanked_as_soon_as_the_order_completes() {
    let app = TestApp::spawn().await;
    app.backend.add_pending("343434", "100 Diamonds");
    let msg = app.post_order(&order(643).details("жду алмазы"));
    app.wait_sent(643, 1).await;
    // The bot's Send button comes a second after our reply: the dialogue
    // looks at the order (validating the ID) before it completes.
    app.world.button_delay(Duration::from_secs(1));
    app.customer_says(643, "ID 343434");
    app.wait_state(msg, OrderState::Confirmed).await;
    let thanked = tokio::time::timeout(Duration::from_secs(20), async {
        while app.sent_to(643).len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(thanked.is_ok(), "no thanks within 20 s of the order's completion: {:?}", app.sent_to(643));
    assert!(app.sent_to(643)[1].text.contains("343434"));
    app.shutdown().await;
}

/// A moderator's ID completes an escalated order: its case closes from
/// the order's own event, on a clock that does not move.
#[tokio::test]
async fn a_case_closes_when_its_order_completes_with_the_clock_standing_still() {
    let app = TestApp::spawn().await;
    app.backend.add_pending("424242", "100 Diamonds");
    app.world.add_user(642, "Олег", None);
    app.world.fail_sends_to(642, MessengerError::PrivacyRestricted);
    let msg = app.post_order(&order(642).by("Олег").details("забыл ID"));
    app.wait_state(msg, OrderState::Escalated).await;
    let card = app.wait_card("Case C").await;

    let clock = pause_time().await;
    app.moderator_replies(&card, "424242");
    let o = app.wait_state(msg, OrderState::Confirmed).await;
    let case = eventually("the case closed", || async {
        let c = app.store().all_cases().await.unwrap().into_iter().find(|c| c.order_id == Some(o.id))?;
        (c.status == tribute_assistant::store::CaseStatus::Closed).then_some(c)
    })
    .await;
    clock.resume();
    assert!(case.outcome.unwrap().contains("424242"));
    app.shutdown().await;
}
