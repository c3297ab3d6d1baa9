//! The agent in the daemon and its learning loop, on the simulator with the
//! real knowledge base (Qdrant Edge on disk, the starter FAQ) in the
//! offline default, retrieval-only: a question the FAQ covers is answered;
//! one it does not goes to the moderator with a holding message; the
//! moderator's answer is relayed, `/learn`ed, and the next customer who asks
//! the same in other words gets that answer from the knowledge base.

use tribute_assistant::domain::Author;
use tribute_assistant::telegram::Message;
use tribute_assistant::testbed::sandbox::{Sandbox, SandboxOptions};

use crate::support::sandbox::sandbox_with;
use crate::support::wait::eventually;

/// The `n`-th message our account sent to `customer` (1-based).
async fn nth_reply(sb: &Sandbox, customer: i64, n: usize) -> Message {
    eventually(&format!("reply {n} to {customer}"), || async {
        sb.world.messages(customer).into_iter().filter(|m| m.outgoing).nth(n - 1)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_answers_from_the_faq_escalates_the_rest_and_learns_the_moderators_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox_with(&dir, SandboxOptions { agent: true, ..Default::default() }).await;

    // A question the starter FAQ answers, in other words than its heading.
    sb.world.add_user(801, "Света", None);
    sb.world.post_as_user(801, 801, "Где мне найти ID аккаунта для оплаты?", None);
    let answer = nth_reply(&sb, 801, 1).await;
    let turns = sb.store().agent_turns_since(0, 10).await.unwrap();
    assert_eq!(turns.len(), 1);
    assert!(!turns[0].escalated, "a FAQ question is answered: {:?}", turns[0]);
    assert_eq!(answer.text.trim(), turns[0].reply.trim());
    assert!(sb.world.messages(sb.moderator_chat).is_empty(), "no case for an answered question");

    // A question the FAQ does not cover: holding message + a case card.
    sb.world.add_user(802, "Игорь", None);
    sb.world.post_as_user(802, 802, "Есть ли у вас скидки для оптовых покупателей?", None);
    let holding = nth_reply(&sb, 802, 1).await;
    let card = eventually("the question's case card", || async {
        sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.outgoing && m.text.contains("оптовых"))
    })
    .await;
    let turns = sb.store().agent_turns_since(0, 10).await.unwrap();
    assert!(turns[1].escalated, "{:?}", turns[1]);
    assert!(!holding.text.contains("WHOLESALE"), "the holding message promises a person, it does not answer");

    // The moderator answers on the card; it is relayed, then taught.
    let team = "Да: от 10 000 алмазов скидка 10%, укажите промокод WHOLESALE в деталях заказа.";
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, team, Some(card.id));
    let relayed = nth_reply(&sb, 802, 2).await;
    assert!(relayed.text.contains("WHOLESALE"), "{}", relayed.text);
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/learn", Some(card.id));
    eventually("the learn confirmation", || async {
        sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.outgoing && m.text.contains("answer approved"))
    })
    .await;
    let pairs = sb.store().approved_pairs().await.unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].approved_by, sb.moderator);
    assert!(pairs[0].question.contains("оптовых"));

    // Someone else asks the same in other words: answered from the learned pair.
    sb.world.add_user(803, "Ника", None);
    sb.world.post_as_user(803, 803, "Какие скидки бывают для оптовых покупателей?", None);
    let learned = nth_reply(&sb, 803, 1).await;
    assert!(learned.text.contains("WHOLESALE"), "the learned answer is given: {}", learned.text);
    let last = sb.store().agent_turns_since(0, 10).await.unwrap().pop().unwrap();
    assert!(!last.escalated, "{last:?}");
    assert!(last.sources.iter().any(|s| !s.is_empty()));

    // A non-moderator cannot teach it.
    sb.world.post_as_user(sb.moderator_chat, 999_999, "/learn", Some(card.id));
    eventually("the refusal", || async {
        sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.outgoing && m.text.contains("only the moderators"))
    })
    .await;
    assert_eq!(sb.store().approved_pairs().await.unwrap().len(), 1);
    let conv = sb.store().conversation_for_customer(803).await.unwrap().unwrap();
    let msgs = sb.store().conversation_messages(conv.id).await.unwrap();
    assert!(msgs.iter().any(|m| m.author == Author::Agent), "the agent's answer is stored with author agent");
    sb.shutdown().await.unwrap();
}
