//! Plain types with invariants. A value of one of these types is valid by
//! construction ("parse, don't validate"), so the rest of the code never
//! re-checks an account ID, an amount or an order reference.

mod account_id;
mod language;
mod money;
mod order_ref;
mod order_state;
mod verdict;

pub use account_id::{AccountId, AccountIdError};
pub use language::{Language, UnknownLanguage};
pub use money::{Currency, Money, MoneyError};
pub use order_ref::OrderRef;
pub use order_state::{EscalationReason, OrderState, TransitionError};
pub use verdict::{Decider, Verdict};

// Customer contact.
mod conversation;
pub use conversation::{Author, DialogueState, Direction, LinkStatus};
