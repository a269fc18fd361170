//! Binding the listeners (plain or rustls TLS) and serving until a graceful shutdown.

use axum::Router;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use portcullis_config::TlsConfig;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The address is in use or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// Certificate or key unreadable or invalid.
    #[error("TLS for {addr}: {detail}")]
    Tls {
        /// Address of the listener.
        addr: SocketAddr,
        /// What is wrong with the files.
        detail: String,
    },
}

/// One bound listener, serving once `serve` is awaited.
pub struct BoundListener {
    listener: TcpListener,
    tls: Option<RustlsConfig>,
    /// The bound address (the real port when 0 was asked).
    pub addr: SocketAddr,
}

/// Binds `addr` now (so errors surface before anything starts) and loads TLS files if given.
pub async fn bind(addr: SocketAddr, tls: Option<&TlsConfig>) -> Result<BoundListener, ListenError> {
    let listener = TcpListener::bind(addr).map_err(|source| ListenError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ListenError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError::Bind { addr, source })?;
    let tls = match tls {
        Some(t) => Some(
            RustlsConfig::from_pem_file(&t.cert, &t.key)
                .await
                .map_err(|e| ListenError::Tls {
                    addr,
                    detail: format!(
                        "cannot load {} / {}: {e}",
                        t.cert.display(),
                        t.key.display()
                    ),
                })?,
        ),
        None => None,
    };
    Ok(BoundListener {
        listener,
        tls,
        addr: bound,
    })
}

impl BoundListener {
    /// Whether this listener terminates TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves `app` until `handle` is told to shut down.
    pub async fn serve(self, app: Router, handle: Handle) -> std::io::Result<()> {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        // TCP_NODELAY on every accepted connection: a streamed answer is many small writes,
        // and with Nagle the last ones wait for the client's delayed ACK (~40 ms each stream).
        let server = axum_server::from_tcp(self.listener);
        match self.tls {
            Some(tls) => {
                let acceptor = RustlsAcceptor::new(tls).acceptor(NoDelayAcceptor::new());
                server
                    .acceptor(acceptor)
                    .handle(handle)
                    .serve(service)
                    .await
            }
            None => {
                server
                    .acceptor(NoDelayAcceptor::new())
                    .handle(handle)
                    .serve(service)
                    .await
            }
        }
    }
}

/// Stops accepting and lets in-flight requests and streams finish within `grace`.
pub fn shutdown(handle: &Handle, grace: Duration) {
    handle.graceful_shutdown(Some(grace));
}
