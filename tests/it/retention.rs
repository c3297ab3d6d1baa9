//! Retention and erasure on a real SQLite file: the pruner removes only
//! what is past its window and never pending work; scrubbing keeps each
//! order's money history under a pseudonym; `forget --customer` through
//! the real binary (store and the Qdrant Edge index on disk) and `/forget`
//! in the moderator chat; the unmatched-purchase deadline on a paused clock.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tribute_assistant::domain::{
    AccountId, Author, Currency, DialogueState, Direction, EscalationReason, Language, LinkStatus, Money, OrderRef,
    OrderState,
};
use tribute_assistant::knowledge::{KnowledgeBase, KnowledgeSection, SearchFilter};
use tribute_assistant::retention::{Pruner, RetentionSettings};
use tribute_assistant::runtime::clock::now_ms;
use tribute_assistant::store::{
    CardBody, CardSubject, Escalation, InboxKind, MessageKind, NewAgentTurn, NewApprovedPair, NewConversationMessage,
    NewCustomerMessage, NewOrder, NewWebhookEvent, PurchaseFacts, Recorded, Store, Transition,
};
use tribute_assistant::telegram::Message;
use tribute_testbed::sandbox::{Sandbox, SandboxOptions};

use crate::support::sandbox::{sandbox_with, wait_cards_posted};
use crate::support::wait::{advance, eventually, pause_time};

const DAY: i64 = 86_400_000;
const TRIBUTE: i64 = 93372553;

async fn open(dir: &Path) -> Store {
    Store::open(&dir.join(tribute_assistant::DATABASE_FILE)).await.unwrap()
}

/// A second connection to the same file, to count rows the API does not list.
async fn raw(dir: &Path) -> SqliteConnection {
    let opts = SqliteConnectOptions::new().filename(dir.join(tribute_assistant::DATABASE_FILE));
    SqliteConnection::connect_with(&opts).await.unwrap()
}

async fn count(c: &mut SqliteConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&mut *c).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn message(chat: i64, id: i32, text: &str) -> Message {
    Message {
        chat_id: chat,
        id,
        sender_id: Some(chat),
        outgoing: false,
        sender_is_bot: chat == TRIBUTE,
        date: now_ms() / 1000,
        text: text.into(),
        entities: vec![],
        reply_to: None,
        buttons: vec![],
    }
}

/// An order of `customer` (Tribute message `msg`) moved along `path`.
async fn order(store: &Store, msg: i32, customer: i64, name: &str, path: &[OrderState]) -> i64 {
    let new = NewOrder {
        order_ref: OrderRef::for_message(TRIBUTE, msg),
        customer_name: name.into(),
        customer_id: Some(customer),
        customer_username: Some(format!("user{customer}")),
        product: "100 Diamonds".into(),
        price: Money::new(500, Currency::Eur).unwrap(),
        details: format!("{name}, ID 123456"),
        account_candidates: vec![AccountId::parse("123456").unwrap()],
    };
    let text = format!(
        "🆕 Custom Product Order\nCustomer: {name}\nProduct: 100 Diamonds\nPrice: €5\nOrder Details:\nID 123456"
    );
    let recorded = store
        .record_tribute_message(&message(TRIBUTE, msg, &text), MessageKind::Order, None, Some(&new), None)
        .await
        .unwrap();
    let Recorded::NewOrder(id) = recorded else { panic!("{recorded:?}") };
    let mut from = OrderState::Received;
    for to in path {
        let mut t = Transition::to(*to, format!("to {to}"));
        if *to == OrderState::Activated {
            t.activation_id = Some(format!("act-{msg}"));
        }
        store.transition(id, from, t).await.unwrap();
        from = *to;
    }
    id
}

const PAID: [OrderState; 4] =
    [OrderState::ActivationRequested, OrderState::Activated, OrderState::Replied, OrderState::Confirmed];

