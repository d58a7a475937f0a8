//! What the controller's watch cache keeps of an object: only what triggering, routing
//! and the finalizer step look at. The template, parameters, managed fields and most of
//! the status are dropped as events arrive; a reconcile that goes on to ARM reads the
//! whole object with one GET (which also gives it the newest status). Stored objects
//! carry KiBs of managed fields, templates and parameters each; with this the whole
//! process holds about 2.5 KiB per watched object (measured: controller README, "Scale").

use crds::{AzureResource, AzureResourceStatus, TemplateSource};
use kube::core::{DeserializeGuard, ObjectMeta};

/// Annotation `kubectl apply` leaves behind: a copy of the whole object.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Strips a watched object (valid or not) down to what the cache needs.
pub fn strip(guard: &mut DeserializeGuard<AzureResource>) {
    match &mut guard.0 {
        Ok(object) => strip_object(object),
        Err(invalid) => strip_metadata(&mut invalid.metadata),
    }
}

/// Keeps metadata (without managed fields), the spec's references to Secrets and
/// ConfigMaps (which route their changes to the object) and the status fields the
/// retry policy reads; inline templates and parameter values go.
pub fn strip_object(object: &mut AzureResource) {
    strip_metadata(&mut object.metadata);
    let spec = &mut object.spec;
    if matches!(
        spec.template,
        Some(TemplateSource::Bicep(_) | TemplateSource::Json(_))
    ) {
        spec.template = None;
    }
    spec.parameters.clear();
    object.status = object.status.take().map(|status| AzureResourceStatus {
        phase: status.phase,
        observed_generation: status.observed_generation,
        applied_hash: status.applied_hash,
        failures: status.failures,
        ..AzureResourceStatus::default()
    });
}

fn strip_metadata(metadata: &mut ObjectMeta) {
    metadata.managed_fields = None;
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dereference::referenced_inputs;

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
        let mut o = object(json!({"bicep": "param p string\n".repeat(100)}));
        let references = referenced_inputs(&o.spec);
        strip_object(&mut o);
        assert_eq!(o.metadata.managed_fields, None);
        let annotations = o.metadata.annotations.as_ref().unwrap();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert_eq!(annotations[crds::CHECK_DRIFT_ANNOTATION], "now-1");
        assert_eq!(o.metadata.finalizers.as_ref().unwrap().len(), 1);
        assert_eq!(o.metadata.generation, Some(2));
        assert_eq!(o.spec.template, None);
        assert!(o.spec.parameters.is_empty());
        assert_eq!(referenced_inputs(&o.spec), references);
        let status = o.status.as_ref().unwrap();
        assert_eq!(status.phase, Some(crds::Phase::Ready));
        assert_eq!(status.applied_hash.as_deref(), Some("h"));
        assert_eq!(status.failures, 1);
        assert!(status.outputs.is_empty() && status.resources.is_empty());
        assert!(serde_json::to_string(&o).unwrap().len() < 1024);
    }

    #[test]
    fn a_template_in_a_config_map_stays_a_reference() {
        let mut o = object(json!({"configMapKeyRef": {"name": "t", "key": "main.bicep"}}));
        let references = referenced_inputs(&o.spec);
        strip_object(&mut o);
        assert!(matches!(
            o.spec.template,
            Some(TemplateSource::ConfigMapKeyRef(_))
        ));
        assert_eq!(referenced_inputs(&o.spec), references);
    }
}
