//! Validation of resource-driver requests and typed property flattening.
//!
//! Everything here is pure: a JSON body goes in, a validated request or an
//! [`ApiError`] with the exact message Brent shows comes out.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A lifecycle transition or operation, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// `Create` or `Install`.
    Create,
    /// `Delete` or `Uninstall`.
    Delete,
    /// Any other transition (`Configure`, `Start`, `Stop`) or operation (`CreateVnetPeering`),
    /// spelled as the request spelled it.
    Operation(String),
}

impl Lifecycle {
    pub fn parse(name: &str) -> Result<Self, ApiError> {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            return Err(ApiError::missing_field("lifecycleName"));
        }
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ApiError::bad_request(format!(
                "lifecycleName \"{trimmed}\" is not a valid lifecycle name"
            )));
        }
        Ok(match trimmed.to_ascii_lowercase().as_str() {
            "create" | "install" => Self::Create,
            "delete" | "uninstall" => Self::Delete,
            _ => Self::Operation(trimmed.to_string()),
        })
    }

    /// The name used in request ids and annotations.
    pub fn name(&self) -> &str {
        match self {
            Self::Create => "Create",
            Self::Delete => "Delete",
            Self::Operation(name) => name,
        }
    }

    /// Lower-case names a driver-files template for this lifecycle may carry.
    pub fn template_stems(&self) -> Vec<String> {
        match self {
            Self::Create => vec!["create".into(), "install".into()],
            Self::Delete => vec!["delete".into(), "uninstall".into()],
            Self::Operation(name) => vec![name.to_ascii_lowercase()],
        }
    }
}

/// One property after flattening: the plain value and whether it is secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub kind: String,
    pub value: Value,
}

impl Property {
    /// Passwords and keys go to Secrets, never into the object's spec or logs.
    pub fn is_secure(&self) -> bool {
        matches!(self.kind.as_str(), "password" | "key")
    }
}

pub type Properties = BTreeMap<String, Property>;

/// `resource::<Name>::<version>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub name: String,
    pub version: String,
}

impl ResourceType {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let parts: Vec<&str> = raw.split("::").collect();
        match parts.as_slice() {
            [kind, name, version] if *kind == "resource" && !name.is_empty() => Ok(Self {
                name: (*name).to_string(),
                version: (*version).to_string(),
            }),
            _ => Err(ApiError::bad_request(format!(
                "resourceType \"{raw}\" is not of the form resource::<name>::<version>"
            ))),
        }
    }

    pub fn full(&self) -> String {
        format!("resource::{}::{}", self.name, self.version)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SystemProperties {
    pub resource_id: String,
    pub resource_name: String,
    pub resource_type: ResourceType,
    pub request_id: Option<String>,
    pub resource_manager_id: Option<String>,
    pub metric_key: Option<String>,
}

/// The Azure credentials of a deployment location (the keys the Python driver read).
#[derive(Clone, PartialEq, Default)]
pub struct Credentials {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub subscription_id: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("subscription_id", &self.subscription_id)
            .finish()
    }
}

impl Credentials {
    pub fn has_client_secret(&self) -> bool {
        self.client_id.is_some() && self.client_secret.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentLocation {
    pub name: String,
    pub kind: Option<String>,
    pub credentials: Credentials,
    /// Non-credential properties, plain values.
    pub properties: Map<String, Value>,
}

/// A validated `POST /api/driver/lifecycle/execute` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteRequest {
    pub lifecycle: Lifecycle,
    /// The decoded ZIP archive (empty when the package has no driver files).
    pub driver_files: Vec<u8>,
    pub system: SystemProperties,
    pub resource_properties: Properties,
    pub request_properties: Properties,
    pub associated_topology: Map<String, Value>,
    pub deployment_location: DeploymentLocation,
}

impl ExecuteRequest {
    /// Property lookup: request properties win over resource properties.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.request_properties
            .get(name)
            .or_else(|| self.resource_properties.get(name))
    }

    /// A property as a non-empty string.
    pub fn string_property(&self, name: &str) -> Option<String> {
        self.property(name).and_then(|p| match &p.value {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }

    /// All properties, resource properties first and request properties overriding.
    pub fn merged_properties(&self) -> Properties {
        let mut merged = self.resource_properties.clone();
        merged.extend(self.request_properties.clone());
        merged
    }
}

/// A validated `POST /api/driver/references/find` body.
#[derive(Debug, Clone, PartialEq)]
pub struct FindRequest {
    pub instance_name: String,
    pub deployment_location: DeploymentLocation,
}

fn object<'a>(
    body: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a Map<String, Value>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(ApiError::missing_field(field)),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(ApiError::bad_request(format!(
            "'{field}' must be an object"
        ))),
    }
}

