//! AWS Signature Version 4 verification (header-based, `AWS4-HMAC-SHA256`), used by the
//! Bedrock mock when [`crate::MockUpstream::expect_aws_credentials`] is set.
//!
//! The canonical URI is the request path URI-encoded once more (as AWS SDKs do for every
//! service but S3), so a model id sent as `a%3A0` is signed as `a%253A0`.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Authorization<'a> {
    pub access_key: &'a str,
    /// `date/region/service/aws4_request`.
    pub scope: &'a str,
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

/// Parses the header; `None` if it is not a complete SigV4 authorization.
pub(crate) fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let (access_key, scope) = credential?.split_once('/')?;
    if scope.split('/').count() != 4 || !scope.ends_with("/aws4_request") {
        return None;
    }
    Some(Authorization {
        access_key,
        scope,
        signed_headers: signed_headers?,
        signature: signature?,
    })
}

/// What a request looks like to the signer.
pub(crate) struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The signature the request should carry for `secret` under `auth`'s scope and headers.
pub(crate) fn expected_signature(
    req: &SignedRequest<'_>,
    auth: &Authorization<'_>,
    secret: &str,
) -> String {
    let amz_date = header(req.headers, "x-amz-date");
    let canonical = canonical_request(req, auth.signed_headers);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        auth.scope,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    // kDate, kRegion, kService, kSigning: one HMAC per scope element.
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in auth.scope.split('/') {
        key = hmac(&key, part.as_bytes());
    }
    hex(&hmac(&key, string_to_sign.as_bytes()))
}

fn canonical_request(req: &SignedRequest<'_>, signed_headers: &str) -> String {
    let uri = if req.path.is_empty() {
        "/".to_owned()
    } else {
        uri_encode(req.path, false)
    };
    let mut query: Vec<(String, String)> = req
        .query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), true),
                uri_encode(&percent_decode(v), true),
            )
        })
        .collect();
    query.sort();
    let query: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for name in signed_headers.split(';') {
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&header(req.headers, name));
        headers.push('\n');
    }
    let payload_hash = match req.headers.get("x-amz-content-sha256") {
        Some(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
        None => hex(&Sha256::digest(req.body)),
    };
    format!(
        "{}\n{uri}\n{}\n{headers}\n{signed_headers}\n{payload_hash}",
        req.method,
        query.join("&")
    )
}

/// All values of a header joined by `,`, each trimmed with inner spaces collapsed.
fn header(headers: &HeaderMap, name: &str) -> String {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            let s = String::from_utf8_lossy(v.as_bytes());
            s.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect();
    values.join(",")
}

/// RFC 3986 encoding of everything but unreserved characters (and `/` unless `slash`).
fn uri_encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (b == b'/' && !slash)
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (invalid escapes are kept literally).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (
            bytes[i],
            hex_pair.and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `get-vanilla` from the AWS SigV4 test suite.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let value = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let auth = parse_authorization(value).unwrap();
        assert_eq!(auth.access_key, "AKIDEXAMPLE");
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: None,
            headers: &headers,
            body: b"",
        };
        let sig = expected_signature(&req, &auth, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert_eq!(sig, auth.signature);
    }

    #[test]
    fn path_is_encoded_again_and_decoding_works() {
        assert_eq!(
            uri_encode("/model/a%3A0/converse", false),
            "/model/a%253A0/converse"
        );
        assert_eq!(
            percent_decode("anthropic.claude-v2%3A1"),
            "anthropic.claude-v2:1"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert!(parse_authorization("Bearer x").is_none());
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=AK/x, Signature=00").is_none());
    }
}
