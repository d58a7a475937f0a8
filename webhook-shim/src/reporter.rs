//! The reporter: watches the shim's objects into the [`ObjectCache`] and carries out what
//! [`decide`] says is owed for each (publish a result once, release the finalizer).
//!
//! What it sends is decided by pure functions here (which objects are siblings, which
//! finalizers stay, the claim and reported patches, which objects a sweep looks at
//! again); the I/O around them only sends it.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crds::AzureResource;
use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::cache::ObjectCache;
use crate::completion::{Decision, Outcome, claim_value, decide};
use crate::kafka::ResultPublisher;
use crate::lean::{Lean, event_object};
use crate::mapping::{
    ANNOTATION_CLAIM, ANNOTATION_REPORTED, FINALIZER, LABEL_MANAGED_BY, LABEL_RESOURCE_ID,
    MANAGED_BY,
};
use crate::metrics::Metrics;

/// The other objects of `object`'s resource among `candidates`: same resource-id label,
/// another name. An object without the label has none.
pub fn siblings<'a>(
    object: &AzureResource,
    candidates: impl IntoIterator<Item = &'a AzureResource>,
) -> Vec<&'a AzureResource> {
    let Some(resource_id) = object.labels().get(LABEL_RESOURCE_ID) else {
        return Vec::new();
    };
    candidates
        .into_iter()
        .filter(|other| {
            other.labels().get(LABEL_RESOURCE_ID) == Some(resource_id)
                && other.name_any() != object.name_any()
        })
        .collect()
}

/// The finalizers `object` keeps when the shim lets go of it: all but the shim's own.
pub fn remaining_finalizers(object: &AzureResource) -> Vec<String> {
    object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect()
}

/// Drops the shim's finalizer, conditioned on `object` being unchanged.
pub fn release_patch(object: &AzureResource) -> Value {
    json!({"metadata": {
        "resourceVersion": object.resource_version(),
        "finalizers": remaining_finalizers(object),
    }})
}

/// Claims publication of request `uuid` for `holder` at `now` (unix seconds),
/// conditioned on `object` being unchanged: of several replicas only one wins.
pub fn claim_patch(object: &AzureResource, uuid: &str, holder: &str, now: i64) -> Value {
    json!({"metadata": {
        "resourceVersion": object.resource_version(),
        "annotations": {ANNOTATION_CLAIM: claim_value(uuid, holder, now)}
    }})
}

/// Records request `uuid` as reported and drops the claim.
pub fn reported_patch(uuid: &str) -> Value {
    let mut annotations = BTreeMap::new();
    annotations.insert(ANNOTATION_REPORTED, Value::String(uuid.to_string()));
    annotations.insert(ANNOTATION_CLAIM, Value::Null);
    json!({"metadata": {"annotations": annotations}})
}

/// Whether sweeps must evaluate `object` again although it did not change: something is
/// owed (the last attempt may have failed), a claim may expire, or it is being deleted
/// (its siblings' deletion changes the decision).
pub fn due(object: &AzureResource, decision: &Decision) -> bool {
    *decision != Decision::Nothing
        || object.annotations().contains_key(ANNOTATION_CLAIM)
        || object.metadata.deletion_timestamp.is_some()
}

