//! Reconciles `AzureResource` objects into Azure deployments.
//!
//! Per object, [`reconcile`] runs `dereference → validate → build → apply → status`:
//! [`validate`], [`build`] and [`decide`] (which action applying takes next) are pure and
//! unit-tested; everything touching a server sits behind [`azure::AzureApi`] (implemented
//! on the `arm` crate by [`arm_adapter`]) and the kube client. [`leader`] keeps a single
//! replica reconciling.

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
pub mod own_writes;
pub mod reconcile;
pub mod referrers;
pub mod run;
pub mod secret_cache;
pub mod status;
#[cfg(test)]
mod testing;
pub mod validate;
pub mod watch_cache;

pub use run::{Config, Health, LogFormat, run};
