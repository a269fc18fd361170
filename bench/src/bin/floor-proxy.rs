//! The floor: the cheapest reverse proxy the gateway's own stack allows, to measure what
//! any hyper-based proxy costs on a given machine before a single gateway feature runs.
//!
//! It forwards every request to the mock untouched (same path, headers, body; no
//! authentication, no parsing, no logging) through a pooled hyper-util client, and answers
//! the two commands `portcullis-bench` gives a gateway binary: `keys create` (prints a
//! placeholder key) and `serve --config FILE` (reads `listen` and the first `base_url`
//! from the YAML the benchmark wrote). Run the benchmark with
//! `--gateway target/release/floor-proxy` and compare with the real gateway's figures:
//! the difference is what the gateway's features cost, the rest is the extra HTTP hop.

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

type ProxyBody = BoxBody<Bytes, hyper::Error>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("keys") => {
            println!("floor-proxy-accepts-anything");
            Ok(())
        }
        Some("serve") => {
            let config = args
                .iter()
                .position(|a| a == "--config")
                .and_then(|i| args.get(i + 1))
                .ok_or_else(|| anyhow!("usage: floor-proxy serve --config FILE"))?;
            let yaml = std::fs::read_to_string(config).with_context(|| format!("read {config}"))?;
            let listen: SocketAddr = yaml_value(&yaml, "listen")?.parse()?;
            let upstream: Uri = yaml_value(&yaml, "base_url")?.parse()?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(listen, upstream))
        }
        _ => bail!("usage: floor-proxy (serve --config FILE | keys create ...)"),
    }
}

/// The value of the first `key: value` line (indentation ignored).
fn yaml_value<'a>(yaml: &'a str, key: &str) -> Result<&'a str> {
    yaml.lines()
        .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .ok_or_else(|| anyhow!("no `{key}:` in the config"))
}

async fn serve(listen: SocketAddr, upstream: Uri) -> Result<()> {
    let authority = upstream
        .authority()
        .ok_or_else(|| anyhow!("base_url has no host"))?
        .clone();
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let shared = Arc::new((client, authority));
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { forward(&shared.0, &shared.1, request).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    client: &Client<HttpConnector, Incoming>,
    authority: &http::uri::Authority,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, hyper::Error> {
    if request.uri().path() == "/healthz" {
        return Ok(plain(StatusCode::OK, "ok"));
    }
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = match Uri::builder()
        .scheme("http")
        .authority(authority.clone())
        .path_and_query(path)
        .build()
    {
        Ok(uri) => uri,
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "bad path")),
    };
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => Ok(response.map(BodyExt::boxed)),
        Err(_) => Ok(plain(StatusCode::BAD_GATEWAY, "upstream unreachable")),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}