fn optional_object(body: &Map<String, Value>, field: &str) -> Result<Map<String, Value>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(ApiError::bad_request(format!(
            "'{field}' must be an object"
        ))),
    }
}

fn required_string(body: &Map<String, Value>, field: &str, path: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ApiError::missing_field(path)),
        Some(_) => Err(ApiError::bad_request(format!("'{path}' must be a string"))),
    }
}

/// Parses a JSON request body (already read, size-bounded) into an object.
pub fn parse_json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
        Err(err) => Err(ApiError::bad_request(format!(
            "Request body is not valid JSON: {err}"
        ))),
    }
}

/// Flattens one property entry: `{"type","value"}` (typed) or a bare value (a string).
pub fn parse_property(name: &str, raw: &Value) -> Result<Property, ApiError> {
    let Value::Object(entry) = raw else {
        return Ok(Property {
            kind: "string".into(),
            value: raw.clone(),
        });
    };
    if !entry.contains_key("type") && !entry.contains_key("value") {
        return Ok(Property {
            kind: "string".into(),
            value: raw.clone(),
        });
    }
    let kind = match entry.get("type") {
        Some(Value::String(kind)) => kind.to_ascii_lowercase(),
        None | Some(Value::Null) => "string".into(),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "property '{name}' has a non-string type"
            )));
        }
    };
    let value = entry.get("value").cloned().unwrap_or(Value::Null);
    let value = match kind.as_str() {
        "integer" => coerce_integer(name, value)?,
        "float" | "number" => coerce_number(name, value)?,
        "boolean" => coerce_boolean(name, value)?,
        "key" => match (&value, entry.get("privateKey")) {
            (Value::Null, Some(private)) => private.clone(),
            _ => value,
        },
        _ => value,
    };
    Ok(Property { kind, value })
}

fn coerce_integer(name: &str, value: Value) -> Result<Value, ApiError> {
    match &value {
        Value::Null => Ok(value),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value),
        Value::String(s) if s.trim().is_empty() => Ok(Value::Null),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| invalid_typed_value(name, "integer")),
        _ => Err(invalid_typed_value(name, "integer")),
    }
}

fn coerce_number(name: &str, value: Value) -> Result<Value, ApiError> {
    match &value {
        Value::Null | Value::Number(_) => Ok(value),
        Value::String(s) if s.trim().is_empty() => Ok(Value::Null),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| invalid_typed_value(name, "float")),
        _ => Err(invalid_typed_value(name, "float")),
    }
}

fn coerce_boolean(name: &str, value: Value) -> Result<Value, ApiError> {
    match &value {
        Value::Null | Value::Bool(_) => Ok(value),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "" => Ok(Value::Null),
            _ => Err(invalid_typed_value(name, "boolean")),
        },
        _ => Err(invalid_typed_value(name, "boolean")),
    }
}

fn invalid_typed_value(name: &str, kind: &str) -> ApiError {
    ApiError::bad_request(format!(
        "property '{name}' of type {kind} has an invalid value"
    ))
}

pub fn parse_properties(raw: &Map<String, Value>) -> Result<Properties, ApiError> {
    raw.iter()
        .map(|(name, value)| Ok((name.clone(), parse_property(name, value)?)))
        .collect()
}

fn plain_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a system property, typed or bare.
fn system_string(system: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match system.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(raw) => Ok(plain_string(&parse_property(field, raw)?.value)),
    }
}

fn required_system(system: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    system_string(system, field)?
        .ok_or_else(|| ApiError::missing_field(&format!("systemProperties.{field}")))
}

fn parse_deployment_location(body: &Map<String, Value>) -> Result<DeploymentLocation, ApiError> {
    let location = object(body, "deploymentLocation")?;
    let name = required_string(location, "name", "deploymentLocation.name")?;
    let kind = match location.get("type") {
        Some(Value::String(kind)) => Some(kind.clone()),
        _ => None,
    };
    let mut properties = optional_object(location, "properties")
        .map_err(|_| ApiError::bad_request("'deploymentLocation.properties' must be an object"))?;
    // Deployment-location properties may arrive typed too; keep plain values only.
    for (key, value) in properties.iter_mut() {
        *value = parse_property(key, value)?.value;
    }
    let mut take = |key: &str| properties.remove(key).as_ref().and_then(plain_string);
    let credentials = Credentials {
        tenant_id: take("tenantId"),
        client_id: take("clientId"),
        client_secret: take("clientSecret"),
        subscription_id: take("subscriptionId"),
    };
    Ok(DeploymentLocation {
        name,
        kind,
        credentials,
        properties,
    })
}

