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

    let shutdown = async {
        telemetry::shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight reconciles");
    };
    let result = run(client, config, azure, metrics, health, shutdown).await;
    server.abort();
    result
}

/// One log line shape for both binaries: `--log-format json` and `LOG_TYPE=logstash` both
/// select `telemetry`'s logstash lines.
fn init_logging(format: LogFormat) {
    let log_type = std::env::var("LOG_TYPE").unwrap_or_default();
    let json = format == LogFormat::Json
        || telemetry::LogFormat::from_log_type(&log_type) == telemetry::LogFormat::Logstash;
    let format = if json {
        telemetry::LogFormat::Logstash
    } else {
        telemetry::LogFormat::Text
    };
    telemetry::init(format, "info");
}
