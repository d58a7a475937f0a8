//! Test support: in-memory stand-ins for ARM ([`FakeAzure`]) and the apiserver
//! ([`FakeKube`]), so that whole reconciles run in unit tests without servers.

mod fake_azure;
mod fake_kube;

pub use fake_azure::{Call, FakeAzure};
pub use fake_kube::FakeKube;
