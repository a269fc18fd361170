//! The compiled form of a policy: globsets and networks built once, per-team lists of the
//! limits that can apply, so a decision does no parsing and no allocation beyond its result.

use crate::document::{
    parse_net, BudgetDef, IpRules, PolicyDocument, PolicyErrors, RateLimitDef, TeamCache,
};
use crate::rbac::{builtin_role, Permission};
use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use std::collections::HashMap;

/// Why a document could not be compiled (it did not validate).
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct CompileError(#[from] pub PolicyErrors);

pub(crate) fn globset(patterns: &[impl AsRef<str>]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        if let Ok(g) = Glob::new(p.as_ref()) {
            builder.add(g);
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

fn matcher(pattern: &Option<String>) -> Option<GlobMatcher> {
    pattern
        .as_deref()
        .and_then(|p| Glob::new(p).ok())
        .map(|g| g.compile_matcher())
}

/// Compiled client IP rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct IpSet {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

impl IpSet {
    fn new(rules: &IpRules) -> IpSet {
        let nets = |v: &[String]| v.iter().filter_map(|n| parse_net(n).ok()).collect();
        IpSet {
            allow: nets(&rules.allow),
            deny: nets(&rules.deny),
        }
    }
}

/// One grant of a role, compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledGrant {
    pub permission: Permission,
    pub resources: Vec<String>,
    pub set: GlobSet,
}

/// A compiled team.
#[derive(Debug, Clone)]
pub(crate) struct CompiledTeam {
    pub models: GlobSet,
    pub routes: GlobSet,
    pub ip: IpSet,
    /// Indexes into `CompiledPolicy::rate_limits` that apply to this team (before `match.model`).
    pub rate_limits: Vec<usize>,
    /// Indexes into `CompiledPolicy::budgets` that apply to this team.
    pub budgets: Vec<usize>,
    pub max_body_bytes: Option<u64>,
    pub max_tokens_per_request: Option<u64>,
    pub max_timeout_secs: Option<u64>,
    pub guardrails: Option<String>,
    pub cache: Option<TeamCache>,
    pub needs_tokens: bool,
    pub log_bodies: bool,
}

/// A compiled rate limit.
#[derive(Debug, Clone)]
pub(crate) struct CompiledLimit {
    pub def: RateLimitDef,
    pub model: Option<GlobMatcher>,
}

/// An immutable, compiled policy version: build it once per applied document, share it
/// behind an `Arc`/`ArcSwap`, evaluate every request against exactly one.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub(crate) hash: String,
    pub(crate) ip: IpSet,
    pub(crate) default_team: Option<String>,
    pub(crate) roles: HashMap<String, Vec<CompiledGrant>>,
    pub(crate) teams: HashMap<String, CompiledTeam>,
    pub(crate) rate_limits: Vec<CompiledLimit>,
    pub(crate) budgets: Vec<BudgetDef>,
}

impl CompiledPolicy {
    /// Validates and compiles a document. Fails with every problem when it is invalid.
    pub fn compile(doc: &PolicyDocument) -> Result<CompiledPolicy, CompileError> {
        let validated = crate::document::validate_document(doc.clone())?;
        let mut roles = HashMap::new();
        for name in crate::rbac::BUILTIN_ROLES {
            let grants = builtin_role(name).unwrap_or_default();
            roles.insert(
                name.to_string(),
                grants
                    .into_iter()
                    .map(|(permission, res)| CompiledGrant {
                        permission,
                        set: globset(&res),
                        resources: res.into_iter().map(String::from).collect(),
                    })
                    .collect(),
            );
        }
        for (name, role) in &doc.roles {
            let grants = role
                .permissions
                .iter()
                .map(|g| CompiledGrant {
                    permission: g.permission,
                    set: globset(&g.resources),
                    resources: g.resources.clone(),
                })
                .collect();
            roles.insert(name.clone(), grants);
        }
        let referenced = |id: &str, budgets: bool| {
            doc.teams.values().any(|t| {
                let list = if budgets { &t.budgets } else { &t.rate_limits };
                list.iter().any(|r| r == id)
            })
        };
        let rate_limits: Vec<CompiledLimit> = doc
            .rate_limits
            .iter()
            .map(|def| CompiledLimit {
                def: def.clone(),
                model: matcher(&def.matches.model),
            })
            .collect();
        let mut teams = HashMap::new();
        for (name, t) in &doc.teams {
            let limits: Vec<usize> = doc
                .rate_limits
                .iter()
                .enumerate()
                .filter(|(_, rl)| {
                    (t.rate_limits.contains(&rl.id) || !referenced(&rl.id, false))
                        && matcher(&rl.matches.team).is_none_or(|m| m.is_match(name))
                })
                .map(|(i, _)| i)
                .collect();
            let budgets = doc
                .budgets
                .iter()
                .enumerate()
                .filter(|(_, b)| t.budgets.contains(&b.id) || !referenced(&b.id, true))
                .map(|(i, _)| i)
                .collect();
            let needs_tokens = t.max_tokens_per_request.is_some()
                || limits.iter().any(|&i| doc.rate_limits[i].tokens.is_some());
            teams.insert(
                name.clone(),
                CompiledTeam {
                    models: globset(&t.models),
                    routes: globset(&t.routes),
                    ip: IpSet::new(&t.ip),
                    rate_limits: limits,
                    budgets,
                    max_body_bytes: t.max_body_bytes,
                    max_tokens_per_request: t.max_tokens_per_request,
                    max_timeout_secs: t.max_timeout_secs,
                    guardrails: t.guardrails.clone(),
                    cache: t.cache,
                    needs_tokens,
                    log_bodies: t.log_bodies,
                },
            );
        }
        Ok(CompiledPolicy {
            hash: validated.hash,
            ip: IpSet::new(&doc.ip),
            default_team: doc.default_team.clone(),
            roles,
            teams,
            rate_limits,
            budgets: doc.budgets.clone(),
        })
    }

    /// The canonical hash of the compiled document (its version identity).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The team a principal counts as: its own, or the document's `default_team`.
    pub fn effective_team<'a>(&'a self, team: Option<&'a str>) -> Option<&'a str> {
        team.or(self.default_team.as_deref())
    }

    /// Whether a request of `team` needs a prompt-token estimate (a token rate limit or
    /// `max_tokens_per_request` may apply). When false, skip the tokenizer entirely.
    pub fn needs_token_estimate(&self, team: Option<&str>) -> bool {
        self.effective_team(team)
            .and_then(|t| self.teams.get(t))
            .is_some_and(|t| t.needs_tokens)
    }

    /// Whether the team's request and response bodies go into the request log, and the
    /// team's guardrail profile name (to redact them with).
    pub fn log_bodies(&self, team: Option<&str>) -> Option<Option<&str>> {
        self.effective_team(team)
            .and_then(|t| self.teams.get(t))
            .filter(|t| t.log_bodies)
            .map(|t| t.guardrails.as_deref())
    }

    /// The team's body size limit, to enforce while reading the body (before deciding).
    pub fn max_body_bytes(&self, team: Option<&str>) -> Option<u64> {
        self.effective_team(team)
            .and_then(|t| self.teams.get(t))
            .and_then(|t| t.max_body_bytes)
    }

    /// The longest upstream time limit (seconds) the team's requests may ask for.
    pub fn max_timeout_secs(&self, team: Option<&str>) -> Option<u64> {
        self.effective_team(team)
            .and_then(|t| self.teams.get(t))
            .and_then(|t| t.max_timeout_secs)
    }

    /// The team's response cache setting (own team or `default_team`), if it has one.
    pub fn team_cache(&self, team: Option<&str>) -> Option<TeamCache> {
        self.effective_team(team)
            .and_then(|t| self.teams.get(t))
            .and_then(|t| t.cache)
    }

    /// Whether `role` grants `permission` on `resource` (a model name, a route path, or a
    /// [`crate::rbac::Relation`] string for management permissions). Unknown roles: false.
    pub fn can(&self, role: &str, permission: Permission, resource: &str) -> bool {
        self.roles.get(role).is_some_and(|grants| {
            grants
                .iter()
                .any(|g| g.permission == permission && g.set.is_match(resource))
        })
    }

    /// The grants of a role (built-in or custom), as (permission, resource globs).
    pub fn role_grants(&self, role: &str) -> Option<Vec<(Permission, Vec<String>)>> {
        self.roles.get(role).map(|grants| {
            grants
                .iter()
                .map(|g| (g.permission, g.resources.clone()))
                .collect()
        })
    }

    /// Whether a holder of `granter_role` may give `requested_role` to someone (create a
    /// key or user with it): the requested grants must all be covered by the granter's.
    /// Unknown roles: false.
    pub fn can_grant(&self, granter_role: &str, requested_role: &str) -> bool {
        match (
            self.role_grants(granter_role),
            self.role_grants(requested_role),
        ) {
            (Some(held), Some(wanted)) => crate::rbac::can_grant(&held, &wanted),
            _ => false,
        }
    }

    /// Whether `name` is a role of this policy (built-in or custom).
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.contains_key(name)
    }

    /// Whether `name` is a team of this policy.
    pub fn has_team(&self, name: &str) -> bool {
        self.teams.contains_key(name)
    }
}