/// A customer's conversation with `n` messages each way; incoming ones
/// also in the inbox (handled), with Telegram ids `first..`.
async fn talk(store: &Store, customer: i64, name: &str, first: i32, n: i32, says: &str) -> i64 {
    let conv = store.open_conversation(customer, name, Language::Ru, now_ms()).await.unwrap();
    for i in 0..n {
        let m = message(customer, first + i, &format!("{says} #{i}"));
        store.enqueue_inbound(InboxKind::Customer, &m, false).await.unwrap();
        store.mark_inbound_handled(customer, m.id).await.unwrap();
        for (direction, author, telegram) in
            [(Direction::In, Author::Customer, Some((customer, m.id))), (Direction::Out, Author::Agent, None)]
        {
            let text = if direction == Direction::In { m.text.clone() } else { format!("answer to {}", m.text) };
            store
                .record_conversation_message(&NewConversationMessage {
                    conversation_id: conv.id,
                    at: now_ms(),
                    direction,
                    author,
                    author_id: None,
                    text,
                    template: None,
                    telegram,
                    order_ids: vec![],
                })
                .await
                .unwrap();
        }
    }
    conv.id
}

async fn agent_turn(store: &Store, conversation: i64, customer: i64, question: &str, escalated: bool) {
    store
        .record_agent_turn(&NewAgentTurn {
            conversation_id: Some(conversation),
            customer_id: Some(customer),
            question,
            answer: Some("draft"),
            reply: "reply",
            language: "ru",
            confidence: Some(0.5),
            sources: &[],
            reasons: serde_json::json!([]),
            escalated,
            mode: "retrieval",
            latency_ms: 10,
        })
        .await
        .unwrap();
}

/// A message to the customer, delivered when `sent` (else left pending).
async fn to_customer(store: &Store, conversation: i64, customer: i64, text: &str, sent: bool) {
    let m = NewCustomerMessage {
        conversation_id: conversation,
        customer_id: customer,
        text: text.into(),
        author: Author::Agent,
        author_id: None,
        template: None,
        order_ids: vec![],
    };
    let pending = store.enqueue_customer_message(&m, &tribute_assistant::runtime::clock::day(now_ms())).await.unwrap();
    if sent {
        store.customer_message_sent(&pending, Some(9000 + pending.id as i32)).await.unwrap();
    }
}

/// Marks every stored card and follow-up posted.
async fn post_all(store: &Store) {
    for (i, card) in store.pending_cards().await.unwrap().into_iter().enumerate() {
        store.mark_card_posted(card.id, -100, 500 + i as i32).await.unwrap();
    }
}

fn settings() -> RetentionSettings {
    RetentionSettings { batch: 1000, ..RetentionSettings::default() }
}

