//! Bedrock Runtime mock (`/model/{modelId}/converse` and `/converse-stream`).

mod common;

use common::{client, read_raw};
use hmac::{Hmac, Mac};
use portcullis_testkit::{Fault, MockUpstream};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const MODEL_PATH: &str = "anthropic.claude-3-haiku-20240307-v1%3A0";
const FAKE_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDMOCK/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";

fn body(user: &str) -> Value {
    json!({
        "system": [{"text": "You are terse."}],
        "messages": [{"role": "user", "content": [{"text": user}]}],
        "inferenceConfig": {"maxTokens": 100}
    })
}

fn weather_body() -> Value {
    let mut b = body("weather in Paris?");
    b["toolConfig"] = json!({"tools": [{"toolSpec": {
        "name": "get_weather",
        "inputSchema": {"json": {"type": "object"}}
    }}]});
    b
}

async fn post(mock: &MockUpstream, model: &str, op: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/model/{model}/{op}", mock.root_url()))
        .header("authorization", FAKE_AUTH)
        .header("x-amz-date", "20250101T000000Z")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// One decoded event-stream message.
#[derive(Debug)]
struct Frame {
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl Frame {
    fn header(&self, name: &str) -> &str {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str()).unwrap_or("")
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

/// Decodes complete frames, checking both CRCs; `Err` on the first bad frame.
fn decode(mut buf: &[u8]) -> Result<Vec<Frame>, String> {
    let be32 = |b: &[u8]| u32::from_be_bytes(b[..4].try_into().unwrap());
    let mut frames = Vec::new();
    while buf.len() >= 12 {
        let total = be32(buf) as usize;
        let hlen = be32(&buf[4..]) as usize;
        if be32(&buf[8..]) != crc32fast::hash(&buf[..8]) {
            return Err("prelude crc".into());
        }
        if buf.len() < total {
            break;
        }
        if be32(&buf[total - 4..]) != crc32fast::hash(&buf[..total - 4]) {
            return Err("message crc".into());
        }
        let (mut h, mut headers) = (&buf[12..12 + hlen], Vec::new());
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8(h[1..1 + n].to_vec()).unwrap();
            assert_eq!(h[1 + n], 7, "string header");
            let vlen = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
            let value = String::from_utf8(h[4 + n..4 + n + vlen].to_vec()).unwrap();
            headers.push((name, value));
            h = &h[4 + n + vlen..];
        }
        let payload = buf[12 + hlen..total - 4].to_vec();
        frames.push(Frame { headers, payload });
        buf = &buf[total..];
    }
    Ok(frames)
}

#[tokio::test]
async fn converse_text_and_tool_use() {
    let mock = MockUpstream::start().await;
    let resp = post(&mock, MODEL_PATH, "converse", &body("hello there")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-amzn-requestid").is_some());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["output"]["message"]["role"], "assistant");
    assert_eq!(
        v["output"]["message"]["content"],
        json!([{"text": "echo: hello there"}])
    );
    assert_eq!(v["stopReason"], "end_turn");
    let u = &v["usage"];
    assert_eq!(u["outputTokens"], 3);
    assert_eq!(
        u["totalTokens"].as_u64(),
        Some(u["inputTokens"].as_u64().unwrap() + 3)
    );
    assert!(v["metrics"]["latencyMs"].is_u64());
    assert_eq!(
        mock.requests()[0].path,
        format!("/model/{MODEL_PATH}/converse")
    );

    let v: Value = post(&mock, MODEL_PATH, "converse", &weather_body())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stopReason"], "tool_use");
    let tool = &v["output"]["message"]["content"][0]["toolUse"];
    assert_eq!(tool["name"], "get_weather");
    assert_eq!(tool["input"], json!({"location": "Paris"}));
    assert!(tool["toolUseId"].as_str().unwrap().starts_with("tooluse_"));
}

#[tokio::test]
async fn converse_stream_is_a_crc_checked_event_stream() {
    let mock = MockUpstream::start().await;
    let resp = post(&mock, MODEL_PATH, "converse-stream", &body("one two")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let raw = read_raw(resp).await;
    assert!(raw.error.is_none());
    let frames = decode(&raw.bytes).unwrap();
    let kinds: Vec<&str> = frames.iter().map(|f| f.header(":event-type")).collect();
    assert_eq!(
        kinds,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    for f in &frames {
        assert_eq!(f.header(":message-type"), "event");
        assert_eq!(f.header(":content-type"), "application/json");
        assert!(f.json()["p"].is_string(), "padding field");
    }
    assert_eq!(frames[0].json()["role"], "assistant");
    let text: String = frames[1..4]
        .iter()
        .map(|f| {
            let v = f.json();
            assert_eq!(v["contentBlockIndex"], 0);
            v["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "echo: one two");
    assert_eq!(frames[5].json()["stopReason"], "end_turn");
    let meta = frames[6].json();
    assert_eq!(meta["usage"]["outputTokens"], 3);
    assert!(meta["metrics"]["latencyMs"].is_u64());
}

#[tokio::test]
async fn converse_stream_tool_use_input_reassembles() {
    let mock = MockUpstream::start().await;
    let raw = read_raw(post(&mock, MODEL_PATH, "converse-stream", &weather_body()).await).await;
    let frames = decode(&raw.bytes).unwrap();
    assert_eq!(frames[1].header(":event-type"), "contentBlockStart");
    let start = &frames[1].json()["start"]["toolUse"];
    assert_eq!(start["name"], "get_weather");
    let input: String = frames
        .iter()
        .filter(|f| f.header(":event-type") == "contentBlockDelta")
        .map(|f| {
            f.json()["delta"]["toolUse"]["input"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&input).unwrap(),
        json!({"location": "Paris"})
    );
    let stop = frames
        .iter()
        .find(|f| f.header(":event-type") == "messageStop");
    assert_eq!(stop.unwrap().json()["stopReason"], "tool_use");
}

#[tokio::test]
async fn auth_headers_are_required() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/model/{MODEL_PATH}/converse", mock.root_url());
    let resp = client().post(&url).json(&body("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let kind = resp.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        kind.starts_with("MissingAuthenticationTokenException"),
        "{kind}"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["message"], "Missing Authentication Token");

    let resp = client()
        .post(&url)
        .header("authorization", FAKE_AUTH)
        .json(&body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "no x-amz-date");
    let rec = &mock.requests()[1];
    assert!(rec
        .header("authorization")
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256 Credential="));
}

#[tokio::test]
async fn faults_are_bedrock_shaped() {
    let mock = MockUpstream::start().await;
    let resp = post(&mock, "fault-status-429", "converse", &body("hi")).await;
    assert_eq!(resp.status(), 429);
    let kind = resp.headers()["x-amzn-errortype"].to_str().unwrap();
    assert_eq!(kind.split(':').next(), Some("ThrottlingException"));
    let v: Value = resp.json().await.unwrap();
    assert!(v["message"].is_string());

    mock.push_fault(Fault::status(400));
    let resp = post(&mock, MODEL_PATH, "converse", &body("hi")).await;
    let kind = resp.headers()["x-amzn-errortype"].to_str().unwrap();
    assert!(kind.starts_with("ValidationException"));

    // Mid-stream exception frame.
    let raw = read_raw(
        post(
            &mock,
            "fault-stream-error-2",
            "converse-stream",
            &body("a b c"),
        )
        .await,
    )
    .await;
    assert!(raw.error.is_none());
    let frames = decode(&raw.bytes).unwrap();
    assert_eq!(frames.len(), 3);
    let last = &frames[2];
    assert_eq!(last.header(":message-type"), "exception");
    assert_eq!(last.header(":exception-type"), "modelStreamErrorException");
    assert!(last.json()["message"].is_string());

    // Dropped connection after two frames.
    mock.push_fault(Fault::StreamDropAfter(2));
    let raw = read_raw(post(&mock, MODEL_PATH, "converse-stream", &body("a b c")).await).await;
    assert!(raw.error.is_some());
    assert_eq!(decode(&raw.bytes).unwrap().len(), 2);

    // Malformed stream: the frame's CRC does not match.
    let raw = read_raw(post(&mock, "fault-malformed", "converse-stream", &body("a")).await).await;
    assert_eq!(decode(&raw.bytes).unwrap_err(), "message crc");
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Minimal SigV4 signer for the test: POST, no query, signed host + x-amz-date.
fn sign(host: &str, path: &str, body: &[u8], key: &str, secret: &str) -> (String, String) {
    let date = "20250101T000000Z";
    // Non-S3 services sign the path encoded once more: %3A -> %253A.
    let canonical_uri = path.replace('%', "%25");
    let canonical = format!(
        "POST\n{canonical_uri}\n\nhost:{host}\nx-amz-date:{date}\n\nhost;x-amz-date\n{}",
        hex(&Sha256::digest(body))
    );
    let scope = "20250101/us-east-1/bedrock/aws4_request";
    let sts = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut k = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        k = hmac(&k, part);
    }
    let sig = hex(&hmac(&k, &sts));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders=host;x-amz-date, Signature={sig}"
    );
    (auth, date.to_owned())
}

#[tokio::test]
async fn sigv4_signature_is_verified_when_expected() {
    let mock = MockUpstream::start().await;
    mock.expect_aws_credentials("AKIDMOCK", "mock-secret");
    let host = mock.addr().to_string();
    let path = format!("/model/{MODEL_PATH}/converse");
    let payload = serde_json::to_vec(&body("signed")).unwrap();
    let send = |auth: String, date: String| {
        client()
            .post(format!("{}{path}", mock.root_url()))
            .header("authorization", auth)
            .header("x-amz-date", date)
            .header("content-type", "application/json")
            .body(payload.clone())
            .send()
    };

    let (auth, date) = sign(&host, &path, &payload, "AKIDMOCK", "mock-secret");
    let resp = send(auth, date).await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let (auth, date) = sign(&host, &path, &payload, "AKIDMOCK", "wrong-secret");
    let resp = send(auth, date).await.unwrap();
    assert_eq!(resp.status(), 403);
    let kind = resp.headers()["x-amzn-errortype"].to_str().unwrap();
    assert!(kind.starts_with("InvalidSignatureException"));

    let (auth, date) = sign(&host, &path, &payload, "AKIDOTHER", "mock-secret");
    let resp = send(auth, date).await.unwrap();
    let kind = resp.headers()["x-amzn-errortype"].to_str().unwrap();
    assert!(kind.starts_with("UnrecognizedClientException"));
}
