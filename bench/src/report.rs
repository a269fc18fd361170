//! The results as a markdown report: the comparison table, stream TTFE, gateway memory
//! and the project's targets with an honest PASS or MISS next to each.

use std::fmt::Write as _;

use crate::cpu::{self, CpuTimes};
use crate::load::PhaseResult;
use crate::stream::TtfeResult;
use crate::units::{kb_to_mib, mib, percent, signed_us, us};

/// Target: gateway p50 minus direct p50 at concurrency 1, in microseconds.
pub const TARGET_ADDED_P50_US: f64 = 60.0;
/// Target: gateway throughput as a share of direct throughput at concurrency 32.
pub const TARGET_RATIO_AT_32: f64 = 0.5;
/// Target: gateway TTFE median minus direct TTFE median, in microseconds.
pub const TARGET_ADDED_TTFE_US: f64 = 100.0;
/// Target: gateway peak RSS with a concurrency-256 phase, in MiB.
pub const TARGET_RSS_MIB: f64 = 50.0;

/// One concurrency level: the same load direct to the mock and through the gateway.
#[derive(Debug)]
pub struct Row {
    /// Number of concurrent closed-loop workers (= connections).
    pub concurrency: usize,
    /// Load straight at the mock upstream.
    pub direct: PhaseResult,
    /// The same load through the gateway.
    pub gateway: PhaseResult,
    /// Highest sampled gateway `VmRSS` during the gateway phase, in kB.
    pub gateway_peak_rss_kb: u64,
    /// CPU used by each process during the direct runs.
    pub direct_cpu: CpuTimes,
    /// CPU used by each process during the gateway runs.
    pub gateway_cpu: CpuTimes,
}

impl Row {
    /// Gateway throughput as a share of direct throughput.
    pub fn ratio(&self) -> f64 {
        self.gateway.rps() / self.direct.rps()
    }

    /// Gateway p50 minus direct p50, in microseconds.
    pub fn added_p50_us(&self) -> f64 {
        self.gateway.quantile_us(0.5) - self.direct.quantile_us(0.5)
    }
}

/// Everything one benchmark run measured.
#[derive(Debug)]
pub struct Report {
    /// Free-form `key: value` lines describing the run (date, machine, settings).
    pub meta: Vec<(String, String)>,
    /// One row per concurrency level, in the order run.
    pub rows: Vec<Row>,
    /// Stream TTFE straight at the mock.
    pub ttfe_direct: TtfeResult,
    /// Stream TTFE through the gateway.
    pub ttfe_gateway: TtfeResult,
    /// Gateway `VmHWM` (kernel high-water mark of resident memory) at the end, in kB.
    pub vm_hwm_kb: Option<u64>,
    /// Lines in the gateway's log file (its access log) at the end.
    pub gateway_log_lines: Option<usize>,
}

/// The verdict on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Measured and met.
    Pass,
    /// Measured and not met.
    Miss,
    /// Not measured in this run (e.g. that concurrency was not requested).
    NotRun,
}

impl Verdict {
    fn of(ok: bool) -> Self {
        if ok {
            Self::Pass
        } else {
            Self::Miss
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Miss => "MISS",
            Self::NotRun => "not run",
        }
    }
}

impl Report {
    /// Failed requests across all phases and streams.
    pub fn total_errors(&self) -> u64 {
        let load: u64 = self
            .rows
            .iter()
            .map(|r| r.direct.errors + r.gateway.errors)
            .sum();
        load + self.ttfe_direct.errors + self.ttfe_gateway.errors
    }

    /// Successful gateway requests that were measured (warmup and probes excluded).
    fn gateway_measured(&self) -> u64 {
        let load: u64 = self.rows.iter().map(|r| r.gateway.hist.len()).sum();
        load + self.ttfe_gateway.samples_ns.len() as u64
    }

