//! The resource-driver API of the orchestrator's resource manager ("Brent") on top of
//! `AzureResource` objects: requests become objects, object status becomes Kafka results.

pub mod admission;
pub mod api;
pub mod auth;
pub mod cache;
pub mod completion;
pub mod config;
pub mod driver_files;
pub mod error;
pub mod intake;
pub mod kafka;
pub mod lean;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod reporter;
pub mod request;
pub mod tls;
pub mod writes;

pub use telemetry::shutdown_signal;
