//! The policy lifecycle shared by the admin API and the CLI: validate, diff against the
//! active version, apply (enforced or shadow), roll back, promote, discard — each change
//! written to the audit log with the acting principal.
//!
//! Callers check permissions first (the admin API does RBAC; the CLI is a trusted
//! operator); these functions only validate, write and audit. Running gateways pick the
//! change up through the store's policy revision (the admin API also refreshes its own
//! instance at once).

use portcullis_policy::diff::{diff, PolicyDiff};
use portcullis_policy::document::{parse_policy, PolicyDocument, Problem};
use portcullis_store::{NewAuditEntry, PolicyState, ShadowReport, Store, StoreError};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a lifecycle step failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The document did not validate; nothing was written.
    #[error("invalid policy document ({} problem(s))", .0.len())]
    Invalid(Vec<Problem>),
    /// A named version (or the shadow) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The step makes no sense in the current state (e.g. shadowing the active version).
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> OpsError {
        match e {
            StoreError::NotFound(m) => OpsError::NotFound(m),
            StoreError::Invalid(m) | StoreError::Conflict(m) => OpsError::Conflict(m),
            other => OpsError::Store(other),
        }
    }
}

/// The verdict on a document (`policy validate`, `POST /api/v1/policies/validate`).
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    /// Whether the document may be applied.
    pub valid: bool,
    /// Every error, with its path (empty when valid).
    pub problems: Vec<Problem>,
    /// Risky but legal settings.
    pub warnings: Vec<Problem>,
    /// Canonical hash of a valid document.
    pub hash: Option<String>,
}

/// Validates a document without writing anything.
pub fn validate(text: &str) -> Validation {
    match parse_policy(text) {
        Ok(v) => Validation {
            valid: true,
            problems: vec![],
            warnings: v.warnings,
            hash: Some(v.hash),
        },
        Err(e) => Validation {
            valid: false,
            problems: e.problems,
            warnings: e.warnings,
            hash: None,
        },
    }
}

/// The difference between the active version and a candidate.
#[derive(Debug, Clone, Serialize)]
pub struct DiffOutcome {
    /// The active version compared against (`None`: no policy active, compared with an
    /// empty document).
    pub against: Option<i64>,
    /// The changes, path by path.
    pub changes: PolicyDiff,
    /// One human-readable line per change.
    pub text: String,
}

/// The document every first version is compared with: no rules at all.
pub(crate) fn empty_document() -> PolicyDocument {
    PolicyDocument {
        version: 1,
        default_team: None,
        roles: Default::default(),
        teams: Default::default(),
        rate_limits: vec![],
        budgets: vec![],
        ip: Default::default(),
        guardrails: Default::default(),
    }
}

/// Diffs a candidate document against the active version.
pub async fn diff_against_active(store: &Store, text: &str) -> Result<DiffOutcome, OpsError> {
    let candidate = parse_policy(text).map_err(|e| OpsError::Invalid(e.problems))?;
    let state = store.policy_state().await?;
    let (against, old) = match state.active_version {
        None => (None, empty_document()),
        Some(v) => {
            let stored = store
                .get_policy_version(v)
                .await?
                .ok_or_else(|| OpsError::NotFound(format!("policy version {v} is missing")))?;
            let doc = parse_policy(&stored.document)
                .map(|p| p.document)
                .map_err(|e| OpsError::Invalid(e.problems))?;
            (Some(v), doc)
        }
    };
    let changes = diff(&old, &candidate.document);
    let text = changes.to_string();
    Ok(DiffOutcome {
        against,
        changes,
        text,
    })
}

/// A successfully applied document.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The new version number.
    pub version: i64,
    /// Its canonical hash.
    pub hash: String,
    /// Whether it runs in shadow mode (not enforced).
    pub shadow: bool,
    /// Warnings of the document.
    pub warnings: Vec<Problem>,
}

/// Unix time now, seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Who performs a lifecycle step, and where its audit record goes: through the gateway's
/// audit queue (admin API) or straight to the store (CLI, `trail: None`).
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    /// Key id, user or `cli` name recorded as the actor.
    pub id: &'a str,
    /// The running gateway's audit queue, when there is one.
    pub trail: Option<&'a crate::audit_trail::AuditTrail>,
}

impl<'a> From<&'a str> for Actor<'a> {
    fn from(id: &'a str) -> Actor<'a> {
        Actor { id, trail: None }
    }
}

impl<'a> From<&'a String> for Actor<'a> {
    fn from(id: &'a String) -> Actor<'a> {
        Actor { id, trail: None }
    }
}

