//! `tribute-assistant demo`: the whole order flow on the simulator and the
//! reference backend, narrated from what the store recorded. Nothing is
//! canned: every line and number comes from this run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::cli::{fmt_ms, table};
use crate::domain::OrderState;
use crate::sandbox::{Sandbox, SandboxOptions, Transport};
use crate::telegram::sim::SimOrder;

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
        },
        Scene {
            what: "valid ID written as #id, in English",
            order: order(5002, "Anna Smith", "500 Diamonds", "$20.00", "account #777001 please"),
            pending: Some(("777001", "500 Diamonds")),
            backend_failures: 0,
        },
        Scene {
            what: "ID with leading zeros, price in roubles",
            order: order(5003, "Олег", "VIP Month", "₽1 500,00", "id000042"),
            pending: Some(("000042", "VIP Month")),
            backend_failures: 0,
        },
        Scene {
            what: "no account ID in the details",
            order: order(5004, "Мария", "100 Diamonds", "€5.00", "Спасибо! Жду алмазы"),
            pending: None,
            backend_failures: 0,
        },
        Scene {
            what: "two different IDs",
            order: order(5005, "Dmitry K", "100 Diamonds", "€5.00", "ID 123123 or maybe 456456"),
            pending: None,
            backend_failures: 0,
        },
        Scene {
            what: "an ID the backend does not know",
            order: order(5006, "Пётр", "100 Diamonds", "€5.00", "ID: 999999"),
            pending: None,
            backend_failures: 0,
        },
        Scene {
            what: "backend fails twice, then succeeds",
            order: order(5007, "Kate", "1000 Diamonds", "€40.00", "ID: 555555"),
            pending: Some(("555555", "1000 Diamonds")),
            backend_failures: 2,
        },
        Scene {
            what: "a known account with no pending order",
            order: order(5001, "Иван Петров", "100 Diamonds", "€5.00", "123456 ещё раз"),
            pending: None,
            backend_failures: 0,
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
        let msg = sb.world.post_order(&s.order);
        posted.push((msg, s.what));
        sb.wait_settled(i + 1, Duration::from_secs(30)).await.with_context(|| format!("order {:?}", s.what))?;
    }
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
        _ = crate::daemon::shutdown_signal() => true,
    };
    sb.stop_daemon().await?;
    if interrupted {
        println!("interrupted: the daemon stopped after its step in flight; the store keeps every order");
    }

    // Narrate from the store.
    let store = sb.store().clone();
    let mut completed = 0;
    let mut escalated = 0;
    let mut failed = 0;
    let mut rows = Vec::new();
    for (msg, what) in &posted {
        let r = crate::domain::OrderRef::for_message(sb.tribute_chat(), *msg);
        let order = store.order_by_ref(&r).await?.with_context(|| format!("order {r} was not stored"))?;
        println!("── {} · {} · {} {} · \"{}\"", order.order_ref, order.customer_name, order.product, order.price, what);
        for e in store.order_events(order.id).await? {
            println!("   {}  {:<21} {}", &fmt_ms(e.at)[11..], e.to_state, e.note);
        }
        let requests = sb.backend.requests_for(order.order_ref.as_str());
        if requests > 0 {
            println!(
                "   backend saw {requests} request(s) with Idempotency-Key {} and activated it {} time(s)",
                order.order_ref,
                sb.backend.activations_for(order.order_ref.as_str())
            );
        }
        match order.state {
            OrderState::Confirmed => completed += 1,
            OrderState::Escalated | OrderState::NeedsCustomer => escalated += 1,
            OrderState::Failed => failed += 1,
            _ => {}
        }
        rows.push([
            order.order_ref.to_string(),
            order.customer_name.clone(),
            what.to_string(),
            order.state.to_string(),
            order.escalation_reason.clone().unwrap_or_default(),
        ]);
        println!();
    }
    let malformed = store.count_malformed().await?;
    let cards = store.all_cards().await?;
    let moderator_msgs = sb.world.messages(sb.moderator_chat);
    println!("── moderator chat: {} case message(s)", moderator_msgs.len());
    for m in &moderator_msgs {
        let first = m.text.lines().next().unwrap_or_default();
        let why = m.text.lines().find(|l| l.starts_with("Why:")).unwrap_or_default();
        println!("   #{}  {first} — {why}", m.id);
    }
    let deliveries = sb.world.deliveries();
    println!("── delivered by Tribute to customers: {}", deliveries.len());
    println!();
    print!("{}", table(&["ORDER", "CUSTOMER", "SCENARIO", "STATE", "REASON"], &rows));
    let stats = sb.backend.stats();
    let orders = posted.len();
    println!();
    println!(
        "orders {orders}: completed {completed}, escalated {escalated}, failed {failed}; malformed messages {malformed}; \
         backend activations {} (requests {}); moderator cards {}",
        stats.activations,
        stats.requests,
        cards.len()
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
    let mut summary = serde_json::json!({
        "orders": orders,
        "completed": completed,
        "escalated": escalated,
        "failed": failed,
        "malformed": malformed,
        "backend_activations": stats.activations,
        "backend_requests": stats.requests,
        "moderator_cards": cards.len(),
        "deliveries": deliveries.len(),
    });
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
