//! The moderator chat end to end: case cards posted by the daemon, replies
//! to them by the configured moderator (and by someone who is not one).

use tribute_assistant::domain::{Author, OrderState};
use tribute_assistant::store::CaseStatus;
use tribute_assistant::telegram::{Message, MessengerError};
use tribute_testbed::sandbox::{SandboxOptions, Transport};

use crate::support::app::TestApp;
use crate::support::sandbox::order_of;
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::eventually;

/// An order whose customer cannot be written to: its card is in the chat.
async fn escalated_order(app: &TestApp, customer: i64) -> (i32, Message) {
    app.world.add_user(customer, "Олег", None);
    app.world.fail_sends_to(customer, MessengerError::PrivacyRestricted);
    let msg = app.post_order(&order(customer).by("Олег").details("забыл ID"));
    app.wait_state(msg, OrderState::Escalated).await;
    let card = app.wait_card("Case C").await;
    (msg, card)
}

async fn moderator_finishes_a_case_with_an_id(transport: Transport) {
    let app = TestApp::spawn_with(SandboxOptions { transport, ..Default::default() }).await;
    app.backend.add_pending("424242", "100 Diamonds");
    let (msg, card) = escalated_order(&app, 701).await;
    assert!(card.text.contains("Reply to this message"), "says what the moderator can do: {}", card.text);

    app.moderator_replies(&card, "424242");
    let o = app.wait_state(msg, OrderState::Confirmed).await;
    assert_eq!(app.backend.activations_for(o.order_ref.as_str()), 1);
    assert_eq!(app.world.send_presses(msg), 1);
    let done = app.wait_card("completed").await;
    assert_eq!(done.reply_to, Some(card.id), "the outcome answers the card");
    let case = eventually("the case closed", || async {
        let c = app.store().all_cases().await.unwrap().into_iter().find(|c| c.order_id == Some(o.id))?;
        (c.status == CaseStatus::Closed).then_some(c)
    })
    .await;
    assert!(case.outcome.unwrap().contains("424242"));
    let audit = app.store().audit_log(Some(case.id)).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "account" && a.allowed && a.moderator_id == app.moderator), "{audit:#?}");
    let (_, by_moderator) = app.store().completion_counts().await.unwrap();
    assert_eq!(by_moderator, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn moderator_replies_to_a_card_with_an_id_and_the_order_completes() {
    moderator_finishes_a_case_with_an_id(Transport::Sim).await;
}

#[tokio::test]
async fn a_non_moderators_reply_is_refused_and_logged() {
    let app = TestApp::spawn().await;
    app.backend.add_pending("424242", "100 Diamonds");
    let (msg, card) = escalated_order(&app, 702).await;
    app.world.add_user(8001, "Random member", None);
    let intruder = app.world.post_as_user(app.moderator_chat, 8001, "424242", Some(card.id));
    let refusal = app.wait_card("only the moderators").await;
    assert_eq!(refusal.reply_to, Some(intruder));
    let audit = eventually("the refusal in the audit log", || async {
        let a = app.store().audit_log(None).await.unwrap();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].moderator_id, audit[0].action.as_str(), audit[0].allowed), (8001, "refused", false));
    assert_eq!(order_of(&app, msg).await.state, OrderState::Escalated);
    assert_eq!(app.backend.stats().requests, 0, "nothing activated on a stranger's word");
    app.shutdown().await;
}

#[tokio::test]
async fn moderator_text_is_relayed_to_the_customer_and_the_commands_work() {
    let app = TestApp::spawn().await;
    // A customer without an order asks something: a question case.
    app.world.add_user(703, "Вика", None);
    app.customer_says(703, "Когда придут алмазы?");
    let card = app.wait_card("a question from").await;
    assert!(card.text.contains("tg://user?id=703"), "{}", card.text);
    assert!(card.text.contains("Когда придут алмазы?"), "{}", card.text);

    app.moderator_replies(&card, "В течение часа, извините за задержку.");
    let answer = eventually("the team's answer at the customer", || async {
        app.world.messages(703).into_iter().find(|m| m.outgoing && m.text.contains("В течение часа"))
    })
    .await;
    assert!(answer.text.starts_with("Ответ команды"), "{}", answer.text);
    app.wait_card("C1: sent to").await;
    let conv = app.store().conversation_for_customer(703).await.unwrap().unwrap();
    let talk = app.store().conversation_messages(conv.id).await.unwrap();
    let relayed = talk.iter().find(|m| m.text.contains("В течение часа")).unwrap();
    assert_eq!((relayed.author, relayed.author_id), (Author::Moderator, Some(app.moderator)));

    app.moderator_replies(&card, "/note спросить про задержки");
    app.wait_card("noted").await;
    app.moderator_says("/cases");
    let list = app.wait_card("Open cases: 1").await;
    assert!(list.text.contains("customer_question"), "{}", list.text);
    app.moderator_replies(&card, "/done");
    app.wait_card("closed, handled by hand").await;
    assert!(app.store().open_cases().await.unwrap().is_empty());
    app.moderator_says("/case C1");
    let shown = app.wait_card("Status: closed").await;
    assert!(shown.text.contains("Когда придут алмазы?"), "{}", shown.text);

    let actions: Vec<String> = app.store().audit_log(None).await.unwrap().into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["relay", "note", "cases", "done", "case"]);
    app.shutdown().await;
}

