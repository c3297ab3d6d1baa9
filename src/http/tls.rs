//! TLS set-up shared by every HTTPS client of the process.
//!
//! async-openai's reqwest (0.13) is built without a bundled crypto provider
//! so that we do not compile aws-lc; rustls then needs a process-wide
//! default, which is ring — already compiled for our own reqwest 0.12.

/// Installs ring as rustls' process-wide crypto provider. Idempotent: call it
/// before building any async-openai client.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
