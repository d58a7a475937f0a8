//! Reads what an object refers to: credentials, the template, `parametersFrom` values.
//! Secret values are kept in memory only and never logged.

use crds::{AzureResource, AzureResourceSpec, ParameterSource, TemplateSource};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use serde_json::Value;

use crate::azure::{ClientSecretCredentials, Credentials};
use crate::bicep_compiler::BicepCompiler;
use crate::build::{ResolvedInputs, parameter_value};
use crate::error::{Error, Result};
use crate::secret_cache::SecretCache;

/// The namespace Secret used when an object names no credentials.
pub const DEFAULT_CREDENTIALS_SECRET: &str = "azure-credentials";

/// Kind of a referenced object, for the watches that map changes back to objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputKind {
    Secret,
    ConfigMap,
}

/// The Secrets and ConfigMaps (by name, same namespace) whose change must reconcile the
/// object. Includes the default credentials Secret when no credentials are named.
pub fn referenced_inputs(spec: &AzureResourceSpec) -> Vec<(InputKind, String)> {
    let mut refs = Vec::new();
    refs.push((
        InputKind::Secret,
        spec.credentials_secret_ref
            .as_ref()
            .map_or(DEFAULT_CREDENTIALS_SECRET.to_owned(), |r| r.name.clone()),
    ));
    if let Some(TemplateSource::ConfigMapKeyRef(r)) = &spec.template {
        refs.push((InputKind::ConfigMap, r.name.clone()));
    }
    for p in &spec.parameters_from {
        refs.push(match &p.source {
            ParameterSource::SecretKeyRef(k) => (InputKind::Secret, k.name.clone()),
            ParameterSource::ConfigMapKeyRef(k) => (InputKind::ConfigMap, k.name.clone()),
        });
    }
    refs.sort();
    refs.dedup();
    refs
}

/// Names of the parameters read from Secrets: their values are secure.
pub fn secret_parameters(spec: &AzureResourceSpec) -> Vec<&str> {
    spec.parameters_from
        .iter()
        .filter(|p| matches!(p.source, ParameterSource::SecretKeyRef(_)))
        .map(|p| p.name.as_str())
        .collect()
}

/// Credentials and the subscription they name, per DESIGN.md's order.
pub async fn credentials(
    client: &Client,
    secrets: &SecretCache,
    namespace: &str,
    spec: &AzureResourceSpec,
    operator_subscription_id: Option<&str>,
) -> Result<(Credentials, Option<String>)> {
    let (name, explicit) = match &spec.credentials_secret_ref {
        Some(r) => (r.name.as_str(), true),
        None => (DEFAULT_CREDENTIALS_SECRET, false),
    };
    let Some(data) = secrets.data(client, namespace, name).await? else {
        if explicit {
            return Err(Error::CredentialsMissing(format!(
                "Secret {name:?} (credentialsSecretRef) does not exist"
            )));
        }
        return Ok((
            Credentials::Operator,
            operator_subscription_id.map(str::to_owned),
        ));
    };
    let key = |k: &str| {
        data.get(k)
            .cloned()
            .ok_or_else(|| Error::CredentialsMissing(format!("Secret {name:?} has no key {k:?}")))
    };
    let credentials = Credentials::ClientSecret(ClientSecretCredentials {
        tenant_id: key("tenantId")?,
        client_id: key("clientId")?,
        client_secret: key("clientSecret")?,
    });
    Ok((credentials, data.get("subscriptionId").cloned()))
}

