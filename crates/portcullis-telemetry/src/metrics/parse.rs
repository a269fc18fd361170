//! A strict parser of the Prometheus text exposition format, for tests and tools: it
//! rejects what a scraper would reject (bad names, bad escapes, samples without a TYPE,
//! a family split in two, duplicate series) and checks histogram invariants (`le`
//! ascending and ending in `+Inf`, cumulative counts non-decreasing, `+Inf` equal to
//! `_count`, `_sum` present).

use std::collections::{BTreeMap, HashMap, HashSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Full sample name (`x_bucket`, `x_sum`, ... for histograms).
    pub name: String,
    /// Labels, sorted by name.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// One metric family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    /// `counter`, `gauge`, `histogram`, ...
    pub kind: String,
    /// Help text, unescaped.
    pub help: Option<String>,
    /// Samples in document order.
    pub samples: Vec<Sample>,
}

/// A parsed document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Families by name.
    pub families: HashMap<String, Family>,
}

impl Exposition {
    /// The value of the sample `name` whose labels include all of `labels`; `None` when
    /// none matches. Panics-free; for several matches the first is returned.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(name, labels).first().map(|s| s.value)
    }

    /// Every sample named `name` whose labels include all of `labels`.
    pub fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.families
            .values()
            .flat_map(|f| &f.samples)
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }
}

/// Parses `text`; the error names the line.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut seen: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let fail = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (word, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let arg = parts.next().unwrap_or("");
            if word != "HELP" && word != "TYPE" {
                continue;
            }
            check_name(name, true).map_err(|e| fail(&e))?;
            if current.as_deref() != Some(name) {
                if finished.contains(name) {
                    return Err(fail("family appears twice"));
                }
                if let Some(prev) = current.replace(name.to_string()) {
                    finished.insert(prev);
                }
            }
            let family = out.families.entry(name.to_string()).or_default();
            if word == "HELP" {
                if family.help.is_some() {
                    return Err(fail("second HELP"));
                }
                family.help = Some(unescape(arg, false).map_err(|e| fail(&e))?);
            } else {
                let known = ["counter", "gauge", "histogram", "summary", "untyped"];
                if !family.kind.is_empty() || !family.samples.is_empty() || !known.contains(&arg) {
                    return Err(fail("TYPE repeated, late or unknown"));
                }
                family.kind = arg.to_string();
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line).map_err(|e| fail(&e))?;
        let family_name = current
            .clone()
            .ok_or_else(|| fail("sample before any TYPE"))?;
        let family = out
            .families
            .get_mut(&family_name)
            .ok_or_else(|| fail("no family"))?;
        if !belongs(&family.kind, &family_name, &sample.name) {
            return Err(fail("sample does not belong to the current family"));
        }
        if !seen.insert((sample.name.clone(), sample.labels.clone())) {
            return Err(fail("duplicate series"));
        }
        family.samples.push(sample);
    }
    for (name, family) in &out.families {
        if family.kind == "histogram" {
            check_histogram(name, family)?;
        }
    }
    Ok(out)
}

fn belongs(kind: &str, family: &str, sample: &str) -> bool {
    match kind {
        "histogram" => ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| sample.strip_suffix(s) == Some(family)),
        "" => false,
        _ => sample == family,
    }
}

fn check_name(name: &str, colons: bool) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c == '_'
                || c.is_ascii_alphabetic()
                || (colons && c == ':')
                || (i > 0 && c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!("invalid name {name:?}"))
    }
}

fn unescape(s: &str, quote: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') if quote => out.push('"'),
                other => return Err(format!("bad escape \\{other:?}")),
            },
            '"' if quote => return Err("unescaped quote".into()),
            '\n' => return Err("raw newline".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_name(name, true)?;
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut s = body;
        loop {
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = s.find("=\"").ok_or("label without =\"")?;
            let key = &s[..eq];
            check_name(key, false)?;
            let value_start = &s[eq + 2..];
            let mut end = None;
            let mut escaped = false;
            for (i, c) in value_start.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or("unterminated label value")?;
            let value = unescape(&value_start[..end], true)?;
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key} repeated"));
            }
            s = &value_start[end + 1..];
            s = s.strip_prefix(',').unwrap_or(s);
        }
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut fields = rest.split(' ');
    let value = parse_value(fields.next().unwrap_or(""))?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if v.contains(['i', 'I', 'n', 'N']) => Err(format!("bad value {v:?}")),
        _ => v.parse().map_err(|_| format!("bad value {v:?}")),
    }
}

fn check_histogram(name: &str, family: &Family) -> Result<(), String> {
    let mut series: BTreeMap<BTreeMap<String, String>, Vec<&Sample>> = BTreeMap::new();
    for s in &family.samples {
        let mut key = s.labels.clone();
        key.remove("le");
        series.entry(key).or_default().push(s);
    }
    for (labels, samples) in series {
        let fail = |m: &str| Err(format!("histogram {name}{labels:?}: {m}"));
        let buckets: Vec<&&Sample> = samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .collect();
        let count = samples.iter().find(|s| s.name == format!("{name}_count"));
        let sum = samples.iter().find(|s| s.name == format!("{name}_sum"));
        let (Some(count), Some(_)) = (count, sum) else {
            return fail("missing _sum or _count");
        };
        let mut last = (f64::NEG_INFINITY, 0.0);
        for b in &buckets {
            let Some(le) = b.labels.get("le") else {
                return fail("bucket without le");
            };
            let le = parse_value(le)?;
            if le <= last.0 || b.value < last.1 {
                return fail("le not ascending or counts not cumulative");
            }
            last = (le, b.value);
        }
        if last.0 != f64::INFINITY || last.1 != count.value {
            return fail("last bucket is not +Inf equal to _count");
        }
    }
    Ok(())
}
