//! Lock-free storage: a flat array of atomics per metric, one cell per label combination,
//! allocated once at startup. Recording is one or two relaxed atomic adds; nothing
//! allocates or locks on the request path.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, seconds (`+Inf` is implicit).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Counters indexed by a flat label-combination index.
#[derive(Debug)]
pub struct Counters {
    cells: Box<[AtomicU64]>,
}

impl Counters {
    /// `n` counters at zero.
    pub fn new(n: usize) -> Counters {
        Counters {
            cells: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds `v` to cell `i` (ignored when out of range: labels are always in range).
    #[inline]
    pub fn add(&self, i: usize, v: u64) {
        if let Some(c) = self.cells.get(i) {
            c.fetch_add(v, Ordering::Relaxed);
        }
    }

    /// Raises cell `i` to `v` if it is lower (for totals counted elsewhere).
    pub fn raise_to(&self, i: usize, v: u64) {
        if let Some(c) = self.cells.get(i) {
            c.fetch_max(v, Ordering::Relaxed);
        }
    }

    /// Value of cell `i`.
    pub fn get(&self, i: usize) -> u64 {
        self.cells.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Gauges indexed by a flat label-combination index; `i64::MIN` marks "never set".
#[derive(Debug)]
pub struct Gauges {
    cells: Box<[AtomicI64]>,
}

impl Gauges {
    /// `n` unset gauges.
    pub fn new(n: usize) -> Gauges {
        Gauges {
            cells: (0..n).map(|_| AtomicI64::new(i64::MIN)).collect(),
        }
    }

    /// Sets gauge `i`.
    pub fn set(&self, i: usize, v: i64) {
        if let Some(c) = self.cells.get(i) {
            c.store(v.max(i64::MIN + 1), Ordering::Relaxed);
        }
    }

    /// Value of gauge `i`, `None` if never set.
    pub fn get(&self, i: usize) -> Option<i64> {
        let v = self.cells.get(i)?.load(Ordering::Relaxed);
        (v != i64::MIN).then_some(v)
    }
}

/// Histograms with [`LATENCY_BUCKETS`], indexed by a flat label-combination index.
/// Each series keeps per-bucket (non-cumulative) counts, the count and the sum in
/// nanoseconds; bucket bounds are compared in nanoseconds, so observing uses no floats.
#[derive(Debug)]
pub struct Histograms {
    bounds_ns: Box<[u64]>,
    // Per series: buckets.len() + 1 (+Inf) bucket counts, then count, then sum_ns.
    cells: Box<[AtomicU64]>,
}

/// A snapshot of one histogram series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts for each bound of [`LATENCY_BUCKETS`], then `+Inf`.
    pub cumulative: Vec<u64>,
    /// Number of observations.
    pub count: u64,
    /// Sum of observations, seconds.
    pub sum_seconds: f64,
}

impl Histograms {
    /// `n` empty series.
    pub fn new(n: usize) -> Histograms {
        let bounds_ns: Box<[u64]> = LATENCY_BUCKETS
            .iter()
            .map(|s| (s * 1e9).round() as u64)
            .collect();
        let stride = bounds_ns.len() + 3;
        Histograms {
            bounds_ns,
            cells: (0..n * stride).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn stride(&self) -> usize {
        self.bounds_ns.len() + 3
    }

    /// Records one observation in series `i`.
    #[inline]
    pub fn observe(&self, i: usize, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let bucket = self.bounds_ns.partition_point(|&b| b < ns);
        let base = i * self.stride();
        let n = self.bounds_ns.len();
        if base + n + 2 >= self.cells.len() {
            return;
        }
        self.cells[base + bucket].fetch_add(1, Ordering::Relaxed);
        self.cells[base + n + 1].fetch_add(1, Ordering::Relaxed);
        self.cells[base + n + 2].fetch_add(ns, Ordering::Relaxed);
    }

    /// Series `i`, or `None` when it has no observation.
    pub fn snapshot(&self, i: usize) -> Option<HistogramSnapshot> {
        let base = i * self.stride();
        let n = self.bounds_ns.len();
        let cell = |k: usize| {
            self.cells
                .get(base + k)
                .map_or(0, |c| c.load(Ordering::Relaxed))
        };
        let mut running = 0;
        let cumulative: Vec<u64> = (0..=n)
            .map(|k| {
                running += cell(k);
                running
            })
            .collect();
        // Read count after the buckets so `+Inf` never exceeds it; report the larger.
        let count = cell(n + 1).max(running);
        (count > 0).then(|| HistogramSnapshot {
            cumulative: {
                let mut c = cumulative;
                c[n] = count;
                c
            },
            count,
            sum_seconds: cell(n + 2) as f64 / 1e9,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_le_inclusive() {
        let h = Histograms::new(2);
        h.observe(1, Duration::from_micros(100)); // exactly the first bound
        h.observe(1, Duration::from_millis(3));
        h.observe(1, Duration::from_secs(500));
        assert!(h.snapshot(0).is_none());
        let s = h.snapshot(1).unwrap();
        assert_eq!(s.count, 3);
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(s.cumulative[5], 2, "<= 5ms");
        assert_eq!(*s.cumulative.last().unwrap(), 3);
        assert!((s.sum_seconds - 500.0031).abs() < 1e-6);
    }

    #[test]
    fn gauges_and_counters() {
        let g = Gauges::new(1);
        assert_eq!(g.get(0), None);
        g.set(0, 2);
        assert_eq!(g.get(0), Some(2));
        let c = Counters::new(1);
        c.add(0, 2);
        c.raise_to(0, 1);
        c.add(7, 1);
        assert_eq!(c.get(0), 2);
    }
}
