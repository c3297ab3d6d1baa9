//! tribute-assistant: automates paid "Custom Product Order" messages from
//! the Tribute Telegram bot. The map, the ports and the runtime model are in
//! docs/architecture.md; this is the short version.
//!
//! ```text
//! app (command line, config, wiring)
//!  └─► daemon (tasks) ─┬─► orders ──► backend (signed HTTP)   tribute (parsing)
//!                      ├─► contact ◄─► moderator               domain (valid values)
//!                      │     └─► agent ──► Llm port · knowledge ──► index
//!                      ├─► store (SQLite: the only queue)
//!                      └─► telegram (Messenger port: grammers | tribute_testbed::sim)
//! ```
//!
//! An order: the event loop stores the Tribute message and its parsed order
//! (`orders::ingest`); the order worker moves it one committed step at a time
//! (activate, reply, press Send); a missing or refused account ID goes to the
//! customer dialogue (`contact`), anything unfinished to a moderator card.
//! A question: the contact task takes it from the inbox, the `agent` answers
//! from `knowledge` or opens a case. Everything pending is a row with a due
//! time on one clock (docs/runtime.md); `export` and `report` read the
//! store for people.
//!
//! The stand-in world (the simulated Telegram, the reference backend, the
//! sandbox), the proofs that run the daemon in it (`simulate`, `chaos`, the
//! fuzz targets), `demo` and the binary itself are the `tribute-testbed`
//! crate (testbed/), which depends on this one; this library knows nothing
//! of them. What only they need of it is behind the `test-support` feature.

// The application shell: command line, one file per command, configuration, wiring.
pub mod app;

// The parts.
pub mod agent;
pub mod backend;
pub mod config;
pub mod contact;
pub mod daemon;
pub mod domain;
pub mod export;
pub mod knowledge;
pub mod moderator;
pub mod ops;
pub mod orders;
pub mod report;
pub mod retention;
pub mod runtime;
pub mod store;
pub mod telegram;
pub mod tribute;
pub mod webhook;

// Small shared primitives every part may use.
pub mod http;
pub mod private_file;
pub mod template;

// What only the testbed crate and the tests use (feature `test-support`).
#[cfg(feature = "test-support")]
pub mod test_support;

/// The SQLite database's file name inside the data dir.
pub const DATABASE_FILE: &str = "tribute-assistant.sqlite";
