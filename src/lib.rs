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

pub mod backend;
pub mod domain;
pub mod telegram;
pub mod tribute;
