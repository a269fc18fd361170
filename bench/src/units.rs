//! Formatting of the report's numbers.

/// Kilobytes to mebibytes.
pub fn kb_to_mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// A memory size given in kB, shown in MiB.
pub fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb_to_mib(kb))
}

/// A ratio shown as a percentage.
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// A latency in microseconds, shown in µs, ms or s.
pub fn us(v: f64) -> String {
    let a = v.abs();
    if a < 1_000.0 {
        format!("{v:.1} µs")
    } else if a < 1_000_000.0 {
        format!("{:.2} ms", v / 1_000.0)
    } else {
        format!("{:.2} s", v / 1_000_000.0)
    }
}

/// A latency difference with an explicit sign.
pub fn signed_us(v: f64) -> String {
    if v >= 0.0 {
        format!("+{}", us(v))
    } else {
        us(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_latencies() {
        assert_eq!(us(42.04), "42.0 µs");
        assert_eq!(us(1234.0), "1.23 ms");
        assert_eq!(us(2_500_000.0), "2.50 s");
        assert_eq!(signed_us(12.0), "+12.0 µs");
        assert_eq!(signed_us(-3.0), "-3.0 µs");
        assert_eq!(percent(0.5), "50.0%");
        assert_eq!(mib(51_200), "50.0 MiB");
    }
}