#[tokio::test]
async fn pruning_removes_only_what_is_past_its_window_and_never_pending_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let mut db = raw(dir.path()).await;

    // Anna: done with us. Boris: a message to him waits, one from him too.
    // Vera: her order waits for her account ID.
    let anna = talk(&store, 501, "Анна", 10, 3, "вопрос Анны").await;
    order(&store, 1, 501, "Анна", &PAID).await;
    agent_turn(&store, anna, 501, "вопрос Анны", false).await;
    agent_turn(&store, anna, 501, "ещё вопрос Анны", true).await;
    to_customer(&store, anna, 501, "ответ Анне", true).await;
    let anna_case = store
        .open_case(&Escalation::question(anna, &tribute_assistant::domain::Verdict::because("a question")))
        .await
        .unwrap();
    store.case_update(anna_case, "Анна пишет ещё").await.unwrap();
    store.close_case(anna_case, "handled", "closed").await.unwrap();

    let boris = talk(&store, 502, "Борис", 10, 2, "вопрос Бориса").await;
    to_customer(&store, boris, 502, "ответ Борису", false).await;
    store.enqueue_inbound(InboxKind::Customer, &message(502, 50, "ещё вопрос"), false).await.unwrap();
    let boris_case = store
        .open_case(&Escalation::question(boris, &tribute_assistant::domain::Verdict::because("a question")))
        .await
        .unwrap();
    store.case_update(boris_case, "Борис пишет ещё").await.unwrap();

    let vera = talk(&store, 503, "Вера", 10, 2, "вопрос Веры").await;
    let vera_order = order(&store, 2, 503, "Вера", &[OrderState::NeedsCustomer]).await;
    store
        .link_order(vera, vera_order, tribute_assistant::domain::EscalationReason::MissingAccount, now_ms())
        .await
        .unwrap();
    post_all(&store).await;
    // Two questions queued behind the account-wide budget: one let through, one still waiting.
    assert!(store.queue_question(anna, 1_001, false, now_ms()).await.unwrap());
    assert!(store.queue_question(boris, 1_002, false, now_ms()).await.unwrap());
    let released: i64 = count(&mut db, "SELECT id FROM queued_questions WHERE message_id = 1001").await;
    store.release_queued_question(released, now_ms(), None).await.unwrap();

    let messages_before = store.customer_message_counts().await.unwrap();
    let answers_before = store.agent_turn_counts().await.unwrap();
    let escalations_before = store.snapshot().await.unwrap().cards_by_reason;
    let pruner = Pruner::new(store.clone(), settings());
    let now = now_ms();

    // Nothing is past any window yet.
    let report = pruner.pass(now + 10 * DAY).await.unwrap();
    assert!(report.is_empty(), "{report:?}");
    assert!(!report.more);

    // Past the inbox and outbox windows: handled copies and done messages go.
    let report = pruner.pass(now + 31 * DAY).await.unwrap();
    assert_eq!(report.get("customer_outbox"), 1, "{report:?}");
    assert_eq!(report.get("queued_questions"), 1, "the released question's row: {report:?}");
    assert_eq!(count(&mut db, "SELECT COUNT(*) FROM queued_questions WHERE released_at IS NULL").await, 1);
    assert_eq!(report.get("case_follow_ups"), 2, "Anna's closed case's follow-ups: {report:?}");
    assert_eq!(count(&mut db, "SELECT COUNT(*) FROM inbox WHERE chat_id = 501").await, 1, "the cursor stays");
    assert_eq!(store.inbox_cursor(501).await.unwrap(), Some(12), "the re-read starts after the newest message");
    assert_eq!(
        count(&mut db, "SELECT COUNT(*) FROM inbox WHERE chat_id = 501 AND instr(message_json, 'Анн')").await,
        0
    );
    assert_eq!(store.waiting_inbound(10).await.unwrap().len(), 1, "Boris's unhandled message is never touched");
    assert_eq!(store.pending_customer_messages(502).await.unwrap(), 1, "nor the message to him");
    let boris_rows =
        count(&mut db, &format!("SELECT COUNT(*) FROM moderator_outbox WHERE case_id = {boris_case}")).await;
    assert_eq!(boris_rows, 2, "an open case keeps its card and follow-ups");
    assert_eq!(count(&mut db, &format!("SELECT COUNT(*) FROM moderator_outbox WHERE case_id = {anna_case}")).await, 1);
    assert_eq!(store.agent_turn_counts().await.unwrap(), answers_before);

    // Past the agent turns' window.
    let report = pruner.pass(now + 91 * DAY).await.unwrap();
    assert_eq!(report.get("agent_turns"), 2, "{report:?}");
    assert_eq!(count(&mut db, "SELECT COUNT(*) FROM agent_turns").await, 0);
    assert_eq!(store.agent_turn_counts().await.unwrap(), answers_before, "a counter never goes down");

    // Past the scrub window: Anna's conversation goes and she is pseudonymised;
    // Boris (pending work) and Vera (an order waiting for her) are untouched.
    let report = pruner.pass(now + 181 * DAY).await.unwrap();
    assert_eq!(report.get("conversation_messages"), 7, "Anna's messages only (and the one delivered): {report:?}");
    assert_eq!(report.get("customers"), 1, "{report:?}");
    assert!(store.conversation_for_customer(501).await.unwrap().is_none(), "she is a stranger if she writes again");
    for (customer, n) in [(502, 4), (503, 4)] {
        let conv = store.conversation_for_customer(customer).await.unwrap().expect("kept");
        assert_eq!(store.conversation_messages(conv.id).await.unwrap().len(), n, "customer {customer}");
    }
    assert_eq!(store.order(vera_order).await.unwrap().customer_name, "Вера");
    assert_eq!(store.inbox_cursor(501).await.unwrap(), Some(12), "her chat is not read from the start again");
    assert_eq!(store.customer_message_counts().await.unwrap(), messages_before, "a counter never goes down");
    assert_eq!(store.snapshot().await.unwrap().cards_by_reason, escalations_before);
    let anna_texts = "SELECT (SELECT COUNT(*) FROM conversation_messages WHERE instr(text, 'Анн'))
        + (SELECT COUNT(*) FROM orders WHERE instr(customer_name || details, 'Анн'))
        + (SELECT COUNT(*) FROM tribute_messages WHERE instr(text, 'Анн'))
        + (SELECT COUNT(*) FROM moderator_outbox WHERE instr(text, 'Анн'))
        + (SELECT COUNT(*) FROM conversations WHERE instr(customer_name, 'Анн'))";
    assert_eq!(count(&mut db, anna_texts).await, 0);

    // Nothing is left to do; the pass is on /metrics.
    let report = pruner.pass(now + 182 * DAY).await.unwrap();
    assert!(report.is_empty(), "{report:?}");
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.retention_last_pass_at, Some(now + 182 * DAY));
    let pruned =
        |what: &str| snapshot.retention.iter().find(|(k, w, _)| k == "pruned" && w == what).map_or(0, |(_, _, n)| *n);
    assert_eq!((pruned("conversation_messages"), pruned("agent_turns")), (7, 2));
    store.close().await;
}

