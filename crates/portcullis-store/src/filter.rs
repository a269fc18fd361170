//! A tiny builder for optional `WHERE` conditions with `$n` placeholders,
//! shared by the audit, usage and request-log queries (both backends accept `$n`).

/// A value bound to one placeholder.
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// `WHERE` conditions joined with `AND`, and their bound values in order.
#[derive(Default)]
pub(crate) struct Filter {
    conditions: Vec<String>,
    pub(crate) args: Vec<Arg>,
}

impl Filter {
    /// Adds a condition; `{}` in `template` is replaced by the placeholder
    /// (`$n`) of `arg` (every occurrence uses the same placeholder).
    pub(crate) fn push(&mut self, template: &str, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let placeholder = format!("${}", self.args.len());
        self.conditions.push(template.replace("{}", &placeholder));
        self
    }

    /// Adds a condition without a bound value (e.g. `denied = TRUE`).
    pub(crate) fn condition(&mut self, sql: &str) -> &mut Self {
        self.conditions.push(sql.to_string());
        self
    }

    /// Adds `template` with a placeholder for `value` when it is `Some`.
    pub(crate) fn opt_int(&mut self, template: &str, value: Option<i64>) -> &mut Self {
        if let Some(v) = value {
            self.push(template, Arg::Int(v));
        }
        self
    }

    /// Adds `template` with a placeholder for `value` when it is `Some`.
    pub(crate) fn opt_text(&mut self, template: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.push(template, Arg::Text(v.to_string()));
        }
        self
    }

    /// The next placeholder number (for a trailing `LIMIT $n`).
    pub(crate) fn next_placeholder(&self) -> String {
        format!("${}", self.args.len() + 1)
    }

    /// ` WHERE a AND b` or the empty string.
    pub(crate) fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }
}

/// Binds every [`Arg`] of `$args` to query `$query`, in order.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                $crate::filter::Arg::Int(v) => query.bind(*v),
                $crate::filter::Arg::Text(s) => query.bind(s.as_str()),
            };
        }
        query
    }};
}
pub(crate) use bind_args;
