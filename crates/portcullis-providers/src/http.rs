//! The HTTP client the gateway calls providers with: hyper's pooled client over rustls
//! (HTTP/1.1, and HTTP/2 where the upstream offers it by ALPN), going through the proxy
//! that `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` name.
//!
//! It replaces reqwest on the request path: reqwest parsed the URL, ran IDNA on the host,
//! cloned its connector and boxed a retry layer on every request, ~8% of the gateway's CPU
//! under load. Proxies behave as with reqwest: an `https://` upstream is reached through a
//! `CONNECT` tunnel, a plain `http://` upstream by sending the absolute URL to the proxy,
//! with `Proxy-Authorization` from the proxy URL's user and password in both cases.

use bytes::Bytes;
use http::{HeaderValue, Uri};
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tower_service::Service;

/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// A pooled HTTP(S) client to providers.
pub type UpstreamClient = Client<TimedConnector, Full<Bytes>>;

/// Errors of the connectors (hyper-rustls's error type).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What an upstream client needs: trust roots, the connect limit and the proxies.
pub struct ClientSettings {
    /// The system's roots plus any configured `ca_bundle` certificates.
    pub roots: rustls::RootCertStore,
    /// Longest wait for a usable connection: TCP connect, proxy tunnel and TLS handshake.
    pub connect_timeout: Duration,
    /// Which upstreams go through which proxy.
    pub proxies: Proxies,
}

/// The forward proxies the environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
/// `NO_PROXY`), read once.
#[derive(Clone)]
pub struct Proxies(Arc<Matcher>);

impl Proxies {
    /// Reads the proxy variables of the process environment.
    pub fn from_env() -> Proxies {
        Proxies(Arc::new(Matcher::from_env()))
    }

    /// The `Proxy-Authorization` value to send on requests to the plain-HTTP URL `url`,
    /// when it goes through a proxy with credentials (an `https://` URL is tunnelled, and
    /// the tunnel carries them instead).
    pub fn plain_authorization(&self, url: &str) -> Option<HeaderValue> {
        let uri: Uri = url.parse().ok()?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return None;
        }
        self.0.intercept(&uri)?.basic_auth().cloned()
    }
}

/// Builds the client.
pub fn build(settings: ClientSettings) -> Result<UpstreamClient, rustls::Error> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(settings.roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let proxied = ProxyConnector {
        http,
        proxies: settings.proxies.0,
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(proxied);
    let connector = TimedConnector {
        inner: connector,
        limit: settings.connect_timeout,
    };
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector))
}

/// Bounds the whole connect (TCP, proxy tunnel, TLS handshake) by the configured
/// `timeouts.connect`; running out is an `io::ErrorKind::TimedOut` error.
#[derive(Clone)]
pub struct TimedConnector {
    inner: HttpsConnector<ProxyConnector>,
    limit: Duration,
}

impl Service<Uri> for TimedConnector {
    type Response = MaybeHttpsStream<ProxyStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(connected) => connected,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out").into()),
            }
        })
    }
}

/// Connects to the upstream directly, or through the proxy the environment names for it.
#[derive(Clone)]
pub struct ProxyConnector {
    http: HttpConnector,
    proxies: Arc<Matcher>,
}

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        let route = self.proxies.intercept(&dst);
        Box::pin(async move {
            let Some(proxy) = route else {
                let io = http.call(dst).await?;
                return Ok(ProxyStream {
                    io,
                    plain_proxy: false,
                });
            };
            if proxy.uri().scheme() != Some(&http::uri::Scheme::HTTP) {
                return Err(format!(
                    "proxy {} is not an http:// proxy (the only kind supported)",
                    redacted(proxy.uri())
                )
                .into());
            }
            if dst.scheme() == Some(&http::uri::Scheme::HTTPS) {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), http);
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let io = tunnel.call(dst).await?;
                return Ok(ProxyStream {
                    io,
                    plain_proxy: false,
                });
            }
            let io = http.call(proxy.uri().clone()).await?;
            Ok(ProxyStream {
                io,
                plain_proxy: true,
            })
        })
    }
}

/// A proxy URI for error messages: host and port only, never its credentials.
fn redacted(uri: &Uri) -> String {
    uri.host()
        .map(|h| match uri.port_u16() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        })
        .unwrap_or_default()
}

/// A TCP connection to the upstream, to a plain-HTTP proxy (requests then carry the
/// absolute URL), or through a proxy tunnel.
pub struct ProxyStream {
    io: TokioIo<TcpStream>,
    plain_proxy: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.plain_proxy)
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// Whether a client error (or one of its sources) is a timed-out connect.
pub fn is_connect_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut {
                return true;
            }
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_connect_is_recognized_through_the_error_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Outer(#[source] BoxError);
        let timed_out = Outer(io::Error::new(io::ErrorKind::TimedOut, "connect timed out").into());
        assert!(is_connect_timeout(&timed_out));
        let refused = Outer(io::Error::new(io::ErrorKind::ConnectionRefused, "refused").into());
        assert!(!is_connect_timeout(&refused));
    }

    #[test]
    fn proxy_addresses_in_errors_never_carry_credentials() {
        let uri: Uri = "http://user:secret@proxy.corp:3128".parse().unwrap();
        assert_eq!(redacted(&uri), "proxy.corp:3128");
    }
}
