//! Permissions, the built-in roles and the "cannot grant more than you hold" rule.
//!
//! # Built-in roles
//!
//! Always present, cannot be redefined. Resources are globs; for management permissions
//! the resource is the [`Relation`] of the target to the caller (`own`, `team`,
//! `other-team`), so `*` means "anyone's".
//!
//! | role             | permissions (resources)                                                                                      |
//! |------------------|--------------------------------------------------------------------------------------------------------------|
//! | `admin`          | every permission (`*`)                                                                                       |
//! | `security-admin` | `policies:read`, `policies:write`, `keys:create`, `keys:read`, `keys:revoke`, `audit:read`, `users:read`, `teams:read`, `usage:read`, `routing:read` (`*`) |
//! | `auditor`        | `audit:read`, `logs:read`, `usage:read`, `policies:read`, `keys:read`, `users:read`, `teams:read`, `routing:read` (`*`) |
//! | `developer`      | `models:invoke` (`*`), `routes:invoke` (`*`), `keys:create`, `keys:read`, `keys:revoke`, `usage:read` (`own`) |
//! | `viewer`         | `usage:read` (`own`, `team`), `teams:read` (`team`), `keys:read` (`own`)                                    |
//!
//! Model and route access of `developer` is further narrowed by the caller's team.

use serde::{Deserialize, Serialize};

/// An action a role may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
pub enum Permission {
    /// Call a model (resource: model name).
    #[serde(rename = "models:invoke")]
    ModelsInvoke,
    /// Call a REST route (resource: request path).
    #[serde(rename = "routes:invoke")]
    RoutesInvoke,
    /// Create API keys.
    #[serde(rename = "keys:create")]
    KeysCreate,
    /// List and read API keys.
    #[serde(rename = "keys:read")]
    KeysRead,
    /// Revoke, rotate or expire API keys.
    #[serde(rename = "keys:revoke")]
    KeysRevoke,
    /// Read policy versions.
    #[serde(rename = "policies:read")]
    PoliciesRead,
    /// Validate, apply, shadow, promote and roll back policies.
    #[serde(rename = "policies:write")]
    PoliciesWrite,
    /// Read the audit log.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Read request logs.
    #[serde(rename = "logs:read")]
    LogsRead,
    /// Read usage and spend reports.
    #[serde(rename = "usage:read")]
    UsageRead,
    /// List users.
    #[serde(rename = "users:read")]
    UsersRead,
    /// Create, change and delete users.
    #[serde(rename = "users:write")]
    UsersWrite,
    /// List teams.
    #[serde(rename = "teams:read")]
    TeamsRead,
    /// Create, change and delete teams.
    #[serde(rename = "teams:write")]
    TeamsWrite,
    /// Read routing state: circuit breakers of model targets.
    #[serde(rename = "routing:read")]
    RoutingRead,
    /// Change routing state: reset circuit breakers.
    #[serde(rename = "routing:write")]
    RoutingWrite,
}

impl Permission {
    /// Every permission, in declaration order.
    pub const ALL: [Permission; 16] = [
        Permission::ModelsInvoke,
        Permission::RoutesInvoke,
        Permission::KeysCreate,
        Permission::KeysRead,
        Permission::KeysRevoke,
        Permission::PoliciesRead,
        Permission::PoliciesWrite,
        Permission::AuditRead,
        Permission::LogsRead,
        Permission::UsageRead,
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::TeamsRead,
        Permission::TeamsWrite,
        Permission::RoutingRead,
        Permission::RoutingWrite,
    ];

    /// The name used in documents, e.g. `models:invoke`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ModelsInvoke => "models:invoke",
            Permission::RoutesInvoke => "routes:invoke",
            Permission::KeysCreate => "keys:create",
            Permission::KeysRead => "keys:read",
            Permission::KeysRevoke => "keys:revoke",
            Permission::PoliciesRead => "policies:read",
            Permission::PoliciesWrite => "policies:write",
            Permission::AuditRead => "audit:read",
            Permission::LogsRead => "logs:read",
            Permission::UsageRead => "usage:read",
            Permission::UsersRead => "users:read",
            Permission::UsersWrite => "users:write",
            Permission::TeamsRead => "teams:read",
            Permission::TeamsWrite => "teams:write",
            Permission::RoutingRead => "routing:read",
            Permission::RoutingWrite => "routing:write",
        }
    }
}

