//! `azure-driver-shim`: the resource-driver API over TLS, results on Kafka.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use azure_driver_shim::api::{Admission, Shim, routes};
use azure_driver_shim::auth::{Authenticator, TokenFile};
use azure_driver_shim::config::{self, Args, Settings};
use azure_driver_shim::kafka::ResultPublisher;
use azure_driver_shim::mapping::MappingContext;
use azure_driver_shim::metrics::Metrics;
use azure_driver_shim::reporter::Reporter;
use azure_driver_shim::{logging, shutdown_signal, tls};
use clap::Parser;
use kube::Api;
use tracing::{error, info};

/// mimalloc rather than glibc's malloc: with tens of thousands of long-lived cache entries
/// between the requests' short-lived buffers, glibc's free lists fragment, so the shim's
/// memory and its time in malloc grew with the number of objects (a third of its CPU at
/// 20,000 objects, by perf); mimalloc's size-segregated pages keep both flat. Without
/// transparent huge pages (`no_thp`): they made its RSS 20 MiB larger for nothing.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often every object is re-checked for results owed (expired claims, failed publishes).
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How often the TLS pair and the API token file are re-read.
const CREDENTIAL_POLL_INTERVAL: Duration = Duration::from_secs(5);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let file = config::load_file(&args)?;
    let settings = config::resolve(&args, &file)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = settings.worker_threads {
        runtime.worker_threads(threads);
    }
    runtime.build()?.block_on(run(settings))
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    logging::init(settings.log_format, &settings.log_level);
    let client = kube::Client::try_default()
        .await
        .context("cannot reach Kubernetes (KUBECONFIG or in-cluster config)")?;
    let publisher = ResultPublisher::new(&settings.kafka)?;
    let metrics = Metrics::default();
    let mut shim = Shim::new(
        client.clone(),
        MappingContext {
            namespace: settings.namespace.clone(),
            default_subscription_id: settings.default_subscription_id.clone(),
            operator_identity: settings.operator_identity,
            legacy_delete_keeps_resources: settings.legacy_delete_keeps_resources,
        },
        publisher.clone(),
        metrics.clone(),
    );
    shim.admission = Admission::new(
        settings.max_concurrent_requests,
        settings.request_memory_bytes,
    );
    shim.authenticator = authenticator(&settings)?;
    let healthy = shim.healthy.clone();

    let reporter = Reporter::new(
        Api::namespaced(client, &settings.namespace),
        publisher.clone(),
        settings.replica_id.clone(),
        metrics,
    );
    let shim = shim.with_object_cache(reporter.cache());
    let reporter_health = healthy.clone();
    tokio::spawn(async move {
        reporter.run(SWEEP_INTERVAL).await;
        error!("the AzureResource watch ended; results are no longer reported");
        reporter_health.store(false, Ordering::Relaxed);
    });

    let addr = SocketAddr::from(([0, 0, 0, 0], settings.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    info!(
        %addr,
        tls = settings.ssl_enabled,
        client_certificates = settings.client_ca.is_some(),
        bearer_tokens = settings.api_tokens_file.is_some(),
        topic = %settings.kafka.topic,
        namespace = %settings.namespace,
        "azure-driver-shim listening"
    );
    tls::serve(
        listener,
        server_tls(&settings)?,
        routes(shim),
        tls::ConnectionLimits::default(),
        shutdown_signal(),
    )
    .await;
    info!("shutting down; flushing Kafka");
    publisher.flush(Duration::from_secs(10))?;
    Ok(())
}

/// Who may call: client certificates when a client CA is set (only over TLS), bearer
/// tokens from a file that is re-read while the shim runs.
fn authenticator(settings: &Settings) -> anyhow::Result<Authenticator> {
    if settings.client_ca.is_some() && !settings.ssl_enabled {
        anyhow::bail!("--client-ca needs TLS (SSL_ENABLED=true)");
    }
    let tokens = match &settings.api_tokens_file {
        Some(path) => {
            let tokens = Arc::new(
                TokenFile::load(path)
                    .with_context(|| format!("cannot read API tokens from {}", path.display()))?,
            );
            tokens.watch(CREDENTIAL_POLL_INTERVAL);
            Some(tokens)
        }
        None => None,
    };
    Ok(Authenticator {
        client_certificate: settings.client_ca.is_some(),
        tokens,
    })
}

/// The listener's TLS configuration (none when TLS is off), its certificate re-read
/// while the shim runs.
fn server_tls(settings: &Settings) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    if !settings.ssl_enabled {
        return Ok(None);
    }
    let resolver = Arc::new(tls::ReloadingCert::load(
        &settings.tls_cert,
        &settings.tls_key,
    )?);
    resolver.watch(CREDENTIAL_POLL_INTERVAL);
    Ok(Some(match &settings.client_ca {
        Some(client_ca) => tls::server_config_with_client_ca(resolver, client_ca)?,
        None => tls::server_config(resolver)?,
    }))
}
