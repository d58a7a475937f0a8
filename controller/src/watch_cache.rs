//! What the controller's watch cache keeps of an object: a [`CachedResource`], only what
//! triggering, routing, the retry policy and the finalizer step look at. Each object is
//! read whole from the watch and reduced at once; a reconcile that goes on to ARM reads
//! the whole object with one GET (which also gives it the newest status). Kept whole (even
//! without templates, parameters and managed fields) an object costs more than 1 KiB in
//! memory for fields no decision in the cache reads; at 100,000 objects that decides whether
//! the controller fits its memory limit (measured: controller README, "Scale").

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
};

use crds::AzureResource;
use kube::{
    Resource,
    core::{DeserializeGuard, ObjectMeta},
    runtime::watcher::Event,
};
use serde::Deserialize;

use crate::dereference::{InputKind, referenced_inputs};

/// What the watch cache keeps of an `AzureResource` (valid or not).
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "DeserializeGuard<AzureResource>")]
pub struct CachedResource {
    /// Name, namespace, uid, resource version (the watch resumes from it), generation,
    /// finalizers and deletion timestamp; nothing else.
    pub metadata: ObjectMeta,
    /// The Secrets and ConfigMaps it refers to: their changes reconcile it.
    pub inputs: Box<[(InputKind, String)]>,
    /// `status.failures`: the retry policy backs off by it.
    pub failures: u32,
    /// Why the object cannot be read as an `AzureResource`; it is then only reported.
    pub invalid: Option<String>,
}

impl From<DeserializeGuard<AzureResource>> for CachedResource {
    fn from(guard: DeserializeGuard<AzureResource>) -> Self {
        match guard.0 {
            Ok(object) => CachedResource {
                inputs: referenced_inputs(&object.spec).into_boxed_slice(),
                failures: object.status.map_or(0, |status| status.failures),
                metadata: decision_metadata(object.metadata),
                invalid: None,
            },
            Err(invalid) => CachedResource {
                metadata: decision_metadata(invalid.metadata),
                inputs: Box::default(),
                failures: 0,
                invalid: Some(invalid.error),
            },
        }
    }
}

impl Resource for CachedResource {
    crds::azure_resource_kind!();

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl CachedResource {
    /// What the controller's queue is handed for this object: its name and namespace
    /// only. The reconcile reads the object from the store by them; a uid and resource
    /// version in the queue's references (two copies per object waiting for its next
    /// check) would cost about 150 bytes per Ready object.
    pub fn trigger(&self) -> CachedResource {
        CachedResource {
            metadata: ObjectMeta {
                name: self.metadata.name.clone(),
                namespace: self.metadata.namespace.clone(),
                ..ObjectMeta::default()
            },
            inputs: Box::default(),
            failures: 0,
            invalid: None,
        }
    }
}

/// The metadata fields the cache's users read.
fn decision_metadata(metadata: ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        resource_version: metadata.resource_version,
        generation: metadata.generation,
        finalizers: metadata.finalizers,
        deletion_timestamp: metadata.deletion_timestamp,
        ..ObjectMeta::default()
    }
}

/// Which watch events reconcile their object: a new object, or a change of its
/// generation (spec, deletion) or finalizers. Status-only changes (our own writes) must
/// not, as that would poll ARM before its `Retry-After`. Unlike kube-runtime's predicate
/// filter, which keeps each object's name, namespace and uid as strings, this keeps two
/// hashes per object (about 32 bytes instead of about 200).
#[derive(Default)]
pub struct Triggers {
    /// By hash of namespace, name and uid.
    seen: HashMap<u64, Seen>,
}

struct Seen {
    /// Hash of generation and finalizers.
    trigger: u64,
    /// Listed by the latest relist (entries not listed are of objects deleted meanwhile).
    listed: bool,
}

impl Triggers {
    /// Whether `event` reconciles its object; keeps what later events are compared with.
    pub fn observe<K: Resource>(&mut self, event: &Event<K>) -> bool {
        match event {
            Event::Apply(object) => self.changed(object.meta(), false),
            Event::InitApply(object) => self.changed(object.meta(), true),
            Event::Delete(object) => {
                self.seen.remove(&identity(object.meta()));
                false
            }
            Event::Init => {
                for seen in self.seen.values_mut() {
                    seen.listed = false;
                }
                false
            }
            Event::InitDone => {
                self.seen.retain(|_, seen| seen.listed);
                false
            }
        }
    }

