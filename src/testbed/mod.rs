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

pub mod backend;
pub mod mtproto;
pub mod sandbox;
pub mod sim;
