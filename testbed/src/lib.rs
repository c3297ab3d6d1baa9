//! tribute-testbed: the stand-in world, the proofs that run the daemon in
//! it, and the one `tribute-assistant` binary. The daemon's library
//! (`tribute_assistant`, the repository root) knows nothing of this crate;
//! this crate uses it as any program would, plus the few hooks behind its
//! `test-support` feature.
//!
//! The world: everything the daemon talks to, simulated, for tests, `demo`,
//! `simulate` and the `testbed` command.
//!
//! - [`sim`]: Telegram as our account sees it — chats, users, the Tribute
//!   bot, Telegram's limits and a seeded fault plan.
//! - [`mtproto`]: an MTProto server serving that world, so the real
//!   grammers adapter can be driven over a socket.
//! - [`backend`]: the reference publisher backend (signed `/activate`),
//!   the worked example publishers copy.
//! - [`sandbox`]: the wiring of the three with a daemon on a fresh store.
//! - [`serve`]: the `testbed` command, the three as one process with a
//!   control API ([`control`]) for the real daemon to be pointed at; with
//!   the publisher's backend it checks at start that it answers
//!   ([`backend_probe`]).
//! - [`chaos`]: that real daemon, as a child process, killed with SIGKILL
//!   at chosen moments while orders flow; nothing may be lost or doubled.
//!
//! The proofs and the commands:
//!
//! - [`simulate`]: the `simulate` command, the real daemon for simulated
//!   days in the world, with its invariants checked.
//! - [`fuzzing`]: the fuzz targets, one per boundary where bytes from
//!   outside enter the daemon (driven by `fuzz/` and `tests/it/fuzz_smoke.rs`).
//! - [`demo`]: the `demo` command, the order flow narrated.
//! - [`cli`]: the binary's command line, the daemon's commands and these.

#[cfg(feature = "world")]
pub mod backend;
#[cfg(feature = "world")]
pub mod backend_probe;
#[cfg(feature = "world")]
pub mod chaos;
#[cfg(feature = "world")]
pub mod control;
#[cfg(feature = "world")]
pub mod mtproto;
#[cfg(feature = "world")]
pub mod sandbox;
#[cfg(feature = "world")]
pub mod serve;
#[cfg(feature = "world")]
pub mod sim;

pub mod cli;
#[cfg(feature = "world")]
pub mod demo;
#[cfg(feature = "world")]
pub mod fuzzing;
#[cfg(feature = "world")]
pub mod simulate;
