use std::sync::Arc;

use anyhow::Context as _;
use azure_driver_controller::{
    Config, Health, LogFormat,
    arm_adapter::{ArmFactory, controller_options},
    http,
    metrics::Metrics,
    run,
};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    init_logging(config.log_format);

    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (KUBECONFIG or in-cluster)")?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let azure = Arc::new(ArmFactory::new(controller_options()?, metrics.clone())?);

    let listener = tokio::net::TcpListener::bind(config.metrics_addr)
        .await
        .with_context(|| format!("binding {}", config.metrics_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let server = tokio::spawn(http::serve(listener, metrics.clone(), health.clone()));

    let result = run(client, config, azure, metrics, health, shutdown_signal()).await;
    server.abort();
    result
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = format == LogFormat::Json
        || std::env::var("LOG_TYPE").is_ok_and(|t| t.eq_ignore_ascii_case("logstash"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: finishing in-flight reconciles");
}
