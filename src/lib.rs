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
//!                      └─► telegram (Messenger port: grammers | testbed::sim)
//! ```
//!
//! An order: the event loop stores the Tribute message and its parsed order
//! (`orders::ingest`); the order worker moves it one committed step at a time
//! (activate, reply, press Send); a missing or refused account ID goes to the
//! customer dialogue (`contact`), anything unfinished to a moderator card.
//! A question: the contact task takes it from the inbox, the `agent` answers
//! from `knowledge` or opens a case. Everything pending is a row with a due
//! time on one clock (docs/runtime.md); `testbed`, `simulate` and `fuzzing`
//! are the stand-in world and the proofs, used by no production part;
//! `export` and `report` read the store for people.

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

// The stand-in world and the proofs that run the daemon in it.
pub mod fuzzing;
pub mod simulate;
pub mod testbed;

/// The SQLite database's file name inside the data dir.
pub const DATABASE_FILE: &str = "tribute-assistant.sqlite";
