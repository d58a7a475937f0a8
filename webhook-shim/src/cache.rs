//! The shim's watch cache: its objects as the reporter last saw them, small enough for
//! 100,000 of them.
//!
//! Each object is kept without what no decision reads ([`strip_for_cache`]) and as compact
//! JSON rather than decoded: a decoded object costs several times its JSON in struct
//! fields, map nodes and allocations, and only the few objects a request or an evaluation
//! looks at are decoded. A relist (after the watch fell too far behind) updates entries in
//! place and then drops those it did not see, so it never holds two copies of the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crds::AzureResource;
use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::completion::strip_for_cache;
use crate::mapping::LABEL_RESOURCE_ID;

/// One cached object.
struct Entry {
    /// The stripped object as JSON.
    json: Box<[u8]>,
    /// Its resource-id label: the key of its resource's objects in the sibling index.
    resource_id: Option<Arc<str>>,
    /// The next sweep evaluates it again (see [`ObjectCache::set_due`]).
    due: bool,
    /// The list (the first, or a relist) that saw it last.
    listing: u64,
}

#[derive(Default)]
struct Objects {
    by_name: HashMap<Arc<str>, Entry>,
    /// Names of the objects of each resource (by resource-id label).
    by_resource: HashMap<Arc<str>, Vec<Arc<str>>>,
    listing: u64,
}

impl Objects {
    fn insert(&mut self, name: &str, entry: Entry) {
        self.remove(name);
        let name: Arc<str> = name.into();
        if let Some(resource) = &entry.resource_id {
            self.by_resource
                .entry(resource.clone())
                .or_default()
                .push(name.clone());
        }
        self.by_name.insert(name, entry);
    }

    fn remove(&mut self, name: &str) {
        let Some(entry) = self.by_name.remove(name) else {
            return;
        };
        let Some(resource) = entry.resource_id else {
            return;
        };
        if let Some(names) = self.by_resource.get_mut(&resource) {
            names.retain(|n| &**n != name);
            if names.is_empty() {
                self.by_resource.remove(&resource);
            }
        }
    }
}

/// The objects of the shim's namespace that it manages, shared by the reporter (which
/// fills it from its watch) and the request path (which looks up the object a Create
/// replaces).
#[derive(Clone, Default)]
pub struct ObjectCache {
    objects: Arc<RwLock<Objects>>,
    synced: Arc<AtomicBool>,
}

fn decode(json: &[u8]) -> Option<AzureResource> {
    serde_json::from_slice(json).ok()
}

impl ObjectCache {
    /// Whether the first list completed: before, an absent object proves nothing.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Object `name` as last seen (stripped); `None` until the first list completed.
    pub fn get(&self, name: &str) -> Option<Option<AzureResource>> {
        if !self.is_synced() {
            return None;
        }
        let objects = self.objects.read().expect("object cache");
        Some(objects.by_name.get(name).and_then(|e| decode(&e.json)))
    }

    /// The cached objects with the same resource-id label as `object` (itself included
    /// when cached): the candidates of [`crate::reporter::siblings`].
    pub fn same_resource(&self, object: &AzureResource) -> Vec<AzureResource> {
        let Some(resource) = object.labels().get(LABEL_RESOURCE_ID) else {
            return Vec::new();
        };
        let objects = self.objects.read().expect("object cache");
        let names = objects.by_resource.get(resource.as_str());
        names
            .into_iter()
            .flatten()
            .filter_map(|name| objects.by_name.get(name))
            .filter_map(|entry| decode(&entry.json))
            .collect()
    }

    /// The objects a sweep evaluates again: those marked due.
    pub fn due(&self) -> Vec<AzureResource> {
        let objects = self.objects.read().expect("object cache");
        objects
            .by_name
            .values()
            .filter(|entry| entry.due)
            .filter_map(|entry| decode(&entry.json))
            .collect()
    }

