//! Which identity talks to ARM, and one shared credential (with its token cache) per identity.

use crate::config::{ArmOptions, CloudConfig};
use crate::error::ArmError;
use crate::managed_identity::ManagedIdentityCredential;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// An identity the client can authenticate as. `Debug` never shows the secret
/// (`azure_core`'s [`Secret`] redacts itself).
#[derive(Clone, Debug)]
pub enum CredentialSpec {
    /// A service principal with a client secret.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
    },
    /// Entra workload identity: a projected Kubernetes service-account token exchanged
    /// for an Entra token.
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// The managed identity of the host; `client_id` selects a user-assigned one.
    ManagedIdentity { client_id: Option<String> },
}

/// Credentials read from a Kubernetes Secret's data (keys `tenantId`, `clientId`,
/// `clientSecret`, `subscriptionId`, the names the orchestrator already uses).
#[derive(Clone, Debug)]
pub struct SecretCredentials {
    pub spec: CredentialSpec,
    pub subscription_id: Option<String>,
}

impl CredentialSpec {
    /// Parses a Secret's values. Missing or empty keys give an error naming the key,
    /// never the values.
    pub fn from_secret_data<K, V>(
        data: impl IntoIterator<Item = (K, V)>,
    ) -> Result<SecretCredentials, ArmError>
    where
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let values: HashMap<String, Vec<u8>> = data
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_vec()))
            .collect();
        let text = |key: &str| -> Result<Option<String>, ArmError> {
            match values.get(key) {
                None => Ok(None),
                Some(bytes) => {
                    let value = String::from_utf8(bytes.clone()).map_err(|_| {
                        ArmError::invalid_input(
                            "InvalidCredentials",
                            format!("credentials key {key} is not UTF-8"),
                        )
                    })?;
                    let value = value.trim().to_string();
                    Ok((!value.is_empty()).then_some(value))
                }
            }
        };
        let required = |key: &str| -> Result<String, ArmError> {
            text(key)?.ok_or_else(|| {
                ArmError::invalid_input(
                    "InvalidCredentials",
                    format!("credentials key {key} is missing or empty"),
                )
            })
        };
        let tenant_id = required("tenantId")?;
        let client_id = required("clientId")?;
        let client_secret = Secret::new(required("clientSecret")?);
        validate_tenant(&tenant_id)?;
        Ok(SecretCredentials {
            spec: CredentialSpec::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
            },
            subscription_id: text("subscriptionId")?,
        })
    }

    /// The operator's own identity from its environment: workload identity when
    /// `AZURE_FEDERATED_TOKEN_FILE` is set, else a client secret when
    /// `AZURE_CLIENT_SECRET` is set, else managed identity (user-assigned when
    /// `AZURE_CLIENT_ID` is set).
    pub fn from_env() -> Result<Self, ArmError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`CredentialSpec::from_env`] with an explicit variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ArmError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let need = |name: &str, why: &str| {
            var(name).ok_or_else(|| {
                ArmError::invalid_input(
                    "InvalidCredentials",
                    format!("{name} must be set for {why}"),
                )
            })
        };
        if let Some(token_file) = var("AZURE_FEDERATED_TOKEN_FILE") {
            let tenant_id = need("AZURE_TENANT_ID", "workload identity")?;
            validate_tenant(&tenant_id)?;
            return Ok(Self::WorkloadIdentity {
                tenant_id,
                client_id: need("AZURE_CLIENT_ID", "workload identity")?,
                token_file: PathBuf::from(token_file),
            });
        }
        if let Some(secret) = var("AZURE_CLIENT_SECRET") {
            let tenant_id = need("AZURE_TENANT_ID", "a client secret")?;
            validate_tenant(&tenant_id)?;
            return Ok(Self::ClientSecret {
                tenant_id,
                client_id: need("AZURE_CLIENT_ID", "a client secret")?,
                client_secret: Secret::new(secret),
            });
        }
        Ok(Self::ManagedIdentity {
            client_id: var("AZURE_CLIENT_ID"),
        })
    }

    /// Identifies the identity for caching: the same key means the same tokens. The
    /// secret enters only as a hash, so a rotated secret gets a new credential.
    pub fn identity_key(&self) -> String {
        match self {
            Self::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
            } => {
                let digest = Sha256::digest(client_secret.secret().as_bytes());
                format!(
                    "secret/{tenant_id}/{client_id}/{}",
                    hex::encode(&digest[..16])
                )
            }
            Self::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => format!("workload/{tenant_id}/{client_id}/{}", token_file.display()),
            Self::ManagedIdentity { client_id } => {
                format!("managed/{}", client_id.as_deref().unwrap_or("system"))
            }
        }
    }
}