#[tokio::test]
async fn a_small_batch_leaves_more_for_the_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    talk(&store, 601, "Глеб", 10, 5, "спам").await;
    let pruner = Pruner::new(store.clone(), RetentionSettings { batch: 3, ..RetentionSettings::default() });
    let at = now_ms() + 31 * DAY;
    // Five handled rows: four go, three of them now; the newest stays as
    // the cursor and loses its content.
    let first = pruner.pass(at).await.unwrap();
    assert_eq!((first.get("inbox"), first.more), (3 + 1, true), "{first:?}");
    let second = pruner.pass(at).await.unwrap();
    assert_eq!((second.get("inbox"), second.more), (1, false), "{second:?}");
    assert_eq!(store.inbox_cursor(601).await.unwrap(), Some(14));
}

#[tokio::test]
async fn scrubbing_keeps_the_order_money_history_and_pseudonymises_the_customer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let mut db = raw(dir.path()).await;
    let conv = talk(&store, 701, "Дарья Смирнова", 10, 1, "где мой заказ").await;
    let id = order(&store, 7, 701, "Дарья Смирнова", &PAID).await;
    store.link_order(conv, id, tribute_assistant::domain::EscalationReason::MissingAccount, now_ms()).await.unwrap();
    store.set_link_status(id, LinkStatus::Done, false, now_ms()).await.unwrap();
    let purchase = PurchaseFacts {
        purchase_id: "p-701".into(),
        product_id: None,
        product_name: "100 Diamonds".into(),
        price: Money::new(500, Currency::Eur).unwrap(),
        telegram_user_id: 701,
        transaction_id: Some("tx-701".into()),
        paid_at: Some(now_ms()),
        refund: None,
    };
    let body = r#"{"name":"new_digital_product","payload":{"telegram_user_id":701,"user_name":"Дарья Смирнова"}}"#;
    store
        .store_webhook_event(&NewWebhookEvent {
            name: "new_digital_product".into(),
            purchase_key: "p-701".into(),
            created_at: None,
            sent_at: None,
            raw_body: body.into(),
            purchase: Some(purchase),
        })
        .await
        .unwrap();
    assert!(store.match_purchase("p-701", id, false).await.unwrap());
    let before = store.order(id).await.unwrap();
    let history = store.order_events(id).await.unwrap();

    let report = Pruner::new(store.clone(), settings()).pass(now_ms() + 181 * DAY).await.unwrap();
    assert_eq!(report.get("customers"), 1, "{report:?}");

    let after = store.order(id).await.unwrap();
    assert_eq!(
        (&after.order_ref, after.state, &after.price, &after.activation_id, &after.product, after.created_at),
        (&before.order_ref, before.state, &before.price, &before.activation_id, &before.product, before.created_at),
        "the money facts stay"
    );
    assert_eq!(after.account, before.account, "and the account it was activated for");
    let events = store.order_events(id).await.unwrap();
    assert_eq!(
        events.iter().map(|e| (&e.to_state, &e.note)).collect::<Vec<_>>(),
        history.iter().map(|e| (&e.to_state, &e.note)).collect::<Vec<_>>(),
        "the state history stays"
    );
    assert!(after.customer_name.starts_with("customer-") && after.customer_name.len() == 17, "{}", after.customer_name);
    assert_eq!((after.customer_id, after.customer_username.as_deref(), after.details.as_str()), (None, None, ""));
    let p = store.purchase("p-701").await.unwrap().unwrap();
    assert_eq!((&p.price, p.order_id, p.transaction_id.as_deref()), (&before.price, Some(id), Some("tx-701")));
    assert_eq!(p.telegram_user_id, 0, "the payer's Telegram id goes");
    assert_eq!(count(&mut db, "SELECT COUNT(*) FROM tribute_webhook_events WHERE raw_body <> ''").await, 0);
    assert_eq!(count(&mut db, "SELECT COUNT(*) FROM tribute_messages WHERE instr(text, 'Смирнова')").await, 0);
    // The conversation row stays for its cases and order links, under the same pseudonym.
    let name: String = sqlx::query_scalar("SELECT customer_name FROM conversations WHERE id = ?")
        .bind(conv)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(name, after.customer_name);
    store.close().await;
}

