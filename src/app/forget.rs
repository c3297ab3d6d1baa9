//! `tribute-assistant forget --customer ID`: erase one customer's personal
//! data from the store and the knowledge base (`retention`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::config::{FileConfig, DATA_DIR_ENV};
use crate::knowledge::KnowledgeBase;
use crate::retention::{forget_customer, remove_from_index, CustomerId, Requester};
use crate::store::{Forgotten, Store};

/// Who to erase (the command's help is on `cli::Command::Forget`).
#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    /// The customer's Telegram user id (their private chat with us).
    #[arg(long)]
    pub customer: CustomerId,
    /// Data dir holding the database and the Edge index (default: from the config, else ./data).
    #[arg(long, env = DATA_DIR_ENV)]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: ForgetArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let file = match config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let data_dir = args.data_dir.unwrap_or_else(|| file.resolved_data_dir(&env));
    let store = super::wiring::open_existing_store(Some(data_dir.clone()), None).await?;
    let customer = args.customer;
    let outcome = forget_customer(&store, customer, Requester::CommandLine).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            store.close().await;
            return Err(e).context("Failed to erase the customer");
        }
    };
    let (counts, pseudonym) = match outcome {
        Forgotten::Erased { counts, pseudonym } => (counts, pseudonym),
        Forgotten::Pending(work) => {
            store.close().await;
            bail!(
                "customer {customer} has work in progress, so nothing was erased: {work}. \
                 Finish or close it first (e.g. /done on the case), then run forget again"
            );
        }
    };
    println!("Customer {customer}: erased {counts}.");
    if counts.get("orders_pseudonymised") > 0 {
        println!("Their orders keep the money facts under the pseudonym {pseudonym}.");
    }
    if let Err(e) = drain_index(&store, &data_dir, &file).await {
        // Not lost: the removal waits in the store until the index can be changed.
        eprintln!(
            "warning: the knowledge base still holds answers learned from this customer ({e:#}). \
             A running daemon with the agent removes them within seconds (its index is locked while it runs); \
             otherwise run forget again once the index can be opened."
        );
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Removes erased answers from the knowledge base, if any wait and there
/// is an index to remove them from.
async fn drain_index(store: &Store, data_dir: &Path, file: &FileConfig) -> anyhow::Result<()> {
    let now = crate::runtime::clock::now_ms();
    // Every waiting removal, also one the daemon is backing off from.
    let waiting = store.kb_removals_due(i64::MAX, i64::MAX).await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let env = |k: &str| std::env::var(k).ok();
    let kc = file.knowledge.resolve(&env).context("Invalid [knowledge] section")?;
    if !KnowledgeBase::exists(data_dir, &kc) {
        // Nothing was ever indexed here; the queue only said "if any".
        for (conversation, _) in waiting {
            store.kb_removal_done(conversation).await?;
        }
        return Ok(());
    }
    let kb = KnowledgeBase::open_serving(data_dir, &kc)
        .await
        .with_context(|| format!("Failed to open the knowledge base under {}", data_dir.display()))?;
    let failed = remove_from_index(store, &kb, i64::MAX, now).await?;
    if failed > 0 {
        bail!("{failed} erased conversation(s) could not be removed from the index");
    }
    println!("Their approved answers are removed from the knowledge base.");
    Ok(())
}
