//! `armsim --listen 127.0.0.1:PORT --tls-dir DIR [--config FILE]`
//!
//! Prints the endpoint (`https://127.0.0.1:PORT`) as the first stdout line, logs to
//! stderr, writes the CA to `DIR/ca.pem`, and exits cleanly on SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use armsim::{SimConfig, Simulator};
use clap::Parser;

/// Azure Resource Manager simulator (ARM + Entra token endpoint over HTTPS).
#[derive(Debug, Parser)]
#[command(name = "armsim", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory for the generated CA certificate (`ca.pem`).
    #[arg(long)]
    tls_dir: PathBuf,
    /// Simulator configuration (YAML or JSON): latency, faults, throttling, credentials.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            SimConfig::from_yaml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => SimConfig::default(),
    };
    let sim = Simulator::start_on(config, &args.tls_dir, args.listen).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", sim.endpoint())?;
        stdout.flush()?;
    }
    tracing::info!(ca_file = %sim.ca_file().display(), "ready");
    wait_for_termination().await?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_termination() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
