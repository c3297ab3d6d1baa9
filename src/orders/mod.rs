//! The order workflow: activate on the backend, reply in the Tribute chat,
//! press Send (docs/runtime.md).
//!
//! [`ingest`] turns a Tribute chat message into a stored row (and an order
//! or a moderator card); [`OrderProcessor`] drives one order from its
//! stored state to the next, committing each transition before the side
//! effect that follows it, so any step can be interrupted and resumed.
//! [`outage::watch`] tells the moderator chat, once per outage, about
//! orders that wait too long for a failing backend or Telegram.

mod checkpoint;
mod ingest;
pub mod outage;
mod workflow;

pub use checkpoint::{Checkpoint, CheckpointHook};
pub use ingest::{ingest, IngestConfig};
pub use workflow::{OrderProcessor, WorkflowConfig, WorkflowError, DEFAULT_REPLY_TEMPLATE};
