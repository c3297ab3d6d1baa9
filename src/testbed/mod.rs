//! The stand-in world: everything the daemon talks to, simulated, for
//! tests, `demo`, `simulate` and the `testbed` command. Nothing in the
//! production modules depends on it.
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

pub mod backend;
pub mod backend_probe;
pub mod chaos;
pub mod control;
pub mod mtproto;
pub mod sandbox;
pub mod serve;
pub mod sim;
