//! The `AzureResource` custom resource (group `azure-driver.io`, version `v1alpha1`).
//!
//! The Rust types are the contract between the controller, the shim and the cluster;
//! [`crd()`] is the `CustomResourceDefinition` exactly as it is installed (and as `crdgen`
//! writes it to `deploy/crds/azureresources.yaml`).

mod adopt;
mod azure_resource;
mod crd;
mod drift;
mod naming;
pub mod patterns;
mod schema;
mod sync_interval;
mod view;

pub use adopt::{AdoptedId, AdoptedKind, InvalidAdoptedId};
pub use azure_resource::{
    Adopt, AzureResource, AzureResourceSpec, AzureResourceStatus, DeletionPolicy, DeploymentMode,
    DeploymentStatus, Engine, ErrorDetail, ErrorStatus, KeyRef, LocalObjectRef, ParameterFrom,
    ParameterSource, Phase, Scope, TemplateConfigMapRef, TemplateLanguage, TemplateSource,
};
pub use crd::{CRD_NAME, crd, crd_yaml};
pub use drift::{
    CHECK_DRIFT_ANNOTATION, DRIFT_MAX_PROPERTIES, DRIFT_MAX_RESOURCES, DRIFT_MAX_VALUE_CHARS,
    DriftCounts, DriftPolicy, DriftStatus, DriftedResource, PropertyDrift,
};
pub use naming::{CLEANUP_FINALIZER, deployment_name};
pub use sync_interval::{InvalidSyncInterval, MIN_SYNC_INTERVAL};
