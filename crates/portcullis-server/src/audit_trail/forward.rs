//! Audit forwarding destinations: a JSON-lines file and RFC 5424 syslog over UDP or TCP.
//! Each stored record is sent with its chain hashes; a failing destination is logged
//! (once per failure streak) and retried with the next record, never blocking the store.

use super::syslog::{self, Frame};
use portcullis_config::{AuditForward, SyslogTransport};
use portcullis_store::AuditRecord;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

/// Longest wait for a TCP syslog collector to accept a connection.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A destination could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The JSON-lines file cannot be opened for appending.
    #[error("audit forwarding: cannot open {path} for appending: {source}")]
    File {
        /// The configured path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A local UDP socket for syslog cannot be bound.
    #[error("audit forwarding: cannot create a UDP socket for syslog: {0}")]
    Socket(std::io::Error),
}

/// One open destination.
pub struct Forwarder {
    target: Target,
    failing: bool,
}

enum Target {
    File {
        path: PathBuf,
        file: tokio::fs::File,
    },
    Udp {
        socket: UdpSocket,
        address: String,
        app_name: String,
    },
    Tcp {
        stream: Option<TcpStream>,
        address: String,
        app_name: String,
    },
}

impl Forwarder {
    /// Opens a configured destination (files are created and appended to; TCP connects
    /// lazily, so a collector that starts later is fine).
    pub async fn open(destination: &AuditForward) -> Result<Forwarder, ForwardError> {
        let target = match destination {
            AuditForward::File { path } => {
                let file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|source| ForwardError::File {
                        path: path.clone(),
                        source,
                    })?;
                Target::File {
                    path: path.clone(),
                    file,
                }
            }
            AuditForward::Syslog {
                address,
                transport: SyslogTransport::Udp,
                app_name,
            } => {
                let bind = if address.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let socket = UdpSocket::bind(bind).await.map_err(ForwardError::Socket)?;
                Target::Udp {
                    socket,
                    address: address.clone(),
                    app_name: app_name.clone(),
                }
            }
            AuditForward::Syslog {
                address,
                transport: SyslogTransport::Tcp,
                app_name,
            } => Target::Tcp {
                stream: None,
                address: address.clone(),
                app_name: app_name.clone(),
            },
        };
        Ok(Forwarder {
            target,
            failing: false,
        })
    }

    /// Sends one stored record.
    pub async fn send(&mut self, record: &AuditRecord) {
        let result = match &mut self.target {
            Target::File { file, .. } => {
                let mut line = match serde_json::to_vec(record) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!(error = %e, "cannot encode an audit record"),
                };
                line.push(b'\n');
                file.write_all(&line).await
            }
            Target::Udp {
                socket,
                address,
                app_name,
            } => {
                let msg = syslog::format(record, app_name, Frame::Datagram);
                socket
                    .send_to(msg.as_bytes(), address.as_str())
                    .await
                    .map(|_| ())
            }
            Target::Tcp {
                stream,
                address,
                app_name,
            } => {
                let msg = syslog::format(record, app_name, Frame::OctetCounted);
                send_tcp(stream, address, msg.as_bytes()).await
            }
        };
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(destination = %self.describe(), "audit forwarding recovered");
            }
            Ok(()) => {}
            Err(e) => {
                if !self.failing {
                    tracing::error!(destination = %self.describe(), error = %e, "audit forwarding failed (records stay in the store; `portcullis audit list --export jsonl` re-exports them)");
                }
                self.failing = true;
            }
        }
    }

    /// Flushes buffered data (files) at shutdown.
    pub async fn flush(&mut self) {
        match &mut self.target {
            Target::File { file, .. } => {
                let _ = file.flush().await;
                let _ = file.sync_data().await;
            }
            Target::Tcp {
                stream: Some(s), ..
            } => {
                let _ = s.flush().await;
            }
            _ => {}
        }
    }

    fn describe(&self) -> String {
        match &self.target {
            Target::File { path, .. } => format!("file {}", path.display()),
            Target::Udp { address, .. } => format!("syslog udp {address}"),
            Target::Tcp { address, .. } => format!("syslog tcp {address}"),
        }
    }
}

async fn send_tcp(
    stream: &mut Option<TcpStream>,
    address: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    // One reconnect per record: a collector restart costs no record.
    for _ in 0..2 {
        if stream.is_none() {
            let connect = TcpStream::connect(address);
            let connected = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| std::io::Error::other("syslog TCP connect timed out"))??;
            *stream = Some(connected);
        }
        if let Some(s) = stream.as_mut() {
            match s.write_all(bytes).await {
                Ok(()) => return Ok(()),
                Err(_) => *stream = None,
            }
        }
    }
    Err(std::io::Error::other("syslog TCP connection lost"))
}