    /// Marks object `name` (as last applied) for evaluation by every sweep until marked
    /// otherwise: it has something to do, or a decision that time alone can change.
    pub fn set_due(&self, name: &str, due: bool) {
        let mut objects = self.objects.write().expect("object cache");
        if let Some(entry) = objects.by_name.get_mut(name) {
            entry.due = due;
        }
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.objects.read().expect("object cache").by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one watch event. Answers the object (stripped) to evaluate, if any.
    pub fn apply(&self, event: Event<AzureResource>) -> Option<AzureResource> {
        let mut objects = self.objects.write().expect("object cache");
        match event {
            Event::Apply(mut object) | Event::InitApply(mut object) => {
                strip_for_cache(&mut object);
                let entry = Entry {
                    json: serde_json::to_vec(&object).ok()?.into_boxed_slice(),
                    resource_id: object
                        .labels()
                        .get(LABEL_RESOURCE_ID)
                        .map(|r| r.as_str().into()),
                    due: false,
                    listing: objects.listing,
                };
                objects.insert(&object.name_any(), entry);
                Some(object)
            }
            Event::Delete(object) => {
                objects.remove(&object.name_any());
                None
            }
            Event::Init => {
                objects.listing += 1;
                None
            }
            Event::InitDone => {
                let listing = objects.listing;
                let unseen: Vec<Arc<str>> = objects
                    .by_name
                    .iter()
                    .filter(|(_, entry)| entry.listing != listing)
                    .map(|(name, _)| name.clone())
                    .collect();
                for name in unseen {
                    objects.remove(&name);
                }
                self.synced.store(true, Ordering::Release);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::{AzureResourceSpec, TemplateSource};
    use std::collections::BTreeMap;

    fn object(name: &str, resource: &str) -> AzureResource {
        let spec =
            AzureResourceSpec::new("rg1", TemplateSource::Bicep("param p string\n".repeat(50)));
        let mut object = AzureResource::new(name, spec);
        object.metadata.labels = Some(BTreeMap::from([(
            LABEL_RESOURCE_ID.to_string(),
            resource.to_string(),
        )]));
        object
    }

    fn names(objects: &[AzureResource]) -> Vec<String> {
        let mut names: Vec<String> = objects.iter().map(|o| o.name_any()).collect();
        names.sort();
        names
    }

    #[test]
    fn lookups_wait_for_the_first_list_and_see_stripped_objects() {
        let cache = ObjectCache::default();
        cache.apply(Event::Init);
        let evaluated = cache.apply(Event::InitApply(object("r-a", "a"))).unwrap();
        assert_eq!(evaluated.spec.template, None, "evaluated as cached");
        assert!(cache.get("r-a").is_none(), "not synced yet");
        cache.apply(Event::InitDone);
        let json = |object: &AzureResource| serde_json::to_value(object).unwrap();
        assert_eq!(
            cache.get("r-a").unwrap().as_ref().map(json),
            Some(json(&evaluated))
        );
        assert!(matches!(cache.get("r-b"), Some(None)));
    }

    #[test]
    fn objects_of_a_resource_are_found_by_its_label() {
        let cache = ObjectCache::default();
        for (name, resource) in [("r-a", "a"), ("r-a-op", "a"), ("r-b", "b")] {
            cache.apply(Event::Apply(object(name, resource)));
        }
        assert_eq!(
            names(&cache.same_resource(&object("r-a", "a"))),
            ["r-a", "r-a-op"]
        );
        cache.apply(Event::Delete(object("r-a-op", "a")));
        assert_eq!(names(&cache.same_resource(&object("r-a", "a"))), ["r-a"]);
        // A relabelled object moves to its new resource.
        cache.apply(Event::Apply(object("r-a", "b")));
        assert!(cache.same_resource(&object("x", "a")).is_empty());
        assert_eq!(
            names(&cache.same_resource(&object("x", "b"))),
            ["r-a", "r-b"]
        );
        let mut unlabelled = object("r-c", "c");
        unlabelled.metadata.labels = None;
        assert!(cache.same_resource(&unlabelled).is_empty());
    }

    #[test]
    fn a_relist_drops_what_it_did_not_see_and_keeps_what_it_did() {
        let cache = ObjectCache::default();
        cache.apply(Event::Init);
        for name in ["r-a", "r-b", "r-c"] {
            cache.apply(Event::InitApply(object(name, name)));
        }
        cache.apply(Event::InitDone);
        cache.apply(Event::Init);
        cache.apply(Event::InitApply(object("r-b", "r-b")));
        assert_eq!(cache.len(), 3, "entries stay until the relist is complete");
        cache.apply(Event::InitDone);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("r-b").unwrap().is_some());
        assert!(cache.same_resource(&object("x", "r-a")).is_empty());
    }

    #[test]
    fn only_objects_marked_due_are_swept_until_they_change() {
        let cache = ObjectCache::default();
        cache.apply(Event::Apply(object("r-a", "a")));
        cache.apply(Event::Apply(object("r-b", "b")));
        assert!(cache.due().is_empty());
        cache.set_due("r-b", true);
        assert_eq!(names(&cache.due()), ["r-b"]);
        // A new version is evaluated on arrival and marked again then.
        cache.apply(Event::Apply(object("r-b", "b")));
        assert!(cache.due().is_empty());
        cache.set_due("r-gone", true);
        assert!(cache.due().is_empty());
    }
}