#[tokio::test]
async fn the_unmatched_purchase_deadline_produces_exactly_one_card() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let clock = pause_time().await;
    let paid = now_ms();
    let purchase = PurchaseFacts {
        purchase_id: "p-lost".into(),
        product_id: None,
        product_name: "VIP".into(),
        price: Money::new(900, Currency::Eur).unwrap(),
        telegram_user_id: 801,
        transaction_id: None,
        paid_at: Some(paid),
        refund: None,
    };
    let event = NewWebhookEvent {
        name: "new_digital_product".into(),
        purchase_key: "p-lost".into(),
        created_at: None,
        sent_at: None,
        raw_body: "{}".into(),
        purchase: Some(purchase),
    };
    store.store_webhook_event(&event).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let settings = RetentionSettings::default();
    let interval = settings.interval;
    let task = tribute_assistant::runtime::TaskBoard::new().register("retention", interval * 2);
    let pruner = tokio::spawn(Pruner::new(store.clone(), settings).run(stopped, task));
    assert!(passed_since(&store, paid).await, "the pruner passes at once when it starts");

    // Moves the clock on by `by` and waits for the pass the pruner makes
    // then. Its sleep may have begun just after the move (the machine is
    // busy): then one more interval brings the pass.
    let later = |by: Duration| {
        let store = store.clone();
        async move {
            advance(by).await;
            let at = now_ms();
            for _ in 0..3 {
                if passed_since(&store, at).await {
                    return;
                }
                advance(interval).await;
            }
            panic!("no retention pass after the clock moved on");
        }
    };
    let handed_over = || async {
        let cards = store.all_cards().await.unwrap();
        cards
            .into_iter()
            .filter(|c| match &c.body {
                CardBody::Escalation(e) => {
                    e.reason == EscalationReason::WebhookMatchingStopped
                        && e.subject == CardSubject::Purchase { purchase_id: "p-lost".into(), order_id: None }
                }
                CardBody::Text(_) => false,
            })
            .count()
    };
    let hour = Duration::from_secs(3600);
    later(70 * hour).await;
    assert!(now_ms() < paid + 71 * 3600 * 1000);
    assert_eq!(handed_over().await, 0, "still matched automatically before the deadline");
    assert_eq!(store.unmatched_purchases().await.unwrap().len(), 1);
    later(3 * hour).await;
    assert_eq!(handed_over().await, 1, "a moderator has it after the deadline");
    for _ in 0..5 {
        later(10 * hour).await;
    }
    assert_eq!(handed_over().await, 1, "exactly one card, however many passes follow");
    assert!(store.unmatched_purchases().await.unwrap().is_empty(), "no longer re-matched");
    let late = order(&store, 9, 801, "Поздний", &[]).await;
    assert!(!store.match_purchase("p-lost", late, false).await.unwrap(), "nor matched to a late order");
    let _ = stop.send(true);
    pruner.await.unwrap();
    clock.resume();
    store.close().await;
}

