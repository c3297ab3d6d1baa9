//! The `report` command: parse the range, open the store, build the report,
//! write it in the chosen format.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::config::{FileConfig, DATA_DIR_ENV};
use super::export::parse_bound;
use crate::export::output::create_private;
use crate::report::gaps::Vectorizer;
use crate::report::range::parse_relative;
use crate::report::{Bucket, Range, ReportSettings};

/// How well the assistant is doing: orders completed automatically, after
/// contact or by a moderator; questions resolved by the agent or
/// escalated; moderators' cases and actions; the trend per day or week; the
/// content gaps (escalated questions grouped, each a suggested FAQ entry).
/// Definitions and the JSON schema: docs/report.md.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Start of the range: a date (`2026-01-31`, start of day UTC), a date-time, or a span back from now (`7d`, `2w`, `12h`).
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// End of the range (exclusive): a date includes that whole day (UTC); default now.
    #[arg(long)]
    pub until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Trend per day or per week (default: per day up to 62 days, else per week).
    #[arg(long, value_enum)]
    pub by: Option<Bucket>,
    /// How many content gaps to list (largest first).
    #[arg(long, default_value_t = 20)]
    pub gaps: usize,
    /// Write here instead of stdout (created 0600; a symbolic link is refused).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Data dir holding the database (default: from the config, else ./data).
    #[arg(long, env = DATA_DIR_ENV)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A terminal table with bar characters for the trend.
    Text,
    /// One self-contained page with charts (inline SVG).
    Html,
    /// The figures as one JSON document (docs/report.md).
    Json,
}

/// `[since, until)` from the command line, as of `now`.
pub fn parse_range(since: &str, until: Option<&str>, by: Option<Bucket>, now: i64) -> anyhow::Result<Range> {
    let until_ms = until.map(|u| parse_bound(u, true)).transpose().context("Invalid --until")?.unwrap_or(now);
    match parse_relative(since) {
        Some(back) => {
            let r = Range::last(back, until_ms)?;
            Range::new(r.since_ms, r.until_ms, by)
        }
        None => {
            let since_ms = parse_bound(since, false)
                .context("Invalid --since (a date, a date-time, or a span like 7d, 2w, 12h)")?;
            Range::new(since_ms, until_ms, by)
        }
    }
}

pub async fn run(args: ReportArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let now = crate::runtime::clock::now_ms();
    let range = parse_range(&args.since, args.until.as_deref(), args.by, now)?;
    let file_config = config.map(FileConfig::load).transpose()?;
    let settings = match &file_config {
        Some(c) => c.report.settings()?,
        None => ReportSettings::default(),
    };
    let redactor = super::wiring::redactor(file_config.as_ref())?;
    let store = super::wiring::open_existing_store(args.data_dir, file_config.as_ref()).await?;
    let vectorizer = Vectorizer::new();
    let opts = crate::report::Options { gaps: args.gaps, vectorizer: &vectorizer, redactor: &redactor };
    let report = crate::report::build(&store, &range, &settings, now, &opts).await;
    store.close().await;
    let report = report.context("Failed to read the report from the store")?;
    let text = match args.format {
        ReportFormat::Text => crate::report::text::render(&report),
        ReportFormat::Html => crate::report::html::render(&report),
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(create_private(p)?),
        None => Box::new(std::io::stdout().lock()),
    };
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("Failed to write the report")?;
    if let Some(p) = &args.output {
        eprintln!("report written to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-14T15:00:00Z.
    const NOW: i64 = 1_768_402_800_000;

    #[test]
    fn ranges_from_the_command_line() {
        let r = parse_range("7d", None, None, NOW).unwrap();
        assert_eq!((r.since_ms, r.until_ms, r.bucket), (NOW - 7 * 86_400_000, NOW, Bucket::Day));
        let r = parse_range("2026-01-01", Some("2026-01-10"), Some(Bucket::Week), NOW).unwrap();
        assert_eq!(r.since_ms, parse_bound("2026-01-01", false).unwrap());
        assert_eq!(r.until_ms, parse_bound("2026-01-11", false).unwrap(), "--until includes its day");
        assert_eq!(r.bucket, Bucket::Week);
        assert!(parse_range("yesterday", None, None, NOW).unwrap_err().to_string().contains("--since"));
        assert!(parse_range("2026-02-01", Some("2026-01-01"), None, NOW).is_err(), "an empty range");
    }
}
