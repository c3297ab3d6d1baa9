//! `tribute-assistant ask`: one agent turn without Telegram, against the
//! configured knowledge base and LLM (or retrieval-only), for trying
//! questions and thresholds before the daemon answers customers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::agent::sources::NoOrders;
use crate::agent::{Agent, AgentSettings, Lang, OrderStatusSource, TurnOutcome, TurnRequest};
use crate::app::config::{FileConfig, DATA_DIR_ENV};
use crate::domain::EscalationReason;
use crate::moderator::cards::verdict_in_words;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct AskArgs {
    /// The customer's question, as they would write it.
    pub question: String,
    /// Print {"answer", "escalate", "confidence", "sources", "reasons", …} as JSON.
    #[arg(long)]
    pub json: bool,
    /// The customer's language (ru or en); detected from the question when absent.
    #[arg(long)]
    pub lang: Option<Lang>,
    /// Answer as this customer (Telegram user id): `order_status()` shows their orders.
    #[arg(long)]
    pub customer: Option<i64>,
    /// Data dir holding the database and the knowledge base (default: from the config, else ./data).
    #[arg(long, env = DATA_DIR_ENV)]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: AskArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let file = match config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let data_dir = args.data_dir.clone().unwrap_or_else(|| file.resolved_data_dir(&env));
    let settings = AgentSettings::resolve(&file.agent, &env).context("Invalid [agent] settings")?;
    let retriever = super::wiring::retriever_for(&data_dir, &file).await?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("Failed to create the data dir {}", data_dir.display()))?;
    let db = data_dir.join(crate::DATABASE_FILE);
    let store = Store::open(&db).await.with_context(|| format!("Failed to open {}", db.display()))?;
    let orders: Arc<dyn OrderStatusSource> =
        if args.customer.is_some() { Arc::new(store.clone()) } else { Arc::new(NoOrders) };
    let agent =
        Agent::new(settings, Arc::from(retriever), orders, store.clone()).context("Failed to set up the agent")?;
    let outcome = agent
        .answer(TurnRequest {
            conversation_id: None,
            customer_id: args.customer,
            question: args.question,
            language: args.lang,
            history: vec![],
        })
        .await;
    store.close().await;
    if args.json {
        println!("{}", outcome.to_json());
    } else if outcome.escalated() {
        println!("{}\n\n{}", outcome.reply, handed_over(&outcome));
    } else {
        println!(
            "{}\n\n(confidence {}, sources {}, mode {})",
            outcome.reply,
            outcome.confidence.map(|c| format!("{c:.2}")).unwrap_or_else(|| "—".into()),
            outcome.sources.join(", "),
            outcome.mode.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What `ask` shows when a person would get the question: the moderator's
/// one line (the desk's own words for the agent's verdict), then the codes
/// and figures an operator tunes the agent with.
fn handed_over(o: &TurnOutcome) -> String {
    let why = verdict_in_words(EscalationReason::CustomerQuestion, &o.verdict());
    let codes: Vec<&str> = o.reasons.iter().map(|r| r.code.as_str()).collect();
    let confidence = o.confidence.map(|c| format!("{c:.2}")).unwrap_or_else(|| "—".into());
    format!(
        "A person would get this question.\nWhy: {why}\n(reasons {}, confidence {confidence}, mode {})",
        codes.join(", "),
        o.mode.as_str()
    )
}
