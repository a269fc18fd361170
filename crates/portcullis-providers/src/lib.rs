//! Upstream providers: how to reach each configured provider (endpoint, credentials,
//! headers, TLS trust, timeouts) and how its failures are classified. The built-in `mock`
//! kind answers in-process so a new user can try the gateway without an account.

pub mod aws;
mod client;
mod error;
mod http;
mod mock;

pub use client::{
    CallLimits, Operation, Provider, Providers, UpstreamBody, UpstreamFormat, UpstreamResponse,
};
pub use error::{BuildError, UpstreamError};
