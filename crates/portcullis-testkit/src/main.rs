//! `portcullis-mock`: the mock upstream as a standalone server (benchmark baseline).

use std::net::SocketAddr;

use clap::Parser;
use portcullis_testkit::{MockOptions, MockUpstream};

/// Mock upstream (OpenAI, Anthropic, Gemini, Azure OpenAI and Bedrock shapes by path) with
/// fault injection (faults selected by model name).
#[derive(Debug, Parser)]
#[command(name = "portcullis-mock", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Keep every request in memory (only useful when embedding; off for benchmarks).
    #[arg(long)]
    record: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = MockOptions {
        record: args.record,
    };
    let mock = MockUpstream::start_with(args.listen, options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    println!("listening on http://{}", mock.addr());
    shutdown_signal().await;
    drop(mock);
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
