//! The daemon's runtime: the one clock ([`clock`]), wake-up hints
//! ([`wake`]), the shutdown flag ([`shutdown`]), the one backoff formula
//! ([`backoff`]), the allocator's arenas ([`memory`]), and keeping the
//! tasks alive for months: no single input can stop a task. One item (an
//! inbox message) that fails or panics is isolated ([`isolate`]) and
//! retried from the store a bounded number of times, then quarantined with
//! one card for the moderators; a task that still ends is restarted with
//! backoff ([`supervisor`]); the [`TaskBoard`] is what `/healthz` and
//! `/metrics` read to say which task is down or stuck.

pub mod backoff;
mod board;
pub mod clock;
pub mod isolate;
pub mod memory;
pub mod shutdown;
pub mod supervisor;
pub mod wake;

pub use board::{TaskBoard, TaskHandle, TaskReport};
