//! Checks that need the whole document: references, duplicates, values that parse but are unusable.

use crate::types::{Config, ProviderKind, TlsConfig};
use crate::Problem;
use std::collections::HashSet;
use std::net::SocketAddr;

/// Where the parsed list items stood in the document (items that failed to parse are absent
/// from the typed config but still count for positions and names).
#[derive(Debug, Default)]
pub struct Positions {
    /// Document index of each parsed provider.
    pub providers: Vec<usize>,
    /// Document index of each parsed model.
    pub models: Vec<usize>,
    /// Every provider name written in the document.
    pub provider_names: Vec<String>,
    /// Every model name written in the document.
    pub model_names: Vec<String>,
    /// Document index of each parsed routing rule.
    pub routing: Vec<usize>,
    /// Document index of each parsed route.
    pub routes: Vec<usize>,
}

/// Adds every error and warning about `config` to the given lists.
pub fn validate(
    config: &Config,
    positions: &Positions,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    crate::security::validate(&config.audit, &config.alerts, problems);
    let mut push = |path: String, message: String| problems.push(Problem { path, message });
    crate::records::validate(&config.logs, &config.reports, &mut push);
    let server = &config.server;
    if server.listen == server.admin_listen {
        push(
            "server.admin_listen".into(),
            format!("must differ from server.listen ({})", server.listen),
        );
    }
    if server.max_body_size.0 == 0 {
        push(
            "server.max_body_size".into(),
            "must be greater than zero".into(),
        );
    }
    let t = &server.timeouts;
    for (name, value) in [
        ("connect", t.connect),
        ("request", t.request),
        ("stream_idle", t.stream_idle),
    ] {
        if value.0.is_zero() {
            push(
                format!("server.timeouts.{name}"),
                "must be greater than zero".into(),
            );
        }
    }
    for (path, tls) in [
        ("server.tls", &server.tls),
        ("server.admin_tls", &server.admin_tls),
    ] {
        if let Some(tls) = tls {
            check_tls_files(path, tls, &mut push);
        }
    }
    for (path, addr, tls) in [
        ("server.listen", server.listen, &server.tls),
        (
            "server.admin_listen",
            server.admin_listen,
            &server.admin_tls,
        ),
    ] {
        if tls.is_none() && !addr.ip().is_loopback() {
            warnings.push(Problem {
                path: path.into(),
                message: format!("plain HTTP on non-loopback address {addr}: traffic and keys travel unencrypted; configure TLS"),
            });
        }
    }
    if !is_loopback(server.admin_listen) {
        warnings.push(Problem {
            path: "server.admin_listen".into(),
            message: "the admin plane listens on a non-loopback address; keep it private".into(),
        });
    }

    let url = &config.store.url;
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        push(
            "store.url".into(),
            "must start with sqlite:// or postgres://".into(),
        );
    }

    if let Some(redis) = &config.redis {
        if !(redis.url.starts_with("redis://") || redis.url.starts_with("rediss://")) {
            push(
                "redis.url".into(),
                "must start with redis:// or rediss://".into(),
            );
        }
    }

    if let Some(otlp) = &config.telemetry.otlp {
        if let Some(endpoint) = &otlp.endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                push(
                    "telemetry.otlp.endpoint".into(),
                    "must start with http:// or https://".into(),
                );
            }
        }
        if !(0.0..=1.0).contains(&otlp.sample_ratio) {
            push(
                "telemetry.otlp.sample_ratio".into(),
                "must be between 0.0 and 1.0".into(),
            );
        }
        if otlp.service_name.trim().is_empty() {
            push(
                "telemetry.otlp.service_name".into(),
                "must not be empty".into(),
            );
        }
    }

    let mut names = HashSet::new();
    for (p, i) in config.providers.iter().zip(&positions.providers) {
        let path = format!("providers[{i}]");
        if p.name.trim().is_empty() {
            push(format!("{path}.name"), "must not be empty".into());
        } else if !names.insert(p.name.as_str()) {
            push(
                format!("{path}.name"),
                format!("duplicate provider name '{}'", p.name),
            );
        }
        match (p.kind, &p.base_url) {
            (ProviderKind::Mock, Some(_)) => warnings.push(Problem {
                path: format!("{path}.base_url"),
                message: "the mock provider runs in-process; base_url is ignored".into(),
            }),
            (ProviderKind::OpenaiCompatible, None) => push(
                format!("{path}.base_url"),
                "required for kind openai-compatible (e.g. http://127.0.0.1:11434/v1)".into(),
            ),
            (ProviderKind::AzureOpenai, None) => push(
                format!("{path}.base_url"),
                "required for kind azure-openai (e.g. https://my-resource.openai.azure.com)".into(),
            ),
            (_, Some(url)) => {
                if let Err(why) = check_http_url(url) {
                    push(format!("{path}.base_url"), why);
                }
            }
            _ => {}
        }
        if p.kind.needs_api_key() && p.api_key.is_none() {
            push(
                format!("{path}.api_key"),
                format!(
                    "required for kind {} (write api_key: ${{ENV_VAR}})",
                    p.kind.as_str()
                ),
            );
        }
        if p.kind == ProviderKind::Bedrock {
            if p.region.as_deref().is_none_or(str::is_empty) {
                push(
                    format!("{path}.region"),
                    "required for kind bedrock (e.g. us-east-1)".into(),
                );
            }
            for (field, value) in [
                ("access_key_id", &p.access_key_id),
                ("secret_access_key", &p.secret_access_key),
            ] {
                if value.is_none() {
                    push(
                        format!("{path}.{field}"),
                        format!(
                            "required for kind bedrock (write {field}: ${{AWS_{}}})",
                            field.to_ascii_uppercase()
                        ),
                    );
                }
            }
        } else {
            for (field, set) in [
                ("region", p.region.is_some()),
                ("access_key_id", p.access_key_id.is_some()),
                ("secret_access_key", p.secret_access_key.is_some()),
                ("session_token", p.session_token.is_some()),
            ] {
                if set {
                    push(
                        format!("{path}.{field}"),
                        format!("only valid for kind bedrock, not {}", p.kind.as_str()),
                    );
                }
            }
        }
        if p.api_version.is_some() && p.kind != ProviderKind::AzureOpenai {
            push(
                format!("{path}.api_version"),
                format!("only valid for kind azure-openai, not {}", p.kind.as_str()),
            );
        }
        if let Some(key) = &p.api_key {
            if key.expose().is_empty() {
                push(format!("{path}.api_key"), "is empty".into());
            }
        }
        check_headers(&path, &p.headers, &mut push);
        if let Some(ca) = &p.ca_bundle {
            if !ca.is_file() {
                push(
                    format!("{path}.ca_bundle"),
                    format!("file {} not found", ca.display()),
                );
            }
        }
    }

    let mut models = HashSet::new();
    for (m, i) in config.models.iter().zip(&positions.models) {
        let path = format!("models[{i}]");
        if m.name.trim().is_empty() {
            push(format!("{path}.name"), "must not be empty".into());
        } else if !models.insert(m.name.as_str()) {
            push(
                format!("{path}.name"),
                format!("duplicate model name '{}'", m.name),
            );
        }
        if let Some(price) = &m.price {
            for (field, v) in [
                ("input_per_mtok", price.input_per_mtok),
                ("output_per_mtok", price.output_per_mtok),
                (
                    "cached_input_per_mtok",
                    price.cached_input_per_mtok.unwrap_or(0.0),
                ),
            ] {
                if !v.is_finite() || v < 0.0 {
                    push(
                        format!("{path}.price.{field}"),
                        "must be a non-negative number".into(),
                    );
                }
            }
        }
    }
    crate::routing::validate_routing(config, positions, &mut push);
    crate::edge::validate_edge(
        &config.routes,
        &positions.routes,
        config.cache.as_ref(),
        config.redis.is_some(),
        problems,
    );
}

fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

fn check_tls_files(path: &str, tls: &TlsConfig, push: &mut impl FnMut(String, String)) {
    for (field, file) in [("cert", &tls.cert), ("key", &tls.key)] {
        if !file.is_file() {
            push(
                format!("{path}.{field}"),
                format!("file {} not found", file.display()),
            );
        }
    }
}

fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("'{url}' must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("'{url}' has no valid host"));
    }
    Ok(())
}

/// Extra headers (of a provider or a REST route): valid names, values without CR, LF or NUL.
pub(crate) fn check_headers(
    path: &str,
    headers: &std::collections::BTreeMap<String, crate::Secret>,
    push: &mut impl FnMut(String, String),
) {
    for (name, value) in headers {
        if !is_header_name(name) {
            push(
                format!("{path}.headers.{name}"),
                "is not a valid HTTP header name".into(),
            );
        }
        if value
            .expose()
            .bytes()
            .any(|b| b == b'\r' || b == b'\n' || b == 0)
        {
            push(
                format!("{path}.headers.{name}"),
                "value contains control characters".into(),
            );
        }
    }
}

pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
