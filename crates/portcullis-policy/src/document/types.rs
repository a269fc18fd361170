//! The typed policy document. Field names are a public contract: keep them.

use crate::rbac::Permission;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// A whole policy document (`version: 1`). Parse it with [`crate::document::parse_policy`],
/// which also validates it; a value built by hand should go through
/// [`crate::document::validate_document`] before it is compiled.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Document format version; only `1` exists.
    pub version: u32,
    /// Team that keys without a team are treated as; when absent such keys are denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_team: Option<String>,
    /// Custom roles by name (the built-in roles are always present and cannot be redefined).
    #[serde(default)]
    pub roles: BTreeMap<String, RoleDef>,
    /// Teams (tenants) by name.
    #[serde(default)]
    pub teams: BTreeMap<String, TeamDef>,
    /// Rate limits; each applies to the teams that list it, or to every request when no
    /// team lists it, further narrowed by its `match`.
    #[serde(default)]
    pub rate_limits: Vec<RateLimitDef>,
    /// Spend budgets; same applicability rule as rate limits.
    #[serde(default)]
    pub budgets: Vec<BudgetDef>,
    /// Gateway-wide client IP rules, checked before any team rule.
    #[serde(default)]
    pub ip: IpRules,
    /// Guardrail profiles by name; their content is validated by the guardrails module.
    #[serde(default)]
    pub guardrails: BTreeMap<String, serde_json::Value>,
}

/// A custom role: a named set of permission grants.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    /// Free text shown in listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What holders of the role may do.
    pub permissions: Vec<GrantDef>,
}

/// One permission on a set of resources (globs; `*` = all). For `models:invoke` the
/// resources are model names, for `routes:invoke` request paths, for management
/// permissions the relation of the target to the caller: `own`, `team` or `other-team`
/// (see [`crate::rbac::Relation`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantDef {
    /// The action, e.g. `models:invoke`.
    pub permission: Permission,
    /// Resource globs; defaults to `["*"]`.
    #[serde(default = "all_resources")]
    pub resources: Vec<String>,
}

fn all_resources() -> Vec<String> {
    vec!["*".into()]
}

/// A team (tenant): what its keys may reach and how much they may use.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TeamDef {
    /// Model-name globs the team may call; empty = none.
    pub models: Vec<String>,
    /// Request-path globs (REST routes) the team may call; empty = none.
    pub routes: Vec<String>,
    /// Ids of rate limits that apply to the team.
    pub rate_limits: Vec<String>,
    /// Ids of budgets that apply to the team.
    pub budgets: Vec<String>,
    /// Client IP rules for the team, checked after the gateway-wide ones.
    pub ip: IpRules,
    /// Largest request body, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// Largest estimated prompt + requested completion tokens of one request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_request: Option<u64>,
    /// Longest upstream time limit (seconds) a request may ask for with the
    /// `x-portcullis-timeout` header; without it the header may only shorten the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_timeout_secs: Option<u64>,
    /// Guardrail profile applied to the team's requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<String>,
    /// Role given to keys created in the team without an explicit role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_role: Option<String>,
    /// Store prompt and response bodies in the request log (after guardrail redaction
    /// with the team's profile, or the default profile). Off by default.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub log_bodies: bool,
    /// Response cache for the team's chat requests (needs the gateway's `cache` section);
    /// absent = cached only when a request asks with `x-portcullis-cache: use`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<TeamCache>,
}

/// A team's response cache setting: `cache: {ttl: 10m}` (`cache: {}` = the gateway's
/// default TTL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TeamCache {
    /// How long an answer is served from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Interval>,
}

/// Client IP allow/deny lists (CIDR or single addresses). Deny wins; a non-empty allow
/// list denies every address outside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpRules {
    /// Only these networks may call.
    pub allow: Vec<String>,
    /// These networks may never call.
    pub deny: Vec<String>,
}

impl IpRules {
    /// True when neither list has an entry.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// What a rate limit counts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitScope {
    /// One counter per API key.
    Key,
    /// One counter per user (the key's owner).
    User,
    /// One counter per team.
    Team,
    /// One counter per model name.
    Model,
    /// One counter per client IP address.
    Ip,
    /// One counter for everything.
    Global,
}

impl LimitScope {
    /// The name used in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Key => "key",
            LimitScope::User => "user",
            LimitScope::Team => "team",
            LimitScope::Model => "model",
            LimitScope::Ip => "ip",
            LimitScope::Global => "global",
        }
    }
}

/// A rate limit rule. At least one of `requests`, `tokens`, `concurrent` is set;
/// `requests` and `tokens` need `interval`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDef {
    /// Unique id, used by teams and in headers, logs and diffs.
    pub id: String,
    /// What is counted separately.
    pub scope: LimitScope,
    /// Requests allowed per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Tokens (prompt + completion) allowed per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Requests allowed in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u64>,
    /// Window of `requests`/`tokens`: `30s`, `1m`, `1h`, `1d` or seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// Narrows the requests the limit applies to.
    #[serde(
        default,
        rename = "match",
        skip_serializing_if = "LimitMatch::is_empty"
    )]
    pub matches: LimitMatch,
}

/// Optional filters of a rate limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitMatch {
    /// Team-name glob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Model-name glob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl LimitMatch {
    /// True when nothing narrows the limit.
    pub fn is_empty(&self) -> bool {
        self.team.is_none() && self.model.is_none()
    }
}

/// A length of time written as `30s`, `1m`, `1h`, `1d` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    /// Length in seconds.
    pub secs: u64,
}

impl Interval {
    /// Parses `"30s"`, `"1m"`, `"2h"`, `"1d"` or `"60"`.
    pub fn parse(text: &str) -> Result<Interval, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let bad = || format!("'{text}' is not an interval (examples: 30s, 1m, 1h, 1d)");
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let mult = match unit.trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        n.checked_mul(mult)
            .map(|secs| Interval { secs })
            .ok_or_else(bad)
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.secs;
        match s {
            0 => write!(f, "0s"),
            _ if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            _ if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            _ if s % 60 == 0 => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(secs) => Ok(Interval { secs }),
            Raw::Text(t) => Interval::parse(&t).map_err(de::Error::custom),
        }
    }
}

/// Who a budget's spend is summed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    /// One budget per API key.
    Key,
    /// One budget per team.
    Team,
}

/// Calendar period (UTC) after which a budget starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    /// From 00:00 UTC to the next 00:00 UTC.
    Day,
    /// From the first of the month 00:00 UTC.
    Month,
}

/// What happens when a budget is spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetMode {
    /// Requests are refused.
    #[default]
    Hard,
    /// Requests go on; the overrun is reported (alerts).
    Soft,
}

/// A spend budget in US dollars.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetDef {
    /// Unique id.
    pub id: String,
    /// Who the spend is summed over.
    pub scope: BudgetScope,
    /// When the budget starts again.
    pub period: BudgetPeriod,
    /// Limit in USD per period.
    pub usd: f64,
    /// `hard` (default) blocks, `soft` only reports.
    #[serde(default)]
    pub mode: BudgetMode,
}
