//! tribute-assistant: automates paid "Custom Product Order" messages from
//! the Tribute Telegram bot.
//!
//! Layout (arrows point to what a part may use):
//!
//! ```text
//! cli ──► daemon ──► orders ─┬─► tribute    (pure parsing, no I/O)
//!                            ├─► backend    (activation client, signing)
//!                            ├─► store      (sqlx, migrations/)
//!                            └─► telegram   (Messenger port + adapters)
//! ```
//!
//! The runtime (the store is the only queue, one clock, how each of
//! Telegram's faults is survived) is described in docs/runtime.md;
//! `simulate` checks it against a seeded hostile Telegram, `chaos` with the
//! real process killed by SIGKILL. The stand-in world (simulated Telegram,
//! MTProto test server, reference backend) lives in `testbed`, which no
//! production module uses.

// The LLM agent.
pub mod agent;
pub mod ask;

pub mod backend;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod domain;
pub mod kb;
pub mod knowledge;
pub mod login;
pub mod orders;
pub mod run;
// URLs with credentials in them, masked wherever they are shown.
pub mod sensitive_url;
// Seeded whole-system simulation on a paused clock.
pub mod simulate;
pub mod store;
pub mod telegram;
pub mod telemetry;
pub mod testbed;
pub mod tls;
pub mod tribute;
pub mod wake;
// ops/webhooks
pub mod check;
pub mod ops;
pub mod webhook;
// Conversation review export (it redacts with knowledge::redact).
pub mod export;
// Fuzz targets for every input from outside; driven by fuzz/ and tests/it/fuzz_smoke.rs.
pub mod fuzzing;

// Customer contact and the moderator escalation chat.
pub mod contact;
pub mod moderator;

/// The SQLite database's file name inside the data dir.
pub const DATABASE_FILE: &str = "tribute-assistant.sqlite";
