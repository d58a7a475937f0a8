//! The simulator's public handle: start it, point clients at it, observe it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, SimConfig};
use crate::counters::Counters;
use crate::inventory::{InventoryEvent, InventoryItem};
use crate::shared::Shared;
use crate::state::lock::LockRecord;
use crate::{server, tls};

/// Entry point: `Simulator::start(config, tls_dir).await`.
pub struct Simulator;

impl Simulator {
    /// Starts on `127.0.0.1` with a port the OS picks.
    pub async fn start(config: SimConfig, tls_dir: &Path) -> anyhow::Result<RunningSim> {
        Self::start_on(config, tls_dir, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on a given address (port 0 picks one).
    pub async fn start_on(
        config: SimConfig,
        tls_dir: &Path,
        listen: SocketAddr,
    ) -> anyhow::Result<RunningSim> {
        let compiled = config.compile()?;
        let (tls_config, ca_file) = tls::server_config(tls_dir, listen.ip())?;
        let listener = TcpListener::bind(listen).await?;
        let local = listener.local_addr()?;
        let endpoint = format!("https://{local}");
        let shared = Arc::new(Shared::new(endpoint, compiled));
        let (stop, stopped) = watch::channel(false);
        let accept_loop = tokio::spawn(server::serve(
            listener,
            tokio_rustls::TlsAcceptor::from(tls_config),
            shared.clone(),
            stopped,
        ));
        tracing::info!(endpoint = %shared.endpoint, "armsim listening");
        Ok(RunningSim {
            shared,
            ca_file,
            stop,
            accept_loop: Some(accept_loop),
        })
    }
}

/// A running simulator. Dropping it stops serving.
pub struct RunningSim {
    shared: Arc<Shared>,
    ca_file: PathBuf,
    stop: watch::Sender<bool>,
    accept_loop: Option<JoinHandle<()>>,
}

impl RunningSim {
    /// `https://127.0.0.1:PORT`: ARM and the Entra authority
    /// (`{endpoint}/{tenant}/oauth2/v2.0/token`).
    pub fn endpoint(&self) -> String {
        self.shared.endpoint.clone()
    }

    /// The CA certificate (PEM) clients must trust (`AZURE_CA_FILE`).
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    pub fn counters(&self) -> Counters {
        self.shared.counters().clone()
    }

    pub fn reset_counters(&self) {
        *self.shared.counters() = Counters::default();
    }

    /// Every existing resource (resource groups included), sorted by id.
    pub fn inventory(&self) -> Vec<InventoryItem> {
        self.shared.state().inventory.items().cloned().collect()
    }

    /// The body a GET of this id returns, if it exists (case-insensitive).
    pub fn resource(&self, id: &str) -> Option<Value> {
        self.shared
            .state()
            .inventory
            .get(id)
            .map(|item| item.body.clone())
    }

    /// Every management lock as a `GET` of it answers, sorted by lock id.
    pub fn locks(&self) -> Vec<Value> {
        self.shared
            .state()
            .locks
            .all()
            .map(LockRecord::body)
            .collect()
    }

    /// How many times this id went from absent to present.
    pub fn created_count(&self, id: &str) -> usize {
        self.shared.state().inventory.created_count(id)
    }

    /// Every create, update and delete so far, in order.
    pub fn events(&self) -> Vec<InventoryEvent> {
        self.shared.state().inventory.events().to_vec()
    }

    /// Long-running operations whose status and result URLs still answer: the
    /// running ones and the finished ones within `operationRetention`.
    pub fn operation_count(&self) -> usize {
        self.shared.state().operations.len()
    }

    pub fn config(&self) -> SimConfig {
        self.shared.config().config.clone()
    }

    /// Replaces the configuration (faults, latency, throttling) for the next requests.
    pub fn update_config(&self, config: SimConfig) -> Result<(), ConfigError> {
        self.shared.set_config(config)
    }

    /// Stops accepting and closes open connections.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(accept_loop) = self.accept_loop.take() {
            let _ = accept_loop.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(accept_loop) = self.accept_loop.take() {
            accept_loop.abort();
        }
    }
}
