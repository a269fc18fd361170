//! `portcullis users create|list|disable`, `teams create|list`, `keys rotate|expire` and
//! `usage`: identity management directly on the store, audited as `cli:<user>`.

use crate::cli::keys::{now, open_store};
use crate::cli::policy::actor;
use anyhow::{bail, Context, Result};
use portcullis_server::policy_ops::audit;
use portcullis_store::{NewKey, NewUser, Store, UsageQuery};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

/// Fails unless `role` is built in or defined by the active policy.
pub async fn check_role(store: &Store, role: &str) -> Result<()> {
    if portcullis_policy::rbac::BUILTIN_ROLES.contains(&role) {
        return Ok(());
    }
    if let Some(v) = store.policy_state().await?.active_version {
        if let Some(stored) = store.get_policy_version(v).await? {
            let compiled = portcullis_server::policy_runtime::compile_text(&stored.document)
                .map_err(anyhow::Error::msg)?;
            if compiled.has_role(role) {
                return Ok(());
            }
        }
    }
    bail!(
        "unknown role '{role}': use a built-in role ({}) or one defined by the active policy",
        portcullis_policy::rbac::BUILTIN_ROLES.join(", ")
    )
}

/// `users create`.
pub async fn create_user(
    config: Option<&Path>,
    name: String,
    email: Option<String>,
    team: Option<String>,
    role: String,
) -> Result<ExitCode> {
    if name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let store = open_store(config).await?;
    check_role(&store, &role).await?;
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("cannot draw random bytes: {e}"))?;
    let user = store
        .create_user(&NewUser {
            id: format!("user_{}", hex::encode(bytes)),
            name,
            email,
            team,
            role,
            created_at: now(),
        })
        .await?;
    let detail = json!({"name": user.name, "team": user.team, "role": user.role});
    audit(&store, &actor(), "user.create", &user.id, "ok", detail).await;
    store.close().await;
    println!("{}", user.id);
    Ok(ExitCode::SUCCESS)
}

/// `users list`.
pub async fn list_users(config: Option<&Path>, json: bool) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let users = store.list_users().await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&users)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<18} {:<20} {:<16} {:<15} STATE",
        "ID", "NAME", "TEAM", "ROLE"
    );
    for u in &users {
        let state = if u.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        };
        let team = u.team.as_deref().unwrap_or("-");
        println!(
            "{:<18} {:<20} {:<16} {:<15} {state}",
            u.id, u.name, team, u.role
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `users disable ID`.
pub async fn disable_user(config: Option<&Path>, id: &str) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let found = store.disable_user(id, now()).await?;
    if found {
        audit(&store, &actor(), "user.disable", id, "ok", json!({})).await;
    }
    store.close().await;
    if found {
        eprintln!("disabled {id}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: no user with id {id}");
        Ok(ExitCode::FAILURE)
    }
}

/// `teams create NAME`.
pub async fn create_team(config: Option<&Path>, name: &str, description: &str) -> Result<ExitCode> {
    let store = open_store(config).await?;
    store.create_team(name, description, now()).await?;
    audit(
        &store,
        &actor(),
        "team.create",
        name,
        "ok",
        json!({"description": description}),
    )
    .await;
    store.close().await;
    eprintln!("created team {name}");
    Ok(ExitCode::SUCCESS)
}

/// `teams list`.
pub async fn list_teams(config: Option<&Path>, json: bool) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let teams = store.list_teams().await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&teams)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<20} DESCRIPTION", "NAME");
    for t in &teams {
        println!("{:<20} {}", t.name, t.description);
    }
    Ok(ExitCode::SUCCESS)
}

/// `keys rotate ID`: revokes the key and prints its replacement alone on stdout.
pub async fn rotate_key(config: Option<&Path>, id: &str) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let Some(old) = store.get_key(id).await? else {
        eprintln!("error: no key with id {id}");
        return Ok(ExitCode::FAILURE);
    };
    let key = portcullis_policy::generate_key()
        .map_err(|e| anyhow::anyhow!("cannot draw random bytes for a key: {e}"))?;
    let at = now();
    let new = NewKey {
        id: key.id.clone(),
        name: old.name,
        prefix: key.prefix.clone(),
        hash: key.hash.clone(),
        models: old.models,
        created_at: at,
        expires_at: old.expires_at,
        team: old.team,
        role: old.role,
        owner: old.owner,
    };
    let rotated = store.rotate_key(id, &new, at).await?;
    if rotated.is_none() {
        store.close().await;
        eprintln!("error: key {id} is revoked; only active keys rotate");
        return Ok(ExitCode::FAILURE);
    }
    audit(
        &store,
        &actor(),
        "key.rotate",
        id,
        "ok",
        json!({"new_id": key.id}),
    )
    .await;
    store.close().await;
    eprintln!(
        "rotated {id} -> {} ({}…); the old key no longer works",
        key.id, key.prefix
    );
    println!("{}", key.secret);
    Ok(ExitCode::SUCCESS)
}

/// `keys expire ID --in 1d | --now`.
pub async fn expire_key(
    config: Option<&Path>,
    id: &str,
    lifetime: Option<&str>,
) -> Result<ExitCode> {
    let at = match lifetime {
        None => now(),
        Some(text) => {
            let d = humantime::parse_duration(text)
                .with_context(|| format!("--in '{text}' is not a duration (examples: 1d, 12h)"))?;
            now().saturating_add(d.as_secs() as i64)
        }
    };
    let store = open_store(config).await?;
    let found = store.set_key_expiry(id, Some(at)).await?;
    if found {
        audit(
            &store,
            &actor(),
            "key.expire",
            id,
            "ok",
            json!({"expires_at": at}),
        )
        .await;
    }
    store.close().await;
    if found {
        eprintln!("{id} expires at unix {at}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: no key with id {id}");
        Ok(ExitCode::FAILURE)
    }
}

/// `usage [--team T] [--since 7d]`: requests, tokens and spend per key and model.
pub async fn usage(
    config: Option<&Path>,
    team: Option<String>,
    since: &str,
    json: bool,
) -> Result<ExitCode> {
    let span = humantime::parse_duration(since)
        .with_context(|| format!("--since '{since}' is not a duration (examples: 7d, 24h)"))?;
    let until = now() + 1;
    let store = open_store(config).await?;
    let rows = store
        .usage_summary(&UsageQuery {
            team,
            key_id: None,
            since: until - 1 - span.as_secs() as i64,
            until,
        })
        .await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<17} {:<14} {:<20} {:>9} {:>12} {:>12} {:>11}",
        "KEY", "TEAM", "MODEL", "REQUESTS", "PROMPT", "COMPLETION", "COST USD"
    );
    for r in &rows {
        println!(
            "{:<17} {:<14} {:<20} {:>9} {:>12} {:>12} {:>11.4}",
            r.key_id,
            r.team.as_deref().unwrap_or("-"),
            r.model,
            r.requests,
            r.prompt_tokens,
            r.completion_tokens,
            r.cost_micros as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}
