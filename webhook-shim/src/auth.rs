//! Who may call the API: optionally a client certificate the configured CA verified,
//! optionally a bearer token from a file (a mounted Secret, re-read so that a rotation
//! needs no restart). Neither is required by default (lmctl onboarding needs neither).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::warn;
use warp::http::HeaderMap;

use crate::error::ApiError;
use crate::tls::ClientCertificate;

/// Bearer tokens, one a line (blank lines and `#` comments ignored), kept as SHA-256
/// digests so that every comparison takes the same time whatever the token lengths.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    digests: RwLock<Vec<[u8; 32]>>,
}

fn digests(text: &str) -> Vec<[u8; 32]> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|token| Sha256::digest(token.as_bytes()).into())
        .collect()
}

impl TokenFile {
    /// Reads the file; an empty or unreadable file at start is an error (a typo in the
    /// path must not open the API).
    pub fn load(path: &Path) -> Result<Self, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        let tokens = digests(&text);
        if tokens.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} holds no token", path.display()),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            digests: RwLock::new(tokens),
        })
    }

    /// Re-reads the file; keeps the current tokens when it is unreadable or empty (a
    /// Secret volume is swapped atomically, but a broken edit must not lock callers out).
    pub fn reload(&self) {
        match std::fs::read_to_string(&self.path).map(|text| digests(&text)) {
            Ok(tokens) if !tokens.is_empty() => {
                *self.digests.write().expect("token lock") = tokens;
            }
            Ok(_) => {
                warn!(path = %self.path.display(), "token file is empty; keeping the current tokens")
            }
            Err(err) => {
                warn!(path = %self.path.display(), error = %err, "token file unreadable; keeping the current tokens")
            }
        }
    }

    /// Re-reads the file every `every` for as long as the process runs.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let this = Arc::clone(self);
        crate::tls::every_tick(every, move || this.reload());
    }

    /// Whether `presented` is one of the tokens, comparing every token in constant time.
    pub fn accepts(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digests
            .read()
            .expect("token lock")
            .iter()
            .fold(0u8, |found, digest| {
                found | digest.ct_eq(&presented).unwrap_u8()
            })
            == 1
    }
}

/// The configured caller checks; both apply when both are set.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    /// Callers must present a client certificate the `--client-ca` verified.
    pub client_certificate: bool,
    pub tokens: Option<Arc<TokenFile>>,
}

impl Authenticator {
    /// Admits or refuses (401) a caller of an API path.
    pub fn check(
        &self,
        headers: &HeaderMap,
        certificate: Option<ClientCertificate>,
    ) -> Result<(), ApiError> {
        if self.client_certificate && certificate != Some(ClientCertificate(true)) {
            return Err(ApiError::with_status(
                401,
                "A client certificate signed by the configured CA is required",
            ));
        }
        if let Some(tokens) = &self.tokens {
            let presented = headers
                .get(warp::http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| {
                    value
                        .split_once(' ')
                        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                        .map(|(_, token)| token.trim())
                });
            if !presented.is_some_and(|token| tokens.accepts(token)) {
                return Err(ApiError::with_status(
                    401,
                    "A valid bearer token is required",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", authorization.parse().unwrap());
        headers
    }

    #[test]
    fn tokens_are_checked_and_rotate_without_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# callers\nfirst-token\n\n").unwrap();
        let tokens = Arc::new(TokenFile::load(&path).unwrap());
        let auth = Authenticator {
            client_certificate: false,
            tokens: Some(tokens.clone()),
        };
        assert!(auth.check(&headers("Bearer first-token"), None).is_ok());
        assert!(auth.check(&headers("bearer  first-token "), None).is_ok());
        for refused in [
            "Bearer first-tokenx",
            "Basic first-token",
            "first-token",
            "Bearer ",
        ] {
            let err = auth.check(&headers(refused), None).unwrap_err();
            assert_eq!(err.status, 401, "{refused}");
        }
        assert_eq!(
            auth.check(&HeaderMap::new(), None).unwrap_err().message,
            "A valid bearer token is required"
        );

        std::fs::write(&path, "second-token\nthird-token\n").unwrap();
        tokens.reload();
        assert!(auth.check(&headers("Bearer first-token"), None).is_err());
        assert!(auth.check(&headers("Bearer third-token"), None).is_ok());
        std::fs::write(&path, "\n").unwrap();
        tokens.reload();
        assert!(auth.check(&headers("Bearer second-token"), None).is_ok());

        std::fs::write(&path, "# none\n").unwrap();
        assert!(TokenFile::load(&path).is_err());
    }

    #[test]
    fn client_certificates_are_required_when_configured() {
        let open = Authenticator::default();
        assert!(open.check(&HeaderMap::new(), None).is_ok());
        let mtls = Authenticator {
            client_certificate: true,
            tokens: None,
        };
        assert!(
            mtls.check(&HeaderMap::new(), Some(ClientCertificate(true)))
                .is_ok()
        );
        for certificate in [None, Some(ClientCertificate(false))] {
            let err = mtls.check(&HeaderMap::new(), certificate).unwrap_err();
            assert_eq!(
                (err.status, err.message.as_str()),
                (
                    401,
                    "A client certificate signed by the configured CA is required"
                )
            );
        }
    }
}
