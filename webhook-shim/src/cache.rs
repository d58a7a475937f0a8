//! The shim's watch cache: its objects as the reporter last saw them, small enough for
//! 100,000 of them.
//!
//! Each object is kept without what no decision reads ([`strip_for_cache`]) and as compact
//! JSON rather than decoded: a decoded object costs several times its JSON in struct
//! fields, map nodes and allocations, and only the few objects a request or an evaluation
//! looks at are decoded. The JSON is deflated against a preset dictionary, a typical
//! object's JSON ([`DICTIONARY`]): what every object repeats (keys, label and annotation
//! names, constant values, an object's own ids) then costs bits, and an entry is about a
//! quarter of its JSON. A relist (after the watch fell too far behind) updates entries in
//! place and then drops those it did not see, so it never holds two copies of the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use crds::AzureResource;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use kube::ResourceExt;
use kube::runtime::watcher::Event;
use serde_json::json;

use crate::completion::strip_for_cache;
use crate::mapping::{
    ANNOTATION_OWNER, ANNOTATION_REQUEST, FINALIZER, LABEL_DEPLOYMENT_LOCATION, LABEL_MANAGED_BY,
    LABEL_RESOURCE_ID, LABEL_RESOURCE_NAME, LABEL_RESOURCE_TYPE, MANAGED_BY,
};

/// Deflate window of the entries (8 KiB): the dictionary and a stripped object fit in it.
const WINDOW_BITS: u8 = 13;

/// What entries are deflated against: a typical stripped object of the shim as JSON,
/// serialized like the cached ones so that keys come in the same order. Only the size of
/// the entries depends on it: every entry inflates against the same bytes.
static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let typical: Option<AzureResource> = serde_json::from_value(json!({
        "apiVersion": "azure-driver.io/v1alpha1",
        "kind": "AzureResource",
        "metadata": {
            "annotations": {
                ANNOTATION_OWNER: "0000000000000000000000000000000000000000000000000000000000000000",
                ANNOTATION_REQUEST: "{\"uuid\":\"00000000-0000-4000-8000-000000000000\",\"lifecycle\":\"Create\"}",
            },
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": ["azure-driver.io/cleanup", FINALIZER],
            "generation": 1,
            "labels": {
                LABEL_MANAGED_BY: MANAGED_BY,
                LABEL_DEPLOYMENT_LOCATION: "azure",
                LABEL_RESOURCE_ID: "00000000-0000-4000-8000-000000000000",
                LABEL_RESOURCE_NAME: "resource",
                LABEL_RESOURCE_TYPE: "resource",
            },
            "name": "r-00000000-0000-4000-8000-000000000000",
            "namespace": "azure-driver",
            "resourceVersion": "100000",
            "uid": "00000000-0000-4000-8000-000000000000",
        },
        "spec": {
            "credentialsSecretRef": {"name": "dl-0000000000000000000000000000000000000000"},
            "location": "westeurope",
            "parameters": {"location": "westeurope", "resourcegroup_name": "rg"},
            "redeployToken": "00000000-0000-4000-8000-000000000000",
            "resourceGroup": "rg",
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
        },
        "status": {
            "phase": "Ready",
            "observedGeneration": 1,
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": "deployed",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            }],
        },
    }))
    .ok();
    typical
        .and_then(|typical| serde_json::to_vec(&typical).ok())
        .unwrap_or_default()
});

/// Deflates `json` against [`DICTIONARY`].
fn pack(compress: &mut Compress, json: &[u8]) -> Option<Box<[u8]>> {
    compress.reset();
    compress.set_dictionary(&DICTIONARY).ok()?;
    let mut packed = Vec::with_capacity(json.len() / 2 + 64);
    loop {
        let read = usize::try_from(compress.total_in()).ok()?;
        let status = compress
            .compress_vec(&json[read..], &mut packed, FlushCompress::Finish)
            .ok()?;
        if status == Status::StreamEnd {
            return Some(packed.into_boxed_slice());
        }
        packed.reserve(packed.capacity());
    }
}

