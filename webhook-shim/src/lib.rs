//! The resource-driver API of the orchestrator's resource manager ("Brent") on top of
//! `AzureResource` objects: requests become objects, object status becomes Kafka results.

pub mod admission;
pub mod api;
pub mod auth;
pub mod cache;
pub mod completion;
pub mod config;
pub mod driver_files;
pub mod error;
pub mod intake;
pub mod kafka;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod reporter;
pub mod request;
pub mod tls;
pub mod writes;

/// SIGTERM (Kubernetes) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
