//! Security operations through the real binary: a burst of 401s raises one alert, delivered
//! to a local webhook (after a retry), deduplicated, stored, counted and listed by the admin
//! API; admin actions and refusals reach the audit forwarding destinations (JSON lines file
//! and syslog over UDP), flushed at shutdown; the configuration audit on the admin API.

mod common;

use common::{mock_models, poll_until, text, Gateway, Spec};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A minimal HTTP server that records JSON request bodies; the first `fail_first`
/// requests are answered 500, the rest 200.
struct Hook {
    addr: std::net::SocketAddr,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    async fn start(fail_first: usize) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = bodies.clone();
        tokio::spawn(async move {
            let mut served = 0usize;
            while let Ok((mut conn, _)) = listener.accept().await {
                let Some(body) = read_request(&mut conn).await else {
                    continue;
                };
                sink.lock().unwrap().push(body);
                served += 1;
                let status = if served <= fail_first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let reply =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        Hook { addr, bodies }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Value> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        assert!(head.starts_with("post /hook "), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let n = conn.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return serde_json::from_slice(&buf[end + 4..end + 4 + len]).ok();
    }
}

async fn admin_get(gw: &Gateway, key: &str, path: &str) -> (u16, Value) {
    let resp = gw
        .client
        .get(format!("http://{}{path}", gw.admin_addr))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_burst_of_401s_reaches_the_webhook_once() {
    let hook = Hook::start(1).await;
    let body = format!(
        "{}alerts:\n  webhook: http://{}/hook\n  rules:\n    auth_failures: {{count: 5, window: 60s}}\n",
        mock_models(&["mock-echo"]),
        hook.addr
    );
    let gw = Gateway::start(Spec::new(body)).await;
    // The admin key is made live before the bursts: a key the gateway does not know yet
    // would add 401s of its own (the admin plane feeds the alert engine too).
    let admin = gw.create_key("root", &["--role", "admin"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, empty) = admin_get(&gw, &admin, "/api/v1/alerts").await;
    assert_eq!(
        (status, empty["data"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    for _ in 0..5 {
        let (status, _) = gw.simple_chat("pcl_not_a_real_key", "mock-echo").await;
        assert_eq!(status, 401);
    }
    // The first delivery attempt gets a 500; the retry succeeds.
    let delivered = poll_until(Duration::from_secs(10), || async {
        hook.bodies().len() >= 2
    })
    .await;
    assert!(
        delivered.is_some(),
        "webhook not called twice: {:?}\n{}",
        hook.bodies(),
        gw.stderr()
    );
    let bodies = hook.bodies();
    assert_eq!(bodies[0], bodies[1], "the retry sends the same alert");
    let alert = &bodies[1];
    assert_eq!(alert["rule"], "auth_failures");
    assert_eq!(alert["subject"], "ip:127.0.0.1");
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["source"], "portcullis");
    assert!(alert["id"].as_i64().is_some(), "{alert}");
    assert!(
        !alert.to_string().contains("pcl_not_a_real_key"),
        "no key material"
    );

    // A second burst within the deduplication window is counted, not re-sent.
    for _ in 0..5 {
        assert_eq!(
            gw.simple_chat("pcl_not_a_real_key", "mock-echo").await.0,
            401
        );
    }
    let counted = poll_until(Duration::from_secs(12), || async {
        let (status, page) = admin_get(&gw, &admin, "/api/v1/alerts?rule=auth_failures").await;
        status == 200 && page["data"][0]["count"] == 2
    })
    .await;
    let (_, page) = admin_get(&gw, &admin, "/api/v1/alerts").await;
    assert!(counted.is_some(), "repeat not folded: {page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"][0]["subject"], "ip:127.0.0.1");
    assert_eq!(hook.bodies().len(), 2, "no second webhook for the repeat");

    let metrics = gw
        .client
        .get(format!("http://{}/metrics", gw.admin_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("portcullis_alerts_total{rule=\"auth_failures\"} 2"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("alerts"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        gw.stderr()
            .contains("ALERT: 5 authentication/authorization failures"),
        "{}",
        gw.stderr()
    );

    // 403s of one known key: an alert on the key, stored with the key's team.
    let limited = gw.create_key("limited", &["--team", "red", "--models", "other-*"]);
    let limited_id = gw.key_id("limited");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..5 {
        assert_eq!(gw.simple_chat(&limited, "mock-echo").await.0, 403);
    }
    let path = format!("/api/v1/alerts?subject=key:{limited_id}");
    let stored = poll_until(Duration::from_secs(5), || async {
        admin_get(&gw, &admin, &path).await.1["data"][0]["team"] == "red"
    })
    .await;
    let (_, page) = admin_get(&gw, &admin, &path).await;
    assert!(stored.is_some(), "{page}");
    assert_eq!(page["data"][0]["key_id"], limited_id.as_str());
    assert_eq!(page["data"][0]["detail"]["last_status"], 403);
    assert_eq!(hook.bodies().len(), 3, "a new subject is a new webhook");
}

#[tokio::test]
async fn admin_actions_and_refusals_are_forwarded_and_flushed_at_shutdown() {
    let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let workdir = common::Workdir::new();
    let jsonl = workdir.path().join("audit.jsonl");
    let body = format!(
        "{}audit:\n  forward:\n    - {{type: file, path: {}}}\n    - {{type: syslog, address: '{}', transport: udp}}\n",
        mock_models(&["mock-echo"]),
        jsonl.display(),
        syslog.local_addr().unwrap()
    );
    let mut gw = Gateway::start_in(workdir, Spec::new(body)).await;
    let admin = gw.live_key("root", &["--role", "admin"]).await;
    let dev = gw.live_key("dev", &[]).await;
    let admin_url = |p: &str| format!("http://{}{p}", gw.admin_addr);

    let created = gw
        .client
        .post(admin_url("/api/v1/teams"))
        .bearer_auth(&admin)
        .json(&json!({"name": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(admin_get(&gw, "pcl_wrong", "/api/v1/keys").await.0, 401);
    assert_eq!(admin_get(&gw, &dev, "/api/v1/audit").await.0, 403);

    // The configuration audit of the running gateway.
    let (status, report) = admin_get(&gw, &admin, "/api/v1/audit/config").await;
    assert_eq!(status, 200, "{report}");
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"no-policy") && ids.contains(&"key-no-expiry"),
        "{ids:?}"
    );
    assert!(ids.contains(&"mock-provider"), "{ids:?}");
    assert_eq!(report["worst"], "medium");
    assert_eq!(admin_get(&gw, &dev, "/api/v1/audit/config").await.0, 403);

    gw.sigterm();
    let exit = gw.wait_exit(Duration::from_secs(20)).await;
    assert!(exit.is_some_and(|s| s.success()), "{}", gw.stderr());

    let lines: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(String, String)> = lines
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("config.load", "ok"),
        ("team.create", "ok"),
        ("admin.authenticate", "denied"),
        ("audit.read", "denied"),
        ("audit.config", "denied"),
    ] {
        let pair = (expected.0.to_string(), expected.1.to_string());
        assert!(
            seen.contains(&pair),
            "missing {expected:?} in {seen:?}\n{}",
            gw.stderr()
        );
    }
    assert!(lines
        .iter()
        .all(|r| r["hash"].as_str().is_some_and(|h| h.len() == 64)));
    let refused = lines
        .iter()
        .find(|r| r["action"] == "admin.authenticate")
        .unwrap();
    assert_eq!(refused["actor"], "anonymous");
    assert_eq!(refused["detail"]["client_ip"], "127.0.0.1");
    assert!(
        !refused.to_string().contains("pcl_wrong"),
        "the presented key is never recorded"
    );

    // The same records went to syslog, one datagram each.
    let mut buf = vec![0u8; 65_536];
    let mut datagrams = Vec::new();
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(500), syslog.recv_from(&mut buf)).await
    {
        datagrams.push(text(&buf[..n]));
    }
    assert_eq!(datagrams.len(), lines.len(), "{datagrams:?}");
    assert!(
        datagrams
            .iter()
            .any(|d| d.contains(" team.create [portcullis@32473 ")),
        "{datagrams:?}"
    );
}
