//! HTTPS serving: the routes answer over TLS, and a rotated certificate (Secret update)
//! is served to new connections without a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use azure_driver_shim::tls::{ReloadingCert, serve_tls, server_config};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use warp::Filter;
use warp::reply::Response;

fn write_pair(dir: &Path) -> CertificateDer<'static> {
    let cert = rcgen::generate_simple_self_signed(vec!["azure-driver".to_string()]).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    // Same-second rewrites must still look changed.
    let stamp = SystemTime::now() + Duration::from_secs(rand_offset());
    for name in ["tls.key", "tls.crt"] {
        std::fs::File::options()
            .write(true)
            .open(dir.join(name))
            .unwrap()
            .set_modified(stamp)
            .unwrap();
    }
    cert.cert.der().clone()
}

fn rand_offset() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Connects trusting only `trusted`, sends a health request, returns the response text.
async fn get_health(
    port: u16,
    trusted: &CertificateDer<'static>,
) -> Result<String, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("azure-driver").unwrap(), tcp)
        .await?;
    tls.write_all(
        b"GET /management/health HTTP/1.1\r\nhost: azure-driver\r\nconnection: close\r\n\r\n",
    )
    .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn serves_https_and_picks_up_rotated_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_pair(dir.path());
    let resolver = Arc::new(
        ReloadingCert::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap(),
    );
    resolver.watch(Duration::from_millis(100));
    let routes = warp::path!("management" / "health")
        .map(|| Response::new(r#"{"vitals":{"app":{"status":"OK"}}}"#.into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve_tls(
        listener,
        server_config(resolver).unwrap(),
        routes
            .map(|r: Response| r)
            .recover(|_| async { Ok::<_, std::convert::Infallible>(Response::new("".into())) })
            .unify(),
        std::future::pending(),
    ));

    let response = get_health(port, &first).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"{"vitals":{"app":{"status":"OK"}}}"#),
        "{response}"
    );

    let second = write_pair(dir.path());
    let mut rotated = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if get_health(port, &second).await.is_ok() {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "the rotated certificate was never served");
    assert!(
        get_health(port, &first).await.is_err(),
        "the old certificate is still served"
    );
}
