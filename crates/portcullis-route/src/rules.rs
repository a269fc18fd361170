//! Conditional routing: a request for one public model goes to another model group when
//! its headers, its key's team or its `metadata` match a rule. Rules are tried in order;
//! the first match wins and the destination is not routed again.

/// One rule: requests for `from` that match every condition go to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The requested public model name.
    pub from: String,
    /// The public model name (group) that serves matching requests.
    pub to: String,
    /// Request headers that must be present with these values (names lowercase; values
    /// compared exactly).
    pub headers: Vec<(String, String)>,
    /// The key's team must be this one.
    pub team: Option<String>,
    /// The request body's `metadata` object must hold these string values.
    pub metadata: Vec<(String, String)>,
}

/// What the rules can look at in a request.
pub trait Facts {
    /// A request header's value (name lowercase), if present and text.
    fn header(&self, name: &str) -> Option<&str>;
    /// The calling key's team.
    fn team(&self) -> Option<&str>;
    /// A string value of the request's `metadata` object.
    fn metadata(&self, key: &str) -> Option<&str>;
}

impl Rule {
    /// Whether the request matches every condition of the rule.
    pub fn matches(&self, facts: &dyn Facts) -> bool {
        self.headers
            .iter()
            .all(|(name, value)| facts.header(name) == Some(value.as_str()))
            && self.team.as_deref().is_none_or(|t| facts.team() == Some(t))
            && self
                .metadata
                .iter()
                .all(|(key, value)| facts.metadata(key) == Some(value.as_str()))
    }
}

/// The model group a request for `model` goes to: the `to` of the first matching rule for
/// `model`, or `None` to keep the requested model.
pub fn route<'a>(rules: &'a [Rule], model: &str, facts: &dyn Facts) -> Option<&'a str> {
    rules
        .iter()
        .filter(|r| r.from == model)
        .find(|r| r.matches(facts))
        .map(|r| r.to.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Req {
        headers: HashMap<&'static str, &'static str>,
        team: Option<&'static str>,
        metadata: HashMap<&'static str, &'static str>,
    }

    impl Facts for Req {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).copied()
        }
        fn team(&self) -> Option<&str> {
            self.team
        }
        fn metadata(&self, key: &str) -> Option<&str> {
            self.metadata.get(key).copied()
        }
    }

    fn rule(to: &str) -> Rule {
        Rule {
            from: "gpt".into(),
            to: to.into(),
            headers: vec![],
            team: None,
            metadata: vec![],
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = vec![
            Rule {
                headers: vec![("x-region".into(), "eu".into())],
                ..rule("gpt-eu")
            },
            Rule {
                team: Some("research".into()),
                metadata: vec![("tier".into(), "batch".into())],
                ..rule("gpt-batch")
            },
            Rule {
                from: "other".into(),
                ..rule("never")
            },
        ];
        let mut req = Req {
            headers: HashMap::from([("x-region", "eu")]),
            team: Some("research"),
            metadata: HashMap::from([("tier", "batch")]),
        };
        assert_eq!(route(&rules, "gpt", &req), Some("gpt-eu"));
        req.headers.clear();
        assert_eq!(route(&rules, "gpt", &req), Some("gpt-batch"));
        req.team = Some("sales");
        assert_eq!(route(&rules, "gpt", &req), None);
        req.team = Some("research");
        req.metadata.insert("tier", "online");
        assert_eq!(route(&rules, "gpt", &req), None);
        assert_eq!(route(&rules, "claude", &req), None);
        // A rule without conditions always matches its model.
        assert_eq!(route(&[rule("x")], "gpt", &req), Some("x"));
    }
}
