//! How well is the assistant doing? The automation report: figures about
//! orders, customer questions and moderators over a time range, their
//! trend per day or week, and the content gaps (escalated questions
//! grouped, each a suggested FAQ entry). `tribute-assistant report` prints
//! it as a terminal table, one HTML page or JSON (docs/report.md); the
//! moderator chat gets a summary on demand (`/report`) and weekly
//! (`[report] weekly`, [`weekly`]).
//!
//! Every figure is an SQL aggregate over the store (`store::report`), so a
//! report of 100k orders and 100k conversations runs in constant memory.
//!
//! ## Definitions
//!
//! The range is `[since, until)` in UTC. "Now" is when the report is made.
//!
//! **Orders** are the Custom Product Orders received (paid) in the range,
//! counted by where they are now:
//! - *completed*: the Send button was pressed (`confirmed`), split into
//!   - *by a moderator*: a moderator gave an account ID or `/retry` on one
//!     of the order's cases (an obeyed `account`/`retry` in the audit log);
//!   - *after contact*: otherwise, when the customer was asked for their
//!     account ID in a private chat (the order has a conversation link);
//!   - *automatically*: neither — no person was involved;
//! - *refunded*, *failed*: in those final states;
//! - *open*: anything else (in flight, waiting for the customer
//!   `needs_customer`, or with a moderator `escalated`), with the age of
//!   the oldest.
//!
//! *Payment to Send* is the time from storing the Tribute notification to
//! the order's `confirmed` event, for completed orders.
//!
//! **Questions** are the agent's turns in customer conversations in the
//! range (one per customer message the agent handled; `ask` on the command
//! line is not counted). Each has one outcome:
//! - *escalated*: the agent handed it to a person;
//! - *reopened*: the agent answered, but within the resolution window
//!   (`[report] resolution_window_hours`, 24 by default) the customer asked
//!   again (another agent turn) or a question case was opened for the
//!   conversation;
//! - *pending*: answered, the window has not ended yet and nothing followed;
//! - *resolved by the agent*: answered, the window ended, the customer did
//!   not ask again and no case was opened.
//!
//! The resolution rate is resolved / (asked − pending). *Answered by a
//! moderator*: escalated questions a moderator wrote to the customer after.
//! *First answer*: from the question (the agent's turn began) to the agent's
//! message for an answered one, to a moderator's message for an escalated
//! one. A *resolved conversation* had at least one resolved question in the
//! range and none escalated or reopened; its messages are those in and out
//! in the range (internal notes are not).
//!
//! **Moderators**: cases opened and closed in the range (by reason); time
//! from a case opened to the first obeyed moderator action on it (viewing
//! it with `/case` does not count); open cases now by age; obeyed commands
//! and replies per moderator; refused messages from anyone else.
//!
//! **Content gaps** ([`gaps`]): the escalated questions of the range grouped
//! by lexical similarity, the largest groups first, each with its example
//! questions and the moderators' answers. A group's id (`G` and an agent
//! turn id) approves it in the moderator chat with `/learn G…`, which adds
//! the question and the moderator's answer to the knowledge base like a
//! `/learn` on a case.

pub mod figures;
pub mod gaps;
pub mod html;
pub mod range;
pub mod settings;
pub mod summary;
pub mod text;
mod units;
pub mod weekly;
pub mod words;

pub use figures::{build, Options, Report};
pub use range::{Bucket, Range};
pub use settings::{ReportSection, ReportSettings};
pub use weekly::Weekly;
