//! Endpoints, trust and limits of a client, from the environment or built explicitly.

use crate::error::ArmError;
use crate::managed_identity::ManagedIdentitySource;
use crate::throttle::ThrottleLimits;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

pub const DEFAULT_RESOURCE_MANAGER_ENDPOINT: &str = "https://management.azure.com";
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// Which cloud to talk to: ARM endpoint, Entra authority, extra trusted CAs and the host's
/// managed-identity endpoint. The same knobs serve sovereign clouds, TLS-intercepting
/// proxies and the simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudConfig {
    /// ARM base URL, https only.
    pub resource_manager_endpoint: Url,
    /// Entra authority host, https only.
    pub authority_host: Url,
    /// PEM bundle trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Where [`crate::CredentialSpec::ManagedIdentity`] gets its tokens.
    pub managed_identity: ManagedIdentitySource,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self {
            resource_manager_endpoint: Url::parse(DEFAULT_RESOURCE_MANAGER_ENDPOINT)
                .expect("valid constant URL"),
            authority_host: Url::parse(DEFAULT_AUTHORITY_HOST).expect("valid constant URL"),
            ca_file: None,
            managed_identity: ManagedIdentitySource::default(),
        }
    }
}

impl CloudConfig {
    /// Reads `AZURE_RESOURCE_MANAGER_ENDPOINT`, `AZURE_AUTHORITY_HOST`, `AZURE_CA_FILE` and
    /// the managed identity's variables (see [`ManagedIdentitySource::from_lookup`]).
    pub fn from_env() -> Result<Self, ArmError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`CloudConfig::from_env`] with an explicit variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ArmError> {
        let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Self::default();
        if let Some(endpoint) = non_empty("AZURE_RESOURCE_MANAGER_ENDPOINT") {
            config = config.with_resource_manager_endpoint(&endpoint)?;
        }
        if let Some(authority) = non_empty("AZURE_AUTHORITY_HOST") {
            config = config.with_authority_host(&authority)?;
        }
        config.ca_file = non_empty("AZURE_CA_FILE").map(PathBuf::from);
        config.managed_identity = ManagedIdentitySource::from_lookup(&lookup)?;
        Ok(config)
    }

    pub fn with_resource_manager_endpoint(mut self, endpoint: &str) -> Result<Self, ArmError> {
        self.resource_manager_endpoint = https_url("AZURE_RESOURCE_MANAGER_ENDPOINT", endpoint)?;
        Ok(self)
    }

    pub fn with_authority_host(mut self, authority: &str) -> Result<Self, ArmError> {
        self.authority_host = https_url("AZURE_AUTHORITY_HOST", authority)?;
        Ok(self)
    }

    pub fn with_ca_file(mut self, ca_file: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(ca_file.into());
        self
    }

    pub fn with_managed_identity(mut self, source: ManagedIdentitySource) -> Self {
        self.managed_identity = source;
        self
    }

    /// The token scope for ARM in this cloud: `{endpoint}/.default`.
    pub fn arm_scope(&self) -> String {
        format!(
            "{}/.default",
            self.resource_manager_endpoint
                .as_str()
                .trim_end_matches('/')
        )
    }
}

/// Bearer tokens must never travel in clear text, so both endpoints must be https.
fn https_url(what: &str, value: &str) -> Result<Url, ArmError> {
    let url = Url::parse(value.trim()).map_err(|e| {
        ArmError::invalid_input("InvalidEndpoint", format!("{what} is not a URL: {e}"))
    })?;
    if url.scheme() != "https" {
        return Err(ArmError::invalid_input(
            "InvalidEndpoint",
            format!("{what} must use https, got scheme {:?}", url.scheme()),
        ));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(ArmError::invalid_input(
            "InvalidEndpoint",
            format!("{what} must be a base URL with a host and no query"),
        ));
    }
    Ok(url)
}

/// Everything an [`crate::ArmClient`] needs besides its credential.
#[derive(Clone, Debug)]
pub struct ArmOptions {
    pub cloud: CloudConfig,
    /// Client-side buckets per subscription.
    pub limits: ThrottleLimits,
    /// How often a single request is retried inside the client on 408/429/5xx/connection
    /// errors before the error is returned to the caller.
    pub max_retries: u32,
    /// Longest wait the client does itself between retries; a longer `Retry-After` is
    /// returned to the caller (in the error) instead of blocking.
    pub max_retry_wait: Duration,
    /// Backoff base for retries without `Retry-After` (doubles per attempt).
    pub retry_backoff: Duration,
    /// Poll interval of a long-running operation when ARM sends no `Retry-After`.
    pub default_poll_interval: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Appended to the User-Agent header.
    pub user_agent: String,
}

impl Default for ArmOptions {
    fn default() -> Self {
        Self {
            cloud: CloudConfig::default(),
            limits: ThrottleLimits::default(),
            max_retries: 3,
            max_retry_wait: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(500),
            default_poll_interval: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            user_agent: concat!("azure-driver-arm/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl ArmOptions {
    /// Defaults with the cloud read from the environment.
    pub fn from_env() -> Result<Self, ArmError> {
        Ok(Self {
            cloud: CloudConfig::from_env()?,
            ..Self::default()
        })
    }

    pub fn with_cloud(mut self, cloud: CloudConfig) -> Self {
        self.cloud = cloud;
        self
    }

    pub fn with_limits(mut self, limits: ThrottleLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    pub fn with_max_retry_wait(mut self, max_retry_wait: Duration) -> Self {
        self.max_retry_wait = max_retry_wait;
        self
    }

    pub fn with_retry_backoff(mut self, retry_backoff: Duration) -> Self {
        self.retry_backoff = retry_backoff;
        self
    }

    pub fn with_default_poll_interval(mut self, interval: Duration) -> Self {
        self.default_poll_interval = interval;
        self
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_without_env() {
        let config = CloudConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(config, CloudConfig::default());
        assert_eq!(config.arm_scope(), "https://management.azure.com/.default");
    }

    #[test]
    fn overrides_from_env() {
        let config = CloudConfig::from_lookup(lookup(&[
            ("AZURE_RESOURCE_MANAGER_ENDPOINT", "https://127.0.0.1:8443/"),
            ("AZURE_AUTHORITY_HOST", "https://127.0.0.1:8443"),
            ("AZURE_CA_FILE", "/tmp/ca.pem"),
        ]))
        .unwrap();
        assert_eq!(
            config.resource_manager_endpoint.as_str(),
            "https://127.0.0.1:8443/"
        );
        assert_eq!(config.arm_scope(), "https://127.0.0.1:8443/.default");
        assert_eq!(config.ca_file, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(config.managed_identity, ManagedIdentitySource::default());

        let app_service = CloudConfig::from_lookup(lookup(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", "header"),
        ]))
        .unwrap();
        assert!(matches!(
            app_service.managed_identity,
            ManagedIdentitySource::AppService { .. }
        ));
        let err = CloudConfig::from_lookup(lookup(&[
            ("IDENTITY_ENDPOINT", "127.0.0.1:41741"),
            ("IDENTITY_HEADER", "header"),
        ]))
        .unwrap_err();
        assert_eq!(err.code, "InvalidEndpoint");
    }

    #[test]
    fn rejects_plain_http_and_garbage() {
        for bad in ["http://127.0.0.1:80", "not a url", "https://h/?a=b"] {
            let err =
                CloudConfig::from_lookup(lookup(&[("AZURE_AUTHORITY_HOST", bad)])).unwrap_err();
            assert_eq!(err.code, "InvalidEndpoint", "{bad}");
            assert!(!err.is_retryable());
        }
    }
}
