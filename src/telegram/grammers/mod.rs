//! The real Telegram adapter: a dedicated user account over MTProto with
//! grammers-client 0.11. The rest of the crate only sees
//! [`crate::telegram::Messenger`]; no grammers type leaves this module
//! except through [`GrammersMessenger::client`] (for tests and tools).
//!
//! - [`client`]: [`GrammersMessenger`], the `Messenger` implementation.
//! - [`convert`], [`errors`], [`utf16`]: pure conversions (TL → core types,
//!   Telegram errors → [`crate::telegram::MessengerError`]), unit-tested.
//! - [`directory`]: the account's chats and groups' members, for `chats` and `init`.
//! - [`peers`]: chat ids → input peers, customers reachable via a mention.
//! - [`rate_limit`]: the global outgoing token bucket.
//! - [`session`], [`session_store`]: the session file (0600, SQLite via sqlx) and its login state.

pub mod client;
pub mod convert;
pub mod directory;
pub mod errors;
pub mod peers;
pub mod rate_limit;
pub mod session;
pub mod session_store;
pub mod utf16;

pub use client::{GrammersConfig, GrammersMessenger};
pub use rate_limit::RateLimit;
pub use session::{session_path, SESSION_FILE};
pub use session_store::FileSession;
