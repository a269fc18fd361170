//! `portcullis serve`: start both planes and run until SIGTERM/SIGINT, then drain.

use crate::cli::config::load;
use anyhow::{Context, Result};
use portcullis_config::LogFormat;
use portcullis_store::Store;
use std::path::Path;
use std::process::ExitCode;

/// Runs the gateway until a shutdown signal, then lets in-flight work finish within the grace period.
pub async fn run(config_path: Option<&Path>) -> Result<ExitCode> {
    let loaded = load(config_path)?;
    let config = loaded.config;
    let _log_guard = portcullis_telemetry::init(match config.server.log_format {
        LogFormat::Human => portcullis_telemetry::Format::Human,
        LogFormat::Json => portcullis_telemetry::Format::Json,
    })?;
    match config_path {
        Some(p) => tracing::info!(config = %p.display(), "configuration loaded"),
        None => tracing::info!(
            "no --config given: embedded defaults (model mock-echo on the built-in mock provider)"
        ),
    }
    for warning in &loaded.warnings {
        tracing::warn!("WARNING: {warning}");
    }
    let store = Store::connect(&config.store.url)
        .await
        .with_context(|| "cannot open the store")?;
    // Listening for the signals starts before the planes answer: a SIGTERM sent as soon as
    // `/healthz` says 200 must drain and exit 0, not kill the process.
    let shutdown = ShutdownSignal::listen().context("cannot listen for shutdown signals")?;
    let gateway = portcullis_server::start(&config, store).await?;
    let _ = gateway.state.config.warnings.set(loaded.warnings.clone());
    crate::cli::audit_config::record_startup(&gateway.state, config_path).await;
    if gateway.state.keys.load().is_empty() {
        tracing::info!("no API keys yet: create one with `portcullis keys create --name NAME`");
    }
    shutdown.received().await;
    let grace = config.server.timeouts.shutdown_grace.0;
    tracing::info!(
        grace_secs = grace.as_secs_f64(),
        "shutting down: draining in-flight requests"
    );
    gateway.shutdown(grace);
    gateway.wait().await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and SIGINT, caught from the moment [`ShutdownSignal::listen`] returns.
#[cfg(unix)]
struct ShutdownSignal {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl ShutdownSignal {
    fn listen() -> std::io::Result<ShutdownSignal> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignal {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn received(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {},
            _ = self.interrupt.recv() => {},
        }
    }
}

/// Ctrl-C, where there is no SIGTERM.
#[cfg(not(unix))]
struct ShutdownSignal;

#[cfg(not(unix))]
impl ShutdownSignal {
    fn listen() -> std::io::Result<ShutdownSignal> {
        Ok(ShutdownSignal)
    }

    async fn received(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
