//! Azure Resource Manager simulator: an HTTPS server that behaves like ARM and
//! Entra for the parts `contracts/arm.md` describes, observable and steerable
//! from tests (in-process through [`RunningSim`], or over `/_armsim/`).

mod auth;
mod config;
mod counters;
mod error;
mod faults;
mod handlers;
mod http;
mod identity;
mod inventory;
mod lro;
mod providers;
mod route;
mod server;
mod shared;
mod sim;
mod state;
pub mod template;
mod throttle;
mod tls;

pub use config::{
    BucketConfig, ConfigError, Credential, FaultConfig, FaultStage, LatencyConfig,
    ManagedIdentityConfig, OperationRetentionConfig, RequestFault, RequestFaultRule,
    ResourceFaultRule, SimConfig, ThrottlingConfig,
};
pub use counters::{Counters, SubscriptionCounters};
pub use inventory::{InventoryAction, InventoryEvent, InventoryItem};
pub use shared::{assumed_resource, resource_type_of};
pub use sim::{RunningSim, Simulator};
