//! The daemon's commands on the `tribute-assistant` command line. The
//! binary itself, with the stand-in world's commands beside these, is the
//! `tribute-testbed` crate's (testbed/src/cli.rs).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::telemetry::{self, LogFormat};

/// The options every command takes. `global`: they may also follow the
/// command (`tribute-assistant run --config c.toml`).
#[derive(Debug, Args)]
pub struct Globals {
    /// Config file (TOML). Secrets come from the environment, never from this file.
    #[arg(long, short, global = true, env = "TRIBUTE_ASSISTANT_CONFIG", display_order = 900)]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, display_order = 901)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `tribute_assistant=debug` (default: info; demo: error).
    #[arg(long, global = true, env = "RUST_LOG", display_order = 902)]
    pub log: Option<String>,
}

impl Globals {
    /// Installs the log subscriber: `--log` (or `RUST_LOG`), else the
    /// command's own default.
    pub fn init_telemetry(&self, default_filter: &str) {
        telemetry::init(self.log_format, self.log.as_deref().unwrap_or(default_filter));
    }
}

/// The line `--help` opens with: the package's description.
pub const ABOUT: &str = env!("CARGO_PKG_DESCRIPTION");

/// The daemon's own commands. The binary (the `tribute-testbed` crate)
/// flattens them into its command line beside the stand-in world's
/// (`demo`, `simulate`, `testbed`, `chaos`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with single Tribute notifications.
    #[command(subcommand)]
    Order(super::orders::OrderCommand),
    /// Inspect the orders in the store.
    #[command(subcommand)]
    Orders(super::orders::OrdersCommand),
    /// Log in to the dedicated Telegram account (interactive: phone, code,
    /// 2FA password). Writes the session file (0600) under the data dir.
    Login(super::login::LoginArgs),
    /// Guided setup: asks the few questions a config needs (logging the
    /// account in if needed, offering its chats as the choices), checks the
    /// backend handshake and writes a commented config.toml with the
    /// secrets in 0600 files beside it. Docs: docs/first-login.md.
    Init(super::init::InitArgs),
    /// List the logged-in account's chats with the numeric ids and kinds
    /// the config takes (user, bot, group, channel), find the Tribute bot,
    /// and list the members of its groups (for the moderator chat and the
    /// moderators). Docs: docs/first-login.md.
    Chats(super::chats::ChatsArgs),
    /// Run the daemon on the real Telegram account (after `login`).
    Run,
    /// Ask the agent one question without Telegram and print its answer, or
    /// why it would hand the question to a moderator. Uses the LLM from
    /// [agent] in the config, overridden by OPENAI_BASE_URL, OPENAI_API_KEY
    /// and OPENAI_MODEL; with none set, retrieval-only. The turn is stored
    /// like the daemon's.
    Ask(super::ask::AskArgs),
    /// Check the configuration and every configured dependency: the backend
    /// (a signed GET /health proving both sides hold the same HMAC secret),
    /// the LLM endpoint and the Qdrant server if set, the Telegram session.
    /// Prints ✔/✘ per check with the fix for each ✘; exits 1 if any failed.
    Check,
    /// The knowledge base the assistant answers from: ingest, search, stats.
    #[command(subcommand)]
    Kb(super::knowledge::KbCommand),
    // Conversation review export.
    /// Export conversations for review (JSONL, CSV or one HTML page), PII
    /// redacted by default. Schema and filters: docs/export.md.
    Export(super::export::ExportArgs),
    /// How well it is doing: orders completed automatically, after contact or
    /// by a moderator; questions resolved by the agent or escalated;
    /// moderators' cases; the trend; content gaps. Text, HTML or JSON.
    /// Definitions and schema: docs/report.md.
    Report(super::report::ReportArgs),
    /// Erase one customer's personal data (a request under 152-FZ or the
    /// GDPR); their orders keep the money facts under a pseudonym.
    ///
    /// Erases their conversation's messages, what they sent and were sent,
    /// the agent's turns, their cases' texts, and the answers `/learn`ed
    /// from their conversation, in the store and in the knowledge base's
    /// index. Their orders keep the money facts (state history, amount,
    /// payment number, activation id) under a pseudonym. Refused, touching
    /// nothing, while the customer has work in progress (an order in
    /// flight, an open case, a message not yet delivered or handled);
    /// running it again is harmless. Prints what kinds of data went and how
    /// many rows; the erasure log keeps the same, never whose. While the
    /// daemon runs its index is locked: the removal from the index then
    /// waits for the daemon (with the agent on) or the next `forget`.
    /// `/forget ID` in the moderator chat does the same. Docs:
    /// docs/privacy.md.
    Forget(super::forget::ForgetArgs),
}

impl Command {
    /// The log filter when neither `--log` nor `RUST_LOG` gives one.
    pub fn default_log_filter(&self) -> &'static str {
        match self {
            // Qdrant Edge logs its WAL and mmap internals at info/warn.
            Command::Kb(_) => "warn,qdrant_edge=error",
            _ => "info",
        }
    }
}

/// Runs one of the daemon's commands (the log subscriber is already
/// installed: [`Globals::init_telemetry`]).
pub async fn run(command: Command, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Order(super::orders::OrderCommand::Parse { file }) => {
            super::orders::order_parse(file.as_deref(), config)
        }
        Command::Orders(cmd) => super::orders::orders(cmd, config).await,
        Command::Login(args) => super::login::run(args, config).await,
        Command::Init(args) => super::init::run(args, config).await,
        Command::Chats(args) => super::chats::run(args, config).await,
        Command::Run => super::run::run(config).await,
        Command::Ask(args) => super::ask::run(args, config).await,
        Command::Check => super::check::run(config).await,
        Command::Kb(cmd) => super::knowledge::run(cmd, config).await,
        Command::Export(args) => super::export::run(args, config).await,
        Command::Report(args) => super::report::run(args, config).await,
        Command::Forget(args) => super::forget::run(args, config).await,
    }
}
