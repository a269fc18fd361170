//! CPU time used by each process, per request.
//!
//! Latencies and throughput on a shared 2-core machine depend on who else is running;
//! the CPU time a process spends per request much less so. It is read from the kernel's
//! per-thread run time in `/proc/PID/task/*/schedstat` (nanoseconds).

use std::fmt::Write as _;

use crate::report::Row;

/// Total CPU time (ns) of all threads of `pid`, or `None` if it cannot be read.
pub fn cpu_time_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        // Threads may exit between the listing and the read; skip them.
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
            total += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(total)
}

/// CPU time (ns) of the three processes of the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// The mock upstream.
    pub mock_ns: u64,
    /// The gateway.
    pub gateway_ns: u64,
    /// The benchmark itself: the load generator (and its memory sampler).
    pub bench_ns: u64,
}

impl CpuTimes {
    /// Reads the current CPU times (0 for a process that cannot be read).
    pub fn read(mock: u32, gateway: u32) -> Self {
        Self {
            mock_ns: cpu_time_ns(mock).unwrap_or(0),
            gateway_ns: cpu_time_ns(gateway).unwrap_or(0),
            bench_ns: cpu_time_ns(std::process::id()).unwrap_or(0),
        }
    }

    /// The CPU used between `earlier` and `self`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            mock_ns: self.mock_ns.saturating_sub(earlier.mock_ns),
            gateway_ns: self.gateway_ns.saturating_sub(earlier.gateway_ns),
            bench_ns: self.bench_ns.saturating_sub(earlier.bench_ns),
        }
    }

    /// Adds another interval's use to this one.
    pub fn add(&mut self, other: Self) {
        self.mock_ns += other.mock_ns;
        self.gateway_ns += other.gateway_ns;
        self.bench_ns += other.bench_ns;
    }
}

/// `ns` per request in microseconds, as table text.
fn per_request(ns: u64, requests: u64) -> String {
    if requests == 0 {
        return "-".into();
    }
    format!("{:.1} µs", ns as f64 / requests as f64 / 1_000.0)
}

/// Writes the "CPU time per request" section for `rows`.
pub fn write_section(s: &mut String, rows: &[Row]) -> std::fmt::Result {
    writeln!(s, "\n## CPU time per request\n")?;
    writeln!(
        s,
        "CPU time of each process over each side's runs (warmup and the servers' work left \
         after the last response included), divided by the successful requests. It depends \
         much less than the latencies on what else the machine is doing.\n"
    )?;
    writeln!(
        s,
        "| concurrency | direct: mock | direct: load generator | gateway: **gateway** | gateway: mock | gateway: load generator |"
    )?;
    writeln!(s, "|--:|--:|--:|--:|--:|--:|")?;
    for r in rows {
        let (d, g) = (&r.direct_cpu, &r.gateway_cpu);
        let (dn, gn) = (r.direct.completed, r.gateway.completed);
        writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.concurrency,
            per_request(d.mock_ns, dn),
            per_request(d.bench_ns, dn),
            per_request(g.gateway_ns, gn),
            per_request(g.mock_ns, gn),
            per_request(g.bench_ns, gn),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time() {
        let pid = std::process::id();
        let a = cpu_time_ns(pid).unwrap();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time_ns(pid).unwrap() > a);
        assert_eq!(cpu_time_ns(u32::MAX), None);
    }

    #[test]
    fn differences_and_sums() {
        let a = CpuTimes {
            mock_ns: 10,
            gateway_ns: 20,
            bench_ns: 30,
        };
        let b = CpuTimes {
            mock_ns: 15,
            gateway_ns: 50,
            bench_ns: 31,
        };
        let mut d = b.since(a);
        assert_eq!((d.mock_ns, d.gateway_ns, d.bench_ns), (5, 30, 1));
        d.add(d);
        assert_eq!((d.mock_ns, d.gateway_ns, d.bench_ns), (10, 60, 2));
        assert_eq!(per_request(3_000_000, 1_000), "3.0 µs");
        assert_eq!(per_request(1, 0), "-");
    }
}
