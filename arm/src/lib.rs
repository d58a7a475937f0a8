//! Azure Resource Manager client for the azure-driver (no Kubernetes in here).
//!
//! - [`ArmClient`]: resource groups, deployments, deployment stacks and resources by id,
//!   with client-side throttling per subscription and `Retry-After` honoured.
//! - Long-running operations return an [`LroHandle`] (serialisable) that is polled once
//!   per call with [`ArmClient::poll`]; nothing blocks on Azure.
//! - [`ArmError`] carries ARM's error and classifies it ([`ArmError::is_retryable`],
//!   [`ArmError::category`]).
//! - [`CredentialCache`] shares one credential (and its token cache) per identity.
//! - [`CloudConfig`] / [`ArmOptions`] read `AZURE_RESOURCE_MANAGER_ENDPOINT`,
//!   `AZURE_AUTHORITY_HOST`, `AZURE_CA_FILE` and the managed identity's endpoint
//!   ([`ManagedIdentitySource`]: `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`,
//!   `AZURE_POD_IDENTITY_AUTHORITY_HOST`).

mod answer;
mod client;
mod config;
mod credentials;
mod error;
mod ids;
mod lro;
mod managed_identity;
pub mod models;
mod throttle;
mod transport;

pub use azure_core::credentials::{Secret, TokenCredential};
pub use client::{
    ApiVersions, ArmClient, RESOURCES_API_VERSION, RequestObserver, RequestRecord,
    STACKS_API_VERSION, Started, WhatIfStart,
};
pub use config::{
    ArmOptions, CloudConfig, DEFAULT_AUTHORITY_HOST, DEFAULT_RESOURCE_MANAGER_ENDPOINT,
};
pub use credentials::{CredentialCache, CredentialSpec, SecretCredentials};
pub use error::{
    ArmError, ArmErrorData, ErrorCategory, ErrorDetail, ErrorSource, is_retryable_code,
};
pub use ids::{
    DeploymentScope, ResourceId, newest_api_version, validate_deployment_name,
    validate_resource_group_name, validate_stack_name,
};
pub use lro::{LroHandle, LroKind, LroOperation, PollResult};
pub use managed_identity::{DEFAULT_IMDS_AUTHORITY, ManagedIdentitySource};
pub use throttle::{
    BucketLimit, IDLE_AFTER, Priority, RequestClass, SPARE_RESERVE, ThrottleLimits,
};
