//! Objects as this controller's own last write left them, for the reconcile that follows
//! soon after (a finalizer added, a deployment started and polled a second later). When
//! the watch cache holds that very version, the reconcile starts from it instead of
//! reading the object again: equal resource versions are equal objects. Two GETs fewer
//! per object on the way to Ready, bounded in number and age so that objects that are
//! not reconciled again (deleted, or settled) do not accumulate.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use crds::AzureResource;
use kube::ResourceExt;

/// Objects kept at most; beyond, reconciles read the object as before.
pub const OWN_WRITES_LIMIT: usize = 2048;

/// Kept no longer than this: a follow-up reconcile comes within seconds, or not soon.
pub const OWN_WRITES_MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct OwnWrites {
    by_uid: Mutex<HashMap<String, (Instant, AzureResource)>>,
}

impl OwnWrites {
    /// Keeps `object` as the apiserver answered our write of it (managed fields dropped).
    pub fn keep(&self, mut object: AzureResource) {
        let Some(uid) = object.metadata.uid.clone() else {
            return;
        };
        object.metadata.managed_fields = None;
        let now = Instant::now();
        let mut by_uid = self.by_uid();
        if by_uid.len() >= OWN_WRITES_LIMIT && !by_uid.contains_key(&uid) {
            by_uid.retain(|_, (kept, _)| now.duration_since(*kept) < OWN_WRITES_MAX_AGE);
            if by_uid.len() >= OWN_WRITES_LIMIT {
                return;
            }
        }
        by_uid.insert(uid, (now, object));
    }

    /// The kept object of `uid` if it is at `resource_version` (else it is stale and
    /// forgotten, and the caller reads the object).
    pub fn take(&self, uid: &str, resource_version: Option<&str>) -> Option<AzureResource> {
        let (kept, object) = self.by_uid().remove(uid)?;
        let current = resource_version.is_some()
            && object.resource_version().as_deref() == resource_version
            && kept.elapsed() < OWN_WRITES_MAX_AGE;
        current.then_some(object)
    }

    pub fn len(&self) -> usize {
        self.by_uid().len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid().is_empty()
    }

    fn by_uid(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, AzureResource)>> {
        self.by_uid.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(uid: &str, resource_version: &str) -> AzureResource {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "azure-driver.io/v1alpha1",
            "kind": "AzureResource",
            "metadata": {"name": "a", "namespace": "ns", "uid": uid,
                         "resourceVersion": resource_version,
                         "managedFields": [{"manager": "m", "operation": "Update"}]},
            "spec": {"resourceGroup": "rg"}
        }))
        .unwrap()
    }

    #[test]
    fn a_kept_object_serves_only_the_version_the_cache_holds_and_only_once() {
        let writes = OwnWrites::default();
        writes.keep(object("u1", "5"));
        let kept = writes.take("u1", Some("5")).unwrap();
        assert_eq!(kept.metadata.managed_fields, None);
        assert!(writes.take("u1", Some("5")).is_none());

        writes.keep(object("u1", "5"));
        assert!(
            writes.take("u1", Some("6")).is_none(),
            "changed since our write"
        );
        assert!(writes.is_empty());
        writes.keep(object("u2", "7"));
        assert!(writes.take("u2", None).is_none());
    }

    #[test]
    fn the_number_kept_is_bounded() {
        let writes = OwnWrites::default();
        for i in 0..OWN_WRITES_LIMIT + 10 {
            writes.keep(object(&format!("u{i}"), "1"));
        }
        assert_eq!(writes.len(), OWN_WRITES_LIMIT);
        assert!(
            writes
                .take(&format!("u{}", OWN_WRITES_LIMIT + 5), Some("1"))
                .is_none()
        );
        assert!(writes.take("u0", Some("1")).is_some());
    }
}
