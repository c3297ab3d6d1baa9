//! Customer contact end to end: the daemon on the Telegram simulator, the
//! reference backend on 127.0.0.1:0 and a SQLite file per test. Customers
//! are simulated users writing into their private chat with our account.

use std::time::Duration;

use tribute_assistant::domain::{Author, DialogueState, Direction, OrderState};
use tribute_assistant::telegram::{Message, MessengerError};
use tribute_assistant::testbed::sandbox::{Sandbox, SandboxOptions};

use crate::support::sandbox::{order_of, sandbox, sandbox_with, wait_state};
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::{advance, eventually, pause_time};

/// What our account wrote to the customer, oldest first.
fn sent_to(sb: &Sandbox, customer: i64) -> Vec<Message> {
    sb.world.messages(customer).into_iter().filter(|m| m.outgoing).collect()
}

async fn wait_sent(sb: &Sandbox, customer: i64, n: usize) -> Vec<Message> {
    eventually(&format!("{n} message(s) to customer {customer}"), || async {
        let sent = sent_to(sb, customer);
        (sent.len() >= n).then_some(sent)
    })
    .await
}

/// What our account wrote to the customer, once nothing for them waits to
/// be sent any more (a message is marked sent a moment after Telegram took
/// it): the final count of what was sent so far.
async fn all_sent_to(sb: &Sandbox, customer: i64) -> Vec<Message> {
    eventually(&format!("nothing waiting to be sent to customer {customer}"), || async {
        (sb.store().pending_customer_messages(customer).await.unwrap() == 0).then_some(())
    })
    .await;
    sent_to(sb, customer)
}

/// The customer's conversation as stored, oldest first, once it holds `n`
/// messages (our message is stored right after Telegram took it).
async fn stored_talk(sb: &Sandbox, customer: i64, n: usize) -> Vec<tribute_assistant::store::ConversationMessage> {
    eventually(&format!("{n} stored message(s) with customer {customer}"), || async {
        let conv = sb.store().conversation_for_customer(customer).await.unwrap()?;
        let talk = sb.store().conversation_messages(conv.id).await.unwrap();
        (talk.len() >= n).then_some(talk)
    })
    .await
}

/// Messages in the moderator chat that are case cards.
async fn wait_cards(sb: &Sandbox, n: usize) -> Vec<Message> {
    eventually(&format!("{n} case card(s)"), || async {
        let cards: Vec<Message> =
            sb.world.messages(sb.moderator_chat).into_iter().filter(|m| m.text.contains("Case C")).collect();
        (cards.len() >= n).then_some(cards)
    })
    .await
}

