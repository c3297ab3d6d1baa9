//! The reference publisher backend: a real axum server on loopback that
//! implements `docs/backend-api.md` strictly (signatures, 300 s window,
//! replay refusal, idempotency). Tests, the `demo` command and the
//! benchmark run the client against it, and a publisher's developer can
//! read it as a worked example of the receiving side.

mod handlers;
mod ledger;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;

pub use ledger::BackendStats;

use handlers::{Secrets, Shared};
use ledger::Ledger;
use tribute_assistant::backend::signing::Accept;
use tribute_assistant::http::ServerHandle;

/// A running reference backend. Dropping it stops the server too; call
/// [`shutdown`](Self::shutdown) to wait until it has stopped.
pub struct ReferenceBackend {
    shared: Arc<Shared>,
    server: ServerHandle,
}

impl std::fmt::Debug for ReferenceBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceBackend").field("addr", &self.server.addr()).finish_non_exhaustive()
    }
}

impl ReferenceBackend {
    /// Binds `127.0.0.1:0` and serves in a background task.
    pub async fn start(secret: SecretString) -> std::io::Result<Self> {
        Self::start_with_secrets(secret, None).await
    }

    /// Like [`start`](Self::start), accepting signatures made with either
    /// secret (a rotation in progress: `current` is the new one).
    pub async fn start_with_secrets(current: SecretString, previous: Option<SecretString>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let shared = Arc::new(Shared {
            secrets: Mutex::new(Secrets { current, previous, accept: Accept::default() }),
            ledger: Mutex::new(Ledger::default()),
        });
        let server = ServerHandle::serve(listener, handlers::router(shared.clone()), "reference backend")?;
        Ok(Self { shared, server })
    }

    /// Base URL to put in [`BackendConfig::url`](tribute_assistant::backend::BackendConfig), e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A known account with no pending orders (activations answer 404).
    pub fn add_account(&self, account: &str) {
        self.shared.ledger().add_account(account);
    }

    /// One more pending order for `product` (case-insensitive) on `account`; makes the account known.
    pub fn add_pending(&self, account: &str, product: &str) {
        self.shared.ledger().add_pending(account, product);
    }

    /// The next `n` authenticated `/activate` requests are refused with a
    /// 400 (the order fails until a moderator's `/retry`).
    pub fn reject_next(&self, n: u32) {
        self.shared.ledger().reject_next = n;
    }

    /// The next `n` authenticated `/activate` requests answer 503 (replaces any earlier count).
    pub fn fail_next(&self, n: u32) {
        self.shared.ledger().fail_next = n;
    }

    /// Every request is held for `d` before it is answered. `/activate` is
    /// decided (and committed) first, so a client that times out meanwhile
    /// sees `already_activated` on its retry, as with a real slow backend.
    pub fn set_delay(&self, d: Duration) {
        self.shared.ledger().delay = d;
    }

    /// Starts a secret rotation: `new` becomes the current secret and the
    /// old current one stays accepted as the previous secret.
    pub fn rotate_secret(&self, new: SecretString) {
        let mut secrets = self.shared.secrets();
        let old = std::mem::replace(&mut secrets.current, new);
        secrets.previous = Some(old);
    }

    /// Ends the `v1` → `v2` migration (`true`): only a `v2` signature, which
    /// covers method and path, is accepted from now on. `false` (the
    /// default) accepts either.
    pub fn require_v2(&self, on: bool) {
        self.shared.secrets().accept = if on { Accept::V2Only } else { Accept::V1OrV2 };
    }

    /// Ends a rotation: only the current secret is accepted from now on.
    pub fn drop_previous_secret(&self) {
        self.shared.secrets().previous = None;
    }

    /// Real deactivations for this idempotency key (0 or 1).
    pub fn deactivations_for(&self, order_ref: &str) -> u32 {
        self.shared.ledger().deactivations_for(order_ref)
    }

    pub fn stats(&self) -> BackendStats {
        self.shared.ledger().stats
    }

    /// Real activations for this idempotency key (0 or 1).
    pub fn activations_for(&self, order_ref: &str) -> u32 {
        self.shared.ledger().activations_for(order_ref)
    }

    /// `/activate` requests that carried this `Idempotency-Key`.
    pub fn requests_for(&self, order_ref: &str) -> u32 {
        self.shared.ledger().requests_for(order_ref)
    }

    /// Total time spent inside the handler (configured delay included) for this key.
    pub fn handler_time(&self, order_ref: &str) -> Duration {
        self.shared.ledger().handler_time(order_ref)
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), then returns.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
