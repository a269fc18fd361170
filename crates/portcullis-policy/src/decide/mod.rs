//! The pure decision: given who is calling, from where, for what, a compiled policy says
//! allowed or denied, which rule decided, and which limits and budgets apply.
//!
//! Evaluation order (the first failing step decides; rule names in brackets):
//! 1. gateway IP deny list (`ip.deny[i]`), then allow list (`ip.allow`);
//! 2. the role must exist (`roles.<role>`);
//! 3. the team (own or `default_team`) must exist (`teams.<team>` / `default_team`);
//! 4. team IP deny, allow (`teams.<t>.ip.deny[i]`, `teams.<t>.ip.allow`);
//! 5. the role must grant `models:invoke`/`routes:invoke` on the target (`roles.<role>`);
//! 6. the team must allow the target (`teams.<t>.models` / `teams.<t>.routes`);
//! 7. request size (`teams.<t>.max_body_bytes`, `teams.<t>.max_tokens_per_request`).
//!
//! An allowed decision names the team rule that allowed it and lists the limits to reserve.

mod compiled;
mod shadow;

pub use compiled::{CompileError, CompiledPolicy};
pub use shadow::{compare, ShadowDiff, ShadowDiffKind};

use crate::document::{BudgetMode, BudgetPeriod, BudgetScope, Interval, LimitScope};
use crate::rbac::Permission;
use compiled::IpSet;
use std::net::IpAddr;

/// What is being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// An LLM call to this public model name.
    Model(&'a str),
    /// A REST route call to this request path.
    Route(&'a str),
}

/// Everything the decision needs to know about one request.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// The API key's public id.
    pub key_id: &'a str,
    /// The key's owner, if it has one.
    pub user_id: Option<&'a str>,
    /// The key's team; `None` falls back to the policy's `default_team`.
    pub team: Option<&'a str>,
    /// The key's role name.
    pub role: &'a str,
    /// The client address (after trusted-proxy handling), if known.
    pub client_ip: Option<IpAddr>,
    /// The model or route called.
    pub target: Target<'a>,
    /// Estimated prompt + requested completion tokens (see [`crate::tokens`]); `None`
    /// when not estimated (allowed only when no `max_tokens_per_request` applies).
    pub estimated_tokens: Option<u64>,
    /// Request body size in bytes, if known.
    pub body_bytes: Option<u64>,
}

/// What a [`LimitRef`] counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LimitKind {
    /// Requests per interval.
    Requests {
        /// Requests allowed per interval.
        limit: u64,
        /// Interval in seconds.
        interval_secs: u64,
    },
    /// Tokens per interval (reserve an estimate, settle with actual usage).
    Tokens {
        /// Tokens allowed per interval.
        limit: u64,
        /// Interval in seconds.
        interval_secs: u64,
    },
    /// Requests in flight at once.
    Concurrent {
        /// Maximum in flight.
        max: u64,
    },
    /// USD spend per calendar period.
    Budget {
        /// Limit in micro-dollars (1 USD = 1,000,000).
        usd_micros: u64,
        /// When the budget starts again.
        period: BudgetPeriod,
        /// Hard blocks, soft reports.
        mode: BudgetMode,
    },
}

impl LimitKind {
    /// Short label for headers and metrics: `requests`, `tokens`, `concurrent`, `budget`.
    pub fn label(&self) -> &'static str {
        match self {
            LimitKind::Requests { .. } => "requests",
            LimitKind::Tokens { .. } => "tokens",
            LimitKind::Concurrent { .. } => "concurrent",
            LimitKind::Budget { .. } => "budget",
        }
    }
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            LimitKind::Requests {
                limit,
                interval_secs,
            } => {
                write!(
                    f,
                    "{limit} requests/{}",
                    Interval {
                        secs: interval_secs
                    }
                )
            }
            LimitKind::Tokens {
                limit,
                interval_secs,
            } => {
                write!(
                    f,
                    "{limit} tokens/{}",
                    Interval {
                        secs: interval_secs
                    }
                )
            }
            LimitKind::Concurrent { max } => write!(f, "{max} concurrent"),
            LimitKind::Budget {
                usd_micros,
                period,
                mode,
            } => {
                let period = match period {
                    BudgetPeriod::Day => "day",
                    BudgetPeriod::Month => "month",
                };
                let mode = match mode {
                    BudgetMode::Hard => "hard",
                    BudgetMode::Soft => "soft",
                };
                write!(f, "${:.2}/{period} {mode}", usd_micros as f64 / 1e6)
            }
        }
    }
}

/// One rate limit or budget that applies to a request, with the counter it uses.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitRef {
    /// The rule id in the document.
    pub id: String,
    /// What is counted and how much is allowed.
    pub kind: LimitKind,
    /// The storage key of the counter, e.g. `rl:team-rpm:requests:team=research` or
    /// `budget:daily:team=research` (the backend adds the period to budget keys).
    pub counter: String,
}

/// The outcome of [`CompiledPolicy::decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether the request may go on (to the limiters).
    pub allowed: bool,
    /// The rule that decided, e.g. `teams.research.models` or `ip.deny[0]`.
    pub rule: String,
    /// A sentence for logs and the client error (never contains secrets).
    pub reason: String,
    /// Limits and budgets to reserve (empty when denied).
    pub limits: Vec<LimitRef>,
    /// Guardrail profile of the team, if any.
    pub guardrails: Option<String>,
}

fn deny(rule: String, reason: String) -> Decision {
    Decision {
        allowed: false,
        rule,
        reason,
        limits: Vec::new(),
        guardrails: None,
    }
}

