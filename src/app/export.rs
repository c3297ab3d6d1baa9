//! The `export` command: parse the filters, open the store, stream, summarise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};

use super::config::{FileConfig, DATA_DIR_ENV};
use crate::export::export_to;
use crate::export::formats::Format;
use crate::export::output::create_private;
use crate::export::reader::Pii;
use crate::store::export::{ExportQuery, OnlyKind};

/// Export conversations for review: every message, the orders involved with
/// their history, each agent turn (answer, confidence, sources, reasons,
/// escalated), cases, moderator actions and the outcome. Names, usernames,
/// account IDs, e-mails, phones and card numbers are redacted unless
/// --no-redact; Telegram user ids are kept (pseudonymous). Schema: docs/export.md.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Write here instead of stdout (created 0600; a symbolic link is refused).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Only conversations active at or after this (RFC 3339 date `2026-01-31` = start of day UTC, or date-time).
    #[arg(long)]
    pub since: Option<String>,
    /// Only conversations begun before this (a date includes the whole day, UTC; a date-time is exclusive).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this customer (Telegram user id).
    #[arg(long)]
    pub customer: Option<i64>,
    /// Only one class of conversation.
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// Only conversations involving this order (payment number, e.g. TA-93372553-42).
    #[arg(long)]
    pub order: Option<String>,
    /// Keep personal data (names, usernames, account IDs, contacts). Prints a warning.
    #[arg(long)]
    pub no_redact: bool,
    /// Data dir holding the database (default: from the config, else ./data).
    #[arg(long, env = DATA_DIR_ENV)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// The agent escalated, a case was opened, or an order was escalated.
    Escalated,
    /// The agent answered and nothing was escalated.
    AnsweredByAgent,
    /// A moderator wrote or a case exists.
    Moderator,
    /// An order involved failed.
    Failed,
}

impl From<Only> for OnlyKind {
    fn from(o: Only) -> Self {
        match o {
            Only::Escalated => OnlyKind::Escalated,
            Only::AnsweredByAgent => OnlyKind::AnsweredByAgent,
            Only::Moderator => OnlyKind::Moderator,
            Only::Failed => OnlyKind::Failed,
        }
    }
}

/// Where a bound falls: a date means its first instant (`end_of_day` = the next day's).
pub fn parse_bound(s: &str, end_of_day: bool) -> anyhow::Result<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc).timestamp_millis());
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").with_context(|| {
        format!("{s:?} is neither an RFC 3339 date (2026-01-31) nor a date-time (2026-01-31T12:00:00Z)")
    })?;
    let d = if end_of_day { d.succ_opt().context("date out of range")? } else { d };
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_millis())
}

pub async fn run(args: ExportArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let query = ExportQuery {
        since_ms: args.since.as_deref().map(|s| parse_bound(s, false)).transpose().context("Invalid --since")?,
        until_ms: args.until.as_deref().map(|s| parse_bound(s, true)).transpose().context("Invalid --until")?,
        customer_id: args.customer,
        order_ref: args.order.clone(),
        only: args.only.map(Into::into),
    };
    let file_config = config.map(FileConfig::load).transpose()?;
    let pii = if args.no_redact {
        eprintln!("warning: --no-redact: the export contains personal data (names, usernames, account IDs, contacts); handle it accordingly");
        Pii::keep()
    } else {
        Pii::redact_with(super::wiring::redactor(file_config.as_ref())?)
    };
    let store = super::wiring::open_existing_store(args.data_dir, file_config.as_ref()).await?;

    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::with_capacity(1 << 16, create_private(p)?)),
        None => Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock())),
    };
    let summary = export_to(&store, query, pii, args.format, &mut out).await?;
    out.flush().context("Failed to write the export")?;
    drop(out);
    store.close().await;
    eprintln!(
        "exported {} conversations, {} messages in {:.2}s{}",
        summary.conversations,
        summary.messages,
        started.elapsed().as_secs_f64(),
        args.output.map(|p| format!(" to {}", p.display())).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
