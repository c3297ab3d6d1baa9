//! The `tribute-assistant` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use super::telemetry::{self, LogFormat};

/// Automates Tribute "Custom Product Order" messages on a Telegram user
/// account: parse the order, activate it on your backend (HMAC-signed),
/// reply in the Tribute chat with the payment number and press "Send".
/// Orders it cannot finish go to a moderator chat with their raw text.
#[derive(Debug, Parser)]
#[command(name = "tribute-assistant", version, about, long_about = None, propagate_version = true, next_line_help = true)]
pub struct Cli {
    /// Config file (TOML). Secrets come from the environment, never from this file.
    #[arg(long, short, global = true, env = "TRIBUTE_ASSISTANT_CONFIG", display_order = 900)]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, display_order = 901)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `tribute_assistant=debug` (default: info; demo: error).
    #[arg(long, global = true, env = "RUST_LOG", display_order = 902)]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole order flow on the built-in Telegram simulator and a
    /// reference backend, on loopback and in a temp dir, and narrate it.
    Demo(super::demo::DemoArgs),
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
    /// Run the real daemon for simulated days against the Telegram simulator
    /// (with seeded faults), the reference backend and a fresh store, on a
    /// paused clock; check the invariants; exit 1 if any is violated.
    /// Docs: docs/simulate.md.
    Simulate(crate::simulate::SimulateArgs),
    /// Serve the stand-in world for the real daemon: the simulated Telegram
    /// (with the Tribute bot) over MTProto, the reference backend or yours,
    /// and a control API; writes DIR/config.toml so that
    /// `tribute-assistant --config DIR/config.toml run` runs against it.
    /// Prints one JSON line with the addresses when ready; runs until
    /// SIGTERM/SIGINT. Docs: docs/staging.md.
    Testbed(crate::testbed::serve::TestbedArgs),
    /// Crash-only proof: the testbed, the real daemon (`run`) as a child
    /// process, orders posted, and the daemon killed with SIGKILL at chosen
    /// moments (mid backend call, between the Tribute reply and the Send
    /// press, in a customer dialogue) and restarted; checks nothing was
    /// lost or doubled; exits 1 otherwise. Docs: docs/staging.md.
    Chaos(crate::testbed::chaos::ChaosArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let default_filter = match cli.command {
        Command::Demo(_) | Command::Simulate(_) | Command::Chaos(_) => "error",
        // Qdrant Edge logs its WAL and mmap internals at info/warn.
        Command::Kb(_) => "warn,qdrant_edge=error",
        _ => "info",
    };
    telemetry::init(cli.log_format, cli.log.as_deref().unwrap_or(default_filter));
    match cli.command {
        Command::Demo(args) => super::demo::run(args).await,
        Command::Order(super::orders::OrderCommand::Parse { file }) => {
            super::orders::order_parse(file.as_deref(), cli.config.as_deref())
        }
        Command::Orders(cmd) => super::orders::orders(cmd, cli.config.as_deref()).await,
        Command::Login(args) => super::login::run(args, cli.config.as_deref()).await,
        Command::Init(args) => super::init::run(args, cli.config.as_deref()).await,
        Command::Chats(args) => super::chats::run(args, cli.config.as_deref()).await,
        Command::Run => super::run::run(cli.config.as_deref()).await,
        Command::Ask(args) => super::ask::run(args, cli.config.as_deref()).await,
        Command::Check => super::check::run(cli.config.as_deref()).await,
        Command::Kb(cmd) => super::knowledge::run(cmd, cli.config.as_deref()).await,
        Command::Export(args) => super::export::run(args, cli.config.as_deref()).await,
        Command::Report(args) => super::report::run(args, cli.config.as_deref()).await,
        Command::Forget(args) => super::forget::run(args, cli.config.as_deref()).await,
        Command::Simulate(args) => crate::simulate::run(args).await,
        Command::Testbed(args) => crate::testbed::serve::run(args).await,
        Command::Chaos(args) => crate::testbed::chaos::run(args).await,
    }
}