/// Appends one audit entry; failures are logged, never hidden from the operator's log.
pub async fn audit(
    store: &Store,
    actor: &str,
    action: &str,
    target: &str,
    ok: &str,
    detail: Value,
) {
    let entry = NewAuditEntry {
        at: now(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        outcome: ok.to_string(),
        detail,
    };
    if let Err(e) = store.append_audit(&entry).await {
        tracing::error!(error = %e, action, "ALERT: cannot write the audit log");
    }
}

async fn audited<T>(
    store: &Store,
    actor: Actor<'_>,
    action: &str,
    target: &str,
    result: Result<T, OpsError>,
    detail: impl FnOnce(&T) -> Value,
) -> Result<T, OpsError> {
    let (outcome, detail) = match &result {
        Ok(v) => ("ok", detail(v)),
        Err(e) => {
            let detail = match e {
                OpsError::Invalid(p) => json!({"error": e.to_string(), "problems": p}),
                other => json!({"error": other.to_string()}),
            };
            ("error", detail)
        }
    };
    match actor.trail {
        None => audit(store, actor.id, action, target, outcome, detail).await,
        Some(trail) => {
            let entry = NewAuditEntry {
                at: now(),
                actor: actor.id.to_string(),
                action: action.to_string(),
                target: target.to_string(),
                outcome: outcome.to_string(),
                detail,
            };
            trail.append(entry).await;
        }
    }
    result
}

/// Validates and appends a document, then activates it (or starts shadow mode with it).
/// An invalid document writes nothing but the audit entry; the active version stays.
pub async fn apply(
    store: &Store,
    text: &str,
    author: &str,
    comment: &str,
    shadow: bool,
    actor: impl Into<Actor<'_>>,
) -> Result<Applied, OpsError> {
    let actor = actor.into();
    let action = if shadow {
        "policy.shadow"
    } else {
        "policy.apply"
    };
    let result = async {
        let validated = parse_policy(text).map_err(|e| OpsError::Invalid(e.problems))?;
        let version = store
            .append_policy_version(text, &validated.hash, author, comment, now())
            .await?;
        if shadow {
            store.set_shadow_policy(Some(version), now()).await?;
        } else {
            store.activate_policy(version).await?;
        }
        Ok(Applied {
            version,
            hash: validated.hash,
            shadow,
            warnings: validated.warnings,
        })
    }
    .await;
    let target = match &result {
        Ok(a) => a.version.to_string(),
        Err(_) => "-".to_string(),
    };
    audited(
        store,
        actor,
        action,
        &target,
        result,
        |a| json!({"version": a.version, "hash": a.hash, "comment": comment, "author": author}),
    )
    .await
}

/// Activates an earlier version (versions stay immutable). Returns the version that was
/// active before.
pub async fn rollback(
    store: &Store,
    version: i64,
    actor: impl Into<Actor<'_>>,
) -> Result<Option<i64>, OpsError> {
    let actor = actor.into();
    let result = async {
        let before = store.policy_state().await?.active_version;
        store.activate_policy(version).await?;
        Ok(before)
    }
    .await;
    audited(
        store,
        actor,
        "policy.rollback",
        &version.to_string(),
        result,
        |b| json!({"from": b, "to": version}),
    )
    .await
}

/// Makes the shadow version the enforced one. Returns its number.
pub async fn promote(store: &Store, actor: impl Into<Actor<'_>>) -> Result<i64, OpsError> {
    let actor = actor.into();
    let result = async {
        let state = store.policy_state().await?;
        let v = state.shadow_version.ok_or_else(no_shadow)?;
        store.activate_policy(v).await?;
        Ok((v, state.active_version))
    }
    .await;
    let target = result
        .as_ref()
        .map_or("-".to_string(), |(v, _)| v.to_string());
    audited(
        store,
        actor,
        "policy.promote",
        &target,
        result,
        |(v, from)| json!({"version": v, "replaced": from}),
    )
    .await
    .map(|(v, _)| v)
}

/// Ends shadow mode without enforcing the shadow version. Returns its number.
pub async fn discard(store: &Store, actor: impl Into<Actor<'_>>) -> Result<i64, OpsError> {
    let actor = actor.into();
    let result = async {
        let v = store
            .policy_state()
            .await?
            .shadow_version
            .ok_or_else(no_shadow)?;
        store.set_shadow_policy(None, now()).await?;
        Ok(v)
    }
    .await;
    let target = result.as_ref().map_or("-".to_string(), |v| v.to_string());
    audited(
        store,
        actor,
        "policy.discard",
        &target,
        result,
        |v| json!({"version": v}),
    )
    .await
}

fn no_shadow() -> OpsError {
    OpsError::NotFound("no policy version is running in shadow mode".into())
}

/// The shadow-mode report: which version, since when, and its differences.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowStatus {
    /// Active and shadow pointers.
    pub state: PolicyState,
    /// The version reported on.
    pub version: i64,
    /// Every recorded difference, summarised.
    pub report: ShadowReport,
}

/// Reports on `version`, or on the current shadow version when `None`.
pub async fn shadow_report(store: &Store, version: Option<i64>) -> Result<ShadowStatus, OpsError> {
    let state = store.policy_state().await?;
    let version = version.or(state.shadow_version).ok_or_else(no_shadow)?;
    let report = store.shadow_report(version).await?;
    Ok(ShadowStatus {
        state,
        version,
        report,
    })
}
