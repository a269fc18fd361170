//! Resident memory of the gateway, from `/proc/PID/status`.
//!
//! `VmHWM` is the kernel's own high-water mark of resident memory, exact for the whole
//! life of the process; a background thread also polls `VmRSS` so that each phase can
//! report the peak it caused.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Poll interval of the `VmRSS` sampler.
const INTERVAL: Duration = Duration::from_millis(20);

/// Reads a `kB` field (`VmRSS`, `VmHWM`, ...) of `/proc/PID/status`.
pub fn read_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&status, field)
}

fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Background poller of one process's `VmRSS`; stops when dropped.
#[derive(Debug)]
pub struct RssSampler {
    pid: u32,
    phase_max_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    /// Starts polling `pid`.
    pub fn start(pid: u32) -> Self {
        let phase_max_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (max, stop) = (phase_max_kb.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kb) = read_status_kb(pid, "VmRSS") {
                        max.fetch_max(kb, Ordering::Relaxed);
                    }
                    std::thread::sleep(INTERVAL);
                }
            })
        };
        Self {
            pid,
            phase_max_kb,
            stop,
            thread: Some(thread),
        }
    }

    /// Starts a new phase: forgets the peak seen so far.
    pub fn reset_phase(&self) {
        self.phase_max_kb.store(0, Ordering::Relaxed);
    }

    /// The highest `VmRSS` (kB) seen since the last [`reset_phase`](Self::reset_phase),
    /// including a final reading taken now.
    pub fn phase_peak_kb(&self) -> u64 {
        if let Some(kb) = read_status_kb(self.pid, "VmRSS") {
            self.phase_max_kb.fetch_max(kb, Ordering::Relaxed);
        }
        self.phase_max_kb.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kb_fields() {
        let s = "Name:\tportcullis\nVmHWM:\t   23456 kB\nVmRSS:\t   12000 kB\n";
        assert_eq!(parse_status_kb(s, "VmHWM"), Some(23456));
        assert_eq!(parse_status_kb(s, "VmRSS"), Some(12000));
        assert_eq!(parse_status_kb(s, "VmSwap"), None);
    }

    #[test]
    fn reads_own_status() {
        assert!(read_status_kb(std::process::id(), "VmHWM").unwrap() > 0);
    }
}
