//! Metadata and Secrets of the objects the mapping writes: labels, annotations and the
//! credentials Secret.

use std::collections::BTreeMap;

use crds::LocalObjectRef;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::error::ApiError;
use crate::request::{ExecuteRequest, Lifecycle};

use super::model::*;
use super::names::*;

pub(super) fn annotations(
    req: &ExecuteRequest,
    ctx: &MappingContext,
    pending: &PendingRequest,
) -> Result<BTreeMap<String, String>, ApiError> {
    let request_json = serde_json::to_string(pending)
        .map_err(|err| ApiError::internal(format!("cannot record the request: {err}")))?;
    let mut annotations = BTreeMap::from([
        (ANNOTATION_REQUEST.into(), request_json),
        (
            ANNOTATION_OWNER.into(),
            owner_digest(req, ctx, pending.tenant_id.as_deref())?,
        ),
    ]);
    // Each key costs the apiserver on every write and watch event of the object.
    for (annotation, exact) in [
        (ANNOTATION_RESOURCE_NAME, &req.system.resource_name),
        (ANNOTATION_RESOURCE_ID, &req.system.resource_id),
    ] {
        if label_value(exact) != *exact {
            annotations.insert(annotation.into(), exact.clone());
        }
    }
    Ok(annotations)
}

pub(super) fn labels(req: &ExecuteRequest) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (
            LABEL_RESOURCE_ID.into(),
            label_value(&req.system.resource_id),
        ),
        (
            LABEL_RESOURCE_NAME.into(),
            label_value(&req.system.resource_name),
        ),
        (
            LABEL_RESOURCE_TYPE.into(),
            label_value(&req.system.resource_type.name),
        ),
        (
            LABEL_DEPLOYMENT_LOCATION.into(),
            label_value(&req.deployment_location.name),
        ),
        (LABEL_MANAGED_BY.into(), MANAGED_BY.into()),
    ]);
    if let Lifecycle::Operation(name) = &req.lifecycle {
        labels.insert(LABEL_LIFECYCLE.into(), dns_label(name, 63));
    }
    labels
}

/// The Secret holding the deployment location's credentials, when it carries any.
pub(super) fn credentials_secret_ref(
    req: &ExecuteRequest,
    pending: &PendingRequest,
) -> Option<LocalObjectRef> {
    let credentials = &req.deployment_location.credentials;
    credentials.has_client_secret().then(|| LocalObjectRef {
        name: credentials_secret_name(
            pending.tenant_id.as_deref(),
            &req.deployment_location.name,
            credentials,
        ),
    })
}

pub(super) fn credentials_secret(
    req: &ExecuteRequest,
    ctx: &MappingContext,
    pending: &PendingRequest,
) -> Option<Secret> {
    let credentials = &req.deployment_location.credentials;
    if !credentials.has_client_secret() {
        return None;
    }
    let data: BTreeMap<String, String> = [
        ("tenantId", &credentials.tenant_id),
        ("clientId", &credentials.client_id),
        ("clientSecret", &credentials.client_secret),
        ("subscriptionId", &credentials.subscription_id),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.clone().map(|v| (key.to_string(), v)))
    .collect();
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(credentials_secret_name(
                pending.tenant_id.as_deref(),
                &req.deployment_location.name,
                credentials,
            )),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(BTreeMap::from([
                (
                    LABEL_DEPLOYMENT_LOCATION.into(),
                    label_value(&req.deployment_location.name),
                ),
                (LABEL_MANAGED_BY.into(), MANAGED_BY.into()),
            ])),
            ..ObjectMeta::default()
        },
        string_data: Some(data),
        type_: Some("Opaque".into()),
        ..Secret::default()
    })
}
