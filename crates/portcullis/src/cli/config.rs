//! `portcullis config check` and the shared configuration loading of every subcommand.

use anyhow::Result;
use portcullis_config::{Config, Loaded};
use std::path::Path;
use std::process::ExitCode;

/// Loads the configuration file, or the embedded default when none is given. On failure the
/// error lists every problem with its path.
pub fn load(path: Option<&Path>) -> Result<Loaded> {
    match path {
        None => Ok(Loaded {
            config: Config::embedded_default(),
            warnings: Vec::new(),
        }),
        Some(path) => Ok(portcullis_config::load_file(path)?),
    }
}

/// Prints the verdict on a configuration file; exit code 1 when it is invalid.
pub fn check(path: &Path) -> Result<ExitCode> {
    match portcullis_config::load_file(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("warning: {w}");
            }
            let c = &loaded.config;
            println!(
                "{}: valid ({} provider(s), {} model(s), {} warning(s))",
                path.display(),
                c.providers.len(),
                c.models.len(),
                loaded.warnings.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            print!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
