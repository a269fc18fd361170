//! Waiting for the servers to go quiet before a measurement starts.
//!
//! A gateway may keep working after its last response (flushing the access log, writing
//! usage to its store). On a 2-core machine that leftover work would slow down whatever is
//! measured next, typically the direct side, and so flatter the gateway. Before each
//! measurement the benchmark therefore waits until the child processes use (almost) no CPU,
//! judged from the per-thread run time the kernel reports in `/proc/PID/task/*/schedstat`.

use std::time::{Duration, Instant};

use crate::cpu::cpu_time_ns;

/// Length of one observation window.
const WINDOW: Duration = Duration::from_millis(50);

/// Quiet means using less than this share of one core during a window.
const IDLE_SHARE: f64 = 0.03;

/// Longest wait; after it the measurement starts anyway, with a warning.
const MAX_WAIT: Duration = Duration::from_secs(5);

fn total_cpu_ns(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|&p| cpu_time_ns(p)).sum()
}

/// Waits until `pids` together use less than 3% of a core over 50 ms (at most 5 s).
/// Returns how long it waited, or `None` if they were still busy when it gave up (or
/// their CPU time cannot be read, in which case it does not wait).
pub async fn wait_idle(pids: &[u32]) -> Option<Duration> {
    let started = Instant::now();
    let budget_ns = (WINDOW.as_nanos() as f64 * IDLE_SHARE) as u64;
    let mut before = total_cpu_ns(pids)?;
    loop {
        tokio::time::sleep(WINDOW).await;
        let now = total_cpu_ns(pids)?;
        if now.saturating_sub(before) < budget_ns {
            return Some(started.elapsed());
        }
        if started.elapsed() >= MAX_WAIT {
            return None;
        }
        before = now;
    }
}

/// [`wait_idle`], printing a warning when the processes did not go quiet.
pub async fn settle(pids: &[u32], before: &str) {
    if wait_idle(pids).await.is_none() {
        eprintln!(
            "warning: the servers were still busy {} s after the previous measurement; \
             starting {before} anyway",
            MAX_WAIT.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn an_idle_process_is_quiet() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let waited = wait_idle(&[child.id()]).await;
        let _ = child.kill();
        let _ = child.wait();
        assert!(waited.unwrap() < Duration::from_secs(1));
    }
}
