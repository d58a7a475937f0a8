//! `AzureResource` objects as the shim reads them from the apiserver: without their
//! `managedFields`. No decision of the shim reads them, and they cost more to decode than
//! the rest of the object (each manager's field set is a tree of JSON maps); skipped, they
//! are only scanned. Every object the shim reads (its watch, the answers to its writes,
//! lists) comes through [`Lean`].

use std::collections::BTreeMap;

use crds::{AzureResource, AzureResourceSpec, AzureResourceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use kube::runtime::watcher::Event;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `AzureResource` read without its `managedFields`; written as the object it holds.
#[derive(Clone, Debug)]
pub struct Lean(pub AzureResource);

/// The wire form [`Lean`] reads: the fields of `ObjectMeta` but `managedFields` and
/// `selfLink` (unknown fields are skipped without being decoded).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanObject {
    metadata: LeanMeta,
    spec: AzureResourceSpec,
    #[serde(default)]
    status: Option<AzureResourceStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct LeanMeta {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    uid: Option<String>,
}

impl From<LeanMeta> for ObjectMeta {
    fn from(meta: LeanMeta) -> Self {
        ObjectMeta {
            annotations: meta.annotations,
            creation_timestamp: meta.creation_timestamp,
            deletion_grace_period_seconds: meta.deletion_grace_period_seconds,
            deletion_timestamp: meta.deletion_timestamp,
            finalizers: meta.finalizers,
            generate_name: meta.generate_name,
            generation: meta.generation,
            labels: meta.labels,
            name: meta.name,
            namespace: meta.namespace,
            owner_references: meta.owner_references,
            resource_version: meta.resource_version,
            uid: meta.uid,
            managed_fields: None,
            self_link: None,
        }
    }
}

impl<'de> Deserialize<'de> for Lean {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = LeanObject::deserialize(deserializer)?;
        let mut resource = AzureResource::new("", object.spec);
        resource.metadata = object.metadata.into();
        resource.status = object.status;
        Ok(Lean(resource))
    }
}

impl Serialize for Lean {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl Resource for Lean {
    crds::azure_resource_kind!();

    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

/// A watch event of [`Lean`] objects as one of the objects they hold.
pub fn event_object(event: Event<Lean>) -> Event<AzureResource> {
    match event {
        Event::Apply(Lean(object)) => Event::Apply(object),
        Event::Delete(Lean(object)) => Event::Delete(object),
        Event::InitApply(Lean(object)) => Event::InitApply(object),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn as_the_apiserver_sends_it() -> serde_json::Value {
        json!({
            "apiVersion": "azure-driver.io/v1alpha1",
            "kind": "AzureResource",
            "metadata": {
                "name": "r-1",
                "namespace": "ns",
                "uid": "u-1",
                "resourceVersion": "42",
                "generation": 3,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "deletionTimestamp": "2026-01-02T00:00:00Z",
                "deletionGracePeriodSeconds": 0,
                "labels": {"a": "b"},
                "annotations": {"c": "d"},
                "finalizers": ["f"],
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "ou"}],
                "selfLink": "/apis/azure-driver.io/v1alpha1/namespaces/ns/azureresources/r-1",
                "managedFields": [{
                    "manager": "azure-driver-shim",
                    "operation": "Update",
                    "apiVersion": "azure-driver.io/v1alpha1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:parameters": {".": {}, "f:x": {}}}}
                }]
            },
            "spec": {
                "resourceGroup": "rg",
                "template": {"bicep": "param x string"},
                "parameters": {"x": "y"}
            },
            "status": {"phase": "Ready", "observedGeneration": 3}
        })
    }

    #[test]
    fn reads_everything_but_managed_fields_and_self_link() {
        let wire = as_the_apiserver_sends_it();
        let Lean(lean) = serde_json::from_value(wire.clone()).unwrap();
        let mut whole: AzureResource = serde_json::from_value(wire).unwrap();
        assert!(whole.metadata.managed_fields.is_some());
        whole.metadata.managed_fields = None;
        whole.metadata.self_link = None;
        assert_eq!(
            serde_json::to_value(&lean).unwrap(),
            serde_json::to_value(&whole).unwrap()
        );
    }

    #[test]
    fn writes_the_object_it_holds() {
        let Lean(object) = serde_json::from_value(as_the_apiserver_sends_it()).unwrap();
        assert_eq!(
            serde_json::to_value(Lean(object.clone())).unwrap(),
            serde_json::to_value(&object).unwrap()
        );
    }

    #[test]
    fn an_object_without_a_valid_spec_is_refused() {
        let mut wire = as_the_apiserver_sends_it();
        wire["spec"]["template"] = json!({"bicep": 1});
        assert!(serde_json::from_value::<Lean>(wire).is_err());
    }
}