/// Decodes standard base64; empty or null content is an empty package.
pub fn decode_driver_files(raw: &Value) -> Result<Vec<u8>, ApiError> {
    let text = match raw {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) => s,
        Value::Object(map) if map.is_empty() => return Ok(Vec::new()),
        _ => {
            return Err(ApiError::bad_request(
                "'driverFiles' must be a base64 string",
            ));
        }
    };
    // Some clients wrap base64 at 76 columns.
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| ApiError::bad_request("'driverFiles' is not valid base64"))
}

/// Validates an execute request body.
pub fn parse_execute(body: &[u8]) -> Result<ExecuteRequest, ApiError> {
    let body = parse_json_object(body)?;
    let lifecycle_name = required_string(&body, "lifecycleName", "lifecycleName")?;
    let driver_files = match body.get("driverFiles") {
        None => return Err(ApiError::missing_field("driverFiles")),
        Some(raw) => raw,
    };
    let system = object(&body, "systemProperties")?;
    let deployment_location = parse_deployment_location(&body)?;
    let lifecycle = Lifecycle::parse(&lifecycle_name)?;
    let driver_files = decode_driver_files(driver_files)?;

    let resource_type = ResourceType::parse(&required_system(system, "resourceType")?)?;
    let system = SystemProperties {
        resource_id: required_system(system, "resourceId")?,
        resource_name: required_system(system, "resourceName")?,
        resource_type,
        request_id: system_string(system, "requestId")?,
        resource_manager_id: system_string(system, "resourceManagerId")?,
        metric_key: system_string(system, "metricKey")?,
    };
    Ok(ExecuteRequest {
        lifecycle,
        driver_files,
        system,
        resource_properties: parse_properties(&optional_object(&body, "resourceProperties")?)?,
        request_properties: parse_properties(&optional_object(&body, "requestProperties")?)?,
        associated_topology: optional_object(&body, "associatedTopology")?,
        deployment_location,
    })
}