    /// Each target: description, measured value, verdict.
    pub fn targets(&self) -> Vec<(String, String, Verdict)> {
        let row = |c| self.rows.iter().find(|r| r.concurrency == c);
        let mut out = Vec::new();

        let desc = format!("added p50 at concurrency 1 < {TARGET_ADDED_P50_US} µs");
        out.push(match row(1) {
            Some(r) => (
                desc,
                signed_us(r.added_p50_us()),
                Verdict::of(r.added_p50_us() < TARGET_ADDED_P50_US),
            ),
            None => (desc, "-".into(), Verdict::NotRun),
        });

        let desc = format!(
            "gateway RPS >= {:.0}% of direct at concurrency 32",
            TARGET_RATIO_AT_32 * 100.0
        );
        out.push(match row(32) {
            Some(r) => (
                desc,
                percent(r.ratio()),
                Verdict::of(r.ratio() >= TARGET_RATIO_AT_32),
            ),
            None => (desc, "-".into(), Verdict::NotRun),
        });

        let desc = format!("stream first event within {TARGET_ADDED_TTFE_US} µs of direct");
        out.push(match self.added_ttfe_us() {
            Some(added) => (
                desc,
                signed_us(added),
                Verdict::of(added <= TARGET_ADDED_TTFE_US),
            ),
            None => (desc, "-".into(), Verdict::NotRun),
        });

        let desc = format!("gateway peak RSS < {TARGET_RSS_MIB} MiB at concurrency 256");
        out.push(match (row(256), self.peak_rss_kb()) {
            (Some(_), Some(kb)) => (desc, mib(kb), Verdict::of(kb_to_mib(kb) < TARGET_RSS_MIB)),
            _ => (desc, "-".into(), Verdict::NotRun),
        });
        out
    }

    /// The gateway's peak RSS in kB: the larger of `VmHWM` and the highest sampled
    /// `VmRSS` (the kernel updates `VmHWM` lazily, so it can trail a sample slightly).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        let sampled = self.rows.iter().map(|r| r.gateway_peak_rss_kb).max();
        match (self.vm_hwm_kb, sampled) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Median gateway TTFE minus median direct TTFE, in microseconds.
    pub fn added_ttfe_us(&self) -> Option<f64> {
        Some(self.ttfe_gateway.quantile_us(0.5)? - self.ttfe_direct.quantile_us(0.5)?)
    }

