//! The moderator chat end to end: case cards posted by the daemon, replies
//! to them by the configured moderator (and by someone who is not one).

use tribute_assistant::domain::{Author, OrderState};
use tribute_assistant::store::CaseStatus;
use tribute_assistant::telegram::{Message, MessengerError};
use tribute_assistant::testbed::sandbox::{Sandbox, SandboxOptions, Transport};

use crate::support::sandbox::{order_of, sandbox, sandbox_with, wait_chat, wait_state};
use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::eventually;

/// An order whose customer cannot be written to: its card is in the chat.
async fn escalated_order(sb: &Sandbox, customer: i64) -> (i32, Message) {
    sb.world.add_user(customer, "Олег", None);
    sb.world.fail_sends_to(customer, MessengerError::PrivacyRestricted);
    let msg = sb.world.post_order(&order(customer).by("Олег").details("забыл ID"));
    wait_state(sb, msg, OrderState::Escalated).await;
    let card = wait_chat(sb, "Case C").await;
    (msg, card)
}

async fn moderator_finishes_a_case_with_an_id(transport: Transport) {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox_with(&dir, SandboxOptions { transport, ..Default::default() }).await;
    sb.backend.add_pending("424242", "100 Diamonds");
    let (msg, card) = escalated_order(&sb, 701).await;
    assert!(card.text.contains("Reply to this message"), "says what the moderator can do: {}", card.text);

    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "424242", Some(card.id));
    let o = wait_state(&sb, msg, OrderState::Confirmed).await;
    assert_eq!(sb.backend.activations_for(o.order_ref.as_str()), 1);
    assert_eq!(sb.world.send_presses(msg), 1);
    let done = wait_chat(&sb, "completed").await;
    assert_eq!(done.reply_to, Some(card.id), "the outcome answers the card");
    let case = eventually("the case closed", || async {
        let c = sb.store().all_cases().await.unwrap().into_iter().find(|c| c.order_id == Some(o.id))?;
        (c.status == CaseStatus::Closed).then_some(c)
    })
    .await;
    assert!(case.outcome.unwrap().contains("424242"));
    let audit = sb.store().audit_log(Some(case.id)).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "account" && a.allowed && a.moderator_id == sb.moderator), "{audit:#?}");
    let (_, by_moderator) = sb.store().completion_counts().await.unwrap();
    assert_eq!(by_moderator, 1);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn moderator_replies_to_a_card_with_an_id_and_the_order_completes() {
    moderator_finishes_a_case_with_an_id(Transport::Sim).await;
}

#[tokio::test]
async fn a_non_moderators_reply_is_refused_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    sb.backend.add_pending("424242", "100 Diamonds");
    let (msg, card) = escalated_order(&sb, 702).await;
    sb.world.add_user(8001, "Random member", None);
    let intruder = sb.world.post_as_user(sb.moderator_chat, 8001, "424242", Some(card.id));
    let refusal = wait_chat(&sb, "only the moderators").await;
    assert_eq!(refusal.reply_to, Some(intruder));
    let audit = eventually("the refusal in the audit log", || async {
        let a = sb.store().audit_log(None).await.unwrap();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].moderator_id, audit[0].action.as_str(), audit[0].allowed), (8001, "refused", false));
    assert_eq!(order_of(&sb, msg).await.state, OrderState::Escalated);
    assert_eq!(sb.backend.stats().requests, 0, "nothing activated on a stranger's word");
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn moderator_text_is_relayed_to_the_customer_and_the_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    // A customer without an order asks something: a question case.
    sb.world.add_user(703, "Вика", None);
    sb.world.post_as_user(703, 703, "Когда придут алмазы?", None);
    let card = wait_chat(&sb, "a question from").await;
    assert!(card.text.contains("tg://user?id=703"), "{}", card.text);
    assert!(card.text.contains("Когда придут алмазы?"), "{}", card.text);

    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "В течение часа, извините за задержку.", Some(card.id));
    let answer = eventually("the team's answer at the customer", || async {
        sb.world.messages(703).into_iter().find(|m| m.outgoing && m.text.contains("В течение часа"))
    })
    .await;
    assert!(answer.text.starts_with("Ответ команды"), "{}", answer.text);
    wait_chat(&sb, "C1: sent to").await;
    let conv = sb.store().conversation_for_customer(703).await.unwrap().unwrap();
    let talk = sb.store().conversation_messages(conv.id).await.unwrap();
    let relayed = talk.iter().find(|m| m.text.contains("В течение часа")).unwrap();
    assert_eq!((relayed.author, relayed.author_id), (Author::Moderator, Some(sb.moderator)));

    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/note спросить про задержки", Some(card.id));
    wait_chat(&sb, "noted").await;
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/cases", None);
    let list = wait_chat(&sb, "Open cases: 1").await;
    assert!(list.text.contains("customer_question"), "{}", list.text);
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/done", Some(card.id));
    wait_chat(&sb, "closed, handled by hand").await;
    assert!(sb.store().open_cases().await.unwrap().is_empty());
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/case C1", None);
    let shown = wait_chat(&sb, "Status: closed").await;
    assert!(shown.text.contains("Когда придут алмазы?"), "{}", shown.text);

    let actions: Vec<String> = sb.store().audit_log(None).await.unwrap().into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["relay", "note", "cases", "done", "case"]);
    sb.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_card_reply_with_an_id_completes_the_order_over_mtproto() {
    moderator_finishes_a_case_with_an_id(Transport::Mtproto).await;
}

#[tokio::test]
async fn reject_fails_the_order_and_a_refused_moderator_id_comes_back_to_the_case() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    let (msg, card) = escalated_order(&sb, 704).await;

    // An ID the backend does not know: the case says so and stays open.
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "999999", Some(card.id));
    let refused = wait_chat(&sb, "refused account ID 999999").await;
    assert_eq!(refused.reply_to, Some(card.id));
    wait_state(&sb, msg, OrderState::Escalated).await;

    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/reject refunded in Tribute", Some(card.id));
    wait_chat(&sb, "rejected by the moderator: refunded in Tribute").await;
    wait_state(&sb, msg, OrderState::Failed).await;
    assert!(sb.store().open_cases().await.unwrap().is_empty());
    assert_eq!(sb.backend.stats().activations, 0);
    let actions: Vec<String> = sb.store().audit_log(None).await.unwrap().into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["account", "reject"]);
    sb.shutdown().await.unwrap();
}

/// `/reject` on a case that closed meanwhile (its order completed, or
/// `/done` came first) is answered, and rejects nothing.
#[tokio::test]
async fn reject_on_a_closed_case_is_answered_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(&dir).await;
    sb.backend.add_pending("424242", "100 Diamonds");
    let (msg, card) = escalated_order(&sb, 704).await;
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "424242", Some(card.id));
    wait_state(&sb, msg, OrderState::Confirmed).await;
    wait_chat(&sb, "completed").await;
    let late = sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/reject refunded by hand", Some(card.id));
    let answer = wait_chat(&sb, "already closed").await;
    assert_eq!(answer.reply_to, Some(late), "{}", answer.text);
    assert!(answer.text.contains("nothing rejected"), "{}", answer.text);
    assert_eq!(order_of(&sb, msg).await.state, OrderState::Confirmed);
    sb.shutdown().await.unwrap();
}
