//! How an activation call fails, apart from the client so that reading an
//! answer (`answer`) and making the call (`client`) share it.

/// Why an activation call did not produce an [`ActivationOutcome`](super::ActivationOutcome).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// Network error, timeout or 5xx on every attempt. Transient: park the
    /// order and call again later with the same key.
    #[error("backend unavailable after {attempts} attempt(s): {last_error}")]
    Unavailable { attempts: u32, last_error: String },
    /// A 4xx other than the documented business answers (401 included).
    /// Permanent: retrying the same request will not help.
    #[error("backend rejected the request with HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    /// A success status with a body we cannot read as an outcome.
    #[error("backend answered with an unexpected body: {0}")]
    Protocol(String),
    /// Only from [`BackendClient::new`](super::BackendClient::new): the configuration cannot work.
    #[error("invalid backend configuration: {0}")]
    InvalidConfig(String),
}
