//! Local control plane and shared test fixtures.
//!
//! [`ControlPlane::shared`] runs one real etcd + kube-apiserver + kube-controller-manager
//! per test binary (via `scripts/control-plane.sh`) with the `AzureResource` CRD
//! installed; [`TestNamespace`] gives each test its own namespace on it. [`process`]
//! builds and runs the workspace's binaries (armsim, the controller) as child processes;
//! [`shim`] (feature `shim`) runs the shim in process on librdkafka's mock cluster;
//! [`admission`] holds what the admission tests apply with kubectl. [`Node`] adds a node
//! to the control plane (containerd, kubelet, kube-proxy, via `scripts/node.sh`) running
//! the product image built from the Dockerfile.

pub mod admission;
mod control_plane;
mod namespace;
mod node;
pub mod process;
#[cfg(feature = "shim")]
pub mod shim;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use control_plane::{ControlPlane, Error, install_crypto_provider};
pub use namespace::{NAMESPACE_NAME_LABEL, TestNamespace};
pub use node::{ContainerProcess, DEFAULT_IMAGE, Node};

/// Root of the repository (for `deploy/`, examples and scripts).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives inside the repository")
        .to_path_buf()
}

/// Directory holding helm and hadolint, installed once per test binary by
/// `deploy/scripts/install-tools.sh` (which prints it last).
pub fn deploy_tools() -> &'static Path {
    static TOOLS: OnceLock<PathBuf> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let output = Command::new(repo_root().join("deploy/scripts/install-tools.sh"))
            .output()
            .expect("install-tools.sh runs");
        assert!(
            output.status.success(),
            "install-tools.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).expect("UTF-8 path");
        PathBuf::from(stdout.lines().last().expect("the bin directory").trim())
    })
}
