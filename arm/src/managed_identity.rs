//! The host's managed identity: which token endpoint it has, and a credential asking it.
//!
//! azure_identity 1.0's `ManagedIdentityCredential` reads `IDENTITY_ENDPOINT` and
//! `IDENTITY_HEADER` from the process environment only and always sends IMDS requests to
//! the fixed `http://169.254.169.254` (it ignores `AZURE_POD_IDENTITY_AUTHORITY_HOST`,
//! which the other Azure SDKs honour), so it can be neither configured from code nor
//! pointed at a simulator. The two protocols are one GET each; this speaks them with the
//! endpoint from [`crate::CloudConfig`] and the client's own transport (`AZURE_CA_FILE`).

use crate::error::{ArmError, error_chain};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use azure_core::time::{Duration, OffsetDateTime};
use serde::Deserialize;
use std::collections::HashMap;
use url::Url;

pub const DEFAULT_IMDS_AUTHORITY: &str = "http://169.254.169.254";
const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
/// A cached token is replaced this long before it expires (as azure_identity does).
const REFRESH_MARGIN: Duration = Duration::minutes(5);

/// Where the host's managed identity gets its tokens, decided from the environment
/// variables the Azure SDKs use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagedIdentitySource {
    /// Azure Instance Metadata Service (VMs, scale sets, AKS nodes): `GET token_url` with
    /// `Metadata: true`.
    Imds { token_url: Url },
    /// App Service, Functions, Container Apps: `GET endpoint` with `X-IDENTITY-HEADER`.
    AppService {
        endpoint: Url,
        identity_header: Secret,
    },
    /// A host whose managed-identity protocol this client does not speak. Only a token
    /// request fails, so other identities keep working on such a host.
    Unsupported { reason: &'static str },
}

impl Default for ManagedIdentitySource {
    fn default() -> Self {
        Self::Imds {
            token_url: imds_token_url(DEFAULT_IMDS_AUTHORITY).expect("valid constant URL"),
        }
    }
}

impl ManagedIdentitySource {
    /// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` select App Service; otherwise IMDS at
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` (default `http://169.254.169.254`). The markers
    /// of Service Fabric, Azure Arc, Cloud Shell and Azure ML select `Unsupported`, the
    /// same detection order as azure_identity.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ArmError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(endpoint) = var("IDENTITY_ENDPOINT") {
            return Ok(match var("IDENTITY_HEADER") {
                Some(_) if var("IDENTITY_SERVER_THUMBPRINT").is_some() => Self::Unsupported {
                    reason: "Service Fabric managed identity (IDENTITY_SERVER_THUMBPRINT) is not supported",
                },
                Some(header) => Self::AppService {
                    endpoint: identity_url("IDENTITY_ENDPOINT", &endpoint)?,
                    identity_header: Secret::new(header.trim().to_string()),
                },
                None if var("IMDS_ENDPOINT").is_some() => Self::Unsupported {
                    reason: "Azure Arc managed identity (IDENTITY_ENDPOINT with IMDS_ENDPOINT) is not supported",
                },
                None => Self::Unsupported {
                    reason: "IDENTITY_ENDPOINT is set without IDENTITY_HEADER; the App Service managed identity needs both",
                },
            });
        }
        if var("MSI_ENDPOINT").is_some() {
            return Ok(Self::Unsupported {
                reason: "Cloud Shell and Azure ML managed identity (MSI_ENDPOINT) are not supported",
            });
        }
        match var("AZURE_POD_IDENTITY_AUTHORITY_HOST") {
            Some(authority) => Ok(Self::Imds {
                token_url: imds_token_url(&authority)?,
            }),
            None => Ok(Self::default()),
        }
    }

    /// The endpoint's scheme, host and port: enough to say where a failed request went.
    fn origin(&self) -> String {
        match self {
            Self::Imds { token_url } => token_url.origin().ascii_serialization(),
            Self::AppService { endpoint, .. } => endpoint.origin().ascii_serialization(),
            Self::Unsupported { .. } => String::new(),
        }
    }

    fn protocol(&self) -> &'static str {
        match self {
            Self::Imds { .. } => "IMDS",
            Self::AppService { .. } => "App Service",
            Self::Unsupported { .. } => "unsupported",
        }
    }
}

