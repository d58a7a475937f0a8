//! What the shim benchmarks share: Creates posted over keep-alive TLS connections, and
//! latency percentiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// The server name the benchmarks' shim certificates are made for.
pub const SHIM_HOST: &str = "azure-driver";

/// Latencies of the requests of one run, sorted, and how many were not accepted (202).
pub struct Posted {
    pub latencies: Vec<Duration>,
    pub failures: usize,
}

impl Posted {
    /// The `p` quantile (0..=1) in milliseconds; 0 without requests.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index].as_secs_f64() * 1e3
    }

    pub fn accepted(&self) -> usize {
        self.latencies.len() - self.failures
    }
}

/// Posts `bodies` to `lifecycle/execute` on `127.0.0.1:port` over `clients` keep-alive
/// HTTP/1.1 TLS connections, each sending the next body not yet sent as soon as its last
/// request was answered (as a load generator does, and as the raw side's
/// `buffer_unordered` does: a fixed share per connection would make the round last as
/// long as its unluckiest connection). The first refusal's answer is printed.
pub async fn post_executes(
    connector: &TlsConnector,
    port: u16,
    bodies: Vec<String>,
    clients: usize,
) -> Posted {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let connector = connector.clone();
            let bodies = bodies.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut sender = connect(&connector, port).await;
                let mut latencies = Vec::new();
                let mut failures = 0;
                while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let request = hyper::Request::post("/api/driver/lifecycle/execute")
                        .header("host", SHIM_HOST)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body.clone())))
                        .unwrap();
                    let sent = Instant::now();
                    let response = sender.send_request(request).await.unwrap();
                    let status = response.status();
                    let answer = response.into_body().collect().await.unwrap().to_bytes();
                    latencies.push(sent.elapsed());
                    if status != 202 {
                        if failures == 0 {
                            eprintln!(
                                "shim answered {status}: {}",
                                String::from_utf8_lossy(&answer)
                            );
                        }
                        failures += 1;
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut posted = Posted {
        latencies: Vec::new(),
        failures: 0,
    };
    for worker in workers {
        let (mut latencies, failures) = worker.await.unwrap();
        posted.latencies.append(&mut latencies);
        posted.failures += failures;
    }
    posted.latencies.sort();
    posted
}

async fn connect(
    connector: &TlsConnector,
    port: u16,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = connector
        .connect(ServerName::try_from(SHIM_HOST).unwrap(), tcp)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A TLS client trusting only `certificate` (DER).
pub fn connector_trusting(
    certificate: &rustls::pki_types::CertificateDer<'static>,
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}
