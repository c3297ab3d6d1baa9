//! `tribute-assistant demo`: the whole order flow on the simulator and the
//! reference backend, narrated from what the store recorded. Nothing is
//! canned: every line and number comes from this run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::sandbox::{Sandbox, SandboxOptions, Transport};
use crate::sim::SimOrder;
use tribute_assistant::app::table::{fmt_ms, table};
use tribute_assistant::domain::OrderState;
use tribute_assistant::telegram::MessengerError;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the data (SQLite store) in DIR instead of a temp dir removed at exit.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Write the run's counts as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// How the daemon reaches the simulated Telegram: `sim` (directly) or
    /// `mtproto` (the real grammers adapter over MTProto to an in-process test server).
    #[arg(long, value_enum, value_name = "TRANSPORT", default_value_t = DemoTransport::Sim)]
    pub transport: DemoTransport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoTransport {
    Sim,
    Mtproto,
}

impl From<DemoTransport> for Transport {
    fn from(t: DemoTransport) -> Self {
        match t {
            DemoTransport::Sim => Transport::Sim,
            DemoTransport::Mtproto => Transport::Mtproto,
        }
    }
}

/// One scripted customer order and what the demo sets up for it.
struct Scene {
    what: &'static str,
    order: SimOrder,
    /// Pending order on the publisher's site: (account, product).
    pending: Option<(&'static str, &'static str)>,
    /// Backend requests to fail (503) before this order's activation.
    backend_failures: u32,
    /// Who finishes the order when its account ID is missing.
    finish: Finish,
}