/// The IMDS token URL under an authority, keeping any path prefix of the authority (as
/// the other SDKs append the path rather than replace it).
fn imds_token_url(authority: &str) -> Result<Url, ArmError> {
    let base = identity_url("AZURE_POD_IDENTITY_AUTHORITY_HOST", authority)?;
    let joined = format!("{}{IMDS_TOKEN_PATH}", base.as_str().trim_end_matches('/'));
    identity_url("AZURE_POD_IDENTITY_AUTHORITY_HOST", &joined)
}

/// Managed-identity endpoints are host-local and plain http on Azure (IMDS is link-local,
/// App Service listens on localhost), so http is accepted here, unlike for ARM and Entra.
fn identity_url(what: &str, value: &str) -> Result<Url, ArmError> {
    let url = Url::parse(value.trim()).map_err(|e| {
        ArmError::invalid_input("InvalidEndpoint", format!("{what} is not a URL: {e}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ArmError::invalid_input(
            "InvalidEndpoint",
            format!(
                "{what} must use http or https, got scheme {:?}",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(ArmError::invalid_input(
            "InvalidEndpoint",
            format!("{what} must be a URL with a host and no query"),
        ));
    }
    Ok(url)
}

/// Asks the host's managed identity endpoint for tokens and keeps them until shortly
/// before they expire.
pub(crate) struct ManagedIdentityCredential {
    http: reqwest::Client,
    source: ManagedIdentitySource,
    client_id: Option<String>,
    tokens: tokio::sync::Mutex<HashMap<String, AccessToken>>,
}

impl std::fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityCredential")
            .field("protocol", &self.source.protocol())
            .field("origin", &self.source.origin())
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl ManagedIdentityCredential {
    /// `client_id` selects a user-assigned identity; `None` is the system-assigned one.
    pub(crate) fn new(
        http: reqwest::Client,
        source: ManagedIdentitySource,
        client_id: Option<String>,
    ) -> Self {
        Self {
            http,
            source,
            client_id,
            tokens: tokio::sync::Mutex::default(),
        }
    }

    async fn fetch(&self, resource: &str) -> azure_core::Result<AccessToken> {
        let (url, header, value) = match &self.source {
            ManagedIdentitySource::Imds { token_url } => (
                token_request_url(token_url, IMDS_API_VERSION, resource, &self.client_id),
                "metadata",
                reqwest::header::HeaderValue::from_static("true"),
            ),
            ManagedIdentitySource::AppService {
                endpoint,
                identity_header,
            } => {
                let mut value = reqwest::header::HeaderValue::from_str(identity_header.secret())
                    .map_err(|_| {
                        credential_error("IDENTITY_HEADER is not a valid HTTP header value")
                    })?;
                value.set_sensitive(true);
                (
                    token_request_url(endpoint, APP_SERVICE_API_VERSION, resource, &self.client_id),
                    "x-identity-header",
                    value,
                )
            }
            ManagedIdentitySource::Unsupported { reason } => {
                return Err(credential_error(*reason));
            }
        };
        let protocol = self.source.protocol();
        let origin = self.source.origin();
        tracing::debug!(protocol, origin, "requesting a managed identity token");
        let response = self
            .http
            .get(url)
            .header(header, value)
            .send()
            .await
            .map_err(|e| {
                azure_core::Error::with_message(
                    ErrorKind::Connection,
                    format!(
                        "managed identity endpoint {origin} ({protocol}) could not be reached: {}",
                        error_chain(&e.without_url())
                    ),
                )
            })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| {
            azure_core::Error::with_message(
                ErrorKind::Connection,
                format!(
                    "managed identity endpoint {origin} ({protocol}) answer was cut off: {}",
                    error_chain(&e.without_url())
                ),
            )
        })?;
        if !(200..300).contains(&status) {
            let (code, message) = refusal(status, &body);
            return Err(azure_core::Error::with_message(
                ErrorKind::HttpResponse {
                    status: StatusCode::from(status),
                    error_code: Some(code),
                    raw_response: None,
                },
                format!(
                    "managed identity endpoint {origin} ({protocol}) refused the token request (HTTP {status}): {message}"
                ),
            ));
        }
        parse_token(&body, OffsetDateTime::now_utc()).map_err(|why| {
            azure_core::Error::with_message(
                ErrorKind::DataConversion,
                format!("managed identity endpoint {origin} ({protocol}) answered {why}"),
            )
        })
    }
}

#[async_trait::async_trait]
impl TokenCredential for ManagedIdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(credential_error(
                "a managed identity token is requested for exactly one scope",
            ));
        };
        // Held across the request: concurrent callers wait for one fetch instead of each
        // asking the endpoint.
        let mut tokens = self.tokens.lock().await;
        if let Some(token) = tokens.get(*scope)
            && token.expires_on > OffsetDateTime::now_utc() + REFRESH_MARGIN
        {
            return Ok(token.clone());
        }
        let token = self.fetch(resource_of(scope)).await?;
        tokens.insert((*scope).to_string(), token.clone());
        Ok(token)
    }
}

