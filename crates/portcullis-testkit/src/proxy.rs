//! A forward HTTP proxy on a real socket, as corporate networks put between the gateway and
//! its providers: `CONNECT host:port` opens a tunnel (how HTTPS upstreams are reached), and
//! a request with an absolute URL (`POST http://host:port/path`) is relayed to that host.
//!
//! It records the head of the first request of each client connection (request line and
//! `Proxy-Authorization`), forwards that head without `Proxy-Authorization`, and then relays
//! bytes both ways untouched, so later requests on a kept-alive connection reach the
//! upstream but are neither recorded nor rewritten.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request head the proxy reads before giving up on a connection.
const MAX_HEAD: usize = 64 * 1024;

/// What the proxy saw of one client connection's first request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// The request line, e.g. `CONNECT localhost:8443 HTTP/1.1`.
    pub request_line: String,
    /// The `Proxy-Authorization` header, if the client sent one.
    pub proxy_authorization: Option<String>,
}

/// A running forward proxy; stops when dropped.
pub struct ForwardProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<ProxiedRequest>>>,
    task: JoinHandle<()>,
}

impl ForwardProxy {
    /// Starts the proxy on an ephemeral loopback port.
    pub async fn start() -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind forward proxy");
        let addr = listener.local_addr().expect("proxy address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, recorded.clone()));
            }
        });
        ForwardProxy { addr, seen, task }
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first request of every connection so far, in order of arrival.
    pub fn seen(&self) -> Vec<ProxiedRequest> {
        self.seen.lock().expect("proxy record").clone()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one client connection: reads the head, opens the way to the target, relays.
async fn relay(mut client: TcpStream, seen: Arc<Mutex<Vec<ProxiedRequest>>>) {
    let mut buffered = Vec::new();
    let head_end = loop {
        if let Some(at) = find(&buffered, b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffered.extend_from_slice(&chunk[..n]),
        }
        if buffered.len() > MAX_HEAD {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let proxy_authorization = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_string())
    });
    seen.lock().expect("proxy record").push(ProxiedRequest {
        request_line: request_line.clone(),
        proxy_authorization,
    });
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "CONNECT" {
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
            return;
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        if head_end < buffered.len() && upstream.write_all(&buffered[head_end..]).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
    let authority = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let Ok(mut upstream) = TcpStream::connect(authority).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    // Like a real proxy, it keeps its own credentials to itself.
    let forwarded: String = head
        .split_inclusive("\r\n")
        .filter(|line| {
            !line
                .to_ascii_lowercase()
                .starts_with("proxy-authorization:")
        })
        .collect();
    if upstream.write_all(forwarded.as_bytes()).await.is_err()
        || upstream.write_all(&buffered[head_end..]).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
