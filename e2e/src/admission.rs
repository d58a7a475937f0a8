//! What the admission tests apply with `kubectl` (on the local control plane and on the
//! node): an object whose Bicep does not compile, one that does, and the checks of the
//! webhook's refusal.

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::ControlPlane;

/// A storage account whose `sku` object is never closed.
pub const BROKEN_BICEP: &str = "param name string
resource storage 'Microsoft.Storage/storageAccounts@2023-01-01' = {
  name: name
  location: resourceGroup().location
  sku: { name: 'Standard_LRS'
  kind: 'StorageV2'
}
";

/// A storage account with a required `name` and an allowed-values `sku`.
pub const VALID_BICEP: &str = "@allowed(['Standard_LRS', 'Standard_GRS'])
param sku string = 'Standard_LRS'
param name string
resource storage 'Microsoft.Storage/storageAccounts@2023-01-01' = {
  name: name
  location: resourceGroup().location
  sku: { name: sku }
  kind: 'StorageV2'
}
";

/// An `AzureResource` with inline Bicep, labelled `azure-driver.io/admission-test:
/// <namespace>` (a test's own webhook configuration selects on it).
pub fn manifest(name: &str, namespace: &str, bicep: &str, parameters: &str) -> String {
    let indented: String = bicep.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "apiVersion: azure-driver.io/v1alpha1
kind: AzureResource
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    azure-driver.io/admission-test: {namespace}
spec:
  resourceGroup: rg-{name}
  location: westeurope
  template:
    bicep: |
{indented}  parameters: {parameters}
"
    )
}

/// `kubectl apply -f -` of `yaml`.
pub fn kubectl_apply(cp: &ControlPlane, yaml: &str) -> Output {
    let mut child = cp
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(yaml.as_bytes())
        .expect("kubectl reads the manifest");
    child.wait_with_output().expect("kubectl finishes")
}

/// Applies the object `name` until the webhook refuses it, and returns kubectl's stderr.
/// Until the apiserver has loaded the configuration and reaches the webhook, objects are
/// admitted unchecked (`failurePolicy: Ignore`): each admitted one is deleted again.
pub async fn apply_until_refused(
    cp: &ControlPlane,
    yaml: &str,
    name: &str,
    namespace: &str,
    within: Duration,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let output = kubectl_apply(cp, yaml);
        if !output.status.success() {
            return String::from_utf8_lossy(&output.stderr).into_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} was still admitted after {within:?}"
        );
        cp.kubectl()
            .args(["delete", "azr", name, "-n", namespace, "--wait=false"])
            .output()
            .expect("kubectl runs");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Asserts that `stderr` is the webhook's refusal naming a `main.bicep:LINE:COL`.
pub fn assert_refused_with_position(stderr: &str) {
    assert!(stderr.contains("denied the request"), "{stderr}");
    let position = stderr.split("main.bicep:").nth(1).and_then(|rest| {
        let mut parts = rest.splitn(3, ':');
        Some((
            parts.next()?.parse::<usize>().ok()?,
            parts.next()?.parse::<usize>().ok()?,
        ))
    });
    assert!(position.is_some(), "no main.bicep:line:column in {stderr}");
}
