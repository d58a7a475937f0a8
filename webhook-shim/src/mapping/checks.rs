//! Checks that refuse a request before anything is written: owner, sizes, Azure names,
//! credentials, and the parameters a template declares.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use bicep::ast::{DeclKind, ExprKind};
use crds::AzureResource;
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::request::ExecuteRequest;

use super::model::*;

/// Refuses (403) a request acting as `owner` about a resource any of whose `objects` was
/// created by someone else. Objects made before ownership was recorded bind to the next
/// Create.
pub fn authorise(owner: &str, objects: &[&AzureResource]) -> Result<(), ApiError> {
    let foreign = objects.iter().find(|object| {
        object
            .annotations()
            .get(ANNOTATION_OWNER)
            .is_some_and(|bound| bound != owner)
    });
    match foreign {
        Some(object) => Err(ApiError::with_status(
            403,
            format!(
                "resource {} was created with other credentials (tenant, client or subscription)",
                exact_resource_id(object).unwrap_or_else(|| object
                    .meta()
                    .name
                    .as_deref()
                    .unwrap_or_default())
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses (413) an object etcd could not store, or a Secret the apiserver would reject,
/// before anything is written.
pub fn check_sizes(plan: &ApplyPlan) -> Result<(), ApiError> {
    let object_bytes = serde_json::to_vec(&plan.resource)
        .map_err(|err| ApiError::internal(format!("cannot encode the AzureResource: {err}")))?
        .len();
    if object_bytes > MAX_OBJECT_BYTES {
        return Err(ApiError::with_status(
            413,
            format!(
                "The template and parameters make an AzureResource of {object_bytes} bytes; at most {MAX_OBJECT_BYTES} bytes fit in the cluster's store"
            ),
        ));
    }
    for secret in [&plan.credentials, &plan.secure_parameters]
        .into_iter()
        .flatten()
    {
        let data_bytes: usize = secret
            .string_data
            .iter()
            .flatten()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        if data_bytes > MAX_SECRET_BYTES {
            return Err(ApiError::with_status(
                413,
                format!(
                    "Secure values of {data_bytes} bytes exceed the {MAX_SECRET_BYTES} bytes a Secret holds"
                ),
            ));
        }
    }
    Ok(())
}

/// Declared parameters of a template: name → declared secure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TemplateShape {
    pub(super) parameters: BTreeMap<String, bool>,
    pub(super) subscription_scope: bool,
}

impl TemplateShape {
    /// Bytes a memoized shape holds, about: its key, map nodes and names.
    fn footprint(&self) -> usize {
        96 + self
            .parameters
            .keys()
            .map(|name| name.len() + 64)
            .sum::<usize>()
    }
}

/// Bytes the memo of Bicep template shapes holds at most; one shape at most a sixteenth.
const SHAPE_MEMO_BYTES: usize = 1024 * 1024;

/// Shapes of the Bicep templates parsed lately, by the SHA-256 of their source. Brent
/// sends the same package with every request for a resource type, and parsing it was the
/// largest part of the CPU a Create cost the shim. The digest is a cryptographic one: a
/// template colliding with another would be taken to declare the other's parameters, and
/// a secure one could then be written into the object's spec. Full, it starts over.
#[derive(Default)]
struct ShapeMemo {
    shapes: HashMap<[u8; 32], Arc<TemplateShape>>,
    bytes: usize,
}

static BICEP_SHAPES: LazyLock<Mutex<ShapeMemo>> = LazyLock::new(Mutex::default);

/// Declared parameters and target scope of a Bicep template ([`parse_bicep_shape`]),
/// memoized by source ([`ShapeMemo`]).
pub(super) fn bicep_shape(source: &str) -> Result<Arc<TemplateShape>, ApiError> {
    let digest: [u8; 32] = Sha256::digest(source.as_bytes()).into();
    if let Some(shape) = BICEP_SHAPES.lock().expect("shape memo").shapes.get(&digest) {
        return Ok(shape.clone());
    }
    let shape = Arc::new(parse_bicep_shape(source)?);
    let size = shape.footprint();
    if size <= SHAPE_MEMO_BYTES / 16 {
        let mut memo = BICEP_SHAPES.lock().expect("shape memo");
        if memo.bytes + size > SHAPE_MEMO_BYTES {
            *memo = ShapeMemo::default();
        }
        if let Entry::Vacant(vacant) = memo.shapes.entry(digest) {
            vacant.insert(shape.clone());
            memo.bytes += size;
        }
    }
    Ok(shape)
}

/// Declared parameters and target scope of a Bicep template, from the `bicep` crate's
/// parser (decorators spanning lines, comments and strings are read as Bicep reads them).
fn parse_bicep_shape(source: &str) -> Result<TemplateShape, ApiError> {
    let file = bicep::parser::parse(source)
        .into_result()
        .map_err(|diagnostic| {
            ApiError::bad_request(format!(
                "The Bicep template does not parse: {} {}",
                diagnostic.code, diagnostic.message
            ))
        })?;
    let mut parameters = BTreeMap::new();
    let mut subscription_scope = false;
    for decl in &file.decls {
        match (&decl.kind, &decl.name) {
            (DeclKind::Param { .. }, Some((name, _))) => {
                let secure = decl.decorators.iter().any(|d| {
                    matches!(&d.kind, ExprKind::Call { namespace, name, .. }
                        if name == "secure" && namespace.as_deref().is_none_or(|ns| ns == "sys"))
                });
                parameters.insert(name.clone(), secure);
            }
            (DeclKind::TargetScope(scope), _) => {
                subscription_scope = matches!(&scope.kind, ExprKind::Str { pieces, holes }
                    if holes.is_empty() && pieces.len() == 1 && pieces[0] == "subscription");
            }
            _ => {}
        }
    }
    Ok(TemplateShape {
        parameters,
        subscription_scope,
    })
}

pub(super) fn json_shape(template: &Map<String, Value>) -> TemplateShape {
    let parameters = template
        .get("parameters")
        .and_then(Value::as_object)
        .map(|params| {
            params
                .iter()
                .map(|(name, decl)| {
                    let kind = decl
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    (name.clone(), kind.starts_with("secure"))
                })
                .collect()
        })
        .unwrap_or_default();
    let subscription_scope = template
        .get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|schema| schema.contains("subscriptionDeploymentTemplate"));
    TemplateShape {
        parameters,
        subscription_scope,
    }
}

/// Azure's resource group name rule (the CRD enforces it too; checked here so bad input
/// is a 400 naming the property, and nothing is written).
pub(super) fn check_resource_group(name: &str) -> Result<(), ApiError> {
    if azure_names::is_resource_group_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "resourcegroup_name \"{name}\" is not a valid Azure resource group name"
        )))
    }
}

pub(super) fn check_location(location: &str) -> Result<(), ApiError> {
    if azure_names::is_location(location) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "location \"{location}\" is not a valid Azure location"
        )))
    }
}

/// The subscription a request deploys into, validated.
pub(super) fn subscription_id(
    req: &ExecuteRequest,
    ctx: &MappingContext,
) -> Result<String, ApiError> {
    let subscription = req
        .deployment_location
        .credentials
        .subscription_id
        .clone()
        .or_else(|| ctx.default_subscription_id.clone())
        .ok_or_else(|| ApiError::bad_request("AZURE subscriptionId is missing"))?;
    if !azure_names::is_subscription_id(&subscription) {
        return Err(ApiError::bad_request(
            "AZURE subscriptionId of the deployment location is not a GUID",
        ));
    }
    Ok(subscription)
}

/// Checks the deployment location can authenticate; every lifecycle needs it.
pub fn check_credentials(req: &ExecuteRequest, ctx: &MappingContext) -> Result<(), ApiError> {
    let credentials = &req.deployment_location.credentials;
    if !credentials.has_client_secret() && !ctx.operator_identity {
        return Err(ApiError::bad_request("AZURE credentials are missing"));
    }
    subscription_id(req, ctx).map(|_| ())
}