fn credential_error(message: impl Into<String>) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::Credential, message.into())
}

/// The managed-identity protocols take a resource, not a scope.
fn resource_of(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

fn token_request_url(
    endpoint: &Url,
    api_version: &str,
    resource: &str,
    client_id: &Option<String>,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("api-version", api_version)
            .append_pair("resource", resource);
        if let Some(client_id) = client_id {
            query.append_pair("client_id", client_id);
        }
    }
    url
}

/// The error code and description of a refusal (`{"error", "error_description"}` from
/// IMDS and App Service). Other bodies are not echoed: they are not meant for people.
fn refusal(status: u16, body: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct Refusal {
        error: Option<String>,
        error_description: Option<String>,
    }
    let parsed = serde_json::from_slice::<Refusal>(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|r| r.error.clone())
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = match parsed {
        Some(Refusal {
            error_description: Some(description),
            ..
        }) => format!("{code}: {description}"),
        _ => format!("{code} without a description"),
    };
    (code, message)
}

/// Numbers come as JSON strings from IMDS and App Service, as numbers from some proxies.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(i64),
    Text(String),
}

impl Seconds {
    fn value(&self) -> Option<i64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) => text.trim().parse().ok(),
        }
    }
}

/// The token and its expiry: `expires_on` (unix seconds) or else `now + expires_in`.
fn parse_token(body: &[u8], now: OffsetDateTime) -> Result<AccessToken, &'static str> {
    #[derive(Deserialize)]
    struct TokenBody {
        access_token: Option<String>,
        expires_on: Option<Seconds>,
        expires_in: Option<Seconds>,
    }
    let parsed: TokenBody =
        serde_json::from_slice(body).map_err(|_| "a body that is not a token response")?;
    let token = parsed
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or("without an access_token")?;
    let expires_on = match (
        parsed.expires_on.as_ref().and_then(Seconds::value),
        parsed.expires_in.as_ref().and_then(Seconds::value),
    ) {
        (Some(at), _) => OffsetDateTime::from_unix_timestamp(at).ok(),
        (None, Some(seconds)) => Some(now + Duration::seconds(seconds)),
        (None, None) => None,
    }
    .ok_or("without a usable expires_on or expires_in")?;
    Ok(AccessToken::new(Secret::new(token), expires_on))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn imds_at_the_link_local_address_by_default() {
        let source = ManagedIdentitySource::from_lookup(lookup(&[])).unwrap();
        let ManagedIdentitySource::Imds { token_url } = source else {
            panic!("{source:?}")
        };
        assert_eq!(
            token_url.as_str(),
            "http://169.254.169.254/metadata/identity/oauth2/token"
        );
    }

    #[test]
    fn pod_identity_authority_moves_imds_keeping_a_path_prefix() {
        let source = ManagedIdentitySource::from_lookup(lookup(&[(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            "https://127.0.0.1:8443/proxy/",
        )]))
        .unwrap();
        assert_eq!(
            source,
            ManagedIdentitySource::Imds {
                token_url: Url::parse(
                    "https://127.0.0.1:8443/proxy/metadata/identity/oauth2/token"
                )
                .unwrap()
            }
        );
        let err = ManagedIdentitySource::from_lookup(lookup(&[(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            "ftp://h",
        )]))
        .unwrap_err();
        assert_eq!(err.code, "InvalidEndpoint");
    }

    #[test]
    fn app_service_needs_endpoint_and_header_and_hides_the_header() {
        let source = ManagedIdentitySource::from_lookup(lookup(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", "header-value-never-printed"),
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://ignored"),
        ]))
        .unwrap();
        assert!(matches!(source, ManagedIdentitySource::AppService { .. }));
        assert!(!format!("{source:?}").contains("header-value-never-printed"));

        let without_header = ManagedIdentitySource::from_lookup(lookup(&[(
            "IDENTITY_ENDPOINT",
            "http://127.0.0.1:41741/msi/token",
        )]))
        .unwrap();
        assert!(
            matches!(without_header, ManagedIdentitySource::Unsupported { reason } if reason.contains("IDENTITY_HEADER"))
        );
        let bad = ManagedIdentitySource::from_lookup(lookup(&[
            ("IDENTITY_ENDPOINT", "not a url"),
            ("IDENTITY_HEADER", "h"),
        ]))
        .unwrap_err();
        assert_eq!(bad.code, "InvalidEndpoint");
    }

    #[test]
    fn other_hosts_are_named_as_unsupported() {
        for (vars, host) in [
            (
                &[
                    (
                        "IDENTITY_ENDPOINT",
                        "https://localhost:2377/metadata/identity/oauth2/token",
                    ),
                    ("IDENTITY_HEADER", "h"),
                    ("IDENTITY_SERVER_THUMBPRINT", "ab"),
                ][..],
                "Service Fabric",
            ),
            (
                &[
                    (
                        "IDENTITY_ENDPOINT",
                        "http://localhost:40342/metadata/identity/oauth2/token",
                    ),
                    ("IMDS_ENDPOINT", "http://localhost:40342"),
                ][..],
                "Azure Arc",
            ),
            (
                &[("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")][..],
                "Cloud Shell",
            ),
        ] {
            let vars: HashMap<&str, &str> = vars.iter().copied().collect();
            let source =
                ManagedIdentitySource::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
                    .unwrap();
            assert!(
                matches!(source, ManagedIdentitySource::Unsupported { reason } if reason.contains(host)),
                "{host}: {source:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unsupported_host_fails_only_when_a_token_is_asked_for() {
        let http = crate::transport::http_client(&crate::ArmOptions::default()).unwrap();
        let source = ManagedIdentitySource::Unsupported {
            reason: "Azure Arc managed identity is not supported",
        };
        let credential = ManagedIdentityCredential::new(http, source, None);
        let err = credential
            .get_token(&["https://management.azure.com/.default"], None)
            .await
            .unwrap_err();
        let err = ArmError::from_credential(&err);
        assert!(err.message.contains("Azure Arc"), "{err}");
        assert_eq!(err.status, None);
    }

    #[test]
    fn request_url_carries_version_resource_and_user_assigned_id() {
        let endpoint = Url::parse("http://169.254.169.254/metadata/identity/oauth2/token").unwrap();
        let system = token_request_url(
            &endpoint,
            IMDS_API_VERSION,
            resource_of("https://management.azure.com/.default"),
            &None,
        );
        assert_eq!(
            system.query(),
            Some("api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com")
        );
        let user = token_request_url(&endpoint, "v", "r", &Some("c-1".into()));
        assert_eq!(user.query(), Some("api-version=v&resource=r&client_id=c-1"));
    }

    #[test]
    fn token_expiry_from_strings_numbers_or_lifetime() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let token = parse_token(br#"{"access_token":"t","expires_on":"4600"}"#, now).unwrap();
        assert_eq!(token.expires_on.unix_timestamp(), 4600);
        assert_eq!(token.token.secret(), "t");
        let token = parse_token(br#"{"access_token":"t","expires_on":4600}"#, now).unwrap();
        assert_eq!(token.expires_on.unix_timestamp(), 4600);
        let token = parse_token(br#"{"access_token":"t","expires_in":"60"}"#, now).unwrap();
        assert_eq!(token.expires_on.unix_timestamp(), 1060);
        assert!(parse_token(br#"{"access_token":"t"}"#, now).is_err());
        assert!(parse_token(br#"{"expires_in":60}"#, now).is_err());
        assert!(parse_token(b"<html>", now).is_err());
    }

    #[test]
    fn refusals_keep_code_and_description_only() {
        let (code, message) = refusal(
            400,
            br#"{"error":"invalid_request","error_description":"Identity not found"}"#,
        );
        assert_eq!(code, "invalid_request");
        assert_eq!(message, "invalid_request: Identity not found");
        let (code, message) = refusal(502, b"<html>proxy page</html>");
        assert_eq!(code, "HTTP502");
        assert!(!message.contains("proxy page"));
    }
}