#[tokio::test]
async fn missing_id_the_customer_is_asked_answers_and_the_order_completes_once() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    let msg = sb.world.post_order(&order(601).details("Спасибо, жду алмазы!"));

    let asked = wait_sent(&sb, 601, 1).await;
    assert!(asked[0].text.contains("ID"), "{}", asked[0].text);
    assert!(asked[0].text.contains("100 Diamonds"), "says what was paid: {}", asked[0].text);
    assert!(asked[0].text.contains("Здравствуйте"), "Russian for a Russian customer: {}", asked[0].text);
    assert_eq!(order_of(&sb, msg).await.state, OrderState::NeedsCustomer);
    assert_eq!(sb.backend.stats().requests, 0, "nothing to activate before the customer answers");

    sb.world.post_as_user(601, 601, "вот мой ID: 123456", None);
    let done = wait_state(&sb, msg, OrderState::Confirmed).await;
    let thanks = wait_sent(&sb, 601, 2).await;
    assert!(thanks[1].text.contains("123456") && thanks[1].text.contains("100 Diamonds"), "{}", thanks[1].text);

    assert_eq!(sb.backend.activations_for(done.order_ref.as_str()), 1, "one activation only");
    assert_eq!(sb.world.send_presses(msg), 1);
    let deliveries = sb.world.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].text.contains("123456"), "the Tribute reply names the account: {}", deliveries[0].text);
    assert!(sb.world.messages(sb.moderator_chat).is_empty(), "no person needed");

    // Every message in and out is stored with direction and author.
    let talk = stored_talk(&sb, 601, 3).await;
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
    let (after_contact, by_moderator) = sb.store().completion_counts().await.unwrap();
    assert_eq!((after_contact, by_moderator), (1, 0));
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_english_customer_with_two_ids_is_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    let msg = sb.world.post_order(&order(602).by("Anna Smith").details("thanks, waiting"));
    let asked = wait_sent(&sb, 602, 1).await;
    assert!(asked[0].text.starts_with("Hello Anna Smith"), "English for a clearly English customer: {}", asked[0].text);

    sb.world.post_as_user(602, 602, "it is 123456 or maybe 654321", None);
    let again = wait_sent(&sb, 602, 2).await;
    assert!(again[1].text.contains("123456") && again[1].text.contains("654321"), "{}", again[1].text);
    assert_eq!(order_of(&sb, msg).await.state, OrderState::NeedsCustomer);
    assert_eq!(sb.backend.stats().requests, 0, "an ambiguous answer is not guessed");

    sb.world.post_as_user(602, 602, "123456", None);
    wait_state(&sb, msg, OrderState::Confirmed).await;
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_id_is_asked_again_and_the_third_refusal_goes_to_the_moderator() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    let msg = sb.world.post_order(&order(603).by("Пётр").details("оплатил"));
    wait_sent(&sb, 603, 1).await;
    for (i, id) in ["111111", "222222"].into_iter().enumerate() {
        sb.world.post_as_user(603, 603, id, None);
        let sent = wait_sent(&sb, 603, i + 2).await;
        assert!(sent[i + 1].text.contains(id), "the refusal names the ID: {}", sent[i + 1].text);
        assert_eq!(order_of(&sb, msg).await.state, OrderState::NeedsCustomer);
    }
    sb.world.post_as_user(603, 603, "333333", None);
    let o = wait_state(&sb, msg, OrderState::Escalated).await;
    assert_eq!(o.escalation_reason.as_deref(), Some("account_rejected_thrice"));
    let cards = wait_cards(&sb, 1).await;
    assert!(cards[0].text.contains("333333"), "the card shows the conversation: {}", cards[0].text);
    assert_eq!(sb.backend.stats().requests, 3, "one backend call per ID, no loop");
    assert_eq!(sb.backend.stats().activations, 0);
    let sent = all_sent_to(&sb, 603).await;
    assert_eq!(sent.len(), 4, "no third 'try again' after the last refusal, one notice: {sent:#?}");
    let last = &sent[3].text;
    assert!(last.contains("333333") && last.contains("сотрудник"), "a person takes over: {last}");
    assert!(!last.contains("ещё раз"), "not asked for the ID again: {last}");
    let talk = stored_talk(&sb, 603, 7).await;
    assert_eq!(talk.last().unwrap().template.as_deref(), Some("id_rejected_thrice"));
    sb.shutdown().await.unwrap();
}

/// A question that waits in the queue (the account's budget of new cases
/// is used up) was passed to nobody yet: no promise now, and the customer
/// is told once it reaches a person.
#[tokio::test]
async fn a_queued_answer_without_an_id_is_acknowledged_when_it_reaches_a_case() {
    use std::num::NonZeroU32;
    use tribute_assistant::contact::AccountBudget;

    let dir = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::default();
    let one = NonZeroU32::new(1).unwrap();
    opts.contact.as_mut().unwrap().account_budget = AccountBudget {
        question_cases_per_minute: one,
        question_cases_per_hour: NonZeroU32::new(60).unwrap(),
        ..Default::default()
    };
    let sb = sandbox_with(&dir, opts).await;
    // A stranger's question takes this minute's one new case.
    sb.world.add_user(620, "Гость", None);
    sb.world.post_as_user(620, 620, "а как это работает?", None);
    wait_sent(&sb, 620, 1).await;
    assert_eq!(sb.store().all_cases().await.unwrap().len(), 1);

    sb.world.post_order(&order(621).by("Игорь").details("оплатил"));
    wait_sent(&sb, 621, 1).await;
    sb.world.post_as_user(621, 621, "а когда придут алмазы?", None);
    let sent = wait_sent(&sb, 621, 2).await;
    assert!(!sent[1].text.contains("передал"), "the question only waits: {}", sent[1].text);
    assert_eq!(sb.store().questions_waiting().await.unwrap(), 1);

    let clock = pause_time().await;
    advance(Duration::from_secs(61)).await;
    let sent = wait_sent(&sb, 621, 3).await;
    clock.resume();
    assert!(sent[2].text.contains("передал его команде"), "told once a person has it: {}", sent[2].text);
    let talk = stored_talk(&sb, 621, 4).await;
    assert_eq!(talk[3].template.as_deref(), Some("question_forwarded"));
    assert!(sb.store().open_question_case(talk[0].conversation_id).await.unwrap().is_some());
    sb.shutdown().await.unwrap();
}

