//! HTTP plumbing shared by the parts that serve or call HTTP: the TLS
//! provider every client needs.

pub mod tls;
