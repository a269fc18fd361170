//! Per-request placeholder state: the same value gets the same placeholder within a request,
//! and restorable placeholders can be mapped back in the response.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Placeholder allocator for one request (input and output share one `Redactor`).
///
/// Placeholders look like `[EMAIL_1]`, `[CREDIT_CARD_2]`: a label and a per-label counter.
/// Its `Debug` output shows counts only, never the values it holds.
#[derive(Default, Clone)]
pub struct Redactor {
    by_value: HashMap<(String, String), String>,
    counters: HashMap<String, u32>,
    restorable: HashMap<String, String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("placeholders", &self.by_value.len())
            .field("restorable", &self.restorable.len())
            .finish()
    }
}

/// The longest placeholder `restore` recognizes, in bytes (`[` + label + `_` + n + `]`).
pub(crate) const MAX_PLACEHOLDER: usize = 48;

impl Redactor {
    /// An empty redactor (one per request).
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// The placeholder for `value` under `label`, allocating `[LABEL_n]` on first sight.
    /// With `restorable`, [`Redactor::restore`] will map it back to `value`.
    pub fn placeholder(&mut self, label: &str, value: &str, restorable: bool) -> &str {
        let key = (label.to_string(), value.to_string());
        if !self.by_value.contains_key(&key) {
            let n = self.counters.entry(label.to_string()).or_insert(0);
            *n += 1;
            let ph = format!("[{label}_{n}]");
            self.by_value.insert(key.clone(), ph);
        }
        let ph = &self.by_value[&key];
        if restorable && !self.restorable.contains_key(ph) {
            self.restorable.insert(ph.clone(), value.to_string());
        }
        ph
    }

    /// Number of distinct values redacted so far.
    pub fn len(&self) -> usize {
        self.by_value.len()
    }

    /// Whether nothing was redacted yet.
    pub fn is_empty(&self) -> bool {
        self.by_value.is_empty()
    }

    /// Whether any placeholder can be restored (the stream scanner then holds back a
    /// partial `[...` at a chunk boundary).
    pub fn has_restorable(&self) -> bool {
        !self.restorable.is_empty()
    }

    /// Replaces every restorable placeholder in `text` with its original value.
    pub fn restore<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.restorable.is_empty() || !text.contains('[') {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut changed = false;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let close = tail.as_bytes()[..tail.len().min(MAX_PLACEHOLDER)]
                .iter()
                .position(|&b| b == b']');
            match close.and_then(|c| self.restorable.get(&tail[..=c]).map(|v| (c, v))) {
                Some((c, value)) => {
                    out.push_str(value);
                    rest = &tail[c + 1..];
                    changed = true;
                }
                None => {
                    out.push('[');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        if changed {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_placeholder() {
        let mut r = Redactor::new();
        assert_eq!(r.placeholder("EMAIL", "a@b.io", true), "[EMAIL_1]");
        assert_eq!(r.placeholder("EMAIL", "c@d.io", false), "[EMAIL_2]");
        assert_eq!(r.placeholder("EMAIL", "a@b.io", true), "[EMAIL_1]");
        assert_eq!(
            r.restore("x [EMAIL_1] [EMAIL_2] [x"),
            "x a@b.io [EMAIL_2] [x"
        );
        assert!(!format!("{r:?}").contains("a@b.io"));
    }
}