/// Whether the pruner finished a pass that started at `at` or later; waits
/// a little real time for one in flight (the clock is paused: nothing else moves it).
async fn passed_since(store: &Store, at: i64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if store.snapshot().await.unwrap().retention_last_pass_at >= Some(at) {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"));
    c.env_remove("RUST_LOG").env_remove("TRIBUTE_ASSISTANT_CONFIG").env_remove("TRIBUTE_ASSISTANT_DATA_DIR");
    c
}

/// Hits of `query` in the knowledge base under `dir` that came from a conversation.
async fn learned_hits(dir: &Path, query: &str) -> Vec<String> {
    let kc = KnowledgeSection::default().resolve(&|_| None).unwrap();
    // The index is locked while another instance has it open: a stopped
    // daemon's tasks let it go a moment after they end.
    let kb = eventually("the knowledge base free to open", || async { KnowledgeBase::open(dir, &kc).await.ok() }).await;
    let hits = kb.search(query, &SearchFilter::default(), 10).await.unwrap();
    hits.into_iter()
        .filter(|h| h.source.starts_with("conversation:"))
        .map(|h| format!("{} {:?}", h.text, h.answer))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_through_the_cli_erases_the_customer_everywhere_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let store = open(data).await;
    let conv = talk(&store, 901, "Ефросинья Кузнецова", 10, 2, "Ефросинья спрашивает про телепортацию алмазов").await;
    let id = order(&store, 11, 901, "Ефросинья Кузнецова", &PAID).await;
    agent_turn(&store, conv, 901, "телепортация алмазов", true).await;
    let pair = store
        .add_approved_pair(&NewApprovedPair {
            conversation_id: conv,
            question: "Можно ли телепортировать алмазы на другой аккаунт?".into(),
            answer: "Телепортация алмазов недоступна, напишите в поддержку.".into(),
            language: Some("ru".into()),
            approved_by: 7001,
        })
        .await
        .unwrap();
    {
        let kc = KnowledgeSection::default().resolve(&|_| None).unwrap();
        let kb = KnowledgeBase::open(data, &kc).await.unwrap();
        kb.add_approved_pair(&pair).await.unwrap();
        store.mark_pair_indexed(pair.id).await.unwrap();
    }
    assert!(!learned_hits(data, "телепортация алмазов").await.is_empty(), "the learned answer is found before");
    // Someone whose order still waits for them cannot be erased yet.
    let waiting = order(&store, 12, 902, "Жанна", &[OrderState::NeedsCustomer]).await;
    store.close().await;

    let out = bin().args(["forget", "--customer", "902", "--data-dir"]).arg(data).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("work in progress") && err.contains("TA-93372553-12 (needs_customer)"), "{err}");

    // While something else (a running daemon) holds the index, the store is
    // erased and the index's removal waits as a work item.
    let kc = KnowledgeSection::default().resolve(&|_| None).unwrap();
    let held = KnowledgeBase::open(data, &kc).await.unwrap();
    let out = bin().args(["forget", "--customer", "901", "--data-dir"]).arg(data).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("4 conversation messages") && stdout.contains("1 approved answers"), "{stdout}");
    assert!(!stdout.contains("Ефросинья"), "{stdout}");
    assert!(stderr.contains("still holds answers learned from this customer"), "{stderr}");
    drop(held);
    assert!(!learned_hits(data, "телепортация алмазов").await.is_empty(), "not removed yet");

    // Run again: nothing more in the store, and the waiting removal is done.
    let out = bin().args(["forget", "--customer", "901", "--data-dir"]).arg(data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("erased nothing stored") && stdout.contains("removed from the knowledge base"), "{stdout}");
    assert!(learned_hits(data, "телепортация алмазов").await.is_empty(), "the index no longer has it");

    let store = open(data).await;
    assert!(store.conversation_for_customer(901).await.unwrap().is_none());
    assert!(store.approved_pairs().await.unwrap().is_empty());
    assert!(store.agent_turns_since(0, 10).await.unwrap().is_empty());
    let o = store.order(id).await.unwrap();
    assert_eq!((o.state, o.activation_id.as_deref(), o.customer_id), (OrderState::Confirmed, Some("act-11"), None));
    assert_eq!(store.order(waiting).await.unwrap().customer_name, "Жанна", "the refused erasure touched nothing");
    let log = store.erasures().await.unwrap();
    assert_eq!(log.len(), 2, "both runs are in the erasure log");
    assert_eq!(log[0].1, "command line");
    assert!(log[0].2.contains("\"conversation_messages\":4") && !log[0].2.contains("901"), "{}", log[0].2);
    let mut db = raw(data).await;
    assert_eq!(count(&mut db, "SELECT COUNT(*) FROM conversations WHERE customer_id = 901").await, 0);
    store.close().await;
    drop(db);

    // Erased in the file itself, not only unlinked.
    let mut bytes = std::fs::read(data.join(tribute_assistant::DATABASE_FILE)).unwrap();
    bytes.extend(std::fs::read(data.join(format!("{}-wal", tribute_assistant::DATABASE_FILE))).unwrap_or_default());
    let needle = "Ефросинья".as_bytes();
    assert!(!bytes.windows(needle.len()).any(|w| w == needle), "the name is still in the database file");

    let help = bin().args(["forget", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("152-FZ") && help.contains("pseudonym") && help.contains("work in progress"), "{help}");
    for bad in ["--customer=-3", "--customer=@efrosinya"] {
        let out = bin().args(["forget", bad, "--data-dir"]).arg(data).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("Telegram user id"), "{bad}: {err}");
    }
}