/// A tenant id goes into the token URL path, so it must be a plain name or GUID.
fn validate_tenant(tenant_id: &str) -> Result<(), ArmError> {
    if tenant_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        Ok(())
    } else {
        Err(ArmError::invalid_input(
            "InvalidCredentials",
            "tenant id may contain only letters, digits, '-' and '.'",
        ))
    }
}

/// One credential per identity, shared by every client that uses that identity, so an
/// access token is fetched once and reused until shortly before it expires (azure_identity
/// refreshes 5 minutes before expiry).
pub struct CredentialCache {
    cloud: CloudConfig,
    http: reqwest::Client,
    credentials: Mutex<HashMap<String, Arc<dyn TokenCredential>>>,
}

impl fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.credentials.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("CredentialCache")
            .field("authority_host", &self.cloud.authority_host.as_str())
            .field("identities", &count)
            .finish()
    }
}

impl CredentialCache {
    /// Token requests go to `options.cloud.authority_host` (managed identities: to
    /// `options.cloud.managed_identity`) through a client trusting `options.cloud.ca_file`.
    pub fn new(options: &ArmOptions) -> Result<Self, ArmError> {
        Ok(Self {
            cloud: options.cloud.clone(),
            http: crate::transport::http_client(options)?,
            credentials: Mutex::default(),
        })
    }

    /// The shared credential of this identity, created on first use.
    pub fn get(&self, spec: &CredentialSpec) -> Result<Arc<dyn TokenCredential>, ArmError> {
        let key = spec.identity_key();
        let mut credentials = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(credential) = credentials.get(&key) {
            return Ok(credential.clone());
        }
        let credential = self.build(spec)?;
        credentials.insert(key, credential.clone());
        Ok(credential)
    }

    /// Forgets an identity (e.g. its Secret was deleted).
    pub fn remove(&self, spec: &CredentialSpec) {
        let mut credentials = self.credentials.lock().unwrap_or_else(|e| e.into_inner());
        credentials.remove(&spec.identity_key());
    }

