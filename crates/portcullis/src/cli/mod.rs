//! Subcommands of the `portcullis` binary.

pub mod audit;
pub mod audit_config;
pub mod config;
pub mod identity;
pub mod keys;
pub mod policy;
pub mod report;
pub mod serve;
pub mod verbs;
