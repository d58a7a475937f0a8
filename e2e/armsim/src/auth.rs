//! Entra token issuance (client secret and client assertion) and the bearer check
//! ARM applies to every call.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::{Value, json};

use crate::config::Credential;
use crate::error::ArmError;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Who a token was issued to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenInfo {
    pub tenant: String,
    pub client_id: String,
    pub expires: Instant,
}

/// A refused token request, in Entra's shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenError {
    pub status: u16,
    pub error: &'static str,
    pub aadsts: u32,
    pub description: String,
}

impl TokenError {
    fn new(status: u16, error: &'static str, aadsts: u32, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            aadsts,
            description: description.into(),
        }
    }

    pub fn body(&self) -> Value {
        let trace_id = uuid::Uuid::new_v4();
        let correlation_id = uuid::Uuid::new_v4();
        let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ");
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.aadsts, self.description
            ),
            "error_codes": [self.aadsts],
            "timestamp": timestamp.to_string(),
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.aadsts),
        })
    }
}

/// Decides whether a form-encoded token request gets a token, for `tenant`.
/// An empty credential list accepts any client.
pub(crate) fn check_token_request(
    tenant: &str,
    form: &HashMap<String, String>,
    credentials: &[Credential],
) -> Result<String, TokenError> {
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let missing = |name: &str| {
        TokenError::new(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    };
    match field("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(TokenError::new(
                400,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            ));
        }
        None => return Err(missing("grant_type")),
    }
    let client_id = field("client_id").ok_or_else(|| missing("client_id"))?;
    field("scope").ok_or_else(|| missing("scope"))?;
    let secret = field("client_secret");
    let assertion = match (field("client_assertion"), field("client_assertion_type")) {
        (Some(assertion), Some(JWT_BEARER)) => Some(assertion),
        (Some(_), _) => {
            return Err(TokenError::new(
                400,
                "invalid_request",
                50027,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            ));
        }
        (None, _) => None,
    };
    if let Some(assertion) = assertion
        && assertion.split('.').count() != 3
    {
        return Err(TokenError::new(
            400,
            "invalid_request",
            50027,
            "JWT token is invalid or is malformed.",
        ));
    }
    if secret.is_none() && assertion.is_none() {
        return Err(TokenError::new(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    check_credentials(tenant, client_id, secret, assertion, credentials)
}

/// Whether `client_id` proves itself with `secret` or `assertion` against the
/// configured credentials (any client when there are none).
fn check_credentials(
    tenant: &str,
    client_id: &str,
    secret: Option<&str>,
    assertion: Option<&str>,
    credentials: &[Credential],
) -> Result<String, TokenError> {
    if credentials.is_empty() {
        return Ok(client_id.to_owned());
    }
    let known = credentials.iter().find(|c| {
        c.client_id.eq_ignore_ascii_case(client_id)
            && c.tenant_id
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case(tenant))
    });
    let Some(credential) = known else {
        return Err(TokenError::new(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
            ),
        ));
    };
    let accepted = match (secret, assertion) {
        (Some(secret), _) => credential.client_secret.as_deref() == Some(secret),
        (None, Some(_)) => credential.allow_assertion,
        (None, None) => false,
    };
    if accepted {
        Ok(client_id.to_owned())
    } else if secret.is_some() {
        Err(TokenError::new(
            401,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ))
    } else {
        Err(TokenError::new(
            401,
            "invalid_client",
            700213,
            "No matching federated identity record found for presented assertion.",
        ))
    }
}

/// Issued tokens, checked on every ARM call.
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    tokens: HashMap<String, TokenInfo>,
}

impl TokenStore {
    /// Issues a JWT-shaped token (opaque to clients, as Entra's are meant to be).
    pub fn issue(&mut self, tenant: &str, client_id: &str, lifetime: Duration) -> String {
        let now = Utc::now().timestamp();
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256","kid":"armsim"}"#);
        let payload = URL_SAFE_NO_PAD.encode(
            json!({
                "aud": "https://management.azure.com/",
                "iss": format!("https://sts.windows.net/{tenant}/"),
                "iat": now,
                "nbf": now,
                "exp": now + lifetime.as_secs() as i64,
                "appid": client_id,
                "tid": tenant,
                "jti": uuid::Uuid::new_v4(),
            })
            .to_string(),
        );
        let signature = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
        let token = format!("{header}.{payload}.{signature}");
        self.tokens.insert(
            token.clone(),
            TokenInfo {
                tenant: tenant.to_owned(),
                client_id: client_id.to_owned(),
                expires: Instant::now() + lifetime,
            },
        );
        token
    }