/// Validates a find request body.
pub fn parse_find(body: &[u8]) -> Result<FindRequest, ApiError> {
    let body = parse_json_object(body)?;
    let instance_name = required_string(&body, "instanceName", "instanceName")?;
    if !body.contains_key("driverFiles") {
        return Err(ApiError::missing_field("driverFiles"));
    }
    let deployment_location = parse_deployment_location(&body)?;
    Ok(FindRequest {
        instance_name,
        deployment_location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn valid_body() -> Value {
        json!({
            "lifecycleName": "Install",
            "driverFiles": "",
            "systemProperties": {
                "resourceId": {"type": "string", "value": "be3870d2-891c-487e-9736-ca19e4741cf4"},
                "resourceName": {"type": "string", "value": "net-a"},
                "resourceType": {"type": "string", "value": "resource::AzureVNet::1.0"},
                "requestId": {"type": "string", "value": "a44ac9db"}
            },
            "resourceProperties": {
                "vnet_name": {"type": "string", "value": "vnet1"},
                "count": {"type": "integer", "value": "3"},
                "ddos": {"type": "boolean", "value": "True"},
                "bare": "plain",
                "secret": {"type": "password", "value": "hunter2"},
                "ssh": {"type": "key", "keyName": "k", "privateKey": "PRIV", "publicKey": "PUB"}
            },
            "requestProperties": {"vnet_name": {"type": "string", "value": "vnet2"}},
            "deploymentLocation": {
                "name": "azure-dev",
                "type": "Azure",
                "properties": {"tenantId": "t", "clientId": "c", "clientSecret": "s", "subscriptionId": "sub", "region": "westeurope"}
            }
        })
    }

    fn parse(body: Value) -> Result<ExecuteRequest, ApiError> {
        parse_execute(body.to_string().as_bytes())
    }

    #[test]
    fn parses_a_typed_brent_request() {
        let req = parse(valid_body()).unwrap();
        assert_eq!(req.lifecycle, Lifecycle::Create);
        assert_eq!(
            req.system.resource_id,
            "be3870d2-891c-487e-9736-ca19e4741cf4"
        );
        assert_eq!(req.system.resource_type.name, "AzureVNet");
        assert_eq!(req.string_property("vnet_name").as_deref(), Some("vnet2"));
        assert_eq!(req.property("count").unwrap().value, json!(3));
        assert_eq!(req.property("ddos").unwrap().value, json!(true));
        assert_eq!(req.property("bare").unwrap().value, json!("plain"));
        assert!(req.property("secret").unwrap().is_secure());
        assert_eq!(req.property("ssh").unwrap().value, json!("PRIV"));
        assert_eq!(
            req.deployment_location.credentials.client_secret.as_deref(),
            Some("s")
        );
        assert!(
            !req.deployment_location
                .properties
                .contains_key("clientSecret")
        );
        assert_eq!(
            req.deployment_location.properties["region"],
            json!("westeurope")
        );
        assert!(req.driver_files.is_empty());
    }

    #[test]
    fn lifecycles_normalise_case_insensitively() {
        assert_eq!(Lifecycle::parse("install").unwrap(), Lifecycle::Create);
        assert_eq!(Lifecycle::parse("CREATE").unwrap(), Lifecycle::Create);
        assert_eq!(Lifecycle::parse("Uninstall").unwrap(), Lifecycle::Delete);
        assert_eq!(Lifecycle::parse("delete").unwrap(), Lifecycle::Delete);
        assert_eq!(
            Lifecycle::parse("CreateVnetPeering").unwrap(),
            Lifecycle::Operation("CreateVnetPeering".into())
        );
        assert!(Lifecycle::parse("../etc").is_err());
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let req = parse(valid_body()).unwrap();
        let shown = format!("{:?}", req.deployment_location);
        assert!(!shown.contains("\"s\""), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn bad_requests_get_exact_messages() {
        let missing = |field: &str| {
            let mut body = valid_body();
            body.as_object_mut().unwrap().remove(field);
            body
        };
        let with = |pointer: &str, value: Value| {
            let mut body = valid_body();
            *body.pointer_mut(pointer).unwrap() = value;
            body
        };
        let mut no_resource_id = valid_body();
        no_resource_id["systemProperties"]
            .as_object_mut()
            .unwrap()
            .remove("resourceId");
        let cases: Vec<(Value, &str)> = vec![
            (
                missing("lifecycleName"),
                "'lifecycleName' is a required field but was not found in the request data body",
            ),
            (
                missing("driverFiles"),
                "'driverFiles' is a required field but was not found in the request data body",
            ),
            (
                missing("systemProperties"),
                "'systemProperties' is a required field but was not found in the request data body",
            ),
            (
                missing("deploymentLocation"),
                "'deploymentLocation' is a required field but was not found in the request data body",
            ),
            (
                no_resource_id,
                "'systemProperties.resourceId' is a required field but was not found in the request data body",
            ),
            (
                with("/driverFiles", json!("not base64!")),
                "'driverFiles' is not valid base64",
            ),
            (
                with("/driverFiles", json!(12)),
                "'driverFiles' must be a base64 string",
            ),
            (
                with("/systemProperties/resourceType/value", json!("AzureVNet")),
                "resourceType \"AzureVNet\" is not of the form resource::<name>::<version>",
            ),
            (
                with("/resourceProperties/count/value", json!("three")),
                "property 'count' of type integer has an invalid value",
            ),
            (
                with("/deploymentLocation/name", json!("")),
                "'deploymentLocation.name' is a required field but was not found in the request data body",
            ),
            (
                with("/lifecycleName", json!("Start now")),
                "lifecycleName \"Start now\" is not a valid lifecycle name",
            ),
            (
                with("/resourceProperties", json!([1])),
                "'resourceProperties' must be an object",
            ),
            (json!([1, 2]), "Request body must be a JSON object"),
        ];
        for (body, message) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(err.status, 400);
            assert_eq!(err.message, message);
        }
        let err = parse_execute(b"{not json").unwrap_err();
        assert!(err.message.starts_with("Request body is not valid JSON"));
    }

    #[test]
    fn find_requires_instance_name() {
        let err =
            parse_find(br#"{"driverFiles":"","deploymentLocation":{"name":"x"}}"#).unwrap_err();
        assert_eq!(
            err.message,
            "'instanceName' is a required field but was not found in the request data body"
        );
        let ok = parse_find(
            br#"{"instanceName":"n","driverFiles":"","deploymentLocation":{"name":"x"}}"#,
        )
        .unwrap();
        assert_eq!(ok.instance_name, "n");
    }
}
