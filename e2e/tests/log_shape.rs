//! `LOG_TYPE=logstash` gives one line shape for both binaries: the controller's and the
//! shim's first log line carry the same logstash fields, in the same order, all strings.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::process::{KilledOnDrop, built_binaries, free_port};
use serde_json::{Map, Value};

/// The fields every logstash line has, whatever the event.
const LOGSTASH_FIELDS: [&str; 7] = [
    "@timestamp",
    "@version",
    "message",
    "level",
    "logger_name",
    "thread_name",
    "HOSTNAME",
];

/// A kubeconfig whose apiserver refuses connections: both binaries start and log before
/// they first talk to it.
fn unreachable_kubeconfig(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let server = format!("https://127.0.0.1:{}", free_port());
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    path
}

/// The first JSON line `command` writes to stdout within a minute.
fn first_json_line(mut command: Command) -> Map<String, Value> {
    let mut child = command
        .env("LOG_TYPE", "logstash")
        .env("HOSTNAME", "pod-1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let _child = KilledOnDrop::new(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout is readable");
        if let Ok(Value::Object(map)) = serde_json::from_str(&line) {
            return map;
        }
        assert!(Instant::now() < deadline, "no JSON line within a minute");
    }
    panic!("the binary exited without a JSON log line");
}

/// The logstash fields of `line` in their order, after checking every value is a string.
fn shape(line: &Map<String, Value>) -> Vec<&str> {
    assert!(
        line.values().all(Value::is_string),
        "a value is not a string: {line:?}"
    );
    line.keys()
        .map(String::as_str)
        .filter(|key| LOGSTASH_FIELDS.contains(key))
        .collect()
}

#[test]
fn controller_and_shim_write_the_same_logstash_line_shape() {
    let bin_dir = built_binaries(&["azure-driver-controller", "azure-driver-shim"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = unreachable_kubeconfig(dir.path());

    let mut controller = Command::new(bin_dir.join("azure-driver-controller"));
    controller
        .env("KUBECONFIG", &kubeconfig)
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--leader-election", "false"]);
    let controller_line = first_json_line(controller);

    let config = dir.path().join("azuredriver_config.yml");
    std::fs::write(&config, "{}\n").unwrap();
    let mut shim = Command::new(bin_dir.join("azure-driver-shim"));
    shim.arg("--config")
        .arg(&config)
        .env("KUBECONFIG", &kubeconfig)
        .env("SSL_ENABLED", "false")
        .env("DRIVER_PORT", free_port().to_string())
        .env(
            "KAFKA_BOOTSTRAP_SERVERS",
            format!("127.0.0.1:{}", free_port()),
        );
    let shim_line = first_json_line(shim);

    assert_eq!(
        shape(&controller_line),
        LOGSTASH_FIELDS,
        "{controller_line:?}"
    );
    assert_eq!(shape(&shim_line), LOGSTASH_FIELDS, "{shim_line:?}");
    for line in [&controller_line, &shim_line] {
        assert_eq!(line["@version"], "1");
        assert_eq!(line["HOSTNAME"], "pod-1");
        assert!(line["@timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