/// What the result of a patch conditioned on a version means: the patched object, or
/// `None` when the object is no longer that version (409) or is gone (404) — nothing to
/// do now, the watch brings the change to evaluate.
pub fn unless_changed<T>(result: Result<T, kube::Error>) -> Result<Option<T>, kube::Error> {
    match result {
        Ok(patched) => Ok(Some(patched)),
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => Ok(None),
        Err(err) => Err(err),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Publish(#[from] crate::kafka::PublishError),
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Publishes the outcome for request `outcome.uuid` of `object` unless another replica is
/// doing so: claims it ([`claim_patch`]), publishes, records it as reported
/// ([`reported_patch`]). `None` when the claim was lost (the object changed: re-evaluate
/// it later).
pub async fn publish_once(
    api: &Api<Lean>,
    publisher: &ResultPublisher,
    metrics: &Metrics,
    holder: &str,
    object: &AzureResource,
    outcome: &Outcome,
) -> Result<Option<AzureResource>, ReportError> {
    let Outcome {
        uuid,
        message,
        envelope,
    } = outcome;
    let name = object.name_any();
    let claim = claim_patch(object, uuid, holder, unix_now());
    let claimed = unless_changed(
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&claim))
            .await
            .map(|Lean(object)| object),
    )?;
    if claimed.is_none() {
        debug!(object = %name, "object changed before the claim; re-evaluating later");
        return Ok(None);
    }
    if let Err(err) = publisher.publish(message, envelope).await {
        metrics.publish_failures.inc();
        return Err(err.into());
    }
    metrics.record_result(&message.status);
    info!(
        request_id = %message.request_id,
        status = ?message.status,
        object = %name,
        tracectx = %crate::logging::trace_field(&envelope.trace),
        "lifecycle result published"
    );
    let mark = reported_patch(uuid);
    Ok(Some(
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&mark))
            .await?
            .0,
    ))
}

/// Watches the shim's objects and reports their results.
#[derive(Clone)]
pub struct Reporter {
    api: Api<Lean>,
    publisher: ResultPublisher,
    replica: String,
    in_flight: Arc<Mutex<HashSet<String>>>,
    metrics: Metrics,
    cache: ObjectCache,
}

impl Reporter {
    pub fn new(
        api: Api<Lean>,
        publisher: ResultPublisher,
        replica: String,
        metrics: Metrics,
    ) -> Self {
        Self {
            api,
            publisher,
            replica,
            in_flight: Arc::default(),
            metrics,
            cache: ObjectCache::default(),
        }
    }

    /// The watch cache [`Reporter::run`] fills, for the request path to read instead of
    /// asking the apiserver.
    pub fn cache(&self) -> ObjectCache {
        self.cache.clone()
    }