    fn client_options(&self) -> ClientOptions {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = self
            .cloud
            .authority_host
            .as_str()
            .trim_end_matches('/')
            .to_string();
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::from(custom))),
            ..Default::default()
        }
    }

    fn build(&self, spec: &CredentialSpec) -> Result<Arc<dyn TokenCredential>, ArmError> {
        let credential: Arc<dyn TokenCredential> = match spec {
            CredentialSpec::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
            } => ClientSecretCredential::new(
                tenant_id,
                client_id.clone(),
                client_secret.clone(),
                Some(ClientSecretCredentialOptions {
                    client_options: self.client_options(),
                }),
            )
            .map_err(|e| ArmError::from_credential(&e))?,
            CredentialSpec::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => {
                let options = WorkloadIdentityCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions {
                        client_options: self.client_options(),
                    },
                    client_id: Some(client_id.clone()),
                    tenant_id: Some(tenant_id.clone()),
                    token_file_path: Some(token_file.clone()),
                };
                WorkloadIdentityCredential::new(Some(options))
                    .map_err(|e| ArmError::from_credential(&e))?
            }
            CredentialSpec::ManagedIdentity { client_id } => {
                Arc::new(ManagedIdentityCredential::new(
                    self.http.clone(),
                    self.cloud.managed_identity.clone(),
                    client_id.clone(),
                ))
            }
        };
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-value-never-printed";

    fn secret_data(secret: &str) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("tenantId", b"tenant-1".to_vec()),
            ("clientId", b"client-1".to_vec()),
            ("clientSecret", secret.as_bytes().to_vec()),
            ("subscriptionId", b"sub-1\n".to_vec()),
        ]
    }

    #[test]
    fn parses_secret_data_and_never_shows_the_secret() {
        let parsed = CredentialSpec::from_secret_data(secret_data(SECRET)).unwrap();
        assert_eq!(parsed.subscription_id.as_deref(), Some("sub-1"));
        let debug = format!("{parsed:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(!parsed.spec.identity_key().contains(SECRET));
    }

    #[test]
    fn missing_keys_are_named_without_values() {
        let mut data = secret_data(SECRET);
        data.retain(|(k, _)| *k != "clientId");
        let err = CredentialSpec::from_secret_data(data).unwrap_err();
        assert!(err.message.contains("clientId"), "{err}");
        assert!(!err.message.contains(SECRET));
        let mut data = secret_data("  ");
        data.retain(|(k, _)| *k != "subscriptionId");
        let err = CredentialSpec::from_secret_data(data).unwrap_err();
        assert!(err.message.contains("clientSecret"), "{err}");
    }

    #[test]
    fn identity_key_changes_with_rotated_secret() {
        let a = CredentialSpec::from_secret_data(secret_data("one")).unwrap();
        let b = CredentialSpec::from_secret_data(secret_data("two")).unwrap();
        let a2 = CredentialSpec::from_secret_data(secret_data("one")).unwrap();
        assert_ne!(a.spec.identity_key(), b.spec.identity_key());
        assert_eq!(a.spec.identity_key(), a2.spec.identity_key());
    }

    #[test]
    fn cache_shares_one_credential_per_identity() {
        let cache = CredentialCache::new(&ArmOptions::default()).unwrap();
        let spec = |secret: &str| {
            CredentialSpec::from_secret_data(secret_data(secret))
                .unwrap()
                .spec
        };
        let a = cache.get(&spec("one")).unwrap();
        assert!(Arc::ptr_eq(&a, &cache.get(&spec("one")).unwrap()));
        assert!(!Arc::ptr_eq(&a, &cache.get(&spec("two")).unwrap()));
        cache.remove(&spec("one"));
        assert!(!Arc::ptr_eq(&a, &cache.get(&spec("one")).unwrap()));
        // Managed identity needs no network to be built (the token comes on first use).
        let managed = CredentialSpec::ManagedIdentity { client_id: None };
        assert!(cache.get(&managed).is_ok());
    }

    #[test]
    fn env_precedence_workload_then_secret_then_managed() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let spec = CredentialSpec::from_lookup(env(&[
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ("AZURE_CLIENT_SECRET", "x"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
        ]))
        .unwrap();
        assert!(matches!(spec, CredentialSpec::WorkloadIdentity { .. }));
        let spec = CredentialSpec::from_lookup(env(&[
            ("AZURE_CLIENT_SECRET", "x"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
        ]))
        .unwrap();
        assert!(matches!(spec, CredentialSpec::ClientSecret { .. }));
        let spec = CredentialSpec::from_lookup(env(&[("AZURE_CLIENT_ID", "c")])).unwrap();
        assert!(matches!(
            spec,
            CredentialSpec::ManagedIdentity { client_id: Some(_) }
        ));
        let err = CredentialSpec::from_lookup(env(&[("AZURE_CLIENT_SECRET", "x")])).unwrap_err();
        assert!(err.message.contains("AZURE_TENANT_ID"));
        let err = CredentialSpec::from_lookup(env(&[
            ("AZURE_CLIENT_SECRET", "x"),
            ("AZURE_TENANT_ID", "../evil"),
            ("AZURE_CLIENT_ID", "c"),
        ]))
        .unwrap_err();
        assert_eq!(err.code, "InvalidCredentials");
    }
}
