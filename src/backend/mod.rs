//! The publisher's activation API: the signed, idempotent client we call
//! (`BackendClient`) and the signature scheme both sides share (`signing`);
//! `tribute_testbed::backend` (testbed/) implements the receiving side for tests.
//! The contract itself is documented in `docs/backend-api.md` and
//! `docs/openapi.yaml`.

pub(crate) mod answer;
mod client;
mod error;
pub mod settings;
pub mod signing;
mod wire;

pub use client::*;
pub use error::BackendError;
pub use settings::{BackendAccess, BackendSection, BACKEND_SECRET_ENV, BACKEND_URL_ENV};
