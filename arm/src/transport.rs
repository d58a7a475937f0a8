//! The one HTTPS client used for both Entra token requests and ARM calls.

use crate::config::ArmOptions;
use crate::error::ArmError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// Builds a reqwest client trusting the system roots (or, in an image without a CA store,
/// the Mozilla roots compiled in) plus `ca_file`.
///
/// The rustls configuration names its crypto provider explicitly: the workspace links
/// rustls with both ring and aws-lc (through kube), and rustls refuses to guess a
/// process-wide default when both are present.
pub(crate) fn http_client(options: &ArmOptions) -> Result<reqwest::Client, ArmError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(ca_file) = &options.cloud.ca_file {
        for cert in read_pem_certs(ca_file)? {
            roots.add(cert).map_err(|e| {
                ArmError::invalid_input(
                    "InvalidCaFile",
                    format!("{}: unusable CA certificate: {e}", ca_file.display()),
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ArmError::invalid_input("TlsConfiguration", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/2 when the server offers it: many concurrent reconciles share one connection
    // instead of each opening (and TLS-handshaking) its own.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(options.user_agent.clone())
        .timeout(options.request_timeout)
        .connect_timeout(
            options
                .request_timeout
                .min(std::time::Duration::from_secs(20)),
        )
        // ARM does not redirect; Location headers of 202 answers are poll URLs, not redirects.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ArmError::invalid_input("TlsConfiguration", e.to_string()))
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ArmError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ArmError::invalid_input(
            "InvalidCaFile",
            format!("cannot read CA file {}: {e}", path.display()),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ArmError::invalid_input(
                "InvalidCaFile",
                format!("{} is not a PEM bundle: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(ArmError::invalid_input(
            "InvalidCaFile",
            format!("{} contains no certificate", path.display()),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CloudConfig;

    #[test]
    fn missing_or_empty_ca_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("arm-ca-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let options =
            ArmOptions::default().with_cloud(CloudConfig::default().with_ca_file(&missing));
        let err = http_client(&options).unwrap_err();
        assert_eq!(err.code, "InvalidCaFile");
        assert!(err.message.contains("missing.pem"));

        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let options = ArmOptions::default().with_cloud(CloudConfig::default().with_ca_file(&empty));
        assert_eq!(http_client(&options).unwrap_err().code, "InvalidCaFile");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
