//! Reconciles `AzureResource` objects into Azure deployments.
//!
//! The reconcile pipeline is `dereference → build → decide → apply → status`: [`build`]
//! and [`decide`] are pure and unit-tested; everything touching a server sits behind
//! [`azure::AzureApi`] (implemented on the `arm` crate by [`arm_adapter`]) and the kube
//! client.

pub mod arm_adapter;
pub mod azure;
pub mod bicep_compiler;
pub mod build;
pub mod context;
pub mod decide;
pub mod dereference;
pub mod drift;
pub mod error;
pub mod events;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod watch_cache;

pub use run::{Config, Health, LogFormat, run};
