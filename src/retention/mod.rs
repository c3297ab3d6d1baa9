//! A bounded store and customers' privacy.
//!
//! Why: nothing else ever deletes. Every customer message is stored twice
//! (inbox and conversation), also when rate-limited; agent turns, the
//! outboxes, audit lines and raw webhook bodies grow with every day, so one
//! sender at Telegram's pace adds about 100 MB a day for as long as the
//! daemon runs. And customers' names, usernames and messages are personal
//! data: a publisher in Russia is a personal-data operator (152-FZ), one
//! serving the EU is a controller (GDPR); both must keep personal data no
//! longer than its purpose needs and erase one person's data on request.
//!
//! - [`Pruner`] deletes or scrubs, on the one clock and in small batches,
//!   what is past its window (`[retention]`, [`RetentionSettings`]), never
//!   anything pending, and hands unmatched Tribute purchases to a moderator
//!   after their deadline (they are not matched automatically any more).
//! - [`forget_customer`] (the `forget` command and `/forget` in the
//!   moderator chat) erases one customer at once, including the answers
//!   `/learn`ed from their conversation, from the store and from the
//!   knowledge base's index ([`remove_from_index`]).
//!
//! Either way each order keeps its money facts (state history, amount,
//! payment number, activation id, purchase) with the customer replaced by
//! a pseudonym: accounting needs them, and they no longer say who paid.
//! What is kept, for how long and why: docs/privacy.md.

mod forget;
mod pruner;
mod settings;

pub use forget::{forget_customer, remove_from_index, CustomerId, IndexEraser, Requester};
pub use pruner::{PruneReport, Pruner};
pub use settings::{RetentionSection, RetentionSettings};