/// Our answer in the moderator chat to message `id`.
async fn reply_to(sb: &Sandbox, id: i32) -> Message {
    eventually(&format!("the answer to moderator-chat message {id}"), || async {
        sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.outgoing && m.reply_to == Some(id))
    })
    .await
}

/// The first message our account sent to `customer`.
async fn first_reply(sb: &Sandbox, customer: i64) -> String {
    eventually(&format!("a reply to {customer}"), || async {
        sb.world.messages(customer).into_iter().find(|m| m.outgoing).map(|m| m.text)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_in_the_moderator_chat_erases_the_customer_and_what_was_learned_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox_with(&dir, SandboxOptions { agent: true, ..Default::default() }).await;
    sb.world.add_user(812, "Игорь", None);
    sb.world.post_as_user(812, 812, "Есть ли у вас скидки для оптовых покупателей?", None);
    let card = eventually("the question's case card", || async {
        sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.outgoing && m.text.contains("оптовых"))
    })
    .await;
    let team = "Да: от 10 000 алмазов скидка 10%, промокод WHOLESALE в деталях заказа.";
    sb.world.post_as_user(sb.moderator_chat, sb.moderator, team, Some(card.id));
    let learn = sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/learn", Some(card.id));
    let preview = reply_to(&sb, learn).await;
    let yes = sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/learn yes", Some(preview.id));
    assert!(reply_to(&sb, yes).await.text.contains("answer approved"));
    let same_question = "Какие скидки бывают для оптовых покупателей?";
    sb.world.add_user(813, "Ника", None);
    sb.world.post_as_user(813, 813, same_question, None);
    assert!(first_reply(&sb, 813).await.contains("WHOLESALE"), "the learned answer is given before");

    // Not a moderator: refused and audited, nothing erased.
    sb.world.add_user(8001, "Random member", None);
    let intruder = sb.world.post_as_user(sb.moderator_chat, 8001, "/forget 812", None);
    assert!(reply_to(&sb, intruder).await.text.contains("only the moderators"));
    // The open case is work in progress: refused, naming it.
    let early = sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/forget 812", None);
    let refusal = reply_to(&sb, early).await;
    assert!(refusal.text.contains("work in progress") && refusal.text.contains("open case C1"), "{}", refusal.text);
    assert!(sb.store().conversation_for_customer(812).await.unwrap().is_some());

    sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/done", Some(card.id));
    eventually("the case closed and the dialogue idle", || async {
        let conv = sb.store().conversation_for_customer(812).await.unwrap()?;
        let open = sb.store().open_cases().await.unwrap();
        (open.is_empty() && conv.state == DialogueState::Idle).then_some(())
    })
    .await;
    wait_cards_posted(&sb).await;
    let forget = sb.world.post_as_user(sb.moderator_chat, sb.moderator, "/forget 812", None);
    let done = reply_to(&sb, forget).await;
    assert!(done.text.contains("Customer 812: erased") && done.text.contains("1 approved answers"), "{}", done.text);
    assert!(!done.text.contains("оптовых"), "{}", done.text);

    sb.world.add_user(814, "Олег", None);
    sb.world.post_as_user(814, 814, same_question, None);
    assert!(!first_reply(&sb, 814).await.contains("WHOLESALE"), "and not after: the knowledge base forgot it");

    let store = sb.store();
    assert!(store.conversation_for_customer(812).await.unwrap().is_none());
    assert!(store.approved_pairs().await.unwrap().is_empty());
    assert!(store.agent_turns_since(0, 10).await.unwrap().iter().all(|t| t.customer_id != Some(812)));
    let audit = store.audit_log(None).await.unwrap();
    let refused = audit.iter().filter(|a| !a.allowed && a.moderator_id == 8001).count();
    assert_eq!(refused, 1, "{audit:#?}");
    let forgets: Vec<_> = audit.iter().filter(|a| a.action == "forget").collect();
    assert_eq!(forgets.len(), 2, "{audit:#?}");
    assert!(forgets[1].detail.starts_with("erased ") && !forgets[1].detail.contains("812"), "{}", forgets[1].detail);
    assert!(audit.iter().all(|a| !a.detail.contains("WHOLESALE")), "the relayed answer's text is erased: {audit:#?}");
    assert_eq!(store.erasures().await.unwrap()[0].1, format!("moderator {}", sb.moderator));
    sb.shutdown().await.unwrap();
    assert!(learned_hits(dir.path(), "скидки оптовым покупателям WHOLESALE").await.is_empty());
}

/// Our reply to an order (`msg + 1`) and the bot's Send follow-up
/// (`msg + 2`) as the Tribute chat copies them; the order notes both.
async fn order_with_copies(store: &Store, msg: i32, customer: i64, path: &[OrderState]) -> i64 {
    let id = order(store, msg, customer, "Пётр", &path[..path.len().min(2)]).await;
    let mut reply = message(TRIBUTE, msg + 1, "✅ 100 Diamonds, payment #1");
    (reply.outgoing, reply.sender_id, reply.reply_to) = (true, Some(1), Some(msg));
    let mut follow_up = message(TRIBUTE, msg + 2, "Send the reply to the customer?");
    follow_up.reply_to = Some(msg + 1);
    store.record_tribute_message(&reply, MessageKind::Outgoing, None, None, None).await.unwrap();
    store.record_tribute_message(&follow_up, MessageKind::FollowUp, None, None, None).await.unwrap();
    let mut from = path[..path.len().min(2)].last().copied().unwrap_or(OrderState::Received);
    for to in &path[path.len().min(2)..] {
        let mut t = Transition::to(*to, format!("to {to}"));
        if *to == OrderState::Replied {
            (t.reply_message_id, t.button_message_id) = (Some(msg + 1), Some(msg + 2));
        }
        store.transition(id, from, t).await.unwrap();
        from = *to;
    }
    id
}

/// The Tribute chat's copies of our replies and the bot's follow-ups go
/// once their order is finished and past the outbox window; an open
/// order's copies, the order notifications and each chat's newest message
/// (where a re-read starts) stay.
#[tokio::test]
async fn old_tribute_chat_copies_go_once_their_order_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let mut db = raw(dir.path()).await;
    order_with_copies(&store, 100, 701, &PAID).await;
    let open_order = order_with_copies(&store, 200, 702, &PAID[..3]).await;
    for (id, kind) in [(300, MessageKind::Outgoing), (301, MessageKind::Other), (302, MessageKind::Outgoing)] {
        let mut m = message(TRIBUTE, id, "a message of no order");
        m.outgoing = kind == MessageKind::Outgoing;
        store.record_tribute_message(&m, kind, None, None, None).await.unwrap();
    }
    let copies = "SELECT COUNT(*) FROM tribute_messages WHERE kind IN ('outgoing', 'follow_up')";
    assert_eq!(count(&mut db, copies).await, 6);

    let pruner = Pruner::new(store.clone(), settings());
    let now = now_ms();
    assert_eq!(pruner.pass(now + 10 * DAY).await.unwrap().get("tribute_copies"), 0, "inside the window");
    let report = pruner.pass(now + 31 * DAY).await.unwrap();
    assert_eq!(report.get("tribute_copies"), 3, "the paid order's two and the order-less reply: {report:?}");
    let left: Vec<i64> = sqlx::query_scalar("SELECT message_id FROM tribute_messages ORDER BY message_id")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(left, [100, 200, 201, 202, 301, 302], "notifications, the open order's copies, the newest");
    assert_eq!(store.order(open_order).await.unwrap().reply_message_id, Some(201));

    // Once that order is confirmed its copies go too; the newest message stays.
    store.transition(open_order, OrderState::Replied, Transition::to(OrderState::Confirmed, "pressed")).await.unwrap();
    assert_eq!(pruner.pass(now + 32 * DAY).await.unwrap().get("tribute_copies"), 2);
    assert_eq!(count(&mut db, copies).await, 1, "only the chat's newest message");
    let snapshot = store.snapshot().await.unwrap();
    let pruned = snapshot.retention.iter().find(|(k, w, _)| k == "pruned" && w == "tribute_messages");
    assert_eq!(pruned.map(|(_, _, n)| *n), Some(5), "visible in /metrics");
}