#[tokio::test]
async fn a_card_reply_with_an_id_completes_the_order_over_mtproto() {
    moderator_finishes_a_case_with_an_id(Transport::Mtproto).await;
}

#[tokio::test]
async fn reject_fails_the_order_and_a_refused_moderator_id_comes_back_to_the_case() {
    let app = TestApp::spawn().await;
    let (msg, card) = escalated_order(&app, 704).await;

    // An ID the backend does not know: the case says so and stays open.
    app.moderator_replies(&card, "999999");
    let refused = app.wait_card("refused account ID 999999").await;
    assert_eq!(refused.reply_to, Some(card.id));
    app.wait_state(msg, OrderState::Escalated).await;

    app.moderator_replies(&card, "/reject refunded in Tribute");
    app.wait_card("rejected by the moderator: refunded in Tribute").await;
    app.wait_state(msg, OrderState::Failed).await;
    assert!(app.store().open_cases().await.unwrap().is_empty());
    assert_eq!(app.backend.stats().activations, 0);
    let actions: Vec<String> = app.store().audit_log(None).await.unwrap().into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["account", "reject"]);
    app.shutdown().await;
}

/// `/reject` on a case that closed meanwhile (its order completed, or
/// `/done` came first) is answered, and rejects nothing.
#[tokio::test]
async fn reject_on_a_closed_case_is_answered_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.backend.add_pending("424242", "100 Diamonds");
    let (msg, card) = escalated_order(&app, 704).await;
    app.moderator_replies(&card, "424242");
    app.wait_state(msg, OrderState::Confirmed).await;
    app.wait_card("completed").await;
    let late = app.moderator_replies(&card, "/reject refunded by hand");
    let answer = app.wait_card("already closed").await;
    assert_eq!(answer.reply_to, Some(late), "{}", answer.text);
    assert!(answer.text.contains("nothing rejected"), "{}", answer.text);
    assert_eq!(order_of(&app, msg).await.state, OrderState::Confirmed);
    app.shutdown().await;
}

/// A reply that finds no case while a card is on its way waits in the inbox
/// for the card's mapping instead of holding the desk: a later command is
/// handled meanwhile, and the reply reaches the case once the card is mapped.
#[tokio::test]
async fn a_reply_waits_in_the_inbox_for_a_card_on_its_way_without_holding_the_desk() {
    let app = TestApp::spawn().await;
    // Telegram takes nothing in the moderator chat for now: the card stays on its way.
    app.world.fail_sends_to(app.moderator_chat, MessengerError::Disconnected);
    app.world.add_user(704, "Олег", None);
    app.world.fail_sends_to(704, MessengerError::PrivacyRestricted);
    let msg = app.post_order(&order(704).by("Олег").details("забыл ID"));
    app.wait_state(msg, OrderState::Escalated).await;
    let row = eventually("the card tried and not posted", || async {
        let cards = app.store().all_cards().await.unwrap();
        cards.into_iter().find(|c| c.attempts > 0 && c.posted_message_id.is_none())
    })
    .await;
    // The message the card will turn out to be, and a moderator's note in reply to it.
    let stand_in = app.moderator_says("(the card, as Telegram has it)");
    let reply = app.world.post_as_user(app.moderator_chat, app.moderator, "/note позвонить", Some(stand_in));
    app.moderator_says("/cases");
    let audit = eventually("/cases handled while the reply waits", || async {
        let audit = app.store().audit_log(None).await.unwrap();
        audit.iter().any(|a| a.action == "cases").then_some(audit)
    })
    .await;
    assert!(audit.iter().all(|a| a.message_id != i64::from(reply)), "the reply is not handled yet: {audit:#?}");

    // Telegram's answer comes in: the card is that message.
    app.store().mark_card_posted(row.id, app.moderator_chat, stand_in).await.unwrap();
    let noted = eventually("the note on the case", || async {
        let audit = app.store().audit_log(None).await.unwrap();
        audit.into_iter().find(|a| a.message_id == i64::from(reply))
    })
    .await;
    assert_eq!((noted.action.as_str(), noted.case_id), ("note", row.case_id), "{noted:?}");
    app.world.clear_send_failure(app.moderator_chat);
    app.wait_card("C1: noted").await;
    app.shutdown().await;
}
