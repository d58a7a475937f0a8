//! Local control plane and shared test fixtures.
//!
//! [`ControlPlane::shared`] runs one real etcd + kube-apiserver + kube-controller-manager
//! per test binary (via `scripts/control-plane.sh`) with the `AzureResource` CRD
//! installed; [`TestNamespace`] gives each test its own namespace on it. [`process`]
//! builds and runs the workspace's binaries (armsim, the controller) as child processes;
//! [`shim`] (feature `shim`) runs the shim in process on librdkafka's mock cluster.

mod control_plane;
mod namespace;
pub mod process;
#[cfg(feature = "shim")]
pub mod shim;

use std::path::{Path, PathBuf};

pub use control_plane::{ControlPlane, Error, install_crypto_provider};
pub use namespace::TestNamespace;

/// Root of the repository (for `deploy/`, examples and scripts).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives inside the repository")
        .to_path_buf()
}
