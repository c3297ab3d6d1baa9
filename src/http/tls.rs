//! TLS set-up shared by every HTTPS client of the process.
//!
//! reqwest is built without a bundled crypto provider so that we do not
//! compile aws-lc (a long C build); rustls then needs a process-wide
//! default, which is ring. Every client is built from [`client_builder`].

/// Installs ring as rustls' process-wide crypto provider. Idempotent: call it
/// before building any reqwest client (async-openai's included).
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder with the crypto provider installed. Servers are
/// verified against the system's trust store (`ca-certificates`), except on
/// Android (Termux), where that verifier needs a Java VM: there the bundled
/// Mozilla roots are used.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    let builder = reqwest::Client::builder();
    #[cfg(target_os = "android")]
    let builder = {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(config) => builder.tls_backend_preconfigured(config.with_root_certificates(roots).with_no_client_auth()),
            Err(_) => builder,
        }
    };
    builder
}
