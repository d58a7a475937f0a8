//! Which cached objects refer to a Secret or ConfigMap, so that a change of one reconciles
//! those objects without scanning them all: the controller watches every Secret of its
//! namespaces (its own outputs Secrets included), and a relist delivers each one, so a scan
//! per event would cost objects × Secrets.
//!
//! The index holds the watch cache's own entries (`Arc`s shared with the store), grouped by
//! a 64-bit hash of (namespace, kind, name) of each input; a lookup checks the entries'
//! own inputs, so a hash collision costs time, never a wrong answer. It keeps no string:
//! about 12 bytes per reference (a pointer and a control byte in a hash table kept 44 to 88 %
//! full), measured in `a_reference_costs_a_pointer_and_a_control_byte`.

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
};

use kube::runtime::reflector::ObjectRef;

use crate::dereference::InputKind;
use crate::watch_cache::CachedResource;

/// Cached objects by the Secrets and ConfigMaps they refer to.
#[derive(Default)]
pub struct Referrers {
    by_input: HashMap<u64, HashSet<Referrer>>,
}

/// A cached object, equal to another version of the same object (namespace and name).
struct Referrer(Arc<CachedResource>);

impl Referrer {
    fn identity(&self) -> (Option<&str>, Option<&str>) {
        let meta = &self.0.metadata;
        (meta.namespace.as_deref(), meta.name.as_deref())
    }
}

impl PartialEq for Referrer {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for Referrer {}

impl Hash for Referrer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl Referrers {
    /// Records that `current` (the store's new version; `None`: deleted) replaces
    /// `previous` (the store's version before; `None`: new): the object leaves the inputs
    /// it no longer refers to, and every input it refers to holds its new version.
    pub fn replace(
        &mut self,
        previous: Option<&Arc<CachedResource>>,
        current: Option<&Arc<CachedResource>>,
    ) {
        let current_keys: Vec<u64> = current.map_or_else(Vec::new, keys);
        if let Some(previous) = previous {
            for key in keys(previous) {
                if !current_keys.contains(&key) {
                    self.remove(key, previous);
                }
            }
        }
        if let Some(current) = current {
            for key in current_keys {
                self.by_input
                    .entry(key)
                    .or_default()
                    .replace(Referrer(current.clone()));
            }
        }
    }

    /// Rebuilds the index from the store after a relist: objects not listed leave it. The
    /// old index is dropped first, so the two are never held at once.
    pub fn relist(&mut self, objects: impl IntoIterator<Item = Arc<CachedResource>>) {
        self.by_input = HashMap::new();
        for object in objects {
            self.replace(None, Some(&object));
        }
    }

    /// The objects in `namespace` that refer to the `kind` named `name`.
    pub fn of(
        &self,
        namespace: &str,
        kind: InputKind,
        name: &str,
    ) -> Vec<ObjectRef<CachedResource>> {
        let Some(referrers) = self.by_input.get(&key(namespace, kind, name)) else {
            return Vec::new();
        };
        referrers
            .iter()
            .map(|referrer| &*referrer.0)
            .filter(|object| object.metadata.namespace.as_deref() == Some(namespace))
            .filter(|object| object.inputs.iter().any(|(k, n)| *k == kind && n == name))
            .filter_map(|object| object.metadata.name.as_deref())
            .map(|object| ObjectRef::new(object).within(namespace))
            .collect()
    }

