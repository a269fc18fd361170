//! `portcullis-bench`: the gateway's added latency, throughput, stream time-to-first-event
//! and memory, measured against direct calls to the mock upstream.
//!
//! It starts the mock and the gateway as child processes on free loopback ports, creates
//! an API key, and for each concurrency level runs the same non-streaming chat request
//! directly against the mock and through the gateway. See `bench/README.md`.

mod cpu;
mod load;
mod meta;
mod procs;
mod quiet;
mod report;
mod rss;
mod stream;
mod units;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;

use cpu::CpuTimes;
use load::Target;
use report::{Report, Row, Verdict};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    about = "Measure the Portcullis gateway's overhead against direct calls to the mock upstream"
)]
struct Args {
    /// Measured time per phase (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured warmup before each phase.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Concurrency levels (workers = keep-alive connections), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32,256")]
    concurrency: Vec<usize>,
    /// Each phase is split into this many slices, direct and gateway alternating, so that
    /// a drift of the machine (another process taking a core) hits both sides alike.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Sequential streaming requests per side for time-to-first-event.
    #[arg(long, default_value_t = 200)]
    stream_requests: usize,
    /// Threads of the load generator's runtime (it shares the cores with the servers).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Gateway binary [default: target/release/portcullis in the workspace].
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Mock upstream binary [default: target/release/portcullis-mock in the workspace].
    #[arg(long)]
    mock: Option<PathBuf>,
    /// Markdown report file; the gateway and mock logs go beside it
    /// [default: bench/results/latest.md in the workspace].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit with status 2 when a target is missed (errors always exit with 1).
    #[arg(long)]
    fail_on_miss: bool,
    /// Apply this security policy before the run (e.g. bench/policy.yaml: 10 rules, 3 limits
    /// that the load never reaches), to measure enforcement's cost.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Run the gateway with request logs off (`logs: {enabled: false}`), to measure what
    /// writing one request-log record per request costs.
    #[arg(long)]
    no_request_logs: bool,
    /// Resilience run: `bench-model` becomes a group of three targets on the mock, one of
    /// which fails 30% of its requests; the report's failures and latencies are then what
    /// clients see of a partly failing upstream (compare with a run without this flag).
    #[arg(long)]
    resilience: bool,
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1_000.0,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// The workspace root (parent of this crate), for default paths.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// The non-streaming chat request body: small and realistic (~300 bytes).
fn chat_body(stream: bool) -> Bytes {
    let body = serde_json::json!({
        "model": "bench-model",
        "messages": [
            {"role": "system", "content": "You are a concise assistant for an operations team."},
            {"role": "user", "content": "Summarise in two sentences why a team would put an API gateway in front of several LLM providers."}
        ],
        "temperature": 0.2,
        "max_tokens": 64,
        "user": "bench",
        "stream": stream
    });
    Bytes::from(serde_json::to_vec(&body).expect("static JSON"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut rt = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.client_threads);
        b
    };
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = rt.block_on(async {
        tokio::select! {
            r = run(&args) => r,
            _ = shutdown_signal() => Err(anyhow::anyhow!("interrupted; child processes stopped")),
        }
    });
    // The run future (and with it every child-process guard) is dropped by now.
    rt.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One run of `target` between two idle points, with the CPU each process used for it
/// (including what the servers still did after the last response). `pids` are the
/// mock's and the gateway's.
async fn measure(
    target: &Arc<Target>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    pids: [u32; 2],
) -> Result<(load::PhaseResult, CpuTimes)> {
    let label = target.label;
    quiet::settle(&pids, label).await;
    let before = CpuTimes::read(pids[0], pids[1]);
    let result = load::run_phase(target.clone(), concurrency, warmup, duration).await?;
    quiet::settle(&pids, "the next measurement").await;
    Ok((result, CpuTimes::read(pids[0], pids[1]).since(before)))
}

/// Adds one round's result to the accumulated one.
fn merge_into(acc: &mut Option<load::PhaseResult>, round: load::PhaseResult) -> Result<()> {
    match acc {
        Some(a) => a.merge(round),
        None => {
            *acc = Some(round);
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

async fn run(args: &Args) -> Result<ExitCode> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if args.concurrency.contains(&0) {
        bail!("--concurrency values must be at least 1");
    }
    let loadavg_before = meta::loadavg();
    if let Some(l) = loadavg_before.filter(|&l| l > 0.5) {
        eprintln!(
            "warning: load average is {l:.2} before the run; other processes compete for the cores"
        );
    }
    let root = workspace_root();
    let gateway_bin = args
        .gateway
        .clone()
        .unwrap_or_else(|| root.join("target/release/portcullis"));
    let mock_bin = args
        .mock
        .clone()
        .unwrap_or_else(|| root.join("target/release/portcullis-mock"));
    for bin in [&gateway_bin, &mock_bin] {
        if !bin.is_file() {
            bail!(
                "{} not found; build it first: cargo build --release -p portcullis -p portcullis-testkit",
                bin.display()
            );
        }
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("bench/results/latest.md"));
    let results_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&results_dir)
        .with_context(|| format!("create {}", results_dir.display()))?;
    let gateway_log = results_dir.join("gateway.log");

    let scratch = procs::ScratchDir::new()?;
    let (mut mock, mock_addr) = procs::start_mock(&mock_bin, &results_dir.join("mock.log"))?;
    eprintln!("mock upstream listening on {mock_addr}");
    let extra = if args.no_request_logs {
        "logs:\n  enabled: false\n"
    } else {
        ""
    };
    let models = if args.resilience {
        procs::RESILIENCE_MODEL
    } else {
        procs::SINGLE_TARGET_MODEL
    };
    let config = procs::write_gateway_config(scratch.path(), mock_addr, models, extra)?;
    let key = procs::create_key(&gateway_bin, &config)?;
    if let Some(policy) = &args.policy {
        procs::apply_policy(&gateway_bin, &config, policy)?;
    }
    let (mut gateway, config) =
        procs::start_gateway(&gateway_bin, config, mock_addr, &gateway_log).await?;
    eprintln!(
        "gateway listening on {} (pid {}, log {})",
        config.listen,
        gateway.pid(),
        gateway_log.display()
    );
    let sampler = rss::RssSampler::start(gateway.pid());
    let pids = [mock.pid(), gateway.pid()];

    let path = "/v1/chat/completions";
    let body = chat_body(false);
    let direct = Arc::new(Target::post_json(
        "direct",
        mock_addr,
        path,
        Some(&key),
        body.clone(),
    )?);
    let via_gw = Arc::new(Target::post_json(
        "gateway",
        config.listen,
        path,
        Some(&key),
        body.clone(),
    )?);
    // Fail fast with the server's own words if the setup is wrong.
    load::probe(&direct).await?;
    load::probe(&via_gw).await?;

    let mut rows = Vec::new();
    for &c in &args.concurrency {
        eprintln!("concurrency {c}: {} round(s) ...", args.rounds);
        sampler.reset_phase();
        let (mut d, mut g) = (None, None);
        let (mut d_cpu, mut g_cpu) = (CpuTimes::default(), CpuTimes::default());
        let (warmup, duration) = (args.warmup / args.rounds, args.duration / args.rounds);
        for _ in 0..args.rounds {
            let (r, cpu) = measure(&direct, c, warmup, duration, pids).await?;
            merge_into(&mut d, r)?;
            d_cpu.add(cpu);
            let (r, cpu) = measure(&via_gw, c, warmup, duration, pids).await?;
            merge_into(&mut g, r)?;
            g_cpu.add(cpu);
        }
        let (d, g) = (
            d.expect("at least one round"),
            g.expect("at least one round"),
        );
        let row = Row {
            concurrency: c,
            direct: d,
            gateway: g,
            gateway_peak_rss_kb: sampler.phase_peak_kb(),
            direct_cpu: d_cpu,
            gateway_cpu: g_cpu,
        };
        eprintln!(
            "concurrency {c}: direct {:.0} rps p50 {:.1} µs | gateway {:.0} rps p50 {:.1} µs | errors {}",
            row.direct.rps(),
            row.direct.quantile_us(0.5),
            row.gateway.rps(),
            row.gateway.quantile_us(0.5),
            row.direct.errors + row.gateway.errors
        );
        rows.push(row);
        mock.ensure_running()?;
        gateway.ensure_running()?;
    }

    eprintln!(
        "stream time to first event: {} requests per side ...",
        args.stream_requests
    );
    let stream_body = chat_body(true);
    quiet::settle(&pids, "the direct streams").await;
    let ttfe_direct = stream::measure(
        &direct.with_body("direct", stream_body.clone()),
        args.stream_requests,
    )
    .await;
    quiet::settle(&pids, "the gateway streams").await;
    let ttfe_gateway = stream::measure(
        &via_gw.with_body("gateway", stream_body),
        args.stream_requests,
    )
    .await;

    gateway.ensure_running()?;
    let vm_hwm_kb = rss::read_status_kb(gateway.pid(), "VmHWM");
    drop(sampler);
    drop(gateway);
    drop(mock);
    let gateway_log_lines = std::fs::read(&gateway_log)
        .ok()
        .map(|b| b.iter().filter(|&&c| c == b'\n').count());

    let report = Report {
        meta: meta::describe(args, body.len(), loadavg_before),
        rows,
        ttfe_direct,
        ttfe_gateway,
        vm_hwm_kb,
        gateway_log_lines,
    };
    let md = report.to_markdown();
    println!("{md}");
    std::fs::write(&out, &md).with_context(|| format!("write {}", out.display()))?;
    eprintln!("report written to {}", out.display());

    let errors = report.total_errors();
    if errors > 0 {
        eprintln!("\nERROR: {errors} requests failed; see the report");
        return Ok(ExitCode::FAILURE);
    }
    let missed = report.targets().iter().any(|t| t.2 == Verdict::Miss);
    if missed && args.fail_on_miss {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn chat_body_is_small_and_realistic() {
        let len = chat_body(false).len();
        assert!((250..=400).contains(&len), "body is {len} bytes");
    }
}
