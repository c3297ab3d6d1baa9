//! What only the stand-in world (the `tribute-testbed` crate) and the tests
//! need of the library's insides, behind the `test-support` feature: the
//! daemon's own build has none of it. Each item says who uses it. (The
//! paused clock for tests, `runtime::clock::paused`, is behind it too.)

/// The backend's answer rules (`backend::answer`), for the
/// `backend_answer` fuzz target: whether an HTTP answer is taken as the
/// backend's business answer (done) rather than retried or failed.
pub mod backend_answer {
    use crate::backend::answer::{classify, classify_deactivation, Verdict};

    /// `/activate`'s answer taken as done.
    pub fn activation_done(status: u16, retry_after: Option<&str>, body: &[u8]) -> bool {
        matches!(classify(status, retry_after, body), Verdict::Done(_))
    }

    /// `/deactivate`'s answer taken as done.
    pub fn deactivation_done(status: u16, retry_after: Option<&str>, body: &[u8]) -> bool {
        matches!(classify_deactivation(status, retry_after, body), Verdict::Done(_))
    }

    /// The piece of an answer body an error message keeps.
    pub fn snippet(body: &[u8]) -> String {
        crate::backend::answer::snippet(body)
    }
}

/// The knowledge base's point ids for `source`'s chunks, as an ingest
/// writes them (`KnowledgeBase::plan`), for the `knowledge_file` fuzz
/// target: every chunk must get its own.
pub fn knowledge_point_ids(source: &str, chunks: Vec<crate::knowledge::Chunk>, now: &str) -> Vec<String> {
    crate::knowledge::KnowledgeBase::plan(source, chunks, now).into_iter().map(|p| p.id).collect()
}
