//! The cluster writes behind a request: a Create's object (conditioned on the version
//! the request was decided on), its Secrets and the answer to a request it replaces; a
//! Delete's record and deletions.

use crds::AzureResource;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::api::Shim;
use crate::completion::{object_request_id, superseded};
use crate::error::{ApiError, kube_error};
use crate::kafka::{Envelope, ResultMessage};
use crate::lean::Lean;
use crate::mapping::{
    ANNOTATION_REQUEST, ANNOTATION_RESOURCE_ID, ANNOTATION_RESOURCE_NAME, AdoptedEntry, ApplyPlan,
    DeleteTarget, FIELD_MANAGER, LABEL_RESOURCE_ID, PendingRequest, adopt_for_delete, authorise,
    entry_to_adopt, object_name, request_id, topology_arm_id, topology_entry_name, topology_id,
};
use crate::reporter::publish_once;
use crate::request::{ExecuteRequest, Lifecycle};

/// The write of a request's object, conditioned on the object the request was decided on
/// (from the watch cache, or read): whatever changed in between fails it with 409 and
/// nothing else was written before it.
#[derive(Debug, Clone)]
pub enum ObjectWrite {
    /// There was no object: create it (409 if one exists by now).
    Create(Lean),
    /// Replace the object as of its resourceVersion (409 if it changed since): the spec
    /// becomes the request's exactly; labels and annotations are merged into the existing
    /// ones (but for the exact-value annotations, which the request writes when it needs
    /// them); finalizers and owner references stay as they are.
    Replace(Lean),
}

impl ObjectWrite {
    pub fn of(existing: Option<&AzureResource>, desired: &AzureResource) -> Self {
        let Some(existing) = existing else {
            return ObjectWrite::Create(Lean(desired.clone()));
        };
        let mut object = desired.clone();
        let metadata = &mut object.metadata;
        metadata.resource_version = existing.metadata.resource_version.clone();
        metadata.uid = existing.metadata.uid.clone();
        metadata.finalizers = existing.metadata.finalizers.clone();
        metadata.owner_references = existing.metadata.owner_references.clone();
        for (merged, kept) in [
            (&mut metadata.labels, &existing.metadata.labels),
            (&mut metadata.annotations, &existing.metadata.annotations),
        ] {
            let mut all = kept.clone().unwrap_or_default();
            // Kept, one could outlive a name that a label holds unchanged by now.
            all.remove(ANNOTATION_RESOURCE_ID);
            all.remove(ANNOTATION_RESOURCE_NAME);
            all.extend(merged.take().unwrap_or_default());
            *merged = (!all.is_empty()).then_some(all);
        }
        object.status = None;
        ObjectWrite::Replace(Lean(object))
    }
}

/// Whether the apiserver refused a write because the object is no longer the one the
/// request was decided on (it exists by now, or changed).
pub fn precondition_failed(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

/// How an attempt at [`Shim::apply`] ended without writing the object.
#[derive(Debug)]
enum Attempt {
    /// The object was not what the attempt decided on (a stale cache): decide again.
    Stale,
    /// An answer for the caller.
    Refused(ApiError),
}

impl From<ApiError> for Attempt {
    fn from(err: ApiError) -> Self {
        Attempt::Refused(err)
    }
}

impl Attempt {
    fn from_kube(err: kube::Error, what: &str) -> Self {
        if precondition_failed(&err) {
            Attempt::Stale
        } else {
            Attempt::Refused(kube_error(err, what))
        }
    }
}

fn credentials_digest(credentials: &Secret) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(&credentials.string_data).unwrap_or_default(),
    ))
}

impl Shim {
    /// Writes a validated plan: authorise against the resource's objects, dry-run the
    /// object (when anything is written before it), then the Secrets, the earlier
    /// request's result, the object. Whatever the shim or the apiserver refuses before the
    /// object's apply leaves everything as it was. The object is looked up in the watch
    /// cache; every write is conditioned on what was looked at, and a failed condition
    /// (a stale cache) decides again on the apiserver's copy.
    /// Answers the request id and the ARM id the resource's topology entry holds.
    pub(crate) async fn apply(
        &self,
        req: &ExecuteRequest,
        plan: ApplyPlan,
        pending: &PendingRequest,
        owner: &str,
    ) -> Result<(String, Option<String>), ApiError> {
        let name = plan.resource.name_any();
        if let Some(cached) = self.cached(&name) {
            match self
                .apply_on(req, plan.clone(), pending, owner, cached)
                .await
            {
                Err(Attempt::Stale) => {
                    self.metrics.stale_cache.inc();
                }
                Err(Attempt::Refused(err)) => return Err(err),
                Ok(done) => return Ok(done),
            }
        }
        let existing = self.get(&name).await?;
        self.apply_on(req, plan, pending, owner, existing)
            .await
            .map_err(|attempt| match attempt {
                Attempt::Refused(err) => err,
                Attempt::Stale => ApiError::unavailable(format!(
                    "{name} changed while this request was recorded; retry"
                )),
            })
    }