    /// Renders the whole report as markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = self.write_markdown(&mut s);
        s
    }

    fn write_markdown(&self, s: &mut String) -> std::fmt::Result {
        writeln!(s, "# Portcullis gateway benchmark\n")?;
        for (k, v) in &self.meta {
            writeln!(s, "- {k}: {v}")?;
        }
        writeln!(s, "\n## Non-streaming chat completions\n")?;
        writeln!(
            s,
            "| scenario | concurrency | direct RPS | gateway RPS | ratio | direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | gateway peak RSS |"
        )?;
        writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")?;
        for r in &self.rows {
            writeln!(
                s,
                "| chat | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                r.concurrency,
                r.direct.rps(),
                r.gateway.rps(),
                percent(r.ratio()),
                us(r.direct.quantile_us(0.5)),
                us(r.gateway.quantile_us(0.5)),
                signed_us(r.added_p50_us()),
                us(r.direct.quantile_us(0.99)),
                us(r.gateway.quantile_us(0.99)),
                mib(r.gateway_peak_rss_kb),
            )?;
        }
        writeln!(s)?;
        for r in &self.rows {
            for (side, p) in [("direct", &r.direct), ("gateway", &r.gateway)] {
                if p.errors > 0 {
                    writeln!(
                        s,
                        "- **ERRORS: {} failed {side} requests at concurrency {}**: {}",
                        p.errors,
                        r.concurrency,
                        p.error_samples.join(" | ")
                    )?;
                }
                if p.reconnects > 0 {
                    writeln!(
                        s,
                        "- note: the {side} server closed {} keep-alive connections at concurrency {}",
                        p.reconnects, r.concurrency
                    )?;
                }
            }
        }

        cpu::write_section(s, &self.rows)?;

        writeln!(s, "\n## Stream time to first event\n")?;
        let n = self.ttfe_gateway.samples_ns.len();
        writeln!(
            s,
            "Sequential `\"stream\": true` requests, all direct then all gateway, each side \
             once the servers were idle; time from sending the request to the first complete \
             `data:` line ({n} gateway samples).\n"
        )?;
        for (side, t) in [
            ("direct", &self.ttfe_direct),
            ("gateway", &self.ttfe_gateway),
        ] {
            match (t.quantile_us(0.5), t.quantile_us(0.99)) {
                (Some(p50), Some(p99)) => writeln!(
                    s,
                    "- {side}: median {} (p99 {}; response headers after {} median)",
                    us(p50),
                    us(p99),
                    us(t.headers_median_us().unwrap_or(0.0))
                )?,
                _ => writeln!(s, "- {side}: no successful stream")?,
            }
            if t.errors > 0 {
                writeln!(
                    s,
                    "- **ERRORS: {} failed {side} streams**: {}",
                    t.errors,
                    t.error_samples.join(" | ")
                )?;
            }
        }
        if let Some(added) = self.added_ttfe_us() {
            writeln!(s, "- added by the gateway (median): {}", signed_us(added))?;
        }

        writeln!(s, "\n## Gateway memory\n")?;
        match self.peak_rss_kb() {
            Some(kb) => writeln!(
                s,
                "- peak RSS over the whole run: {} (VmHWM {}, highest sampled VmRSS)",
                mib(kb),
                self.vm_hwm_kb.map_or("unavailable".into(), mib)
            )?,
            None => writeln!(s, "- peak RSS: unavailable")?,
        }
        if let Some(lines) = self.gateway_log_lines {
            writeln!(
                s,
                "- gateway log: {lines} lines for {} measured gateway requests (plus warmup)",
                self.gateway_measured()
            )?;
        }

        writeln!(s, "\n## Targets (key auth and access logging on)\n")?;
        writeln!(s, "| target | measured | result |")?;
        writeln!(s, "|---|--:|---|")?;
        for (desc, measured, verdict) in self.targets() {
            writeln!(s, "| {desc} | {measured} | {} |", verdict.label())?;
        }
        let errors = self.total_errors();
        if errors > 0 {
            writeln!(
                s,
                "\n**{errors} requests failed: the figures above are not trustworthy.**"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(requests: u64, latency_ns: u64) -> PhaseResult {
        let mut hist = hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        hist.record_n(latency_ns, requests).unwrap();
        PhaseResult {
            hist,
            window: std::time::Duration::from_secs(1),
            completed: requests,
            errors: 0,
            reconnects: 0,
            error_samples: Vec::new(),
        }
    }

    fn report(rows: Vec<Row>) -> Report {
        Report {
            meta: vec![("date".into(), "today".into())],
            rows,
            ttfe_direct: TtfeResult {
                samples_ns: vec![100_000; 3],
                ..Default::default()
            },
            ttfe_gateway: TtfeResult {
                samples_ns: vec![250_000; 3],
                ..Default::default()
            },
            vm_hwm_kb: Some(30 * 1024),
            gateway_log_lines: Some(10),
        }
    }

    #[test]
    fn verdicts_are_honest() {
        let rows = vec![
            Row {
                concurrency: 1,
                direct: phase(1000, 20_000),
                gateway: phase(900, 70_000),
                gateway_peak_rss_kb: 10_000,
                direct_cpu: CpuTimes::default(),
                gateway_cpu: CpuTimes::default(),
            },
            Row {
                concurrency: 32,
                direct: phase(1000, 20_000),
                gateway: phase(400, 70_000),
                gateway_peak_rss_kb: 20_000,
                direct_cpu: CpuTimes::default(),
                gateway_cpu: CpuTimes::default(),
            },
        ];
        let r = report(rows);
        let verdicts: Vec<Verdict> = r.targets().iter().map(|t| t.2).collect();
        assert_eq!(
            verdicts,
            [Verdict::Pass, Verdict::Miss, Verdict::Miss, Verdict::NotRun]
        );
        let md = r.to_markdown();
        assert!(md.contains("| chat | 32 | 1000 | 400 | 40.0% |"), "{md}");
        assert!(md.contains("| 40.0% | MISS |"), "{md}");
        assert!(md.contains("+150.0 µs"), "{md}");
        assert!(!md.contains("ERRORS"), "{md}");
    }

    #[test]
    fn errors_are_loud() {
        let mut gateway = phase(10, 70_000);
        gateway.errors = 3;
        gateway.error_samples = vec!["gateway: HTTP 502".into()];
        let r = report(vec![Row {
            concurrency: 256,
            direct: phase(10, 20_000),
            gateway,
            gateway_peak_rss_kb: 1,
            direct_cpu: CpuTimes::default(),
            gateway_cpu: CpuTimes {
                mock_ns: 0,
                gateway_ns: 250_000,
                bench_ns: 0,
            },
        }]);
        assert_eq!(r.total_errors(), 3);
        let md = r.to_markdown();
        assert!(md.contains("**ERRORS: 3 failed gateway requests at concurrency 256**"));
        assert!(md.contains("| 30.0 MiB | PASS |"), "{md}");
        assert!(
            md.contains("| 256 | 0.0 µs | 0.0 µs | 25.0 µs | 0.0 µs | 0.0 µs |"),
            "{md}"
        );
    }
}