    fn changed(&mut self, meta: &ObjectMeta, listed: bool) -> bool {
        let mut hasher = DefaultHasher::new();
        meta.generation.hash(&mut hasher);
        meta.finalizers.hash(&mut hasher);
        let trigger = hasher.finish();
        let previous = self
            .seen
            .insert(identity(meta), Seen { trigger, listed })
            .map(|seen| seen.trigger);
        previous != Some(trigger)
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// An object's namespace, name and uid (a new object under an old name is another one).
fn identity(meta: &ObjectMeta) -> u64 {
    let mut hasher = DefaultHasher::new();
    meta.namespace.hash(&mut hasher);
    meta.name.hash(&mut hasher);
    meta.uid.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector::Lookup;
    use serde_json::json;

    use super::*;

    /// Annotation `kubectl apply` leaves behind: a copy of the whole object.
    const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

    fn object(template: serde_json::Value) -> AzureResource {
        serde_json::from_value(json!({
            "apiVersion": "azure-driver.io/v1alpha1",
            "kind": "AzureResource",
            "metadata": {
                "name": "a", "namespace": "ns", "uid": "u1", "generation": 2,
                "finalizers": [crds::CLEANUP_FINALIZER],
                "annotations": {
                    LAST_APPLIED: "{\"spec\": \"a copy\"}",
                    crds::CHECK_DRIFT_ANNOTATION: "now-1"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]
            },
            "spec": {
                "resourceGroup": "rg",
                "template": template,
                "parameters": {"blob": "x".repeat(4096)},
                "parametersFrom": [{"name": "p", "secretKeyRef": {"name": "s", "key": "k"}}]
            },
            "status": {
                "phase": "Ready", "observedGeneration": 2, "appliedHash": "h", "failures": 1,
                "outputs": {"big": "y".repeat(4096)},
                "resources": ["/subscriptions/x/resourceGroups/rg/providers/a/b/c"]
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_cache_keeps_references_and_decision_fields_only() {
        let o = object(json!({"bicep": "param p string\n".repeat(100)}));
        let references = referenced_inputs(&o.spec);
        let cached = CachedResource::from(DeserializeGuard(Ok(o)));
        assert_eq!(cached.metadata.managed_fields, None);
        assert_eq!(cached.metadata.annotations, None);
        assert_eq!(cached.metadata.finalizers.as_ref().unwrap().len(), 1);
        assert_eq!(cached.metadata.generation, Some(2));
        assert_eq!(cached.metadata.uid.as_deref(), Some("u1"));
        assert_eq!(&*cached.inputs, references.as_slice());
        assert_eq!(cached.failures, 1);
        assert_eq!(cached.invalid, None);
    }

    #[test]
    fn a_trigger_names_the_object_and_nothing_else() {
        let o = object(json!({"json": {"resources": []}}));
        let cached = CachedResource::from(DeserializeGuard(Ok(o)));
        let trigger = cached.trigger();
        assert_eq!(trigger.to_object_ref(()), cached.to_object_ref(()));
        assert_eq!(trigger.metadata.uid, None);
        assert_eq!(trigger.metadata.resource_version, None);
        assert_eq!(trigger.metadata.finalizers, None);
        assert!(trigger.inputs.is_empty());
    }

    #[test]
    fn a_template_in_a_config_map_stays_a_reference() {
        let o = object(json!({"configMapKeyRef": {"name": "t", "key": "main.bicep"}}));
        let cached = CachedResource::from(DeserializeGuard(Ok(o)));
        assert!(
            cached
                .inputs
                .contains(&(InputKind::ConfigMap, "t".to_owned()))
        );
        assert!(cached.inputs.contains(&(InputKind::Secret, "s".to_owned())));
    }

    #[test]
    fn the_watch_deserializes_objects_valid_or_not_into_the_cache() {
        let valid = object(json!({"json": {"resources": []}}));
        let cached: CachedResource = serde_json::from_value(json!(valid)).unwrap();
        assert_eq!(cached.invalid, None);
        assert_eq!(cached.metadata.name.as_deref(), Some("a"));
        assert_eq!(cached.failures, 1);

        let mut invalid = json!(valid);
        invalid["spec"]["resourceGroup"] = json!(["not", "a", "name"]);
        let cached: CachedResource = serde_json::from_value(invalid).unwrap();
        assert!(cached.invalid.is_some());
        assert_eq!(cached.metadata.name.as_deref(), Some("a"));
        assert!(cached.inputs.is_empty());
    }

    fn meta(name: &str, uid: &str, generation: i64, finalizers: &[&str]) -> AzureResource {
        let mut o = object(json!({"json": {"resources": []}}));
        o.metadata.name = Some(name.into());
        o.metadata.uid = Some(uid.into());
        o.metadata.generation = Some(generation);
        o.metadata.finalizers = Some(finalizers.iter().map(|f| (*f).to_owned()).collect());
        o
    }

    #[test]
    fn only_new_objects_and_generation_or_finalizer_changes_trigger() {
        let mut triggers = Triggers::default();
        let first = meta("a", "u1", 1, &[]);
        assert!(triggers.observe(&Event::Apply(first.clone())));
        let mut status_only = first.clone();
        status_only.status = None;
        status_only.metadata.resource_version = Some("9".into());
        assert!(!triggers.observe(&Event::Apply(status_only)));
        assert!(triggers.observe(&Event::Apply(meta("a", "u1", 1, &["f"]))));
        assert!(triggers.observe(&Event::Apply(meta("a", "u1", 2, &["f"]))));
        assert!(!triggers.observe(&Event::Apply(meta("a", "u1", 2, &["f"]))));
        // The same name again after a deletion is a new object.
        assert!(triggers.observe(&Event::Apply(meta("a", "u2", 2, &["f"]))));
        assert!(triggers.observe(&Event::Apply(meta("b", "u3", 1, &[]))));
        assert!(!triggers.observe(&Event::Delete(meta("b", "u3", 1, &[]))));
        assert!(triggers.observe(&Event::Apply(meta("b", "u3", 1, &[]))));
    }

    #[test]
    fn a_relist_triggers_only_changes_and_forgets_objects_deleted_meanwhile() {
        let mut triggers = Triggers::default();
        for (name, uid) in [("a", "u1"), ("b", "u2"), ("c", "u3")] {
            assert!(triggers.observe(&Event::Apply(meta(name, uid, 1, &["f"]))));
        }
        assert!(!triggers.observe(&Event::<AzureResource>::Init));
        assert!(!triggers.observe(&Event::InitApply(meta("a", "u1", 1, &["f"]))));
        assert!(triggers.observe(&Event::InitApply(meta("b", "u2", 2, &["f"]))));
        assert!(!triggers.observe(&Event::<AzureResource>::InitDone));
        assert_eq!(triggers.len(), 2);
        assert!(triggers.observe(&Event::Apply(meta("c", "u3", 1, &["f"]))));
    }
}