fn check_ip(set: &IpSet, prefix: &str, ip: Option<IpAddr>) -> Option<Decision> {
    if let Some(ip) = ip {
        if let Some(i) = set.deny.iter().position(|n| n.contains(&ip)) {
            return Some(deny(
                format!("{prefix}.deny[{i}]"),
                format!("client address {ip} is denied"),
            ));
        }
    }
    if !set.allow.is_empty() && !ip.is_some_and(|ip| set.allow.iter().any(|n| n.contains(&ip))) {
        let shown = ip.map_or("unknown".to_string(), |ip| ip.to_string());
        return Some(deny(
            format!("{prefix}.allow"),
            format!("client address {shown} is not in the allow list"),
        ));
    }
    None
}

impl CompiledPolicy {
    /// Decides one request. Pure and allocation-light: safe to call for both the active
    /// and the shadow policy on every request.
    pub fn decide(&self, p: &Principal<'_>) -> Decision {
        if let Some(d) = check_ip(&self.ip, "ip", p.client_ip) {
            return d;
        }
        if !self.roles.contains_key(p.role) {
            return deny(
                format!("roles.{}", p.role),
                format!("unknown role '{}'", p.role),
            );
        }
        let Some(team_name) = self.effective_team(p.team) else {
            return deny(
                "default_team".into(),
                "the key belongs to no team and the policy has no default_team".into(),
            );
        };
        let Some(team) = self.teams.get(team_name) else {
            return deny(
                format!("teams.{team_name}"),
                format!("team '{team_name}' is not defined in the active policy"),
            );
        };
        if let Some(d) = check_ip(&team.ip, &format!("teams.{team_name}.ip"), p.client_ip) {
            return d;
        }
        let (perm, what, name, set, field) = match p.target {
            Target::Model(m) => (Permission::ModelsInvoke, "model", m, &team.models, "models"),
            Target::Route(r) => (Permission::RoutesInvoke, "route", r, &team.routes, "routes"),
        };
        if !self.can(p.role, perm, name) {
            return deny(
                format!("roles.{}", p.role),
                format!(
                    "role '{}' may not {} {what} '{name}'",
                    p.role,
                    perm.as_str()
                ),
            );
        }
        if !set.is_match(name) {
            return deny(
                format!("teams.{team_name}.{field}"),
                format!("{what} '{name}' is not allowed for team '{team_name}'"),
            );
        }
        if let (Some(max), Some(body)) = (team.max_body_bytes, p.body_bytes) {
            if body > max {
                return deny(
                    format!("teams.{team_name}.max_body_bytes"),
                    format!("request body of {body} bytes exceeds the team limit of {max}"),
                );
            }
        }
        if let Some(max) = team.max_tokens_per_request {
            match p.estimated_tokens {
                Some(n) if n > max => {
                    return deny(
                        format!("teams.{team_name}.max_tokens_per_request"),
                        format!("request of about {n} tokens exceeds the team limit of {max}"),
                    )
                }
                None => {
                    return deny(
                        format!("teams.{team_name}.max_tokens_per_request"),
                        "the request's token count is unknown and the team limits it".into(),
                    )
                }
                _ => {}
            }
        }
        Decision {
            allowed: true,
            rule: format!("teams.{team_name}.{field}"),
            reason: format!("{what} '{name}' allowed for team '{team_name}'"),
            limits: self.limits_for(p, team_name, team),
            guardrails: team.guardrails.clone(),
        }
    }

    fn limits_for(
        &self,
        p: &Principal<'_>,
        team_name: &str,
        team: &compiled::CompiledTeam,
    ) -> Vec<LimitRef> {
        let model = match p.target {
            Target::Model(m) => Some(m),
            Target::Route(_) => None,
        };
        let mut out = Vec::new();
        for &i in &team.rate_limits {
            let rl = &self.rate_limits[i];
            if let Some(m) = &rl.model {
                if !model.is_some_and(|name| m.is_match(name)) {
                    continue;
                }
            }
            let def = &rl.def;
            let scope = scope_value(def.scope, p, team_name, model);
            let interval_secs = def.interval.map_or(0, |iv| iv.secs);
            let kinds = [
                def.requests.map(|limit| LimitKind::Requests {
                    limit,
                    interval_secs,
                }),
                def.tokens.map(|limit| LimitKind::Tokens {
                    limit,
                    interval_secs,
                }),
                def.concurrent.map(|max| LimitKind::Concurrent { max }),
            ];
            for kind in kinds.into_iter().flatten() {
                out.push(LimitRef {
                    id: def.id.clone(),
                    counter: format!("rl:{}:{}:{scope}", def.id, kind.label()),
                    kind,
                });
            }
        }
        for &i in &team.budgets {
            let b = &self.budgets[i];
            let scope = match b.scope {
                BudgetScope::Key => format!("key={}", p.key_id),
                BudgetScope::Team => format!("team={team_name}"),
            };
            out.push(LimitRef {
                id: b.id.clone(),
                counter: format!("budget:{}:{scope}", b.id),
                kind: LimitKind::Budget {
                    usd_micros: (b.usd * 1_000_000.0).round() as u64,
                    period: b.period,
                    mode: b.mode,
                },
            });
        }
        out
    }
}

fn scope_value(scope: LimitScope, p: &Principal<'_>, team: &str, model: Option<&str>) -> String {
    match scope {
        LimitScope::Key => format!("key={}", p.key_id),
        LimitScope::User => match p.user_id {
            Some(u) => format!("user={u}"),
            None => format!("user=key:{}", p.key_id),
        },
        LimitScope::Team => format!("team={team}"),
        LimitScope::Model => format!("model={}", model.unwrap_or("-")),
        LimitScope::Ip => match p.client_ip {
            Some(ip) => format!("ip={ip}"),
            None => "ip=unknown".into(),
        },
        LimitScope::Global => "global".into(),
    }
}

#[cfg(test)]
mod tests;
