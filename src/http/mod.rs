//! HTTP plumbing shared by the parts that serve or call HTTP: the TLS
//! provider every client needs and the handle of every server.

pub mod server;
pub mod tls;

pub use server::ServerHandle;
