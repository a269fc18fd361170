//! A description of the run for the report: when, on what, with which settings.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{workspace_root, Args};

/// `key: value` lines describing the run: when, where, with which settings.
pub fn describe(
    args: &Args,
    body_len: usize,
    loadavg_before: Option<f64>,
) -> Vec<(String, String)> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    vec![
        ("date (UTC)".into(), utc_now()),
        ("commit".into(), commit),
        (
            "machine".into(),
            format!(
                "{cores} cores ({cpu}), shared by the load generator, the mock and the gateway"
            ),
        ),
        (
            "load".into(),
            format!(
                "closed loop, one keep-alive HTTP/1.1 connection per worker; per side and \
                 concurrency {} s measured after {} s warmup, in {} alternating direct/gateway \
                 round(s); {} load-generator thread(s)",
                args.duration.as_secs_f64(),
                args.warmup.as_secs_f64(),
                args.rounds,
                args.client_threads.max(1)
            ),
        ),
        (
            "request".into(),
            format!("POST /v1/chat/completions, {body_len}-byte JSON body, non-streaming"),
        ),
        (
            "gateway".into(),
            match &args.policy {
                Some(p) => format!(
                    "API-key auth, JSON access log (to a file) and the security policy {} on",
                    p.display()
                ),
                None => "API-key auth and JSON access log (to a file) on".into(),
            },
        ),
        (
            "load average before the run".into(),
            match loadavg_before {
                Some(l) if l > 0.5 => format!(
                    "{l:.2} (**other processes were busy: expect noisy figures; compare the CPU time per request**)"
                ),
                Some(l) => format!("{l:.2}"),
                None => "unknown".into(),
            },
        ),
    ]
}

/// The one-minute load average from `/proc/loadavg`.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS`.
fn utc_now() -> String {
    format_utc(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
fn format_utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_767_225_599), "2025-12-31 23:59:59");
        assert_eq!(utc_now().len(), 19);
    }
}
