//! TLS from PEM files, reloaded when the files change (Secret rotation), and the
//! accept loop serving the warp routes over it.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};
use warp::Filter;
use warp::reply::Response;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key")]
    NoKey { path: String },
    #[error("the private key in {path} is not usable: {source}")]
    BadKey { path: String, source: rustls::Error },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Loads a certificate chain and key. Errors name the file, never its content.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let shown = |p: &Path| p.display().to_string();
    let cert_pem = read(cert)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: shown(cert) });
    }
    let key_pem = read(key)?;
    let private: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey { path: shown(key) })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private).map_err(|source| {
        TlsError::BadKey {
            path: shown(key),
            source,
        }
    })?;
    Ok(CertifiedKey::new(chain, signing))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Serves the current certificate; [`ReloadingCert::reload_if_changed`] swaps it when
/// the files' modification times change and the new pair loads.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    state: RwLock<(Option<SystemTime>, Option<SystemTime>, Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let stamps = (modified(cert), modified(key));
        let current = Arc::new(load_certified_key(cert, key)?);
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            state: RwLock::new((stamps.0, stamps.1, current)),
        })
    }

    /// Returns whether a new certificate was installed. A half-written or invalid pair
    /// keeps the previous certificate in service.
    pub fn reload_if_changed(&self) -> bool {
        let stamps = (modified(&self.cert), modified(&self.key));
        {
            let state = self.state.read().expect("certificate lock");
            if (state.0, state.1) == stamps {
                return false;
            }
        }
        match load_certified_key(&self.cert, &self.key) {
            Ok(fresh) => {
                *self.state.write().expect("certificate lock") =
                    (stamps.0, stamps.1, Arc::new(fresh));
                info!(cert = %self.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(err) => {
                warn!(error = %err, "TLS files changed but do not load; keeping the current certificate");
                false
            }
        }
    }

    /// Polls the files every `every` for as long as the process runs.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let this = Arc::clone(self);
        every_tick(every, move || {
            this.reload_if_changed();
        });
    }
}

/// Runs `f` every `every` for as long as the process runs.
pub(crate) fn every_tick(every: Duration, f: impl Fn() + Send + 'static) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            f();
        }
    });
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.state.read().expect("certificate lock").2))
    }
}

/// rustls server configuration (TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2 by ALPN).
pub fn server_config(resolver: Arc<ReloadingCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Limits of every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// The TLS handshake must end within this.
    pub handshake: Duration,
    /// A request's headers must arrive within this; an HTTP/1 connection idle this long
    /// between requests is closed as well.
    pub header_read: Duration,
    /// An HTTP/2 connection whose peer stops answering pings is closed after this.
    pub keep_alive_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(20),
        }
    }
}

/// Client certificate state of the connection a request came on, as a request extension:
/// true when the client presented a certificate the configured client CA verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCertificate(pub bool);

/// rustls server configuration that verifies client certificates against the CAs in
/// `client_ca` when one is presented (probes present none, so the handshake allows that
/// and the API refuses such callers with 401).
pub fn server_config_with_client_ca(
    resolver: Arc<ReloadingCert>,
    client_ca: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let pem = read(client_ca)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok) {
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate {
            path: client_ca.display().to_string(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|err| TlsError::Config(rustls::Error::General(err.to_string())))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `routes` over TLS on `listener` until `shutdown` resolves.
pub async fn serve_tls<F>(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    routes: F,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    serve(
        listener,
        Some(config),
        routes,
        ConnectionLimits::default(),
        shutdown,
    )
    .await;
}

/// Serves `routes` on `listener`, over TLS when `config` is given, until `shutdown`
/// resolves. Every request carries its connection's [`ClientCertificate`].
pub async fn serve<F>(
    listener: TcpListener,
    config: Option<Arc<ServerConfig>>,
    routes: F,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let acceptor = config.map(TlsAcceptor::from);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let routes = routes.clone();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                serve_connection(TokioIo::new(tcp), routes, ClientCertificate(false), limits).await;
                return;
            };
            let tls = match tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            // rustls hands out peer certificates only after its verifier accepted them.
            let certified = ClientCertificate(tls.get_ref().1.peer_certificates().is_some());
            serve_connection(TokioIo::new(tls), routes, certified, limits).await;
        });
    }
}

async fn serve_connection<I, F>(
    io: TokioIo<I>,
    routes: F,
    certificate: ClientCertificate,
    limits: ConnectionLimits,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let service = warp::service(routes);
    let with_certificate = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request.extensions_mut().insert(certificate);
        let mut service = service.clone();
        async move { tower_service::Service::call(&mut service, request).await }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.keep_alive_timeout))
        .keep_alive_timeout(limits.keep_alive_timeout);
    if let Err(err) = builder.serve_connection(io, with_certificate).await {
        debug!(error = %err, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let cert_path = dir.join("tls.crt");
        let key_path = dir.join("tls.key");
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    fn current_der(resolver: &ReloadingCert) -> Vec<u8> {
        resolver.state.read().unwrap().2.cert[0].to_vec()
    }

    #[test]
    fn reloads_changed_files_and_keeps_serving_on_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), "azure-driver");
        let resolver = ReloadingCert::load(&cert, &key).unwrap();
        let first = current_der(&resolver);
        assert!(!resolver.reload_if_changed());

        std::thread::sleep(Duration::from_millis(20));
        write_pair(dir.path(), "azure-driver-2");
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&cert)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(resolver.reload_if_changed());
        let second = current_der(&resolver);
        assert_ne!(first, second);

        std::fs::write(&key, "not a key").unwrap();
        let later = SystemTime::now() + Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&key)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(!resolver.reload_if_changed());
        assert_eq!(current_der(&resolver), second);
    }

    #[test]
    fn errors_name_the_file_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), "x");
        std::fs::write(
            &key,
            "-----BEGIN SECRET-----\nc2VjcmV0\n-----END SECRET-----\n",
        )
        .unwrap();
        let err = load_certified_key(&cert, &key).unwrap_err().to_string();
        assert!(
            err.contains("tls.key") && !err.contains("c2VjcmV0"),
            "{err}"
        );
    }
}
