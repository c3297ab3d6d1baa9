//! The `tribute-assistant` command line.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{FileConfig, DATA_DIR_ENV};
use crate::domain::{OrderRef, OrderState};
use crate::store::{OrderRecord, Store};
use crate::telemetry::{self, LogFormat};
use crate::tribute::{parse_order, ParserConfig, RawNotification};

/// Automates Tribute "Custom Product Order" messages on a Telegram user
/// account: parse the order, activate it on your backend (HMAC-signed),
/// reply in the Tribute chat with the payment number and press "Send".
/// Orders it cannot finish go to a moderator chat with their raw text.
#[derive(Debug, Parser)]
#[command(name = "tribute-assistant", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Config file (TOML). Secrets come from the environment, never from this file.
    #[arg(long, short, global = true, env = "TRIBUTE_ASSISTANT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `tribute_assistant=debug` (default: info; demo: error).
    #[arg(long, global = true, env = "RUST_LOG")]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole order flow on the built-in Telegram simulator and a
    /// reference backend, on loopback and in a temp dir, and narrate it.
    Demo(crate::demo::DemoArgs),
    /// Work with single Tribute notifications.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Inspect the orders in the store.
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// Log in to the dedicated Telegram account (interactive: phone, code,
    /// 2FA password). Writes the session file (0600) under the data dir.
    Login(crate::login::LoginArgs),
    /// Run the daemon on the real Telegram account (after `login`).
    Run,
    /// Ask the agent one question without Telegram and print its answer, or
    /// why it would hand the question to a moderator. Uses the LLM from
    /// [agent] in the config, overridden by OPENAI_BASE_URL, OPENAI_API_KEY
    /// and OPENAI_MODEL; with none set, retrieval-only. The turn is stored
    /// like the daemon's.
    Ask(crate::ask::AskArgs),
    /// Check the configuration and every configured dependency: the backend
    /// (a signed GET /health proving both sides hold the same HMAC secret),
    /// the LLM endpoint and the Qdrant server if set, the Telegram session.
    /// Prints ✔/✘ per check with the fix for each ✘; exits 1 if any failed.
    Check,
    /// The knowledge base the assistant answers from: ingest, search, stats.
    #[command(subcommand)]
    Kb(crate::kb::KbCommand),
    // Conversation review export.
    /// Export conversations for review (JSONL, CSV or one HTML page), PII
    /// redacted by default. Schema and filters: docs/export.md.
    Export(crate::export::ExportArgs),
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

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Parse one notification (FILE, or stdin) and print it as JSON. The input
    /// is the message text, or a stored raw message `{"text":…,"entities":[…]}`
    /// as shown on moderator cards. Exits 2 with "not an order" or
    /// "malformed" on stderr otherwise.
    Parse {
        /// File with the message text; stdin when absent.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// List orders, newest first.
    List {
        /// Only orders in this state (received, activation_requested, activated,
        /// replied, confirmed, needs_customer, escalated, failed).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Data dir holding the database (default: from the config, else ./data).
        #[arg(long, env = DATA_DIR_ENV)]
        data_dir: Option<PathBuf>,
    },
    /// Show one order with its full history.
    Show {
        /// Order reference (payment number), e.g. TA-93372553-42.
        order_ref: String,
        #[arg(long)]
        json: bool,
        #[arg(long, env = DATA_DIR_ENV)]
        data_dir: Option<PathBuf>,
    },
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
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Order(OrderCommand::Parse { file }) => order_parse(file.as_deref(), cli.config.as_deref()),
        Command::Orders(cmd) => orders(cmd, cli.config.as_deref()).await,
        Command::Login(args) => crate::login::run(args, cli.config.as_deref()).await,
        Command::Run => crate::run::run(cli.config.as_deref()).await,
        Command::Ask(args) => crate::ask::run(args, cli.config.as_deref()).await,
        Command::Check => crate::check::run(cli.config.as_deref()).await,
        Command::Kb(cmd) => crate::kb::run(cmd, cli.config.as_deref()).await,
        Command::Export(args) => crate::export::run(args, cli.config.as_deref()).await,
        Command::Simulate(args) => crate::simulate::run(args).await,
        Command::Testbed(args) => crate::testbed::serve::run(args).await,
        Command::Chaos(args) => crate::testbed::chaos::run(args).await,
    }
}

fn parser_config(config: Option<&Path>) -> anyhow::Result<ParserConfig> {
    match config {
        Some(p) => FileConfig::load(p)?.parser.parser_config(),
        None => Ok(ParserConfig::default()),
    }
}

