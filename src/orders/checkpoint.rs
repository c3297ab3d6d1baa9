//! Named points between the workflow's steps where a test can stop the
//! daemon as if the process had been killed there.

use std::sync::Arc;

use crate::domain::OrderRef;

/// A point in the workflow. "After X" points fall between a side effect and
/// the commit that records it: the hardest places to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Checkpoint {
    /// Activation requested is committed; the backend has not been called.
    BeforeActivate,
    /// The backend activated; the `activated` state is not committed yet.
    AfterActivate,
    /// `activated` is committed; no reply sent.
    BeforeReply,
    /// The reply is sent; `replied` is not committed yet.
    AfterReply,
    /// The Send button is found and noted; not pressed yet.
    BeforePress,
    /// Send was pressed; `confirmed` is not committed yet.
    AfterPress,
}

impl Checkpoint {
    pub const ALL: [Checkpoint; 6] = [
        Checkpoint::BeforeActivate,
        Checkpoint::AfterActivate,
        Checkpoint::BeforeReply,
        Checkpoint::AfterReply,
        Checkpoint::BeforePress,
        Checkpoint::AfterPress,
    ];
}

/// Returns true to stop the workflow at that point.
pub type CheckpointHook = Arc<dyn Fn(Checkpoint, &OrderRef) -> bool + Send + Sync>;
