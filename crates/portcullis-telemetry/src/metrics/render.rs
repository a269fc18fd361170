//! The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` lines
//! once per family, label values escaped, histograms as `_bucket{le=..}` (cumulative,
//! ending in `+Inf`), `_sum` and `_count`.

use super::cells::{HistogramSnapshot, LATENCY_BUCKETS};
use std::fmt::Write;

/// Content type of the rendered text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metric family type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter.
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// Bucketed observations.
    Histogram,
}

impl Kind {
    fn text(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Appends families to a string.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// The rendered text.
    pub fn finish(self) -> String {
        self.out
    }

    /// Starts a family: HELP and TYPE lines.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.text());
    }

    /// One sample line: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// The `_bucket`, `_sum` and `_count` lines of one histogram series.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        for (i, count) in h.cumulative.iter().enumerate() {
            let le = match LATENCY_BUCKETS.get(i) {
                Some(b) => format_value(*b),
                None => "+Inf".to_string(),
            };
            let _ = write!(self.out, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {count}");
        }
        let _ = write!(self.out, "{name}_sum");
        self.labels(labels, None);
        self.out.push(' ');
        push_value(&mut self.out, h.sum_seconds);
        let _ = write!(self.out, "\n{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", h.count);
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let all = labels.iter().copied().chain(le.map(|v| ("le", v)));
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }
}

fn push_value(out: &mut String, v: f64) {
    out.push_str(&format_value(v));
}

/// Integers without a fraction, others in Rust's shortest round-trip form.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        let mut w = Writer::default();
        w.family("x_total", "a\\b\nc", Kind::Counter);
        w.sample("x_total", &[("model", "q\"\\\n")], 3.0);
        w.sample("x_total", &[], 0.25);
        let text = w.finish();
        assert_eq!(
            text,
            "# HELP x_total a\\\\b\\nc\n# TYPE x_total counter\n\
             x_total{model=\"q\\\"\\\\\\n\"} 3\nx_total 0.25\n"
        );
        assert_eq!(format_value(0.0001), "0.0001");
        assert_eq!(format_value(120.0), "120");
    }
}
