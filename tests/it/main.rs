//! All integration tests in one binary: each file below was its own test
//! binary, and each of those linked the whole crate with Qdrant Edge —
//! gigabytes of disk and minutes of linking per file. One binary links once.
//!
//! A target of the testbed crate (testbed/Cargo.toml), not of the library:
//! many tests run the binary (`CARGO_BIN_EXE_tribute-assistant`), which
//! lives there. So the stand-in world is `tribute_testbed`, the daemon
//! `tribute_assistant` (with its `test-support` feature), and the
//! repository's files are under `support::repo()`.

mod support;

mod agent;
mod backend_contract;
mod backend_kits;
mod cli;
mod contact;
mod crowds;
mod desk;
mod eval;
mod export;
mod first_login;
mod fuzz_smoke;
mod holdout;
mod knowledge;
mod learning;
mod live_kb;
mod moderator;
mod mtproto_server;
mod ops;
mod orders_flow;
mod report;
mod retention;
mod runtime;
mod sim_faults;
mod simulate;
mod store;
mod supervision;
mod telegram_grammers;
mod telegram_sim;
mod testbed;
mod webhook;
