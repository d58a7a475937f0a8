//! The workspace's binaries as child processes: built with the profile of the running
//! test or benchmark, killed when their handle is dropped.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// A child process that is killed (and reaped) when dropped, so a failing test or a
/// finished benchmark leaves nothing running.
pub struct KilledOnDrop(Child);

impl KilledOnDrop {
    pub fn new(child: Child) -> Self {
        Self(child)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Current resident set of process `pid` in MiB (0 when it is gone).
pub fn rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmRSS:") / 1024.0
}

/// Peak resident set (`VmHWM`) of process `pid` in MiB (0 when it is gone).
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmHWM:") / 1024.0
}

fn status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces),
/// starting at the state; empty when the process is gone.
fn stat_fields(stat_path: &Path) -> Vec<String> {
    std::fs::read_to_string(stat_path)
        .unwrap_or_default()
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// CPU time (user + system) process `pid` has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    static TICKS_PER_SECOND: OnceLock<f64> = OnceLock::new();
    let per_second = *TICKS_PER_SECOND.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    });
    // utime and stime are the 12th and 13th fields after the name, in clock ticks.
    let ticks: f64 = stat_fields(Path::new(&format!("/proc/{pid}/stat")))
        .iter()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    ticks / per_second
}

/// Process `pid` and all its descendants (children, their children, ...) alive now.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // The parent is the second field after the name.
        let parent = stat_fields(&entry.path().join("stat"))
            .get(1)
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(parent) = parent {
            parent_of.push((child, parent));
        }
    }
    let mut tree = vec![pid];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(
            parent_of
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(child, _)| *child),
        );
        next += 1;
    }
    tree
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a child to listen on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("an ephemeral port on 127.0.0.1")
        .port()
}

/// Runs `command` to completion and returns its stdout; panics with its output if it fails.
pub fn run(mut command: Command) -> String {
    let output = command.output().expect("the command runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Builds the binaries of `packages` (with `extra` cargo arguments such as
/// `--example NAME`) into the running executable's target directory and profile, and
/// returns that profile directory (where the binaries are, examples under `examples/`).
pub fn built_binaries(packages: &[&str], extra: &[&str]) -> PathBuf {
    // target/<profile>/deps/<test or bench>-<hash> → target/<profile>
    let profile_dir = std::env::current_exe()
        .expect("the running executable has a path")
        .parent()
        .and_then(Path::parent)
        .expect("the executable lives in <target>/<profile>/deps")
        .to_path_buf();
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--profile", profile, "--bins"]);
    for package in packages {
        cargo.args(["-p", package]);
    }
    let status = cargo
        .args(extra)
        .current_dir(crate::repo_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {packages:?} failed");
    profile_dir
}

/// The first line a child writes to stdout (armsim and the Kafka test broker announce
/// their address there), and the reader for the rest.
pub fn first_line<R: std::io::Read>(stdout: R) -> (String, BufReader<R>) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("the child's stdout is readable");
    (line.trim().to_owned(), reader)
}

/// The `armsim` binary serving HTTPS on an ephemeral port, its CA in `tls_dir`.
pub struct ArmsimProcess {
    pub endpoint: String,
    pub ca_file: PathBuf,
    _process: KilledOnDrop,
}

impl ArmsimProcess {
    pub fn start(bin_dir: &Path, tls_dir: &Path) -> Self {
        Self::start_on(bin_dir, tls_dir, IpAddr::from([127, 0, 0, 1]))
    }

    /// armsim listening on `address` (its certificate is valid for that address too).
    pub fn start_on(bin_dir: &Path, tls_dir: &Path, address: IpAddr) -> Self {
        let mut child = Command::new(bin_dir.join("armsim"))
            .arg("--listen")
            .arg(SocketAddr::new(address, 0).to_string())
            .arg("--tls-dir")
            .arg(tls_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("armsim starts");
        let (endpoint, _) = first_line(child.stdout.take().expect("stdout is piped"));
        Self {
            endpoint,
            ca_file: tls_dir.join("ca.pem"),
            _process: KilledOnDrop::new(child),
        }
    }

    /// The controller binary from `bin_dir` as the only replica (no leader election,
    /// metrics on an ephemeral port) watching `namespace`, against this simulator.
    pub fn lone_controller(&self, bin_dir: &Path, kubeconfig: &Path, namespace: &str) -> Command {
        lone_controller(
            bin_dir,
            kubeconfig,
            namespace,
            &self.endpoint,
            &self.ca_file,
        )
    }
}

/// The controller binary from `bin_dir` as the only replica (no leader election, metrics
/// on an ephemeral port) watching `namespace`, against ARM at `arm_endpoint`.
pub fn lone_controller(
    bin_dir: &Path,
    kubeconfig: &Path,
    namespace: &str,
    arm_endpoint: &str,
    ca_file: &Path,
) -> Command {
    let mut command = controller_command(
        &bin_dir.join("azure-driver-controller"),
        kubeconfig,
        namespace,
        arm_endpoint,
        ca_file,
    );
    command
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--leader-election", "false"]);
    command
}

/// The controller binary watching `namespace` through `kubeconfig`, with ARM (and its
/// token authority) at `arm_endpoint` trusted through `ca_file`; logs at warn to stderr.
/// Callers add the flags their case is about (metrics address, leader election, …).
pub fn controller_command(
    binary: &Path,
    kubeconfig: &Path,
    namespace: &str,
    arm_endpoint: &str,
    ca_file: &Path,
) -> Command {
    let mut command = Command::new(binary);
    command
        .env("KUBECONFIG", kubeconfig)
        .env("AZURE_RESOURCE_MANAGER_ENDPOINT", arm_endpoint)
        .env("AZURE_AUTHORITY_HOST", arm_endpoint)
        .env("AZURE_CA_FILE", ca_file)
        .env("RUST_LOG", "warn")
        .args(["--namespaces", namespace])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_in_its_parents_tree_and_cpu_time_is_read_from_stat() {
        let child = KilledOnDrop::new(Command::new("sleep").arg("30").spawn().unwrap());
        let tree = process_tree(std::process::id());
        assert_eq!(tree[0], std::process::id());
        assert!(tree.contains(&child.id()), "{tree:?}");
        assert!(!process_tree(child.id()).contains(&std::process::id()));

        // Spend some CPU, so that the process has used at least a clock tick.
        let busy_until = std::time::Instant::now() + std::time::Duration::from_millis(200);
        let mut spin = 0u64;
        while std::time::Instant::now() < busy_until {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        assert!(cpu_seconds(std::process::id()) > 0.0);
        assert_eq!(cpu_seconds(u32::MAX), 0.0, "a process that is gone");
    }
}
