//! TLS on both sides of the real binary: the data and admin planes terminate HTTPS with a
//! certificate from a test CA, and the gateway calls an HTTPS upstream trusting a custom
//! `ca_bundle` (and refuses the same upstream without it).
//!
//! The upstream side is a small rustls TLS-terminating proxy in front of a plain
//! `MockUpstream`; one test reaches it through a `CONNECT` tunnel of the forward proxy that
//! `HTTPS_PROXY` names.

mod common;

use common::{compat_provider, Gateway, Spec, Workdir};
use portcullis_testkit::{ForwardProxy, MockUpstream};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A test CA and a leaf certificate for localhost / 127.0.0.1 signed by it.
struct Pki {
    ca_pem: String,
    leaf_pem: String,
    leaf_key_pem: String,
    leaf_der: CertificateDer<'static>,
    leaf_key_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "portcullis e2e test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
        leaf_der: leaf.der().clone(),
        leaf_key_der: leaf_key.serialize_der(),
    }
}

#[tokio::test]
async fn data_and_admin_planes_serve_https() {
    let pki = pki();
    let wd = Workdir::new();
    let cert = wd.write("server.pem", &pki.leaf_pem);
    let key = wd.write("server.key", &pki.leaf_key_pem);
    let tls = format!("    cert: {}\n    key: {}\n", cert.display(), key.display());
    let mut spec = Spec::new(common::mock_models(&["mock-echo"]))
        .server(&format!("  tls:\n{tls}  admin_tls:\n{tls}"));
    spec.tls_ca_pem = Some(pki.ca_pem.clone().into_bytes());
    let gw = Gateway::start_in(wd, spec).await;
    assert!(gw.url("/").starts_with("https://"));
    let api_key = gw.live_key("tls", &[]).await;

    let (status, body) = gw.simple_chat(&api_key, "mock-echo").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "echo: hi");

    // Admin plane over HTTPS too.
    let r = gw
        .client
        .get(format!("https://{}/healthz", gw.admin_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = common::client_for(None)
        .get(format!("http://{}/healthz", gw.data_addr))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP served on a TLS listener"
    );

    // A client that does not trust the test CA is refused.
    let untrusting = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(untrusting.get(gw.url("/healthz")).send().await.is_err());
}

#[tokio::test]
async fn serve_refuses_unreadable_tls_files() {
    let wd = Workdir::new();
    let missing = wd.path().join("missing.pem");
    let bogus = wd.write("bogus.pem", "not a certificate");
    let config = wd.write(
        "tls.yaml",
        format!(
            "server:\n  listen: 127.0.0.1:{}\n  admin_listen: 127.0.0.1:{}\n  tls:\n    cert: {}\n    key: {}\nstore:\n  url: {}\n",
            common::free_port(),
            common::free_port(),
            missing.display(),
            bogus.display(),
            wd.store_url()
        ),
    );
    let out = std::process::Command::new(common::BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = common::text(&out.stderr);
    assert!(stderr.contains("missing.pem"), "{stderr}");
}

/// Accepts TLS with the leaf certificate, offering the ALPN protocols `alpn`, and forwards
/// the plaintext to `target`.
async fn tls_proxy(
    pki: &Pki,
    target: SocketAddr,
    alpn: &[&[u8]],
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key_der.clone()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![pki.leaf_der.clone()], key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn https_upstream_with_custom_ca_bundle() {
    let pki = pki();
    let mock = MockUpstream::start().await;
    let (proxy, proxy_task) = tls_proxy(&pki, mock.addr(), &[]).await;
    let wd = Workdir::new();
    let ca = wd.write("upstream-ca.pem", &pki.ca_pem);
    // Same HTTPS endpoint twice: once trusting the test CA, once with the default roots.
    let url = format!("https://localhost:{}/v1", proxy.port());
    let body = format!(
        "providers:\n{}{}models:\n  - name: secure\n    provider: trusted\n    upstream_model: mock-gpt\n  - name: insecure\n    provider: untrusted\n    upstream_model: mock-gpt\n",
        compat_provider(
            "trusted",
            &url,
            &format!("    api_key: ${{E2E_TLS_KEY}}\n    ca_bundle: {}\n", ca.display())
        ),
        compat_provider("untrusted", &url, "")
    );
    let gw = Gateway::start_in(wd, Spec::new(body).env("E2E_TLS_KEY", "sk-tls-upstream")).await;
    let key = gw.live_key("k", &[]).await;

    let (status, body) = gw.simple_chat(&key, "secure").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "echo: hi");
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-tls-upstream")
    );

    // Streaming through TLS as well.
    assert_streams_through(&gw, &key, "secure").await;

    // Without the CA bundle the certificate is not trusted: no request reaches the mock.
    let (status, body) = gw.simple_chat(&key, "insecure").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(mock.requests().len(), 2);
    proxy_task.abort();
}