    /// [`Shim::apply`] decided on `existing`, the object as last seen.
    async fn apply_on(
        &self,
        req: &ExecuteRequest,
        plan: ApplyPlan,
        pending: &PendingRequest,
        owner: &str,
        existing: Option<AzureResource>,
    ) -> Result<(String, Option<String>), Attempt> {
        let name = plan.resource.name_any();
        let primary_name = object_name(&req.system.resource_id, &Lifecycle::Create);
        // The primary is not written here, so no precondition covers it: read it.
        let primary = if primary_name == name {
            None
        } else {
            self.get(&primary_name).await?
        };
        authorise(owner, &existing.iter().chain(&primary).collect::<Vec<_>>())?;
        if let Some(existing) = &existing
            && existing.metadata.deletion_timestamp.is_some()
        {
            return Err(ApiError::unavailable(format!(
                "{name} is being deleted; retry once its Delete completed"
            ))
            .into());
        }
        let mut write = ObjectWrite::of(existing.as_ref(), &plan.resource);
        let replaced = existing
            .as_ref()
            .is_some_and(|e| superseded(e, &pending.uuid).is_some());
        let credentials_due = plan
            .credentials
            .as_ref()
            .is_some_and(|c| !self.credentials_applied(c));
        if credentials_due || plan.secure_parameters.is_some() || replaced {
            // Writes come before the object's: the apiserver judges the object first.
            self.write_object(&write, true)
                .await
                .map_err(|err| Attempt::from_kube(err, "AzureResource"))?;
        }

        if let Some(credentials) = &plan.credentials {
            self.apply_credentials(credentials).await?;
        }
        let unowned_parameters = self
            .apply_secure_parameters(plan.secure_parameters, existing.as_ref())
            .await?;
        if let Some(existing) = &existing
            && let Some(answered) = self.answer_superseded(existing, pending).await?
        {
            // Answering wrote the object: the next write expects that version.
            write = ObjectWrite::of(Some(&answered), &plan.resource);
        }
        let applied = self
            .write_object(&write, false)
            .await
            .map_err(|err| Attempt::from_kube(err, "AzureResource"))?;
        if let Some(secret) = unowned_parameters {
            // A new object's uid exists only now; the Secret had to be there before the
            // controller could read it.
            let owned =
                json!({"metadata": {"ownerReferences": [applied.controller_owner_ref(&())]}});
            self.secrets()
                .patch(
                    &secret.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&owned),
                )
                .await
                .map_err(|err| kube_error(err, "Secret"))?;
        }
        Ok((object_request_id(&applied, pending), topology_id(&applied)))
    }

    /// Applies the secure parameters' Secret, owned by the existing object when there is
    /// one; answers the Secret when it still needs its owner (a new object).
    async fn apply_secure_parameters(
        &self,
        secret: Option<Secret>,
        existing: Option<&AzureResource>,
    ) -> Result<Option<Secret>, ApiError> {
        let Some(mut secret) = secret else {
            return Ok(None);
        };
        if let Some(existing) = existing {
            secret.metadata.owner_references = existing.controller_owner_ref(&()).map(|r| vec![r]);
        }
        self.secrets()
            .patch(
                &secret.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .map_err(|err| kube_error(err, "Secret"))?;
        Ok(existing.is_none().then_some(secret))
    }

    /// One request: the object's create or conditioned replace (or its dry run).
    async fn write_object(
        &self,
        write: &ObjectWrite,
        dry_run: bool,
    ) -> Result<AzureResource, kube::Error> {
        let params = PostParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        let written = match write {
            ObjectWrite::Create(object) => self.resources().create(&params, object).await,
            ObjectWrite::Replace(object) => {
                self.resources()
                    .replace(&object.0.name_any(), &params, object)
                    .await
            }
        };
        written.map(|Lean(object)| object)
    }

    async fn get(&self, name: &str) -> Result<Option<AzureResource>, ApiError> {
        self.resources()
            .get_opt(name)
            .await
            .map(|found| found.map(|Lean(object)| object))
            .map_err(|err| kube_error(err, "AzureResource"))
    }

    /// Whether this replica applied the same content to this credentials Secret already.
    fn credentials_applied(&self, credentials: &Secret) -> bool {
        self.applied_credentials
            .lock()
            .expect("credentials cache")
            .get(&credentials.name_any())
            == Some(&credentials_digest(credentials))
    }

    /// Applies a credentials Secret unless this replica applied the same content already.
    async fn apply_credentials(&self, credentials: &Secret) -> Result<(), ApiError> {
        if self.credentials_applied(credentials) {
            return Ok(());
        }
        let name = credentials.name_any();
        let digest = credentials_digest(credentials);
        self.secrets()
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(credentials),
            )
            .await
            .map_err(|err| kube_error(err, "Secret"))?;
        self.applied_credentials
            .lock()
            .expect("credentials cache")
            .insert(name, digest);
        Ok(())
    }

    pub(crate) async fn delete(
        &self,
        req: &ExecuteRequest,
        target: DeleteTarget,
        pending: &PendingRequest,
        owner: &str,
    ) -> Result<String, ApiError> {
        let api = self.resources();
        let (objects, whole_resource) = match &target {
            DeleteTarget::Resource { resource_id_label } => {
                let list = api
                    .list(
                        &ListParams::default()
                            .labels(&format!("{LABEL_RESOURCE_ID}={resource_id_label}")),
                    )
                    .await
                    .map_err(|err| kube_error(err, "AzureResource list"))?;
                (
                    list.items.into_iter().map(|Lean(o)| o).collect::<Vec<_>>(),
                    true,
                )
            }
            DeleteTarget::Object { name, previous, .. } => {
                let mut object = self.get(name).await?;
                if let (None, Some(previous)) = (&object, previous) {
                    object = self
                        .get(&previous.name)
                        .await?
                        .filter(|o| previous.matches(o));
                }
                (object.into_iter().collect(), false)
            }
        };
        authorise(owner, &objects.iter().collect::<Vec<_>>())?;
        let primary = object_name(&req.system.resource_id, &Lifecycle::Create);
        let Some(reporter) = objects
            .iter()
            .find(|o| o.name_any() == primary)
            .or_else(|| objects.first())
        else {
            return match entry_to_adopt(req, &target) {
                Some(adopted) => self.delete_adopted(req, pending, owner, &adopted).await,
                None => self.report_gone(req, pending, whole_resource).await,
            };
        };
        self.answer_superseded(reporter, pending).await?;
        let record = json!({"metadata": {"annotations": {
            ANNOTATION_REQUEST: serde_json::to_string(pending).map_err(|e| ApiError::internal(e.to_string()))?
        }}});
        let recorded = api
            .patch(
                &reporter.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&record),
            )
            .await
            .map(|Lean(object)| object)
            .map_err(|err| kube_error(err, "AzureResource"))?;
        for object in &objects {
            match api
                .delete(&object.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(kube_error(err, "AzureResource delete")),
            }
        }
        Ok(object_request_id(&recorded, pending))
    }

    /// A request about to replace one on `object` that has no result yet: that one gets
    /// its FAILED first, so that no accepted request goes unanswered. Nothing is written
    /// when this fails (the caller answers 503 and Brent retries). Answers the object as
    /// the answer left it, if it wrote one.
    async fn answer_superseded(
        &self,
        object: &AzureResource,
        pending: &PendingRequest,
    ) -> Result<Option<AzureResource>, ApiError> {
        let Some(outcome) = superseded(object, &pending.uuid) else {
            return Ok(None);
        };
        let published = publish_once(
            &self.resources(),
            &self.publisher,
            &self.metrics,
            &pending.uuid,
            object,
            &outcome,
        )
        .await
        .map_err(|err| {
            warn!(error = %err, "the result of a replaced request could not be published");
            ApiError::unavailable("the earlier request's result could not be published; retry")
        })?;
        match published {
            Some(answered) => Ok(Some(answered)),
            None => Err(ApiError::unavailable(
                "the resource changed while this request was recorded; retry",
            )),
        }
    }

    /// Delete or removal of something with no object whose ARM id Brent holds (made by
    /// the Python driver, or deleted before): an object adopting that id is created and
    /// deleted, so the controller removes it from Azure with the caller's credentials and
    /// the result is reported like any delete.
    async fn delete_adopted(
        &self,
        req: &ExecuteRequest,
        pending: &PendingRequest,
        owner: &str,
        adopted: &AdoptedEntry,
    ) -> Result<String, ApiError> {
        let plan = adopt_for_delete(req, &self.mapping, pending, adopted)?;
        let name = plan.resource.name_any();
        let (request_id, _) = self.apply(req, plan, pending, owner).await?;
        match self
            .resources()
            .delete(&name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(request_id),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(request_id),
            Err(err) => Err(kube_error(err, "AzureResource delete")),
        }
    }

    /// Delete of something with no object and no ARM id in the topology: COMPLETE,
    /// published before answering so the result cannot be lost.
    async fn report_gone(
        &self,
        req: &ExecuteRequest,
        pending: &PendingRequest,
        whole_resource: bool,
    ) -> Result<String, ApiError> {
        let entry = topology_entry_name(&req.system.resource_name);
        let arm_id = topology_arm_id(req).unwrap_or_else(|| req.system.resource_id.clone());
        let request_id = request_id(&pending.lifecycle, &arm_id, &pending.uuid);
        let mut topology = Map::new();
        if whole_resource {
            topology.insert(entry, Value::Null);
        }
        let message = ResultMessage::complete(request_id.clone(), Map::new(), topology);
        let envelope = Envelope {
            tenant_id: pending.tenant_id.clone(),
            trace: pending.trace.clone(),
        };
        self.publisher
            .publish(&message, &envelope)
            .await
            .map_err(|err| {
                warn!(error = %err, "result of a delete without objects could not be published");
                ApiError::unavailable("Kafka is unavailable; retry the request")
            })?;
        self.metrics.record_result(&message.status);
        Ok(request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(value: Value) -> AzureResource {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_object_write_is_conditioned_on_what_the_request_saw() {
        let desired = resource(json!({
            "apiVersion": "azure-driver.io/v1alpha1", "kind": "AzureResource",
            "metadata": {"name": "r-1", "labels": {"a": "new"},
                         "annotations": {"azure-driver.io/request": "{\"uuid\":\"2\"}"}},
            "spec": {"resourceGroup": "rg", "template": {"bicep": "param p string"},
                     "parameters": {"p": "1"}}
        }));
        let ObjectWrite::Create(Lean(created)) = ObjectWrite::of(None, &desired) else {
            panic!("no object: a create, which fails if one exists by now");
        };
        assert_eq!(created.metadata.resource_version, None);

        let existing = resource(json!({
            "apiVersion": "azure-driver.io/v1alpha1", "kind": "AzureResource",
            "metadata": {"name": "r-1", "resourceVersion": "41", "uid": "u1",
                         "finalizers": ["azure-driver.io/cleanup"],
                         "labels": {"a": "old", "b": "kept"},
                         "annotations": {"azure-driver.io/request": "{\"uuid\":\"1\"}",
                                         "azure-driver.io/resource-name": "Old name",
                                         "azure-driver.io/check-drift": "x"}},
            "spec": {"resourceGroup": "rg", "parameters": {"p": "0", "gone": "1"}},
            "status": {"phase": "Ready"}
        }));
        let ObjectWrite::Replace(Lean(replaced)) = ObjectWrite::of(Some(&existing), &desired)
        else {
            panic!("an object: a replace of the version seen");
        };
        let metadata = &replaced.metadata;
        assert_eq!(metadata.resource_version.as_deref(), Some("41"));
        assert_eq!(metadata.uid.as_deref(), Some("u1"));
        assert_eq!(metadata.finalizers, existing.metadata.finalizers);
        let labels = metadata.labels.as_ref().unwrap();
        assert_eq!(
            (labels["a"].as_str(), labels["b"].as_str()),
            ("new", "kept")
        );
        let annotations = metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations["azure-driver.io/request"], "{\"uuid\":\"2\"}");
        assert_eq!(annotations["azure-driver.io/check-drift"], "x");
        assert!(
            !annotations.contains_key(ANNOTATION_RESOURCE_NAME),
            "the request's name fits its label: no exact-value annotation"
        );
        assert_eq!(
            replaced.spec, desired.spec,
            "the spec is the request's exactly"
        );
        assert!(replaced.status.is_none());
    }
}