    fn remove(&mut self, key: u64, object: &Arc<CachedResource>) {
        if let Some(referrers) = self.by_input.get_mut(&key) {
            referrers.remove(&Referrer(object.clone()));
            if referrers.is_empty() {
                self.by_input.remove(&key);
            }
        }
    }
}

/// The index keys of an object's inputs.
fn keys(object: &Arc<CachedResource>) -> Vec<u64> {
    let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
    object
        .inputs
        .iter()
        .map(|(kind, name)| key(namespace, *kind, name))
        .collect()
}

fn key(namespace: &str, kind: InputKind, name: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    namespace.hash(&mut hasher);
    kind.hash(&mut hasher);
    name.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use kube::core::ObjectMeta;

    use super::*;

    fn object(namespace: &str, name: &str, inputs: &[(InputKind, &str)]) -> Arc<CachedResource> {
        Arc::new(CachedResource {
            metadata: ObjectMeta {
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            inputs: inputs
                .iter()
                .map(|(kind, name)| (*kind, (*name).to_owned()))
                .collect(),
            failures: 0,
            invalid: None,
        })
    }

    fn names(refs: Vec<ObjectRef<CachedResource>>) -> Vec<String> {
        let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    use InputKind::{ConfigMap, Secret};

    #[test]
    fn a_lookup_returns_exactly_the_referrers_in_that_namespace() {
        let mut index = Referrers::default();
        for o in [
            object("ns", "a", &[(Secret, "creds"), (ConfigMap, "tpl")]),
            object("ns", "b", &[(Secret, "creds")]),
            object("other", "c", &[(Secret, "creds")]),
            object("ns", "d", &[(Secret, "tpl")]),
        ] {
            index.replace(None, Some(&o));
        }
        assert_eq!(names(index.of("ns", Secret, "creds")), ["a", "b"]);
        assert_eq!(names(index.of("other", Secret, "creds")), ["c"]);
        assert_eq!(names(index.of("ns", ConfigMap, "tpl")), ["a"]);
        assert_eq!(names(index.of("ns", Secret, "tpl")), ["d"]);
        assert!(index.of("ns", Secret, "a-outputs").is_empty());
        assert!(index.of("nowhere", Secret, "creds").is_empty());
    }

    #[test]
    fn an_object_that_changes_its_secret_moves_to_the_new_one() {
        let mut index = Referrers::default();
        let first = object("ns", "a", &[(Secret, "old")]);
        index.replace(None, Some(&first));
        let second = object("ns", "a", &[(Secret, "new")]);
        index.replace(Some(&first), Some(&second));
        assert!(index.of("ns", Secret, "old").is_empty());
        assert_eq!(names(index.of("ns", Secret, "new")), ["a"]);
        assert_eq!(
            index.by_input.len(),
            1,
            "an input nobody refers to is dropped"
        );
    }

    #[test]
    fn the_index_holds_only_the_stores_current_version() {
        let mut index = Referrers::default();
        let first = object("ns", "a", &[(Secret, "creds")]);
        index.replace(None, Some(&first));
        let second = object("ns", "a", &[(Secret, "creds")]);
        index.replace(Some(&first), Some(&second));
        assert_eq!(Arc::strong_count(&first), 1, "the old version is released");
        assert_eq!(Arc::strong_count(&second), 2);
        assert_eq!(names(index.of("ns", Secret, "creds")), ["a"]);
    }

    #[test]
    fn a_deleted_object_leaves() {
        let mut index = Referrers::default();
        let a = object("ns", "a", &[(Secret, "creds"), (ConfigMap, "tpl")]);
        let b = object("ns", "b", &[(Secret, "creds")]);
        index.replace(None, Some(&a));
        index.replace(None, Some(&b));
        index.replace(Some(&a), None);
        assert_eq!(names(index.of("ns", Secret, "creds")), ["b"]);
        assert!(index.of("ns", ConfigMap, "tpl").is_empty());
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn a_relist_keeps_only_the_listed_objects() {
        let mut index = Referrers::default();
        let a = object("ns", "a", &[(Secret, "creds")]);
        let b = object("ns", "b", &[(Secret, "creds")]);
        index.replace(None, Some(&a));
        index.replace(None, Some(&b));
        let a_listed = object("ns", "a", &[(Secret, "other")]);
        let c = object("ns", "c", &[(Secret, "creds")]);
        index.relist([a_listed, c]);
        assert_eq!(names(index.of("ns", Secret, "creds")), ["c"]);
        assert_eq!(names(index.of("ns", Secret, "other")), ["a"]);
        assert_eq!(Arc::strong_count(&a), 1);
        assert_eq!(Arc::strong_count(&b), 1);
    }

    /// The heap bytes of the index's tables (hashbrown: one slot and one control byte per
    /// bucket, plus a group of control bytes; buckets a power of two at most 7/8 full).
    fn table_bytes(index: &Referrers) -> usize {
        let buckets = |capacity: usize| match capacity {
            0 => 0,
            1..=3 => 4,
            4..=7 => 8,
            _ => (capacity * 8 / 7).next_power_of_two(),
        };
        let table = |capacity: usize, slot: usize| {
            let buckets = buckets(capacity);
            if buckets == 0 {
                0
            } else {
                buckets * (slot + 1) + 16
            }
        };
        table(
            index.by_input.capacity(),
            size_of::<(u64, HashSet<Referrer>)>(),
        ) + index
            .by_input
            .values()
            .map(|set| table(set.capacity(), size_of::<Referrer>()))
            .sum::<usize>()
    }

    #[test]
    fn a_reference_costs_a_pointer_and_a_control_byte() {
        let count = 100_000;
        let objects: Vec<_> = (0..count)
            .map(|i| {
                let shared = if i % 2 == 0 {
                    "azure-credentials"
                } else {
                    "dl-west"
                };
                object("ns", &format!("r-{i:06}"), &[(Secret, shared)])
            })
            .collect();
        let mut index = Referrers::default();
        for o in &objects {
            index.replace(None, Some(o));
        }
        let per_object = table_bytes(&index) as f64 / count as f64;
        assert!(per_object < 20.0, "{per_object:.1} bytes per object");
        assert_eq!(index.of("ns", Secret, "dl-west").len(), count / 2);
    }
}