/// Inflates what [`pack`] made of `json_len` bytes of JSON.
fn unpack(packed: &[u8], json_len: usize) -> Option<Vec<u8>> {
    let mut decompress = Decompress::new_with_window_bits(false, WINDOW_BITS);
    decompress.set_dictionary(&DICTIONARY).ok()?;
    let mut json = Vec::with_capacity(json_len);
    loop {
        let read = usize::try_from(decompress.total_in()).ok()?;
        let written = json.len();
        let status = decompress
            .decompress_vec(&packed[read..], &mut json, FlushDecompress::Finish)
            .ok()?;
        if status == Status::StreamEnd {
            return Some(json);
        }
        if json.len() == written && usize::try_from(decompress.total_in()).ok()? == read {
            if json.len() < json.capacity() {
                return None;
            }
            json.reserve(64);
        }
    }
}

/// The compressor of the entries, kept between events: a new one allocates and clears
/// its tables every time.
struct Packer(Compress);

impl Default for Packer {
    fn default() -> Self {
        Packer(Compress::new_with_window_bits(
            Compression::default(),
            false,
            WINDOW_BITS,
        ))
    }
}

/// One cached object.
struct Entry {
    /// The stripped object as JSON, deflated ([`pack`]).
    packed: Box<[u8]>,
    /// Length of that JSON.
    json_len: u32,
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
    packer: Arc<Mutex<Packer>>,
}

fn decode(entry: &Entry) -> Option<AzureResource> {
    serde_json::from_slice(&unpack(&entry.packed, entry.json_len as usize)?).ok()
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
        Some(objects.by_name.get(name).and_then(decode))
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
            .filter_map(decode)
            .collect()
    }

    /// The objects a sweep evaluates again: those marked due.
    pub fn due(&self) -> Vec<AzureResource> {
        let objects = self.objects.read().expect("object cache");
        objects
            .by_name
            .values()
            .filter(|entry| entry.due)
            .filter_map(decode)
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
        match event {
            Event::Apply(mut object) | Event::InitApply(mut object) => {
                strip_for_cache(&mut object);
                let json = serde_json::to_vec(&object).ok()?;
                let packed = pack(&mut self.packer.lock().expect("cache packer").0, &json)?;
                let mut objects = self.objects.write().expect("object cache");
                let entry = Entry {
                    packed,
                    json_len: u32::try_from(json.len()).ok()?,
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
                let mut objects = self.objects.write().expect("object cache");
                objects.remove(&object.name_any());
                None
            }
            Event::Init => {
                self.objects.write().expect("object cache").listing += 1;
                None
            }
            Event::InitDone => {
                let mut objects = self.objects.write().expect("object cache");
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
    fn entries_inflate_to_the_json_they_were_made_of() {
        assert!(
            !DICTIONARY.is_empty(),
            "the typical object is an AzureResource"
        );
        let mut packer = Packer::default();
        let typical = DICTIONARY.clone();
        let mut unlike = object("r-a", "a");
        unlike.metadata.annotations = Some(BTreeMap::from([(
            "note".to_string(),
            (0..20_000)
                .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
                .collect(),
        )]));
        let unlike = serde_json::to_vec(&unlike).unwrap();
        for json in [typical, unlike, Vec::new()] {
            let packed = pack(&mut packer.0, &json).unwrap();
            assert_eq!(unpack(&packed, json.len()).unwrap(), json);
            // The length is only a capacity hint.
            assert_eq!(unpack(&packed, 0).unwrap(), json);
        }
        let json = serde_json::to_vec(&object("r-b", "b")).unwrap();
        let packed = pack(&mut packer.0, &json).unwrap();
        assert!(
            packed.len() * 2 < json.len(),
            "{} of {}",
            packed.len(),
            json.len()
        );
        assert_eq!(unpack(&packed[..packed.len() / 2], json.len()), None);
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