    /// Runs until the watch stream ends: every change is evaluated at once, and the
    /// objects marked [`due`] again each `sweep` (expired claims, Kafka retries after
    /// failures, deletions waiting for siblings).
    pub async fn run(self, sweep: Duration) {
        let config = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
        let stream = watcher(self.api.clone(), config).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut ticker = tokio::time::interval(sweep);
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    Some(Ok(event)) => {
                        if let Some(object) = self.cache.apply(event_object(event)) {
                            self.evaluate(&object);
                        }
                    }
                    Some(Err(err)) => warn!(error = %err, "watch of AzureResource objects failed; retrying"),
                    None => return,
                },
                _ = ticker.tick() => {
                    for object in self.cache.due() {
                        self.evaluate(&object);
                    }
                }
            }
        }
    }

    fn evaluate(&self, object: &AzureResource) {
        // Only a deletion looks at siblings.
        let candidates = if object.metadata.deletion_timestamp.is_some() {
            self.cache.same_resource(object)
        } else {
            Vec::new()
        };
        let siblings = siblings(object, &candidates);
        let decision = decide(object, &self.replica, unix_now(), &siblings);
        let name = object.name_any();
        self.cache.set_due(&name, due(object, &decision));
        if decision == Decision::Nothing {
            return;
        }
        if !self
            .in_flight
            .lock()
            .expect("in-flight set")
            .insert(name.clone())
        {
            return;
        }
        let this = self.clone();
        let object = object.clone();
        tokio::spawn(async move {
            if let Err(err) = this.act(&object, decision).await {
                warn!(object = %name, error = %err, "reporting a result failed; will retry");
            }
            this.in_flight.lock().expect("in-flight set").remove(&name);
        });
    }

    async fn act(&self, object: &AzureResource, decision: Decision) -> Result<(), ReportError> {
        match decision {
            Decision::Nothing => Ok(()),
            Decision::Release => self.release(object).await,
            Decision::Publish { outcome, release } => {
                let Some(marked) = publish_once(
                    &self.api,
                    &self.publisher,
                    &self.metrics,
                    &self.replica,
                    object,
                    &outcome,
                )
                .await?
                else {
                    return Ok(());
                };
                if release {
                    self.release(&marked).await?;
                }
                Ok(())
            }
        }
    }

    /// Drops the shim's finalizer ([`release_patch`]).
    async fn release(&self, object: &AzureResource) -> Result<(), ReportError> {
        let patch = release_patch(object);
        unless_changed(
            self.api
                .patch(
                    &object.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::completion::CLAIM_TTL_SECS;
    use crate::mapping::{ANNOTATION_REQUEST, PendingRequest};
    use crds::{AzureResourceSpec, AzureResourceStatus, Phase, TemplateSource};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const CONTROLLER_FINALIZER: &str = "azure-driver.io/cleanup";

    /// A Create's object of resource `resource`, Ready, its request not reported yet.
    fn object(name: &str, resource: &str) -> AzureResource {
        let mut spec = AzureResourceSpec::new("rg1", TemplateSource::Bicep(String::new()));
        spec.subscription_id = Some("00000000-0000-0000-0000-000000000001".into());
        let mut object = AzureResource::new(name, spec);
        object.metadata.namespace = Some("ns".into());
        object.metadata.uid = Some("uid-1".into());
        object.metadata.generation = Some(1);
        object.metadata.resource_version = Some("7".into());
        object.metadata.finalizers = Some(vec![CONTROLLER_FINALIZER.into(), FINALIZER.into()]);
        object.metadata.labels = Some(BTreeMap::from([(
            LABEL_RESOURCE_ID.into(),
            resource.into(),
        )]));
        let pending = PendingRequest {
            uuid: "u1".into(),
            lifecycle: "Create".into(),
            tenant_id: None,
            trace: BTreeMap::new(),
            delete: false,
        };
        object.metadata.annotations = Some(BTreeMap::from([(
            ANNOTATION_REQUEST.into(),
            serde_json::to_string(&pending).unwrap(),
        )]));
        object.status = Some(AzureResourceStatus {
            phase: Some(Phase::Ready),
            observed_generation: Some(1),
            ..AzureResourceStatus::default()
        });
        object
    }

    /// `object` with JSON merge patch `patch` applied, as the apiserver applies it.
    fn merged(object: &AzureResource, patch: &Value) -> AzureResource {
        fn merge(target: &mut Value, patch: &Value) {
            let Value::Object(fields) = patch else {
                *target = patch.clone();
                return;
            };
            if !target.is_object() {
                *target = json!({});
            }
            let target = target.as_object_mut().unwrap();
            for (key, value) in fields {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        let mut value = serde_json::to_value(object).unwrap();
        merge(&mut value, patch);
        serde_json::from_value(value).unwrap()
    }

    fn names(objects: &[&AzureResource]) -> Vec<String> {
        objects.iter().map(|o| o.name_any()).collect()
    }

    #[test]
    fn siblings_are_the_other_objects_with_the_same_resource_label() {
        let primary = object("r-a", "a");
        let operation = object("r-a-addroute", "a");
        let other = object("r-b", "b");
        let mut unlabelled = object("r-c", "a");
        unlabelled.metadata.labels = None;
        let all = [
            primary.clone(),
            operation.clone(),
            other,
            unlabelled.clone(),
        ];
        assert_eq!(names(&siblings(&primary, &all)), ["r-a-addroute"]);
        assert_eq!(names(&siblings(&operation, &all)), ["r-a"]);
        assert!(siblings(&unlabelled, &all).is_empty());
        assert!(siblings(&primary, std::slice::from_ref(&primary)).is_empty());
    }

    #[test]
    fn releasing_drops_only_the_shims_finalizer_of_the_version_seen() {
        let mut deleted = object("r-a", "a");
        deleted.metadata.finalizers = Some(vec![
            "x.io/first".into(),
            FINALIZER.into(),
            CONTROLLER_FINALIZER.into(),
        ]);
        assert_eq!(
            release_patch(&deleted),
            json!({"metadata": {
                "resourceVersion": "7",
                "finalizers": ["x.io/first", CONTROLLER_FINALIZER],
            }})
        );
        deleted.metadata.finalizers = Some(vec![FINALIZER.into()]);
        assert_eq!(
            release_patch(&deleted)["metadata"]["finalizers"],
            json!([]),
            "an empty list, not null: the merge patch must clear the list"
        );
        assert!(remaining_finalizers(&merged(&deleted, &release_patch(&deleted))).is_empty());
    }

    #[test]
    fn a_claim_is_conditioned_on_the_version_and_blocks_other_replicas_until_it_expires() {
        let ready = object("r-a", "a");
        let patch = claim_patch(&ready, "u1", "replica-a", 1000);
        assert_eq!(patch["metadata"]["resourceVersion"], json!("7"));
        assert_eq!(
            patch["metadata"]["annotations"][ANNOTATION_CLAIM],
            json!("u1 replica-a 1000")
        );
        let claimed = merged(&ready, &patch);
        let publishes = |replica: &str, now: i64| {
            matches!(
                decide(&claimed, replica, now, &[]),
                Decision::Publish { .. }
            )
        };
        assert!(!publishes("replica-b", 1000));
        assert!(!publishes("replica-b", 1000 + CLAIM_TTL_SECS - 1));
        assert!(publishes("replica-b", 1000 + CLAIM_TTL_SECS), "expired");
        assert!(publishes("replica-a", 1001), "the holder goes on");
        // A claim for an earlier request does not block this one.
        let earlier = merged(&ready, &claim_patch(&ready, "u0", "replica-a", 1000));
        assert!(matches!(
            decide(&earlier, "replica-b", 1000, &[]),
            Decision::Publish { .. }
        ));
    }

    #[test]
    fn the_reported_mark_ends_publication_and_drops_the_claim() {
        let ready = object("r-a", "a");
        let claimed = merged(&ready, &claim_patch(&ready, "u1", "replica-a", 1000));
        let reported = merged(&claimed, &reported_patch("u1"));
        assert_eq!(reported.annotations()[ANNOTATION_REPORTED], "u1");
        assert!(!reported.annotations().contains_key(ANNOTATION_CLAIM));
        assert!(reported.annotations().contains_key(ANNOTATION_REQUEST));
        assert_eq!(decide(&reported, "replica-a", 1000, &[]), Decision::Nothing);
        assert!(!due(&reported, &Decision::Nothing));
    }

    #[test]
    fn a_patch_that_lost_the_race_to_a_change_or_a_deletion_is_no_error() {
        let refused = |code: u16| {
            Err::<(), _>(kube::Error::Api(Box::new(
                kube::core::Status::failure("refused", "Refused").with_code(code),
            )))
        };
        assert_eq!(unless_changed(Ok::<_, kube::Error>(7)).unwrap(), Some(7));
        assert_eq!(unless_changed(refused(409)).unwrap(), None, "changed");
        assert_eq!(unless_changed(refused(404)).unwrap(), None, "gone");
        for code in [400, 403, 422, 500] {
            let err = unless_changed(refused(code)).unwrap_err();
            assert!(
                matches!(&err, kube::Error::Api(status) if status.code == code),
                "{code}: {err}"
            );
        }
    }

    #[test]
    fn claims_are_stamped_with_the_unix_time_in_seconds() {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = u64::try_from(unix_now()).unwrap();
        assert!(now.abs_diff(system) <= 1, "{now} vs {system}");
    }

    #[test]
    fn sweeps_look_again_at_what_is_owed_claimed_or_being_deleted() {
        let mut quiet = object("r-a", "a");
        quiet.status = None;
        assert_eq!(decide(&quiet, "me", 0, &[]), Decision::Nothing);
        assert!(!due(&quiet, &Decision::Nothing));
        let ready = object("r-a", "a");
        let owed = decide(&ready, "me", 0, &[]);
        assert!(due(&ready, &owed));
        let claimed = merged(&quiet, &claim_patch(&quiet, "u1", "other", 0));
        assert!(due(&claimed, &Decision::Nothing));
        let mut deleting = quiet.clone();
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(due(&deleting, &Decision::Nothing));
    }
}
