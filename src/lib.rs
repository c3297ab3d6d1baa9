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

// The application shell: command line, one file per command, configuration, wiring.
pub mod app;

// The parts.
pub mod agent;
pub mod backend;
pub mod contact;
pub mod daemon;
pub mod domain;
pub mod export;
pub mod knowledge;
pub mod moderator;
pub mod ops;
pub mod orders;
pub mod store;
pub mod telegram;
pub mod tribute;
pub mod webhook;

// Small shared primitives every part may use.
pub mod clock;
pub mod http;
pub mod sensitive_url;
pub mod settings;
pub mod shutdown;
pub mod template;
pub mod wake;

// The stand-in world and the proofs that run the daemon in it.
pub mod fuzzing;
pub mod simulate;
pub mod testbed;

/// The SQLite database's file name inside the data dir.
pub const DATABASE_FILE: &str = "tribute-assistant.sqlite";
