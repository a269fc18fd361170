//! Accept loop and per-request dispatch (hyper HTTP/1.1, or HTTP/2 with prior knowledge as
//! behind a TLS terminator that negotiated `h2`; one abortable task per connection).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::faults::{self, Deferred, FaultQueue, Flavor, Kill};
use crate::recorder::{RecordedRequest, Recorder};
use crate::respond::{self, HandlerResult};
use crate::{anthropic, azure, bedrock, gemini, openai, MockOptions};

/// Request header: pause between SSE events, in milliseconds.
pub const CHUNK_DELAY_HEADER: &str = "x-mock-chunk-delay-ms";

/// State shared by every connection of one mock upstream.
#[derive(Debug)]
pub(crate) struct Shared {
    pub options: MockOptions,
    pub recorder: Recorder,
    pub faults: FaultQueue,
    pub seq: AtomicU64,
    /// Requests seen by `fault-rate-N` models (which of them fail).
    pub rate_seq: AtomicU64,
    /// When set, Bedrock requests must carry a valid SigV4 signature for these credentials.
    pub aws_credentials: std::sync::Mutex<Option<bedrock::AwsCredentials>>,
}

impl Shared {
    pub(crate) fn new(options: MockOptions) -> Shared {
        Shared {
            options,
            recorder: Recorder::default(),
            faults: FaultQueue::default(),
            seq: AtomicU64::new(0),
            rate_seq: AtomicU64::new(0),
            aws_credentials: std::sync::Mutex::new(None),
        }
    }
}

/// What a handler needs to know about the request being answered.
pub(crate) struct Ctx<'a> {
    pub method: &'a Method,
    /// Path without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    /// The API family, from the path; selects error shapes.
    pub flavor: Flavor,
    pub shared: &'a Shared,
    /// Sequence number of the request (1-based), used in ids.
    pub seq: u64,
    pub chunk_delay: Duration,
    /// Aborts the connection this request arrived on.
    pub kill: &'a Kill,
    /// The deferred part of the queued fault, if one was consumed by this request.
    pub queued: Deferred,
}

impl Ctx<'_> {
    /// A request header as text (`None` if absent or not visible ASCII).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The raw (still percent-encoded) value of a query parameter.
    pub(crate) fn query_param(&self, name: &str) -> Option<&str> {
        self.query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

/// Accepts connections until the task is aborted; aborting it also aborts every connection.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(stream, shared.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::debug!(error = %e, "mock upstream accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let kill: Kill = Arc::new(Notify::new());
    let svc_kill = kill.clone();
    let service = service_fn(move |req| handle(shared.clone(), svc_kill.clone(), req));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    // Dropping the connection future drops the socket: the peer sees the connection close
    // with no (further) response bytes.
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
    }
}

async fn handle(shared: Arc<Shared>, kill: Kill, req: Request<Incoming>) -> HandlerResult {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(respond::bad_request(
                "could not read the request body",
                None,
            ));
        }
    };
    if shared.options.record {
        shared
            .recorder
            .push(RecordedRequest::from_parts(&parts, body.clone()));
    }
    let seq = shared.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let path = parts.uri.path();
    let flavor = Flavor::for_path(path);
    let queued = match faults::apply(shared.faults.pop(), &kill, flavor).await {
        Ok(d) => d,
        Err(resp) => return Ok(resp),
    };
    let chunk_delay = parts
        .headers
        .get(CHUNK_DELAY_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::ZERO);
    let ctx = Ctx {
        method: &parts.method,
        path,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        flavor,
        shared: &shared,
        seq,
        chunk_delay,
        kill: &kill,
        queued,
    };
    let resp = match flavor {
        Flavor::Anthropic => anthropic::handle(&ctx).await,
        Flavor::Gemini => gemini::handle(&ctx).await,
        Flavor::Azure => azure::handle(&ctx).await,
        Flavor::Bedrock => bedrock::handle(&ctx).await,
        Flavor::OpenAi => match openai::handle(&parts.method, path, &ctx).await {
            Some(resp) => resp,
            None => openai::not_found(&parts.method, path),
        },
    };
    Ok(resp)
}

/// Binds `addr` and spawns the accept loop on the current runtime.
pub(crate) async fn spawn(
    addr: SocketAddr,
    shared: Arc<Shared>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, shared));
    Ok((local, task))
}
