//! Subcommands of the `portcullis` binary.

pub mod config;
pub mod keys;
pub mod serve;