fn order_parse(file: Option<&Path>, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?,
        None => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("Failed to read stdin")?;
            s
        }
    };
    // A stored raw message (`{"text":…,"entities":[…]}`, as shown on moderator cards) or plain text.
    let raw = if text.trim_start().starts_with('{') {
        serde_json::from_str::<RawNotification>(&text)
            .context("The input looks like JSON but is not a stored message {\"text\":…,\"entities\":[…]}")?
    } else {
        RawNotification { text, entities: vec![] }
    };
    match parse_order(&raw.text, &raw.entities, &parser_config(config)?) {
        Ok(order) => {
            println!("{}", order.to_cli_json());
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::from(2))
        }
    }
}

async fn open_store(data_dir: Option<PathBuf>, config: Option<&Path>) -> anyhow::Result<Store> {
    let dir = match (data_dir, config) {
        (Some(d), _) => d,
        (None, Some(c)) => FileConfig::load(c)?.data_dir,
        (None, None) => PathBuf::from("./data"),
    };
    let db = dir.join(crate::DATABASE_FILE);
    if !db.exists() {
        anyhow::bail!("No database at {}: pass --data-dir or --config, or run the daemon first", db.display());
    }
    Store::open(&db).await.with_context(|| format!("Failed to open {}", db.display()))
}

async fn orders(cmd: OrdersCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        OrdersCommand::List { state, limit, json, data_dir } => {
            let state =
                state.map(|s| OrderState::parse(&s).with_context(|| format!("Unknown state {s:?}"))).transpose()?;
            let store = open_store(data_dir, config).await?;
            let orders = store.list_orders(state, limit).await?;
            if json {
                for o in &orders {
                    println!("{}", order_json(o));
                }
            } else {
                print!("{}", orders_table(&orders));
            }
            Ok(ExitCode::SUCCESS)
        }
        OrdersCommand::Show { order_ref, json, data_dir } => {
            let r: OrderRef = order_ref.parse().map_err(anyhow::Error::msg)?;
            let store = open_store(data_dir, config).await?;
            let Some(order) = store.order_by_ref(&r).await? else {
                eprintln!("error: no order {r}");
                return Ok(ExitCode::from(1));
            };
            let events = store.order_events(order.id).await?;
            if json {
                let mut v = order_json(&order);
                // Times in unix ms here (`OrderEvent` serialises as the review export's RFC 3339).
                v["events"] = events
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "at": e.at, "from_state": e.from_state, "to_state": e.to_state, "note": e.note,
                        })
                    })
                    .collect();
                println!("{v}");
            } else {
                println!("{}", order_details(&order));
                for e in &events {
                    println!("  {}  {:<22} {}", fmt_ms(e.at), e.to_state, e.note);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

pub fn order_json(o: &OrderRecord) -> serde_json::Value {
    serde_json::json!({
        "order_ref": o.order_ref,
        "state": o.state,
        "customer": o.customer_name,
        "customer_id": o.customer_id,
        "product": o.product,
        "price": o.price,
        "account_ids": o.account_candidates(),
        "activation_id": o.activation_id,
        "escalation_reason": o.escalation_reason,
        "created_at": fmt_ms(o.created_at),
        "updated_at": fmt_ms(o.updated_at),
    })
}

fn order_details(o: &OrderRecord) -> String {
    let accounts: Vec<&str> = o.account_candidates().iter().map(|a| a.as_str()).collect();
    format!(
        "Order {}\n  state:      {}\n  customer:   {}{}\n  product:    {}\n  price:      {}\n  account ID: {}\n  activation: {}\n  escalation: {}\nHistory:",
        o.order_ref,
        o.state,
        o.customer_name,
        o.customer_id.map(|id| format!(" (id {id})")).unwrap_or_default(),
        o.product,
        o.price,
        if accounts.is_empty() { "—".to_owned() } else { accounts.join(", ") },
        o.activation_id.as_deref().unwrap_or("—"),
        o.escalation_reason.as_deref().unwrap_or("—"),
    )
}

/// A plain-text table; column widths count characters, not bytes, so
/// Cyrillic names line up.
pub fn orders_table(orders: &[OrderRecord]) -> String {
    let rows: Vec<[String; 6]> = orders
        .iter()
        .map(|o| {
            [
                o.order_ref.to_string(),
                o.state.to_string(),
                o.customer_name.clone(),
                o.product.clone(),
                o.price.to_string(),
                o.account_candidates().iter().map(|a| a.as_str()).collect::<Vec<_>>().join(","),
            ]
        })
        .collect();
    table(&["ORDER", "STATE", "CUSTOMER", "PRODUCT", "PRICE", "ACCOUNT"], &rows)
}

pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < N {
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
