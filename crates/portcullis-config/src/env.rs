//! `${ENV_VAR}` substitution in configuration strings, so secrets stay out of files.

/// Replaces each `${NAME}` in `text` using `lookup`; `$${` stays a literal `${`.
/// Returns the names that were not set, so every missing variable can be reported at once.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            match tail.find('}') {
                Some(end) => {
                    let name = &tail[..end];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => missing.push(name.to_string()),
                    }
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push_str(after);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// True when the text names an environment variable rather than holding a literal value.
pub fn references_env(text: &str) -> bool {
    text.contains("${") && !text.contains("$${")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "SET").then(|| "value".to_string())
    }

    #[test]
    fn expands_and_reports_missing() {
        assert_eq!(expand("a ${SET} b", &lookup).unwrap(), "a value b");
        assert_eq!(expand("$${SET}", &lookup).unwrap(), "${SET}");
        assert_eq!(expand("cost $5", &lookup).unwrap(), "cost $5");
        assert_eq!(
            expand("${A}${SET}${B}", &lookup).unwrap_err(),
            vec!["A".to_string(), "B".to_string()]
        );
    }
}