#[tokio::test]
async fn https_upstream_through_a_connect_tunnel_of_the_environment_proxy() {
    let pki = pki();
    let mock = MockUpstream::start().await;
    let (tls, tls_task) = tls_proxy(&pki, mock.addr(), &[]).await;
    let forward = ForwardProxy::start().await;
    let wd = Workdir::new();
    let ca = wd.write("upstream-ca.pem", &pki.ca_pem);
    let body = secure_upstream_config(tls.port(), &ca);
    let spec = Spec::new(body)
        .env("E2E_TLS_KEY", "sk-tls-upstream")
        .env(
            "HTTPS_PROXY",
            &format!("http://tunnel-user:tunnel-pass@{}", forward.addr()),
        )
        .env("NO_PROXY", "");
    let gw = Gateway::start_in(wd, spec).await;
    let key = gw.live_key("k", &[]).await;

    let (status, body) = gw.simple_chat(&key, "secure").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "echo: hi");
    let seen = forward.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].request_line,
        format!("CONNECT localhost:{} HTTP/1.1", tls.port())
    );
    assert_eq!(
        seen[0].proxy_authorization.as_deref(),
        Some("Basic dHVubmVsLXVzZXI6dHVubmVsLXBhc3M=")
    );
    // The certificate was checked end to end through the tunnel, and the provider key
    // (never the proxy's credentials) reached the upstream.
    let upstream = mock.requests();
    assert_eq!(upstream.len(), 1);
    assert_eq!(
        upstream[0].header("authorization"),
        Some("Bearer sk-tls-upstream")
    );
    assert_eq!(upstream[0].header("proxy-authorization"), None);
    tls_task.abort();
}

#[tokio::test]
async fn https_upstream_offering_http2_is_spoken_to_in_http2() {
    let pki = pki();
    let mock = MockUpstream::start().await;
    let (tls, tls_task) = tls_proxy(&pki, mock.addr(), &[b"h2", b"http/1.1"]).await;
    let wd = Workdir::new();
    let ca = wd.write("upstream-ca.pem", &pki.ca_pem);
    let body = secure_upstream_config(tls.port(), &ca);
    let gw = Gateway::start_in(wd, Spec::new(body).env("E2E_TLS_KEY", "sk-tls-upstream")).await;
    let key = gw.live_key("k", &[]).await;

    let (status, body) = gw.simple_chat(&key, "secure").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "echo: hi");
    assert_streams_through(&gw, &key, "secure").await;
    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(request.version, reqwest::Version::HTTP_2);
        assert_eq!(
            request.header("authorization"),
            Some("Bearer sk-tls-upstream")
        );
    }
    tls_task.abort();
}

/// A gateway config with one model, `secure`, on the HTTPS upstream at `localhost:port`
/// trusting the CA in `ca` and sending the key from `E2E_TLS_KEY`.
fn secure_upstream_config(port: u16, ca: &std::path::Path) -> String {
    format!(
        "providers:\n{}models:\n  - name: secure\n    provider: trusted\n    upstream_model: mock-gpt\n",
        compat_provider(
            "trusted",
            &format!("https://localhost:{port}/v1"),
            &format!("    api_key: ${{E2E_TLS_KEY}}\n    ca_bundle: {}\n", ca.display())
        ),
    )
}

/// A streamed chat on `model` comes back whole.
async fn assert_streams_through(gw: &Gateway, key: &str, model: &str) {
    let r = gw
        .chat(
            key,
            serde_json::json!({"model": model, "stream": true,
                "messages": [{"role": "user", "content": "x y"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(common::stream_text(&r.text().await.unwrap()), "echo: x y");
}
