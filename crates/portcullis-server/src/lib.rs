//! The gateway server: data-plane and admin-plane routers, the request pipeline, listeners
//! and graceful shutdown.

pub mod access;
pub mod admin;
pub mod alerts;
pub mod app;
pub mod audit_trail;
pub mod auth;
pub mod body;
pub mod cache;
pub mod chat;
pub mod config_audit;
pub mod dispatch;
pub mod enforce;
pub mod error;
pub mod groups;
pub mod guard;
pub mod guard_webhook;
pub mod inbound;
pub mod listen;
pub mod openai_routes;
pub mod otel;
pub mod policy_ops;
pub mod policy_runtime;
pub mod relay;
pub mod report;
pub mod request_log;
pub mod rest;
pub mod state;
pub mod translate;
pub mod writer;

use axum_server::Handle;
use portcullis_config::Config;
use portcullis_store::Store;
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub use error::GatewayError;

/// A gateway that failed to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Building state (provider clients, first key load) failed.
    #[error(transparent)]
    State(#[from] state::StateError),
    /// A listener could not start.
    #[error(transparent)]
    Listen(#[from] listen::ListenError),
}

/// A running gateway: both listeners serving, the key refresher polling.
pub struct Gateway {
    /// Bound data-plane address.
    pub data_addr: SocketAddr,
    /// Bound admin-plane address.
    pub admin_addr: SocketAddr,
    /// Shared state (exposed for tests and the binary's shutdown bookkeeping).
    pub state: Arc<AppState>,
    data_handle: Handle,
    admin_handle: Handle,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    refresher: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

/// Starts the gateway described by `config` on top of an opened `store`.
pub async fn start(config: &Config, store: Store) -> Result<Gateway, StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let state = AppState::new(config, store).await?;
    let data = listen::bind(config.server.listen, config.server.tls.as_ref()).await?;
    let admin = listen::bind(config.server.admin_listen, config.server.admin_tls.as_ref()).await?;
    for (plane, listener) in [("data", &data), ("admin", &admin)] {
        if !listener.is_tls() && !listener.addr.ip().is_loopback() {
            tracing::warn!(
                "WARNING: the {plane} plane serves plain HTTP on non-loopback address {}: keys and prompts cross the network unencrypted. Configure server.{}tls.",
                listener.addr,
                if plane == "admin" { "admin_" } else { "" }
            );
        }
    }
    let (data_addr, admin_addr) = (data.addr, admin.addr);
    let data_handle = Handle::new();
    let admin_handle = Handle::new();
    let servers = vec![
        tokio::spawn(data.serve(app::data_plane(state.clone()), data_handle.clone())),
        tokio::spawn(admin.serve(app::admin_plane(state.clone()), admin_handle.clone())),
    ];
    let refresher = state.spawn_key_refresher();
    let mut background = Vec::new();
    if config.logs.enabled {
        background.push(request_log::spawn_purge(
            state.store.clone(),
            config.logs.retention.0,
        ));
    }
    if let Some(schedule) = &config.reports.compliance {
        background.push(report::spawn_schedule(
            state.store.clone(),
            schedule.clone(),
        ));
    }
    tracing::info!(%data_addr, %admin_addr, store = state.store.backend(), models = state.routes.len(), "portcullis gateway started");
    Ok(Gateway {
        data_addr,
        admin_addr,
        state,
        data_handle,
        admin_handle,
        servers,
        refresher,
        background,
    })
}

impl Gateway {
    /// Stops accepting connections; in-flight requests and streams get `grace` to finish.
    pub fn shutdown(&self, grace: Duration) {
        listen::shutdown(&self.data_handle, grace);
        listen::shutdown(&self.admin_handle, grace);
    }

    /// Waits until both listeners have stopped, then flushes bookkeeping.
    pub async fn wait(self) -> std::io::Result<()> {
        let mut result = Ok(());
        for server in self.servers {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(std::io::Error::other(e)),
            }
        }
        self.refresher.abort();
        self.background.iter().for_each(JoinHandle::abort);
        self.state.on_shutdown().await;
        self.state.store.close().await;
        result
    }
}