    /// ARM's check of the `Authorization` header.
    pub fn check(&self, authorization: Option<&str>, now: Instant) -> Result<TokenInfo, ArmError> {
        let Some(authorization) = authorization else {
            return Err(ArmError::new(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            ));
        };
        let Some(token) = authorization
            .strip_prefix("Bearer ")
            .or_else(|| authorization.strip_prefix("bearer "))
        else {
            return Err(ArmError::new(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            ));
        };
        let Some(info) = self.tokens.get(token.trim()) else {
            return Err(ArmError::new(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
            ));
        };
        if info.expires <= now {
            return Err(ArmError::new(
                401,
                "ExpiredAuthenticationToken",
                "The access token has expired. Request a new token.",
            ));
        }
        Ok(info.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn secret_form(secret: &str) -> HashMap<String, String> {
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", secret),
            ("scope", "https://management.azure.com/.default"),
        ])
    }

    fn credentials() -> Vec<Credential> {
        vec![Credential {
            tenant_id: None,
            client_id: "app".into(),
            client_secret: Some("s3cret".into()),
            allow_assertion: false,
        }]
    }

    #[test]
    fn open_mode_accepts_any_client_and_list_checks_secret() {
        assert_eq!(
            check_token_request("t", &secret_form("x"), &[]),
            Ok("app".into())
        );
        assert!(check_token_request("t", &secret_form("s3cret"), &credentials()).is_ok());
        let wrong = check_token_request("t", &secret_form("nope"), &credentials()).unwrap_err();
        assert_eq!(
            (wrong.status, wrong.error, wrong.aadsts),
            (401, "invalid_client", 7000215)
        );
        assert!(!wrong.body().to_string().contains("nope"));
    }

    #[test]
    fn assertion_form_is_checked() {
        let assertion = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_assertion", "a.b.c"),
            ("client_assertion_type", JWT_BEARER),
            ("scope", "x/.default"),
        ]);
        assert!(check_token_request("t", &assertion, &[]).is_ok());
        let refused = check_token_request("t", &assertion, &credentials()).unwrap_err();
        assert_eq!(refused.aadsts, 700213);
        let mut malformed = assertion.clone();
        malformed.insert("client_assertion".into(), "garbage".into());
        assert_eq!(
            check_token_request("t", &malformed, &[])
                .unwrap_err()
                .aadsts,
            50027
        );
    }

    #[test]
    fn missing_fields_and_unknown_clients() {
        let mut no_scope = secret_form("x");
        no_scope.remove("scope");
        assert_eq!(
            check_token_request("t", &no_scope, &[]).unwrap_err().aadsts,
            900144
        );
        let mut other = secret_form("x");
        other.insert("client_id".into(), "other".into());
        assert_eq!(
            check_token_request("t", &other, &credentials())
                .unwrap_err()
                .aadsts,
            700016
        );
    }

    #[test]
    fn bearer_check_rejects_missing_unknown_and_expired_tokens() {
        let mut store = TokenStore::default();
        let token = store.issue("t", "app", Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(
            store
                .check(Some(&format!("Bearer {token}")), now)
                .unwrap()
                .tenant,
            "t"
        );
        assert_eq!(
            store.check(None, now).unwrap_err().code,
            "AuthenticationFailed"
        );
        assert_eq!(
            store.check(Some("Basic x"), now).unwrap_err().code,
            "AuthenticationFailed"
        );
        assert_eq!(
            store.check(Some("Bearer forged"), now).unwrap_err().code,
            "InvalidAuthenticationToken"
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(
            store
                .check(Some(&format!("Bearer {token}")), later)
                .unwrap_err()
                .code,
            "ExpiredAuthenticationToken"
        );
    }
}
