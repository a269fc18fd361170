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
    let gateway = portcullis_server::start(&config, store).await?;
    let _ = gateway.state.config.warnings.set(loaded.warnings.clone());
    crate::cli::audit_config::record_startup(&gateway.state, config_path).await;
    if gateway.state.keys.load().is_empty() {
        tracing::info!("no API keys yet: create one with `portcullis keys create --name NAME`");
    }
    shutdown_signal().await;
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