/// Resolves the template and `parametersFrom`.
pub async fn inputs(
    client: &Client,
    secrets: &SecretCache,
    compiler: &BicepCompiler,
    object: &AzureResource,
    namespace: &str,
    credential_subscription_id: Option<String>,
) -> Result<ResolvedInputs> {
    let spec = &object.spec;
    let source = spec.template.as_ref().ok_or_else(|| {
        Error::InvalidSpec("spec.template is required unless spec.adopt is set".into())
    })?;
    let template = match source {
        TemplateSource::Json(t) => Value::Object(t.clone()),
        TemplateSource::Bicep(source) => (*compiler.compile(source).await?).clone(),
        TemplateSource::ConfigMapKeyRef(r) => {
            let text = config_map_key(client, namespace, &r.name, &r.key).await?;
            if r.key.ends_with(".bicep") {
                (*compiler.compile(&text).await?).clone()
            } else {
                serde_json::from_str(&text).map_err(|e| {
                    Error::InvalidTemplate(format!(
                        "ConfigMap {:?} key {:?} is not JSON: {e}",
                        r.name, r.key
                    ))
                })?
            }
        }
    };
    let mut parameters_from = Vec::with_capacity(spec.parameters_from.len());
    for p in &spec.parameters_from {
        let text = match &p.source {
            ParameterSource::SecretKeyRef(k) => {
                secret_key(client, secrets, namespace, &k.name, &k.key).await?
            }
            ParameterSource::ConfigMapKeyRef(k) => {
                config_map_key(client, namespace, &k.name, &k.key).await?
            }
        };
        parameters_from.push((p.name.clone(), parameter_value(&text)));
    }
    Ok(ResolvedInputs {
        template,
        parameters_from,
        credential_subscription_id,
    })
}

async fn config_map_key(client: &Client, namespace: &str, name: &str, key: &str) -> Result<String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let not_found = || Error::InputNotFound {
        kind: "ConfigMap",
        name: name.to_owned(),
        key: key.to_owned(),
    };
    let cm = api.get_opt(name).await?.ok_or_else(not_found)?;
    if let Some(v) = cm.data.as_ref().and_then(|d| d.get(key)) {
        return Ok(v.clone());
    }
    cm.binary_data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .ok_or_else(not_found)
}

async fn secret_key(
    client: &Client,
    secrets: &SecretCache,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String> {
    let not_found = || Error::InputNotFound {
        kind: "Secret",
        name: name.to_owned(),
        key: key.to_owned(),
    };
    let data = secrets
        .data(client, namespace, name)
        .await?
        .ok_or_else(not_found)?;
    data.get(key).cloned().ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{ByteString, api::core::v1::Secret};

    use super::*;
    use crate::secret_cache::secret_data;

    fn spec(yaml: &str) -> AzureResourceSpec {
        let value: Value = serde_yaml::from_str(yaml).unwrap();
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn references_cover_every_input() {
        let spec = spec(
            r#"
resourceGroup: rg
template:
  configMapKeyRef: {name: tpl, key: main.json}
parametersFrom:
  - name: password
    secretKeyRef: {name: pw, key: value}
  - name: size
    configMapKeyRef: {name: sizes, key: small}
credentialsSecretRef: {name: creds}
"#,
        );
        assert_eq!(
            referenced_inputs(&spec),
            vec![
                (InputKind::Secret, "creds".into()),
                (InputKind::Secret, "pw".into()),
                (InputKind::ConfigMap, "sizes".into()),
                (InputKind::ConfigMap, "tpl".into()),
            ]
        );
    }

    #[test]
    fn default_credentials_secret_is_referenced() {
        let spec = spec("resourceGroup: rg\ntemplate: {json: {resources: []}}\n");
        assert_eq!(
            referenced_inputs(&spec),
            vec![(InputKind::Secret, DEFAULT_CREDENTIALS_SECRET.into())]
        );
    }

    #[test]
    fn secret_data_decodes_and_prefers_string_data() {
        let secret = Secret {
            data: Some(
                [
                    ("a".to_owned(), ByteString(b"1".to_vec())),
                    ("b".to_owned(), ByteString(vec![0xff])),
                ]
                .into(),
            ),
            string_data: Some([("a".to_owned(), "2".to_owned())].into()),
            ..Default::default()
        };
        let data = secret_data(&secret);
        assert_eq!(data.get("a").map(String::as_str), Some("2"));
        assert!(!data.contains_key("b"));
    }
}
