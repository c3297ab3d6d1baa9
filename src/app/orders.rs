//! `order parse` and `orders list|show`: single notifications and the orders in the store.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::config::{FileConfig, DATA_DIR_ENV};
use super::table::{fmt_ms, table};
use crate::domain::{EscalationReason, OrderRef, OrderState};
use crate::store::{OrderRecord, Store};
use crate::tribute::{parse_order, ParserConfig, RawNotification};

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
        /// Show at most this many orders.
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
        /// Print one JSON object (the order with its events) instead of text.
        #[arg(long)]
        json: bool,
        /// Data dir holding the database (default: from the config, else ./data).
        #[arg(long, env = DATA_DIR_ENV)]
        data_dir: Option<PathBuf>,
    },
}

fn parser_config(config: Option<&Path>) -> anyhow::Result<ParserConfig> {
    match config {
        Some(p) => FileConfig::load(p)?.parser.parser_config(),
        None => Ok(ParserConfig::default()),
    }
}

pub fn order_parse(file: Option<&Path>, config: Option<&Path>) -> anyhow::Result<ExitCode> {
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
    let file = config.map(FileConfig::load).transpose()?;
    super::wiring::open_existing_store(data_dir, file.as_ref()).await
}

pub async fn orders(cmd: OrdersCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
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
        o.escalation_reason.map_or("—", EscalationReason::as_str),
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