/// How the target of a management action relates to the caller: the resource string for
/// `keys:*`, `usage:read`, `teams:read` and similar permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The caller's own object (own key, own usage).
    Own,
    /// An object of the caller's team.
    Team,
    /// An object of another team (or of no team).
    OtherTeam,
}

impl Relation {
    /// The resource string: `own`, `team`, `other-team`.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Own => "own",
            Relation::Team => "team",
            Relation::OtherTeam => "other-team",
        }
    }
}

/// Names of the built-in roles.
pub const BUILTIN_ROLES: [&str; 5] = ["admin", "security-admin", "auditor", "developer", "viewer"];

/// The grants of a built-in role (`None` for other names). See the module table.
pub fn builtin_role(name: &str) -> Option<Vec<(Permission, Vec<&'static str>)>> {
    use Permission::*;
    let all = |perms: &[Permission]| perms.iter().map(|p| (*p, vec!["*"])).collect::<Vec<_>>();
    Some(match name {
        "admin" => all(&Permission::ALL),
        "security-admin" => all(&[
            PoliciesRead,
            PoliciesWrite,
            KeysCreate,
            KeysRead,
            KeysRevoke,
            AuditRead,
            UsersRead,
            TeamsRead,
            UsageRead,
            RoutingRead,
        ]),
        "auditor" => all(&[
            AuditRead,
            LogsRead,
            UsageRead,
            PoliciesRead,
            KeysRead,
            UsersRead,
            TeamsRead,
            RoutingRead,
        ]),
        "developer" => vec![
            (ModelsInvoke, vec!["*"]),
            (RoutesInvoke, vec!["*"]),
            (KeysCreate, vec!["own"]),
            (KeysRead, vec!["own"]),
            (KeysRevoke, vec!["own"]),
            (UsageRead, vec!["own"]),
        ],
        "viewer" => vec![
            (UsageRead, vec!["own", "team"]),
            (TeamsRead, vec!["team"]),
            (KeysRead, vec!["own"]),
        ],
        _ => return None,
    })
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// Whether every resource matched by glob `requested` is also matched by glob `held`.
/// Conservative: returns false when it cannot prove coverage.
pub fn glob_covers(held: &str, requested: &str) -> bool {
    if held == "*" || held == requested {
        return true;
    }
    if !has_meta(requested) {
        return globset::Glob::new(held)
            .map(|g| g.compile_matcher().is_match(requested))
            .unwrap_or(false);
    }
    // `prefix*` covers any pattern that starts with the same literal prefix.
    if let Some(prefix) = held.strip_suffix('*') {
        if !has_meta(prefix) {
            return requested
                .strip_prefix(prefix)
                .is_some_and(|_| !has_meta(&requested[..prefix.len()]));
        }
    }
    false
}

/// Whether a holder of `held` grants may give away every grant of `requested`: each
/// requested permission must be held, and each of its resource globs covered by a held
/// glob of the same permission.
pub fn can_grant<S1: AsRef<str>, S2: AsRef<str>>(
    held: &[(Permission, Vec<S1>)],
    requested: &[(Permission, Vec<S2>)],
) -> bool {
    requested.iter().all(|(perm, resources)| {
        resources.iter().all(|want| {
            held.iter().any(|(p, globs)| {
                p == perm && globs.iter().any(|g| glob_covers(g.as_ref(), want.as_ref()))
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_is_conservative() {
        assert!(glob_covers("*", "gpt-*"));
        assert!(glob_covers("gpt-*", "gpt-4o"));
        assert!(glob_covers("gpt-*", "gpt-4o*"));
        assert!(!glob_covers("gpt-4o", "gpt-*"));
        assert!(!glob_covers("gpt-*", "*"));
        assert!(!glob_covers("gpt-*", "claude"));
        assert!(!glob_covers("g?t-*", "gpt-4o*"));
    }

    #[test]
    fn builtins_exist_and_admin_covers_all() {
        let admin = builtin_role("admin").unwrap();
        for name in BUILTIN_ROLES {
            assert!(can_grant(&admin, &builtin_role(name).unwrap()), "{name}");
        }
        let dev = builtin_role("developer").unwrap();
        assert!(!can_grant(&dev, &admin));
        assert!(!can_grant(&dev, &builtin_role("viewer").unwrap()));
        assert!(!can_grant(&builtin_role("viewer").unwrap(), &dev));
        assert!(builtin_role("root").is_none());
    }
}
