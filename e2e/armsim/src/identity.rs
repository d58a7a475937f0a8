//! Managed identity token endpoints: the Azure Instance Metadata Service form
//! (`GET /metadata/identity/oauth2/token`, header `Metadata: true`) and the App
//! Service form (`GET /msi/token`, header `X-IDENTITY-HEADER`, reached through the
//! `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` environment variables). Both answer with a
//! token the simulator's ARM side accepts.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::config::ManagedIdentityConfig;

/// Which managed identity protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Imds,
    AppService,
}

/// A refused token request: status and the OAuth-style error body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IdentityError {
    pub status: u16,
    pub body: Value,
}

fn refused(status: u16, error: &str, description: impl Into<String>) -> IdentityError {
    IdentityError {
        status,
        body: json!({ "error": error, "error_description": description.into() }),
    }
}

/// What a valid request asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IdentityRequest {
    pub resource: String,
    pub client_id: String,
}

/// Checks a token request the way IMDS / App Service do: the protocol's header,
/// `api-version`, `resource`, and the identity asked for (`client_id`, if any,
/// must be the configured one). `query` keys are lower-cased; `header` looks up a
/// request header case-insensitively.
pub(crate) fn check_request(
    protocol: Protocol,
    config: &ManagedIdentityConfig,
    query: &HashMap<String, String>,
    header: impl Fn(&str) -> Option<String>,
) -> Result<IdentityRequest, IdentityError> {
    match protocol {
        Protocol::Imds => {
            if !header("metadata").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                return Err(refused(
                    400,
                    "invalid_request",
                    "Required metadata header not specified",
                ));
            }
        }
        Protocol::AppService => {
            if header("x-identity-header").as_deref() != Some(config.identity_header.as_str()) {
                return Err(refused(
                    401,
                    "unauthorized",
                    "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.",
                ));
            }
        }
    }
    let required = |name: &str| {
        query
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| {
                refused(
                    400,
                    "invalid_request",
                    format!("Required query variable '{name}' is missing"),
                )
            })
    };
    required("api-version")?;
    let resource = required("resource")?;
    let client_id = match query.get("client_id").or_else(|| query.get("clientid")) {
        Some(asked) if !asked.eq_ignore_ascii_case(&config.client_id) => {
            return Err(refused(400, "invalid_request", "Identity not found"));
        }
        _ => config.client_id.clone(),
    };
    Ok(IdentityRequest {
        resource,
        client_id,
    })
}

/// The success body; IMDS reports numbers as strings.
pub(crate) fn token_body(
    request: &IdentityRequest,
    access_token: &str,
    lifetime_secs: u64,
    now_unix: i64,
) -> Value {
    json!({
        "access_token": access_token,
        "client_id": request.client_id,
        "expires_in": lifetime_secs.to_string(),
        "ext_expires_in": lifetime_secs.to_string(),
        "expires_on": (now_unix + lifetime_secs as i64).to_string(),
        "not_before": now_unix.to_string(),
        "resource": request.resource,
        "token_type": "Bearer",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ARM: &[(&str, &str)] = &[
        ("api-version", "2018-02-01"),
        ("resource", "https://management.azure.com/"),
    ];

    #[test]
    fn imds_needs_the_metadata_header_version_and_resource() {
        let config = ManagedIdentityConfig::default();
        let metadata = |name: &str| (name == "metadata").then(|| "true".to_owned());
        let ok = check_request(Protocol::Imds, &config, &query(ARM), metadata).unwrap();
        assert_eq!(ok.client_id, config.client_id);
        assert_eq!(ok.resource, "https://management.azure.com/");

        let missing = check_request(Protocol::Imds, &config, &query(ARM), |_| None).unwrap_err();
        assert_eq!(missing.status, 400);
        assert_eq!(
            missing.body["error_description"],
            "Required metadata header not specified"
        );
        let no_resource =
            check_request(Protocol::Imds, &config, &query(&ARM[..1]), metadata).unwrap_err();
        assert!(
            no_resource.body["error_description"]
                .as_str()
                .unwrap()
                .contains("'resource'")
        );
        let mut other = ARM.to_vec();
        other.push(("client_id", "someone-else"));
        let unknown = check_request(Protocol::Imds, &config, &query(&other), metadata).unwrap_err();
        assert_eq!(unknown.body["error_description"], "Identity not found");
    }

    #[test]
    fn app_service_checks_the_identity_header() {
        let config = ManagedIdentityConfig::default();
        let right = config.identity_header.clone();
        let ok = check_request(Protocol::AppService, &config, &query(ARM), |name| {
            (name == "x-identity-header").then(|| right.clone())
        });
        assert!(ok.is_ok());
        let wrong = check_request(Protocol::AppService, &config, &query(ARM), |_| {
            Some("guess".into())
        })
        .unwrap_err();
        assert_eq!(wrong.status, 401);
        assert!(!wrong.body.to_string().contains(&config.identity_header));
    }
}
