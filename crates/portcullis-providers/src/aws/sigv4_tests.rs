//! SigV4 against AWS's published signing test suite (aws-c-auth
//! tests/aws-signing-test-suite/v4): credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z,
//! us-east-1, service `service`, host example.amazonaws.com.

use super::*;
use std::time::Duration;

const DATE: &str = "20150830T123600Z";
const SCOPE: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

fn creds(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: token.map(str::to_owned),
    }
}

fn request<'a>(method: &'a str, path: &'a str, query: &'a str) -> SignableRequest<'a> {
    SignableRequest {
        method,
        host: "example.amazonaws.com",
        path,
        query,
        headers: &[],
        payload: b"",
    }
}

fn authorization(req: &SignableRequest<'_>, c: &Credentials, sha_header: bool) -> String {
    let params = SigningParams {
        credentials: c,
        region: "us-east-1",
        service: "service",
        amz_date: DATE,
        content_sha256_header: sha_header,
    };
    let headers = sign(req, &params).unwrap();
    assert_eq!(headers[0], ("x-amz-date", DATE.to_string()));
    let (name, value) = headers.last().unwrap();
    assert_eq!(*name, "authorization");
    value.clone()
}

fn expected(signed: &str, signature: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, Signature={signature}")
}

#[test]
fn get_vanilla() {
    assert_eq!(
        authorization(&request("GET", "/", ""), &creds(None), false),
        expected(
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )
    );
}

#[test]
fn post_vanilla() {
    assert_eq!(
        authorization(&request("POST", "/", ""), &creds(None), false),
        expected(
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        )
    );
}

#[test]
fn get_vanilla_query_order_key_case() {
    let req = request("GET", "/", "Param2=value2&Param1=value1");
    assert_eq!(
        authorization(&req, &creds(None), false),
        expected(
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        )
    );
}

#[test]
fn get_vanilla_query_unreserved() {
    let q = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    assert_eq!(
        authorization(&request("GET", "/", q), &creds(None), false),
        expected(
            "host;x-amz-date",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        )
    );
}

#[test]
fn get_utf8() {
    assert_eq!(
        authorization(&request("GET", "/ሴ", ""), &creds(None), false),
        expected(
            "host;x-amz-date",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        )
    );
}

#[test]
fn get_vanilla_with_session_token() {
    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    let c = creds(Some(token));
    let params = SigningParams {
        credentials: &c,
        region: "us-east-1",
        service: "service",
        amz_date: DATE,
        content_sha256_header: false,
    };
    let headers = sign(&request("GET", "/", ""), &params).unwrap();
    assert_eq!(headers[1], ("x-amz-security-token", token.to_string()));
    assert_eq!(
        headers[2].1,
        expected(
            "host;x-amz-date;x-amz-security-token",
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        )
    );
}

#[test]
fn post_x_www_form_urlencoded_with_content_sha256() {
    let req = SignableRequest {
        headers: &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", "13"),
        ],
        payload: b"Param1=value1",
        ..request("POST", "/", "")
    };
    let c = creds(None);
    let params = SigningParams {
        credentials: &c,
        region: "us-east-1",
        service: "service",
        amz_date: DATE,
        content_sha256_header: true,
    };
    let headers = sign(&req, &params).unwrap();
    assert_eq!(
        headers[1],
        (
            "x-amz-content-sha256",
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e".to_string()
        )
    );
    assert_eq!(
        headers[2].1,
        expected(
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
        )
    );
}

#[test]
fn bedrock_model_ids_are_encoded_twice() {
    assert_eq!(
        canonical_uri("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"),
        "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse"
    );
    assert_eq!(canonical_uri(""), "/");
}

#[test]
fn query_is_decoded_then_encoded_strictly_and_sorted() {
    assert_eq!(canonical_query("b=2&a=x%2Fy&a=1&c"), "a=1&a=x%2Fy&b=2&c=");
    assert_eq!(canonical_query("k=a b"), "k=a%20b");
}

#[test]
fn header_values_are_trimmed_and_collapsed() {
    assert_eq!(canonical_value("  a   b  c "), "a b c");
}

#[test]
fn bad_dates_are_rejected() {
    let c = creds(None);
    for date in [
        "",
        "2015-08-30T12:36:00Z",
        "20150830123600Z",
        "20150830T1236000",
    ] {
        let params = SigningParams {
            credentials: &c,
            region: "us-east-1",
            service: "bedrock",
            amz_date: date,
            content_sha256_header: false,
        };
        assert!(sign(&request("GET", "/", ""), &params).is_err(), "{date}");
    }
}

#[test]
fn amz_date_formats_utc() {
    let at = |s: u64| amz_date(UNIX_EPOCH + Duration::from_secs(s));
    assert_eq!(at(1_440_938_160), DATE);
    assert_eq!(at(0), "19700101T000000Z");
    assert_eq!(at(1_709_164_800), "20240229T000000Z");
    assert_eq!(at(1_735_689_599), "20241231T235959Z");
}

#[test]
fn debug_redacts_secrets() {
    let shown = format!("{:?}", creds(Some("SESSION-SECRET")));
    assert!(
        !shown.contains("EXAMPLEKEY") && !shown.contains("SESSION-SECRET"),
        "{shown}"
    );
}
