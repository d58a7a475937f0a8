//! `azure-driver-admission`: the validating admission webhook for `AzureResource`
//! objects, over TLS. It needs no Kubernetes or Azure credentials: everything it checks
//! is in the AdmissionReview the apiserver sends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use azure_driver_shim::config::LogFormat;
use azure_driver_shim::{admission, logging, shutdown_signal, tls};
use clap::Parser;
use tracing::info;

/// How often the certificate files are checked for a rotated certificate.
const CERT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Validating admission webhook for AzureResource objects (TLS).
#[derive(Parser, Debug)]
#[command(name = "azure-driver-admission", version)]
struct Args {
    /// Address to serve HTTPS on; the bound address is printed on stdout's first line.
    #[arg(long, env = "ADMISSION_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// PEM certificate chain (reloaded when the file changes).
    #[arg(
        long,
        env = "TLS_CERT_FILE",
        default_value = "/etc/azure-driver/admission-tls/tls.crt"
    )]
    tls_cert: PathBuf,
    /// PEM private key (reloaded when the file changes).
    #[arg(
        long,
        env = "TLS_KEY_FILE",
        default_value = "/etc/azure-driver/admission-tls/tls.key"
    )]
    tls_key: PathBuf,
    /// `text` or `logstash` (JSON lines).
    #[arg(long, env = "LOG_TYPE", default_value = "text")]
    log_type: String,
    /// Log level when `RUST_LOG` is unset.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init(LogFormat::from_log_type(&args.log_type), &args.log_level);
    let resolver = Arc::new(tls::ReloadingCert::load(&args.tls_cert, &args.tls_key)?);
    resolver.watch(CERT_POLL_INTERVAL);
    let config = tls::server_config(resolver)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("https://{addr}");
    info!(%addr, "azure-driver-admission listening");
    tls::serve_tls(listener, config, admission::routes(), shutdown_signal()).await;
    Ok(())
}
