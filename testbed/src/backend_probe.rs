//! `testbed --backend URL` asks the publisher's backend for the signed
//! `GET /health` handshake (docs/backend-api.md) once at start, so a wrong
//! URL, a backend that is down or one with another secret shows at once —
//! not minutes later as the daemon's activations failing. It only warns:
//! the backend may well come up after the testbed.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use tribute_assistant::backend::{BackendClient, BackendConfig, HealthError, BACKEND_SECRET_ENV};

/// How long the probe waits for an answer (a backend on the same machine
/// or network answers well within it).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the secret the daemon signs with came from, for the advice.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// `TRIBUTE_ASSISTANT_BACKEND_SECRET`.
    Env,
    /// Made by the testbed and written to this file.
    Generated(PathBuf),
}

/// `None` when the handshake passed; otherwise what is wrong and what to do,
/// in one line for stderr and the ready line.
pub async fn probe(url: &str, secret: SecretString, source: &SecretSource) -> Option<String> {
    let config = BackendConfig { timeout: PROBE_TIMEOUT, max_attempts: 1, ..BackendConfig::new(url, secret) };
    let client = match BackendClient::new(config) {
        Ok(c) => c,
        Err(e) => return Some(format!("the backend at {url} cannot be checked: {e}")),
    };
    let health = client.health_url().into_owned();
    let error = client.health().await.err()?;
    Some(advice(&health, &error, source))
}

fn advice(health: &str, error: &HealthError, source: &SecretSource) -> String {
    match error {
        HealthError::Unreachable(why) => format!(
            "the backend does not answer at {health} ({why}): start it or fix --backend. The testbed runs \
             anyway; the daemon's activations fail until the backend answers"
        ),
        HealthError::SignatureRefused { code, .. } => {
            let fix = match source {
                SecretSource::Generated(path) => format!(
                    "give it the secret the testbed made, in {} (or start the testbed with {BACKEND_SECRET_ENV} \
                     set to your backend's)",
                    path.display()
                ),
                SecretSource::Env => format!("it does not hold the secret in {BACKEND_SECRET_ENV}"),
            };
            let clock = if code == "stale_timestamp" { "; or the two clocks are more than 300 s apart" } else { "" };
            format!("the backend at {health} refused our signature ({code}): {fix}{clock}")
        }
        other => format!(
            "the backend answers at {health}, but the signature handshake failed: {other} \
             (docs/backend-api.md, \"The signature handshake\")"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_a_warning_that_says_the_backend_does_not_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = format!("http://{addr}/api/tribute");
        let warning = probe(&url, SecretString::from("s3cret-value"), &SecretSource::Env).await.expect("a warning");
        assert!(warning.contains("does not answer") && warning.contains(&addr.to_string()), "{warning}");
        assert!(!warning.contains("s3cret"), "{warning}");
    }

    #[test]
    fn a_refused_signature_says_which_secret_to_give_the_backend() {
        let refused = HealthError::SignatureRefused { code: "bad_signature".into(), message: String::new() };
        let file = SecretSource::Generated(PathBuf::from("/srv/staging/backend.secret"));
        let text = advice("http://b/health", &refused, &file);
        assert!(text.contains("/srv/staging/backend.secret"), "{text}");
        assert!(advice("http://b/health", &refused, &SecretSource::Env).contains(BACKEND_SECRET_ENV));
    }
}
