//! Security decisions without I/O: who is calling (virtual keys), what they may use
//! (policy documents, RBAC, compiled decisions), how much (limiter math and backends).

pub mod decide;
pub mod diff;
pub mod document;
pub mod keyring;
pub mod keys;
pub mod limits;
pub mod rbac;
pub mod tokens;

pub use keyring::{AuthError, KeyEntry, KeyRing};
pub use keys::{generate_key, hash_key, GeneratedKey, KEY_PREFIX};
