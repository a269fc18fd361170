//! Security decisions without I/O: who is calling (virtual keys) and what they may use.

pub mod keyring;
pub mod keys;

pub use keyring::{AuthError, KeyEntry, KeyRing};
pub use keys::{generate_key, hash_key, GeneratedKey, KEY_PREFIX};