/// "I passed it to the team" only when a person has the message: an
/// answer without an ID that the agent answered was passed to nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_an_id_says_the_team_has_it_only_when_a_case_does() {
    // The agent answers the question from the FAQ: no case, no promise.
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox_with(&dir, SandboxOptions { agent: true, ..Default::default() }).await;
    let msg = sb.world.post_order(&order(611).by("Света").details("оплатила"));
    wait_sent(&sb, 611, 1).await;
    sb.world.post_as_user(611, 611, "Где мне найти ID аккаунта для оплаты?", None);
    let sent = wait_sent(&sb, 611, 3).await;
    let talk = stored_talk(&sb, 611, 4).await;
    let templates: Vec<Option<&str>> = talk.iter().map(|m| m.template.as_deref()).collect();
    assert_eq!(templates, vec![Some("ask_account"), None, None, Some("ask_again_none")], "{talk:#?}");
    assert_eq!(talk[2].author, Author::Agent, "the agent answered: {talk:#?}");
    assert!(!sent[2].text.contains("передал"), "nobody has the question: {}", sent[2].text);
    assert!(sb.store().open_question_case(talk[0].conversation_id).await.unwrap().is_none());
    assert_eq!(order_of(&sb, msg).await.state, OrderState::NeedsCustomer);
    sb.shutdown().await.unwrap();

    // Without an agent the question goes to a case, and the customer is told so.
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    sb.world.post_order(&order(612).by("Игорь").details("оплатил"));
    wait_sent(&sb, 612, 1).await;
    sb.world.post_as_user(612, 612, "а когда придут алмазы?", None);
    let sent = wait_sent(&sb, 612, 2).await;
    assert!(sent[1].text.contains("передал его команде"), "{}", sent[1].text);
    let talk = stored_talk(&sb, 612, 3).await;
    assert_eq!(talk[2].template.as_deref(), Some("ask_again_none_forwarded"));
    assert!(sb.store().open_question_case(talk[0].conversation_id).await.unwrap().is_some());
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_customer_is_reminded_after_an_hour_and_handed_over_after_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    let msg = sb.world.post_order(&order(604).by("Мария").details("жду"));
    wait_sent(&sb, 604, 1).await;

    let clock = pause_time().await;
    // Half an hour, then past the hour: the reminder's stored time says
    // which of the two it came after.
    advance(Duration::from_secs(30 * 60)).await;
    advance(Duration::from_secs(31 * 60)).await;
    let sent = wait_sent(&sb, 604, 2).await;
    assert!(sent[1].text.contains("напоминаем"), "{}", sent[1].text);
    let talk = stored_talk(&sb, 604, 2).await;
    let (asked, reminded) = (&talk[0], &talk[1]);
    assert_eq!(reminded.template.as_deref(), Some("reminder"), "{talk:#?}");
    let waited = Duration::from_millis((reminded.at - asked.at) as u64);
    assert!(waited >= Duration::from_secs(3600), "no reminder before an hour: it came after {waited:?}");
    assert_eq!(order_of(&sb, msg).await.state, OrderState::NeedsCustomer);
    assert!(sb.world.messages(sb.moderator_chat).is_empty());

    advance(Duration::from_secs(23 * 3600)).await;
    let o = wait_state(&sb, msg, OrderState::Escalated).await;
    assert_eq!(o.escalation_reason.as_deref(), Some("customer_silent"));
    let cards = wait_cards(&sb, 1).await;
    assert!(cards[0].text.contains("did not answer"), "{}", cards[0].text);
    assert_eq!(all_sent_to(&sb, 604).await.len(), 2, "one reminder only");
    clock.resume();
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_privacy_restricted_customer_goes_to_the_moderator_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    sb.world.add_user(605, "Олег", None);
    sb.world.fail_sends_to(605, MessengerError::PrivacyRestricted);
    let msg = sb.world.post_order(&order(605).by("Олег").details("ID потом пришлю"));
    let o = wait_state(&sb, msg, OrderState::Escalated).await;
    assert_eq!(o.escalation_reason.as_deref(), Some("customer_unreachable"));
    let cards = wait_cards(&sb, 1).await;
    let card = &cards[0].text;
    assert!(card.contains("PRIVACY_RESTRICTED"), "names the reason: {card}");
    assert!(card.contains("ID потом пришлю"), "raw details: {card}");
    assert!(card.contains("tg://user?id=605"), "profile link: {card}");
    assert!(card.contains("no account ID"), "and why we asked: {card}");
    let case = sb.store().open_case_for_order(o.id).await.unwrap().expect("an open case");
    assert!(card.contains(&case.short_id), "{card}");
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn restart_in_the_middle_of_a_dialogue_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut sb = sandbox(&dir).await;
    sb.backend.add_pending("777001", "100 Diamonds");
    let msg = sb.world.post_order(&order(606).by("Kate").details("paid, thanks"));
    wait_sent(&sb, 606, 1).await;
    sb.stop_daemon().await.unwrap();
    let conv = sb.store().conversation_for_customer(606).await.unwrap().unwrap();
    assert!(matches!(conv.state, DialogueState::AwaitingAccount { .. }), "{:?}", conv.state);

    // The customer answers while we are down.
    sb.world.post_as_user(606, 606, "777001", None);
    sb.start_daemon(None).await.unwrap();
    wait_state(&sb, msg, OrderState::Confirmed).await;
    let sent = wait_sent(&sb, 606, 2).await;
    assert_eq!(sent.len(), 2, "not asked again after the restart: {sent:#?}");
    assert!(sent[1].text.contains("777001"), "{}", sent[1].text);
    assert_eq!(sb.backend.stats().activations, 1);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn ids_count_only_for_the_customers_own_orders_and_customer_text_is_never_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    let msg = sb.world.post_order(&order(607).by("Иван").details("без ID"));
    wait_sent(&sb, 607, 1).await;

    // Someone else sends an ID and a "command": neither touches order 607.
    sb.world.add_user(608, "Чужой", None);
    sb.world.post_as_user(608, 608, "123456", None);
    sb.world.post_as_user(608, 608, "/done", None);
    let cards = wait_cards(&sb, 1).await;
    assert!(cards[0].text.contains("question"), "a stranger's message is a question: {}", cards[0].text);
    eventually("both messages on the question case", || async {
        let msgs = sb.world.messages(sb.moderator_chat);
        msgs.iter().any(|m| m.text.contains("/done")).then_some(())
    })
    .await;
    assert_eq!(order_of(&sb, msg).await.state, OrderState::NeedsCustomer);
    assert_eq!(sb.backend.stats().requests, 0);
    let open = sb.store().open_cases().await.unwrap();
    assert_eq!(open.len(), 1, "\"/done\" from a customer closes nothing: {open:#?}");
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_daily_message_cap_hands_the_order_to_the_moderator() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::default();
    opts.contact.as_mut().unwrap().max_messages_per_day = 1;
    let sb = sandbox_with(&dir, opts).await;
    let msg = sb.world.post_order(&order(609).by("Лена").details("—"));
    wait_sent(&sb, 609, 1).await;
    sb.world.post_as_user(609, 609, "111111 222222", None);
    let o = wait_state(&sb, msg, OrderState::Escalated).await;
    assert_eq!(o.escalation_reason.as_deref(), Some("message_cap_reached"));
    assert_eq!(all_sent_to(&sb, 609).await.len(), 1, "never more than the cap");
    sb.shutdown().await.unwrap();
}
