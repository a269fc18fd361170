//! `portcullis keys create|list|revoke`: key management directly on the store.

use crate::cli::config::load;
use anyhow::{bail, Context, Result};
use portcullis_store::{KeyRecord, NewKey, Store};
use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// Opens the store named by the configuration.
pub(crate) async fn open_store(config: Option<&Path>) -> Result<Store> {
    let loaded = load(config)?;
    Ok(Store::connect(&loaded.config.store.url).await?)
}

/// Unix time now, seconds.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Creates a key and prints it alone on stdout.
pub async fn create(
    config: Option<&Path>,
    name: String,
    models: Vec<String>,
    expires: Option<&str>,
    identity: (Option<String>, String, Option<String>),
) -> Result<ExitCode> {
    let (team, role, owner) = identity;
    if name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    for glob in &models {
        globset::Glob::new(glob)
            .with_context(|| format!("--models '{glob}' is not a valid glob"))?;
    }
    let created_at = now();
    let expires_at = match expires {
        None => None,
        Some(text) => {
            let lifetime = humantime::parse_duration(text).with_context(|| {
                format!("--expires '{text}' is not a duration (examples: 30d, 12h, 90m)")
            })?;
            if lifetime.is_zero() {
                bail!("--expires must be longer than zero");
            }
            Some(created_at.saturating_add(lifetime.as_secs() as i64))
        }
    };
    let store = open_store(config).await?;
    crate::cli::identity::check_role(&store, &role).await?;
    let key = portcullis_policy::generate_key()
        .map_err(|e| anyhow::anyhow!("cannot draw random bytes for a key: {e}"))?;
    let detail = store
        .create_key(&NewKey {
            id: key.id.clone(),
            name,
            prefix: key.prefix.clone(),
            hash: key.hash.clone(),
            models,
            created_at,
            expires_at,
            team,
            role,
            owner,
        })
        .await
        .map(|r| serde_json::json!({"team": r.team, "role": r.role, "owner": r.owner, "name": r.name}))?;
    let actor = crate::cli::policy::actor();
    portcullis_server::policy_ops::audit(&store, &actor, "key.create", &key.id, "ok", detail).await;
    store.close().await;
    eprintln!(
        "created {} ({}…); store the key now, it is not shown again",
        key.id, key.prefix
    );
    println!("{}", key.secret);
    Ok(ExitCode::SUCCESS)
}

fn state(record: &KeyRecord, now: i64) -> &'static str {
    if record.revoked_at.is_some() {
        "revoked"
    } else if record.expires_at.is_some_and(|at| now >= at) {
        "expired"
    } else {
        "active"
    }
}

fn time_text(at: Option<i64>) -> String {
    match at {
        None => "-".into(),
        Some(secs) => humantime::format_rfc3339_seconds(
            UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64),
        )
        .to_string(),
    }
}

/// Lists keys without ever showing one.
pub async fn list(config: Option<&Path>, json: bool) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let records = store.list_keys().await?;
    store.close().await;
    let now = now();
    if json {
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "prefix": r.prefix, "name": r.name, "state": state(r, now),
                    "models": r.models, "created_at": r.created_at, "expires_at": r.expires_at,
                    "revoked_at": r.revoked_at, "last_used_at": r.last_used_at,
                    "team": r.team, "role": r.role, "owner": r.owner,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<17} {:<13} {:<20} {:<8} {:<24} {:<21} LAST USED",
        "ID", "PREFIX", "NAME", "STATE", "MODELS", "EXPIRES"
    );
    for r in &records {
        let models = if r.models.is_empty() {
            "*".to_string()
        } else {
            r.models.join(",")
        };
        println!(
            "{:<17} {:<13} {:<20} {:<8} {:<24} {:<21} {}",
            r.id,
            r.prefix,
            r.name,
            state(r, now),
            models,
            time_text(r.expires_at),
            time_text(r.last_used_at)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Revokes a key; a running gateway refuses it within a second.
pub async fn revoke(config: Option<&Path>, id: &str) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let found = store.revoke_key(id, now()).await?;
    if found {
        let actor = crate::cli::policy::actor();
        portcullis_server::policy_ops::audit(
            &store,
            &actor,
            "key.revoke",
            id,
            "ok",
            serde_json::json!({}),
        )
        .await;
    }
    store.close().await;
    if found {
        eprintln!("revoked {id}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: no key with id {id}");
        Ok(ExitCode::FAILURE)
    }
}