/// How a scene with an account problem is finished in the demo.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// Nobody: it waits (for the customer or the moderator).
    Nobody,
    /// The assistant asks the customer, who answers with this ID.
    CustomerAnswers(&'static str),
    /// We cannot write to the customer (privacy settings); the moderator
    /// replies to the case card with this ID.
    ModeratorAnswers(&'static str),
}

fn scenes() -> Vec<Scene> {
    let order = |id: i64, name: &str, product: &str, price: &str, details: &str| SimOrder {
        customer_id: id,
        customer_name: name.to_owned(),
        product: product.to_owned(),
        price: price.to_owned(),
        details: details.to_owned(),
    };
    vec![
        Scene {
            what: "valid account ID",
            order: order(5001, "Иван Петров", "100 Diamonds", "€5.00", "Мой ID: 123456, спасибо!"),
            pending: Some(("123456", "100 Diamonds")),
            backend_failures: 0,
            finish: Finish::Nobody,
        },
        Scene {
            what: "valid ID written as #id, in English",
            order: order(5002, "Anna Smith", "500 Diamonds", "$20.00", "account #777001 please"),
            pending: Some(("777001", "500 Diamonds")),
            backend_failures: 0,
            finish: Finish::Nobody,
        },
        Scene {
            what: "ID with leading zeros, price in roubles",
            order: order(5003, "Олег", "VIP Month", "₽1 500,00", "id000042"),
            pending: Some(("000042", "VIP Month")),
            backend_failures: 0,
            finish: Finish::Nobody,
        },
        Scene {
            what: "no account ID; the assistant asks, the customer answers",
            order: order(5004, "Мария", "100 Diamonds", "€5.00", "Спасибо! Жду алмазы"),
            pending: Some(("314159", "100 Diamonds")),
            backend_failures: 0,
            finish: Finish::CustomerAnswers("мой ID 314159"),
        },
        Scene {
            what: "two different IDs",
            order: order(5005, "Dmitry K", "100 Diamonds", "€5.00", "ID 123123 or maybe 456456"),
            pending: None,
            backend_failures: 0,
            finish: Finish::Nobody,
        },
        Scene {
            what: "an ID the backend does not know",
            order: order(5006, "Пётр", "100 Diamonds", "€5.00", "ID: 999999"),
            pending: None,
            backend_failures: 0,
            finish: Finish::Nobody,
        },
        Scene {
            what: "backend fails twice, then succeeds",
            order: order(5007, "Kate", "1000 Diamonds", "€40.00", "ID: 555555"),
            pending: Some(("555555", "1000 Diamonds")),
            backend_failures: 2,
            finish: Finish::Nobody,
        },
        Scene {
            what: "the same customer pays again for the same account (a second payment)",
            order: order(5001, "Иван Петров", "100 Diamonds", "€5.00", "123456 ещё раз"),
            pending: None,
            backend_failures: 0,
            finish: Finish::Nobody,
        },
        Scene {
            what: "no ID, customer unreachable (privacy); a moderator replies with the ID",
            order: order(5009, "Lena K", "VIP Month", "€9.00", "pls activate asap"),
            pending: Some(("271828", "VIP Month")),
            backend_failures: 0,
            finish: Finish::ModeratorAnswers("271828"),
        },
    ]
}

const MALFORMED: &str =
    "🆕 Custom Product Order\n\nCustomer: Lena\nProduct: 100 Diamonds\nPrice: ¥500\nOrder Details:\nID 424242";
const DONATION: &str = "💰 New donation\n\nFrom: Sergey\nAmount: €3.00\nMessage: keep going!";

/// Posts the scenes one by one, waiting for each order to settle so the
/// backend faults hit the order they are meant for.
async fn play(sb: &Sandbox, scenes: &[Scene], posted: &mut Vec<(i32, &'static str)>) -> anyhow::Result<()> {
    for (i, s) in scenes.iter().enumerate() {
        if s.backend_failures > 0 {
            sb.backend.fail_next(s.backend_failures);
        }
        if let Finish::ModeratorAnswers(_) = s.finish {
            sb.world.fail_sends_to(s.order.customer_id, MessengerError::PrivacyRestricted);
        }
        let msg = sb.world.post_order(&s.order);
        posted.push((msg, s.what));
        sb.wait_settled(i + 1, Duration::from_secs(30)).await.with_context(|| format!("order {:?}", s.what))?;
        finish(sb, s, msg).await.with_context(|| format!("finishing order {:?}", s.what))?;
    }
    ask_the_agent(sb).await.context("the follow-up question")?;
    sb.world.post_bot_text(MALFORMED, vec![]);
    sb.world.post_bot_text(DONATION, vec![]);
    sb.wait_settled(scenes.len(), Duration::from_secs(30)).await?;
    // The malformed card is posted asynchronously: wait until it reached the moderator chat.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sb.store().count_malformed().await? < 1 || !sb.store().pending_cards().await?.is_empty() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the malformed order never reached the moderator");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A customer whose order is done asks a follow-up question in other words
/// than the FAQ's; the agent (retrieval-only over the starter FAQ) answers.
const FOLLOW_UP: (i64, &str) = (5004, "Подскажите, через сколько времени придут алмазы после оплаты?");

async fn ask_the_agent(sb: &Sandbox) -> anyhow::Result<()> {
    let (customer, question) = FOLLOW_UP;
    sb.world.post_as_user(customer, customer, question, None);
    wait_until("the agent's turn", || async {
        Ok(sb.store().agent_turns_since(0, 100).await?.iter().any(|t| t.customer_id == Some(customer)))
    })
    .await?;
    // Its answer (or the holding message and the case card) follow the stored turn.
    wait_until("the answer to reach the customer", || async {
        let n = sb.world.messages(customer).iter().filter(|m| m.outgoing).count();
        let conv = sb.store().conversation_for_customer(customer).await?.context("no conversation")?;
        let stored = sb.store().conversation_messages(conv.id).await?;
        Ok(stored.last().is_some_and(|m| m.direction == tribute_assistant::domain::Direction::Out)
            && n > 0
            && sb.store().pending_cards().await?.is_empty())
    })
    .await
}

/// Plays the customer's or the moderator's part for a scene, and waits
/// until the order is completed.
async fn finish(sb: &Sandbox, s: &Scene, msg: i32) -> anyhow::Result<()> {
    let customer = s.order.customer_id;
    let order_ref = tribute_assistant::domain::OrderRef::for_message(sb.tribute_chat(), msg);
    match s.finish {
        Finish::Nobody => return Ok(()),
        Finish::CustomerAnswers(answer) => {
            wait_until("the assistant to ask the customer", || async {
                Ok(sb.world.messages(customer).iter().any(|m| m.outgoing))
            })
            .await?;
            sb.world.post_as_user(customer, customer, answer, None);
        }
        Finish::ModeratorAnswers(id) => {
            let card = wait_for("the case card in the moderator chat", || async {
                Ok(sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.text.contains(order_ref.as_str())))
            })
            .await?;
            sb.world.post_as_user(sb.moderator_chat, sb.moderator, id, Some(card.id));
        }
    }
    wait_until("the order to complete", || async {
        let o = sb.store().order_by_ref(&order_ref).await?;
        Ok(o.is_some_and(|o| o.state == OrderState::Confirmed))
    })
    .await?;
    // The thanks / the case's closing follow-up come right after. (Another
    // scene's case, e.g. the second payment's, stays open for a person.)
    let id = sb.store().order_by_ref(&order_ref).await?.context("the order is stored")?.id;
    wait_until("the dialogue and the case to settle", || async {
        let case_open = sb.store().open_cases().await?.into_iter().any(|c| c.order_id == Some(id));
        Ok(!case_open && sb.store().pending_cards().await?.is_empty())
    })
    .await
}

async fn wait_until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    wait_for(what, || {
        let fut = check();
        async move { Ok(fut.await?.then_some(())) }
    })
    .await
}

async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let temp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("tribute-assistant-demo-").tempdir()?;
            temp.path().to_owned()
        }
    };
    let opts = SandboxOptions {
        transport: args.transport.into(),
        backend_backoff: Duration::from_millis(150),
        agent: true,
        ..SandboxOptions::default()
    };
    let mut sb = Sandbox::new(&dir, opts).await?;
    println!("tribute-assistant demo (transport: {})", sb.transport());
    println!("  data dir:          {}{}", dir.display(), if args.data_dir.is_none() { " (temporary)" } else { "" });
    println!("  reference backend: {} (verifies HMAC signatures)", sb.backend.url());
    match sb.mtproto_addr() {
        None => println!(
            "  Telegram:          simulator; Tribute bot chat {}, moderator chat {}",
            sb.tribute_chat(),
            sb.moderator_chat
        ),
        Some(addr) => println!(
            "  Telegram:          simulator behind the MTProto test server at {addr} (grammers client); \
             Tribute bot chat {}, moderator chat {}",
            sb.tribute_chat(),
            sb.moderator_chat
        ),
    }
    println!();
    sb.start_daemon(None).await?;

    let scenes = scenes();
    for s in &scenes {
        sb.world.add_user(s.order.customer_id, &s.order.customer_name, None);
        if let Some((account, product)) = s.pending {
            sb.backend.add_pending(account, product);
        }
    }

    let mut posted = Vec::new();
    let scenario = play(&sb, &scenes, &mut posted);
    let interrupted = tokio::select! {
        res = scenario => { res?; false }
        _ = tribute_assistant::runtime::shutdown::shutdown_signal() => true,
    };
    sb.stop_daemon().await?;
    if interrupted {
        println!("interrupted: the daemon stopped after its step in flight; the store keeps every order");
    }

    // Narrate from the store.
    let store = sb.store().clone();
    let mut tally = Tally::default();
    let mut rows = Vec::new();
    for (msg, what) in &posted {
        let r = tribute_assistant::domain::OrderRef::for_message(sb.tribute_chat(), *msg);
        let order = store.order_by_ref(&r).await?.with_context(|| format!("order {r} was not stored"))?;
        println!("── {} · {} · {} {} · \"{}\"", order.order_ref, order.customer_name, order.product, order.price, what);
        for e in store.order_events(order.id).await? {
            println!("   {}  {:<21} {}", &fmt_ms(e.at)[11..], e.to_state, e.note);
        }
        if let Some(link) = store.order_link(order.id).await? {
            let talk: Vec<_> = store
                .conversation_messages(link.conversation_id)
                .await?
                .into_iter()
                .filter(|m| m.order_ids.is_empty() || m.order_ids.contains(&order.id))
                .collect();
            if !talk.is_empty() {
                println!("   conversation with the customer:");
            }
            for m in talk {
                let arrow = match m.direction {
                    tribute_assistant::domain::Direction::In => "←",
                    tribute_assistant::domain::Direction::Out => "→",
                    tribute_assistant::domain::Direction::Internal => "✎",
                };
                let first = m.text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
                println!("   {}  {arrow} {:<9} {first}", &fmt_ms(m.at)[11..], m.author.as_str());
            }
        }
        let requests = sb.backend.requests_for(order.order_ref.as_str());
        if requests > 0 {
            println!(
                "   backend saw {requests} request(s) with Idempotency-Key {} and activated it {} time(s)",
                order.order_ref,
                sb.backend.activations_for(order.order_ref.as_str())
            );
        }
        tally.order(order.state);
        rows.push([
            order.order_ref.to_string(),
            order.customer_name.clone(),
            what.to_string(),
            order.state.to_string(),
            order.escalation_reason.map(|r| r.to_string()).unwrap_or_default(),
        ]);
        println!();
    }
    tally.malformed = store.count_malformed().await? as usize;
    let cards = store.all_cards().await?;
    for c in &cards {
        tally.card(c.order_id.is_some(), &c.reason);
    }
    let moderator_msgs = sb.world.messages(sb.moderator_chat);
    println!("── moderator chat: {} case message(s)", moderator_msgs.len());
    for m in &moderator_msgs {
        let first = m.text.lines().next().unwrap_or_default();
        let why = m.text.lines().find(|l| l.starts_with("Why:")).unwrap_or_default();
        let who = if m.outgoing {
            "assistant"
        } else if m.sender_id == Some(sb.moderator) {
            "moderator"
        } else {
            "member"
        };
        let reply = m.reply_to.map(|r| format!(" (reply to #{r})")).unwrap_or_default();
        if why.is_empty() {
            println!("   #{}  {who}{reply}: {first}", m.id);
        } else {
            println!("   #{}  {who}{reply}: {first} — {why}", m.id);
        }
    }
    let turns = store.agent_turns_since(0, 1000).await?;
    println!("── agent: {} turn(s) (retrieval-only over the starter FAQ)", turns.len());
    for t in &turns {
        let verdict = if t.escalated {
            format!("handed to a moderator ({})", t.reasons)
        } else {
            format!("answered, confidence {:.2}, sources {}", t.confidence.unwrap_or_default(), t.sources.join(", "))
        };
        println!("   customer {}: \"{}\" → {verdict}", t.customer_id.unwrap_or_default(), t.question);
    }
    let agent_answers = turns.iter().filter(|t| !t.escalated).count();
    let (completed_after_contact, completed_by_moderator) = store.completion_counts().await?;
    let deliveries = sb.world.deliveries();
    println!("── delivered by Tribute to customers: {}", deliveries.len());
    println!();
    print!("{}", table(&["ORDER", "CUSTOMER", "SCENARIO", "STATE", "REASON"], &rows));
    let stats = sb.backend.stats();
    println!();
    for line in tally.lines() {
        println!("{line}");
    }
    println!("backend activations {} (requests {})", stats.activations, stats.requests);
    println!(
        "completed after talking to the customer: {completed_after_contact}; completed by a moderator: {completed_by_moderator}"
    );
    // Over MTProto: what the grammers client asked the test server, by method.
    let mtproto_calls = sb.mtproto_server().map(|server| {
        let calls = server.calls();
        let mut by_method = std::collections::BTreeMap::<String, usize>::new();
        for c in &calls {
            *by_method.entry(c.method.clone()).or_default() += 1;
        }
        let failed = calls.iter().filter(|c| c.error.is_some()).count();
        let list: Vec<String> = by_method.iter().map(|(m, n)| format!("{m} {n}")).collect();
        println!(
            "MTProto: {} API call(s) ({failed} answered with an error) over {} connection(s): {}",
            calls.len(),
            server.connections_accepted(),
            list.join(", ")
        );
        by_method
    });
    let mut summary = tally.json();
    let extra = serde_json::json!({
        "backend_activations": stats.activations,
        "backend_requests": stats.requests,
        "deliveries": deliveries.len(),
        "completed_after_contact": completed_after_contact,
        "completed_by_moderator": completed_by_moderator,
        "agent_turns": turns.len(),
        "agent_answers": agent_answers,
    });
    summary.as_object_mut().expect("an object").extend(extra.as_object().expect("an object").clone());
    if let Some(calls) = mtproto_calls {
        summary["transport"] = "mtproto".into();
        summary["mtproto_calls"] = serde_json::json!(calls);
    }
    if let Some(path) = &args.summary_json {
        std::fs::write(path, format!("{summary}\n")).with_context(|| format!("Failed to write {}", path.display()))?;
    }
    sb.shutdown().await?;
    if interrupted {
        return Ok(ExitCode::from(130));
    }
    let completed = tally.completed;
    let consistent = stats.activations as usize == completed && deliveries.len() == completed;
    if !consistent {
        eprintln!(
            "error: inconsistent run: {completed} completed but {} activations, {} deliveries",
            stats.activations,
            deliveries.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's figures, named for what happened: an order that waits for
/// the customer's answer is not with a moderator yet, and a message that
/// is not an order is not an order's case, though both get a card.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    orders: usize,
    completed: usize,
    waiting_for_customer: usize,
    with_moderator: usize,
    failed: usize,
    /// Neither done nor waiting for a person (still on its way; 0 once settled).
    in_progress: usize,
    /// Tribute messages that looked like an order but could not be parsed.
    malformed: usize,
    order_cards: usize,
    malformed_cards: usize,
    unrecognised_cards: usize,
    question_cards: usize,
}

impl Tally {
    fn order(&mut self, state: OrderState) {
        self.orders += 1;
        match state {
            OrderState::Confirmed => self.completed += 1,
            OrderState::NeedsCustomer => self.waiting_for_customer += 1,
            OrderState::Escalated => self.with_moderator += 1,
            OrderState::Failed | OrderState::Refunded => self.failed += 1,
            _ => self.in_progress += 1,
        }
    }

    /// One case card in the moderator chat: `for_order` when it is an order's case.
    fn card(&mut self, for_order: bool, reason: &str) {
        use tribute_assistant::domain::EscalationReason as R;
        match reason {
            _ if for_order => self.order_cards += 1,
            r if r == R::MalformedOrder.as_str() => self.malformed_cards += 1,
            r if r == R::UnrecognisedMessage.as_str() => self.unrecognised_cards += 1,
            _ => self.question_cards += 1,
        }
    }

    fn cards(&self) -> usize {
        self.order_cards + self.malformed_cards + self.unrecognised_cards + self.question_cards
    }

    fn lines(&self) -> Vec<String> {
        let mut orders = format!(
            "orders {}: completed {}, waiting for the customer's answer {}, with a moderator {}, failed {}",
            self.orders, self.completed, self.waiting_for_customer, self.with_moderator, self.failed
        );
        if self.in_progress > 0 {
            orders.push_str(&format!(", still in progress {}", self.in_progress));
        }
        vec![
            orders,
            format!("malformed Tribute messages (not orders): {}", self.malformed),
            format!(
                "moderator cards {}: {} for orders, {} for malformed messages, {} for unrecognised messages, {} for questions",
                self.cards(),
                self.order_cards,
                self.malformed_cards,
                self.unrecognised_cards,
                self.question_cards
            ),
        ]
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "orders": self.orders,
            "completed": self.completed,
            "waiting_for_customer": self.waiting_for_customer,
            "with_moderator": self.with_moderator,
            "failed": self.failed,
            "in_progress": self.in_progress,
            "malformed": self.malformed,
            "moderator_cards": self.cards(),
            "order_cards": self.order_cards,
            "malformed_cards": self.malformed_cards,
            "unrecognised_cards": self.unrecognised_cards,
            "question_cards": self.question_cards,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_who_an_order_waits_for_and_counts_a_malformed_message_apart() {
        let mut t = Tally::default();
        for s in [OrderState::Confirmed, OrderState::NeedsCustomer, OrderState::Escalated] {
            t.order(s);
        }
        t.malformed = 1;
        t.card(true, "already_fulfilled");
        t.card(false, "malformed_order");
        let lines = t.lines();
        assert_eq!(
            lines[0],
            "orders 3: completed 1, waiting for the customer's answer 1, with a moderator 1, failed 0"
        );
        assert!(lines.iter().all(|l| !l.contains("escalated")), "{lines:?}");
        assert_eq!(lines[1], "malformed Tribute messages (not orders): 1");
        assert!(lines[2].starts_with("moderator cards 2: 1 for orders, 1 for malformed messages"), "{}", lines[2]);
        let v = t.json();
        assert_eq!((v["waiting_for_customer"].as_u64(), v["with_moderator"].as_u64()), (Some(1), Some(1)));
        assert_eq!((v["order_cards"].as_u64(), v["malformed_cards"].as_u64()), (Some(1), Some(1)));
        assert!(v.get("escalated").is_none());
    }
}
