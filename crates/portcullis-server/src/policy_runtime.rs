//! The security policy a running gateway enforces: the active version and, in shadow mode,
//! the candidate evaluated next to it. Loaded from the store, compiled once, swapped in
//! atomically; a request reads one snapshot, so it is judged by exactly one version.

use portcullis_guard::{CompiledProfile, ProfileDef};
use portcullis_policy::decide::CompiledPolicy;
use portcullis_policy::document::parse_policy;
use portcullis_store::Store;
use std::collections::HashMap;
use std::sync::Arc;

/// One compiled policy version.
pub struct LoadedPolicy {
    /// Version number in the store.
    pub version: i64,
    /// The compiled rules.
    pub compiled: CompiledPolicy,
    /// The document defines rate limits, budgets or a guardrail `max_prompt_tokens`:
    /// requests are then estimated
    /// with the tokenizer, which should be built before they arrive (see
    /// [`PolicySnapshot::uses_tokenizer`]).
    pub has_limits: bool,
    /// Guardrail profiles by name, compiled once per version.
    pub guards: HashMap<String, Arc<CompiledProfile>>,
}

/// What a request is judged by.
#[derive(Default, Clone)]
pub struct PolicySnapshot {
    /// Enforced version; `None` until a policy is applied (keys' own model globs only).
    pub active: Option<Arc<LoadedPolicy>>,
    /// Candidate evaluated without enforcement.
    pub shadow: Option<Arc<LoadedPolicy>>,
}

impl PolicySnapshot {
    /// Loads the versions named by the store's policy state, reusing already compiled ones.
    pub async fn load(store: &Store, previous: &PolicySnapshot) -> Result<PolicySnapshot, String> {
        let state = store.policy_state().await.map_err(|e| e.to_string())?;
        let active = load_version(store, state.active_version, &previous.active).await?;
        let shadow = load_version(store, state.shadow_version, &previous.shadow).await?;
        Ok(PolicySnapshot { active, shadow })
    }

    /// Whether requests judged by this snapshot may need token estimates (a version with
    /// limits or budgets): the tokenizer is then warmed up off the request path.
    pub fn uses_tokenizer(&self) -> bool {
        [&self.active, &self.shadow]
            .into_iter()
            .flatten()
            .any(|p| p.has_limits)
    }
}

async fn load_version(
    store: &Store,
    version: Option<i64>,
    previous: &Option<Arc<LoadedPolicy>>,
) -> Result<Option<Arc<LoadedPolicy>>, String> {
    let Some(version) = version else {
        return Ok(None);
    };
    if let Some(p) = previous.as_ref().filter(|p| p.version == version) {
        return Ok(Some(p.clone()));
    }
    let stored = store
        .get_policy_version(version)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("policy version {version} is missing from the store"))?;
    let invalid = |e: String| format!("policy version {version}: {e}");
    let validated = parse_policy(&stored.document).map_err(|e| invalid(e.to_string()))?;
    let compiled =
        CompiledPolicy::compile(&validated.document).map_err(|e| invalid(e.to_string()))?;
    let doc = &validated.document;
    let mut has_limits = !doc.rate_limits.is_empty() || !doc.budgets.is_empty();
    let mut guards = HashMap::new();
    for (name, value) in &doc.guardrails {
        let def = ProfileDef::from_value(value.clone()).map_err(|e| invalid(e.to_string()))?;
        let profile = CompiledProfile::compile(&def).map_err(|e| invalid(e.to_string()))?;
        has_limits |= profile.max_prompt_tokens().is_some();
        guards.insert(name.clone(), Arc::new(profile));
    }
    Ok(Some(Arc::new(LoadedPolicy {
        version,
        compiled,
        has_limits,
        guards,
    })))
}

/// Parses, validates and compiles a policy document.
pub fn compile_text(text: &str) -> Result<CompiledPolicy, String> {
    let validated = parse_policy(text).map_err(|e| e.to_string())?;
    CompiledPolicy::compile(&validated.document).map_err(|e| e.to_string())
}
