//! Request recording.

mod common;

use common::{chat_body, client};
use portcullis_testkit::{Fault, MockOptions, MockUpstream};

#[tokio::test]
async fn records_method_path_headers_and_body_in_order() {
    let mock = MockUpstream::start().await;
    assert!(mock.base_url().starts_with("http://127.0.0.1:"));
    assert!(mock.base_url().ends_with("/v1"));
    assert_ne!(mock.addr().port(), 0);

    mock.push_fault(Fault::status(500));
    let resp = client()
        .post(format!(
            "{}/chat/completions?api-version=1",
            mock.base_url()
        ))
        .header("Authorization", "Bearer sk-upstream")
        .header("X-Custom-Thing", "abc")
        .json(&chat_body("mock-gpt", "recorded", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    client()
        .get(format!("{}/models", mock.base_url()))
        .send()
        .await
        .unwrap();

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(mock.request_count(), 2);
    let first = &reqs[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/chat/completions?api-version=1");
    assert_eq!(first.header("authorization"), Some("Bearer sk-upstream"));
    assert_eq!(first.header("X-CUSTOM-THING"), Some("abc"));
    assert!(first.headers.iter().any(|(n, _)| n == "x-custom-thing"));
    assert!(first.headers.iter().all(|(n, _)| *n == n.to_lowercase()));
    assert_eq!(first.json()["messages"][1]["content"], "recorded");
    assert_eq!(reqs[1].method, "GET");
    assert_eq!(reqs[1].path, "/v1/models");
    assert!(reqs[1].body.is_empty());
    assert!(reqs[1].json().is_null());

    mock.clear_requests();
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn recording_can_be_disabled() {
    let addr = "127.0.0.1:0".parse().unwrap();
    let mock = MockUpstream::start_with(addr, MockOptions { record: false })
        .await
        .unwrap();
    let resp = client()
        .get(format!("{}/models", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn dropping_the_mock_stops_it() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/models", mock.base_url());
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    drop(mock);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let fresh = reqwest::Client::new();
    assert!(fresh.get(&url).send().await.is_err());
}
