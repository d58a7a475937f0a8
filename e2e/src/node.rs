//! A single-node cluster (`e2e/scripts/node.sh`: the control plane plus containerd, kubelet
//! and kube-proxy) running the product image that `e2e/scripts/build-image.sh` builds from
//! the repository's Dockerfile.

use std::net::IpAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::{ControlPlane, Error};

/// The product image's repository and tag on the node (`AZURE_DRIVER_IMAGE` overrides).
pub const DEFAULT_IMAGE: &str = "localhost/azure-driver:e2e";

/// A running single-node cluster with the product image loaded; everything stops when it
/// is dropped or the test process ends (as for [`ControlPlane`]).
pub struct Node {
    control_plane: ControlPlane,
    host_address: IpAddr,
    log_dir: PathBuf,
    image: String,
    image_build: Duration,
    start: Duration,
}

static SHARED: OnceCell<Node> = OnceCell::const_new();

/// What a container's main process runs as, seen from the node.
#[derive(Debug)]
pub struct ContainerProcess {
    pub pid: u32,
    /// Real, effective, saved and filesystem user ids.
    pub uids: Vec<u32>,
    pub read_only_root: bool,
    /// Mount points inside the container.
    pub mounts: Vec<String>,
    pub environment: Vec<String>,
}

impl Node {
    /// The node shared by all tests of this test binary, started on first use.
    ///
    /// Panics if it cannot start: every test depending on it would fail anyway.
    pub async fn shared() -> &'static Node {
        SHARED
            .get_or_init(|| async {
                Node::start()
                    .await
                    .unwrap_or_else(|err| panic!("local node: {err}"))
            })
            .await
    }

    /// Builds the image (cached) and starts a node of its own; stopped when dropped.
    pub async fn start() -> Result<Node, Error> {
        let image = std::env::var("AZURE_DRIVER_IMAGE").unwrap_or_else(|_| DEFAULT_IMAGE.into());
        let began = Instant::now();
        let build_script = crate::repo_root().join("e2e/scripts/build-image.sh");
        let archives = {
            let (script, image) = (build_script.clone(), image.clone());
            tokio::task::spawn_blocking(move || {
                Command::new(&script)
                    .env("AZURE_DRIVER_IMAGE", image)
                    .stderr(Stdio::inherit())
                    .output()
            })
            .await
            .expect("running a command does not panic")
            .map_err(|source| Error::Spawn {
                script: build_script.clone(),
                source,
            })?
        };
        if !archives.status.success() {
            return Err(Error::Script {
                script: build_script,
            });
        }
        let archives: Vec<PathBuf> = String::from_utf8_lossy(&archives.stdout)
            .lines()
            .map(PathBuf::from)
            .collect();
        let image_build = began.elapsed();
        let began = Instant::now();
        let script = crate::repo_root().join("e2e/scripts/node.sh");
        let (control_plane, lines) = ControlPlane::start_script(&script, &archives, 2).await?;
        let host_address = lines[0]
            .parse()
            .map_err(|_| Error::NotReady(script.clone()))?;
        Ok(Node {
            control_plane,
            host_address,
            log_dir: PathBuf::from(&lines[1]),
            image,
            image_build,
            start: began.elapsed(),
        })
    }

    /// The host's address on the node's network: pods reach what listens there.
    pub fn host_address(&self) -> IpAddr {
        self.host_address
    }

    /// The product image (`repository:tag`) loaded on the node.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The directory with the logs of containerd, the kubelet, kube-proxy and (under
    /// `control-plane/`) the control plane.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// How long building (or finding cached) the image took.
    pub fn image_build_time(&self) -> Duration {
        self.image_build
    }

    /// How long the cluster took from start to a Ready node with the image loaded.
    pub fn start_time(&self) -> Duration {
        self.start
    }

    /// The main process of the container with CRI id `container_id` (the part of a pod's
    /// `containerStatuses[].containerID` after `containerd://`), as the kernel sees it.
    pub fn container_process(&self, container_id: &str) -> std::io::Result<ContainerProcess> {
        let output = Command::new("ctr")
            .arg("--address")
            .arg(self.log_dir.join("containerd.sock"))
            .args(["-n", "k8s.io", "tasks", "ls"])
            .output()?;
        let tasks = String::from_utf8_lossy(&output.stdout);
        let pid: u32 = tasks
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next()? == container_id).then(|| fields.next()?.parse().ok())?
            })
            .next()
            .ok_or_else(|| std::io::Error::other(format!("no task {container_id}")))?;
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let status = std::fs::read_to_string(proc.join("status"))?;
        let uids = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .map(|ids| ids.split_whitespace().filter_map(|id| id.parse().ok()))
            .into_iter()
            .flatten()
            .collect();
        // mountinfo: id parent major:minor root mount-point options ...
        let mountinfo = std::fs::read_to_string(proc.join("mountinfo"))?;
        let mounts: Vec<(String, String)> = mountinfo
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                Some((fields.get(4)?.to_string(), fields.get(5)?.to_string()))
            })
            .collect();
        let read_only_root = mounts
            .iter()
            .any(|(point, options)| point == "/" && options.split(',').any(|o| o == "ro"));
        let environment = std::fs::read(proc.join("environ"))?
            .split(|byte| *byte == 0)
            .filter(|entry| !entry.is_empty())
            .map(|entry| String::from_utf8_lossy(entry).into_owned())
            .collect();
        Ok(ContainerProcess {
            pid,
            uids,
            read_only_root,
            mounts: mounts.into_iter().map(|(point, _)| point).collect(),
            environment,
        })
    }
}

impl Deref for Node {
    type Target = ControlPlane;

    fn deref(&self) -> &ControlPlane {
        &self.control_plane
    }
}
