//! Reading a configuration document: YAML, `${ENV}` substitution, strict typed parsing of
//! each section and list item on its own (so every problem is found in one pass), validation.

use crate::edge::{CacheConfig, RouteConfig};
use crate::env;
use crate::security::{AlertsConfig, AuditConfig};
use crate::types::{
    Config, ModelConfig, ProviderConfig, RedisConfig, ServerConfig, StoreConfig, TelemetryConfig,
};
use crate::validate::{validate, Positions};
use crate::RoutingRule;
use crate::{ConfigError, Problem};
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;
use std::path::Path;

/// A configuration that passed validation, with the warnings worth showing an operator.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Risky but legal settings (literal secrets, plain HTTP on a public address, ...).
    pub warnings: Vec<Problem>,
}

/// Reads and validates a configuration file, taking `${VAR}` values from the process environment.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        problems: vec![Problem {
            path: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }],
    })?;
    load_str(&text, &|name| std::env::var(name).ok())
}

/// Parses and validates a configuration document with an explicit environment lookup.
pub fn load_str(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut root: Value = match serde_yaml_ng::from_str(text) {
        Ok(Value::Null) => Value::Mapping(Default::default()),
        Ok(v) => v,
        Err(e) => {
            return Err(ConfigError {
                problems: vec![problem("", format!("not valid YAML: {e}"))],
            })
        }
    };
    note_literal_secrets(&root, &mut warnings);
    default_aws_credentials(&mut root, lookup);
    substitute_env(&mut root, String::new(), lookup, &mut problems);

    let Value::Mapping(map) = root else {
        return Err(ConfigError {
            problems: vec![problem(
                "",
                "the document must be a mapping (server, store, providers, models)",
            )],
        });
    };
    let mut positions = Positions::default();
    let mut config = Config {
        server: ServerConfig::default(),
        store: StoreConfig::default(),
        providers: Vec::new(),
        models: Vec::new(),
        routing: Vec::new(),
        redis: None,
        logs: crate::LogsConfig::default(),
        reports: crate::ReportsConfig::default(),
        audit: AuditConfig::default(),
        alerts: AlertsConfig::default(),
        routes: Vec::new(),
        cache: None,
        telemetry: Default::default(),
    };
    for (key, value) in map {
        let Some(key) = key.as_str().map(str::to_owned) else {
            problems.push(problem("", "top-level keys must be strings"));
            continue;
        };
        match key.as_str() {
            "server" => {
                if let Some(v) = section::<ServerConfig>(&key, value, &mut problems) {
                    config.server = v;
                }
            }
            "store" => {
                if let Some(v) = section::<StoreConfig>(&key, value, &mut problems) {
                    config.store = v;
                }
            }
            "providers" => {
                positions.provider_names = raw_names(&value);
                (config.providers, positions.providers) =
                    items::<ProviderConfig>(&key, value, &mut problems);
            }
            "models" => {
                positions.model_names = raw_names(&value);
                (config.models, positions.models) = items::<ModelConfig>(&key, value, &mut problems)
            }
            "routing" => {
                (config.routing, positions.routing) =
                    items::<RoutingRule>(&key, value, &mut problems)
            }
            "redis" => {
                config.redis = section::<Option<RedisConfig>>(&key, value, &mut problems).flatten()
            }
            "telemetry" => {
                if let Some(v) = section::<TelemetryConfig>(&key, value, &mut problems) {
                    config.telemetry = v;
                }
            }
            "audit" => {
                if let Some(v) = section::<AuditConfig>(&key, value, &mut problems) {
                    config.audit = v;
                }
            }
            "alerts" => {
                if let Some(v) = section::<AlertsConfig>(&key, value, &mut problems) {
                    config.alerts = v;
                }
            }
            "routes" => {
                (config.routes, positions.routes) = items::<RouteConfig>(&key, value, &mut problems)
            }
            "cache" => {
                config.cache = section::<Option<CacheConfig>>(&key, value, &mut problems).flatten()
            }
            "logs" => {
                if let Some(v) = section::<crate::LogsConfig>(&key, value, &mut problems) {
                    config.logs = v;
                }
            }
            "reports" => {
                if let Some(v) = section::<crate::ReportsConfig>(&key, value, &mut problems) {
                    config.reports = v;
                }
            }
            other => problems.push(problem(
                other,
                "unknown field; expected one of: server, store, providers, models, routing, redis, routes, cache, audit, alerts, logs, reports, telemetry",
            )),
        }
    }
    validate(&config, &positions, &mut problems, &mut warnings);
    if problems.is_empty() {
        Ok(Loaded { config, warnings })
    } else {
        Err(ConfigError { problems })
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

fn join(prefix: &str, inner: &str) -> String {
    match (prefix.is_empty(), inner.is_empty() || inner == ".") {
        (true, _) => inner.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if inner.starts_with('[') => format!("{prefix}{inner}"),
        (false, false) => format!("{prefix}.{inner}"),
    }
}

/// Parses one section. serde stops at the first error, so after each error the offending
/// key is removed and parsing is retried: every problem in the section gets reported.
fn section<T: DeserializeOwned>(
    path: &str,
    mut value: Value,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => return removed.is_empty().then_some(v),
            Err(e) => {
                let inner = e.path().to_string();
                let message = clean_message(e.inner().to_string());
                // A field removed for being invalid is now "missing": already reported.
                if removed.iter().any(|r| {
                    message == format!("missing field `{}`", r.rsplit('.').next().unwrap_or(r))
                }) {
                    return None;
                }
                problems.push(problem(join(path, &inner), message));
                removed.push(inner);
                if !remove_at(&mut value, e.path()) {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes the value at `path` (a key of a mapping) so parsing can go on past it.
fn remove_at(value: &mut Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = value;
    for segment in parents {
        node = match (segment, node) {
            (Segment::Map { key }, Value::Mapping(map)) => match map.get_mut(key.as_str()) {
                Some(child) => child,
                None => return false,
            },
            (Segment::Seq { index }, Value::Sequence(seq)) => match seq.get_mut(*index) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Segment::Map { key }, Value::Mapping(map)) => map.remove(key.as_str()).is_some(),
        _ => false,
    }
}

/// Parses each list item on its own; returns the items that parsed and their positions.
fn items<T: DeserializeOwned>(
    path: &str,
    value: Value,
    problems: &mut Vec<Problem>,
) -> (Vec<T>, Vec<usize>) {
    match value {
        Value::Null => (Vec::new(), Vec::new()),
        Value::Sequence(seq) => seq
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                section::<T>(&format!("{path}[{i}]"), item, problems).map(|v| (v, i))
            })
            .unzip(),
        _ => {
            problems.push(problem(path, "must be a list"));
            (Vec::new(), Vec::new())
        }
    }
}

/// Names given in a list, even for items that failed to parse (so references to them are not
/// reported twice).
fn raw_names(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|seq| {
            seq.iter()
                .filter_map(|item| item.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// serde_yaml messages end with a location that is meaningless once a section is re-parsed.
fn clean_message(message: String) -> String {
    match message.find(" at line ") {
        Some(pos) => message[..pos].to_string(),
        None => message,
    }
}

fn substitute_env(
    value: &mut Value,
    path: String,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    match value {
        Value::String(text) if text.contains('$') => match env::expand(text, lookup) {
            Ok(expanded) => *text = expanded,
            Err(missing) => {
                for name in missing {
                    problems.push(problem(
                        path.clone(),
                        format!("environment variable {name} is not set"),
                    ));
                }
            }
        },
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                substitute_env(item, format!("{path}[{i}]"), lookup, problems);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let key = key.as_str().unwrap_or("?");
                substitute_env(item, join(&path, key), lookup, problems);
            }
        }
        Value::Tagged(tagged) => substitute_env(&mut tagged.value, path, lookup, problems),
        _ => {}
    }
}

/// Bedrock providers without explicit credentials take the standard AWS environment variables.
fn default_aws_credentials(root: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) {
    let Some(providers) = root.get_mut("providers").and_then(Value::as_sequence_mut) else {
        return;
    };
    for provider in providers {
        if provider.get("kind").and_then(Value::as_str) != Some("bedrock") {
            continue;
        }
        let Value::Mapping(map) = provider else {
            continue;
        };
        for (field, var) in [
            ("access_key_id", "AWS_ACCESS_KEY_ID"),
            ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
            ("session_token", "AWS_SESSION_TOKEN"),
        ] {
            if !map.contains_key(field) {
                if let Some(value) = lookup(var) {
                    map.insert(Value::String(field.into()), Value::String(value));
                }
            }
        }
    }
}

/// Message of the warning given for a secret written literally in the file (rather than
/// as `${ENV_VAR}`); `portcullis audit config` turns these warnings into findings.
pub const LITERAL_SECRET_WARNING: &str =
    "literal secret in the configuration file; prefer ${ENV_VAR}";

fn note_literal_secrets(root: &Value, warnings: &mut Vec<Problem>) {
    let Some(providers) = root.get("providers").and_then(Value::as_sequence) else {
        return;
    };
    for (i, provider) in providers.iter().enumerate() {
        for field in ["api_key", "secret_access_key", "session_token"] {
            if let Some(key) = provider.get(field).and_then(Value::as_str) {
                if !env::references_env(key) {
                    warnings.push(problem(
                        format!("providers[{i}].{field}"),
                        LITERAL_SECRET_WARNING,
                    ));
                }
            }
        }
    }
}
