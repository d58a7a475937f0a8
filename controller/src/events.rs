//! Kubernetes Events (`events.k8s.io/v1`) whose number does not grow with repetition: the
//! first occurrence of an event creates it, a repeat within [`SERIES_TTL`] of the previous
//! one patches its `series` (count, lastObservedTime), as client-go's recorder does.
//!
//! kube-runtime's recorder does the same but keeps every event object for six minutes and
//! scans all of them on each publish; with 100,000 objects that is hundreds of MiB and a
//! quadratic cost. This one keeps a few words per series, evicts in insertion order, and is
//! bounded by [`SERIES_LIMIT`].

use std::{
    collections::{HashMap, VecDeque, hash_map::DefaultHasher},
    hash::{Hash, Hasher},
    sync::Mutex,
};

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event as K8sEvent},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
    runtime::events::{Event, EventType},
};

/// A repeat this long after the previous occurrence starts a new event (client-go's value).
pub const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// Series remembered at most; beyond it the oldest is forgotten (its next repeat creates a
/// new event instead of counting). About 80 bytes each, no string: an event's name is
/// derived from its object's name and its creation time.
pub const SERIES_LIMIT: usize = 32_768;

/// What publishing an occurrence does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occurrence {
    /// Create a new event.
    First,
    /// Patch the series of the event created at `created` to `count` occurrences.
    Repeat { created: Timestamp, count: i32 },
}

#[derive(Debug)]
struct Series {
    /// When its event was created: with the object's name, the event's name.
    created: Timestamp,
    count: i32,
    last_observed: Timestamp,
    /// Which insertion of this key the eviction queue entry belongs to.
    generation: u64,
}

/// Series by event key (a hash of type, action, reason and the object), oldest first.
#[derive(Debug)]
pub struct SeriesCache {
    limit: usize,
    series: HashMap<u64, Series>,
    order: VecDeque<(u64, u64)>,
    inserted: u64,
}

impl SeriesCache {
    pub fn new(limit: usize) -> Self {
        SeriesCache {
            limit,
            series: HashMap::new(),
            order: VecDeque::new(),
            inserted: 0,
        }
    }

    /// Whether an occurrence of `key` at `now` starts an event or repeats one.
    pub fn observe(&mut self, key: u64, now: Timestamp) -> Occurrence {
        self.evict(now);
        match self.series.get_mut(&key) {
            Some(series) if series.last_observed + SERIES_TTL > now => {
                series.count = series.count.saturating_add(1);
                series.last_observed = now;
                Occurrence::Repeat {
                    created: series.created,
                    count: series.count,
                }
            }
            _ => Occurrence::First,
        }
    }

    /// Remembers that the event of `key` was created at `now`.
    pub fn created(&mut self, key: u64, now: Timestamp) {
        self.inserted += 1;
        self.series.insert(
            key,
            Series {
                created: now,
                count: 1,
                last_observed: now,
                generation: self.inserted,
            },
        );
        self.order.push_back((key, self.inserted));
        self.evict(now);
    }

    /// Forgets `key` (its event is gone from the apiserver).
    pub fn forget(&mut self, key: u64) {
        self.series.remove(&key);
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Drops, oldest first, series that ended and any beyond the limit. Each key enters
    /// the queue once per creation, so the work is constant per event on average.
    fn evict(&mut self, now: Timestamp) {
        while let Some(&(key, generation)) = self.order.front() {
            let current = self.series.get(&key).filter(|s| s.generation == generation);
            let keep = match current {
                None => false,
                Some(series) => {
                    series.last_observed + SERIES_TTL > now && self.series.len() <= self.limit
                }
            };
            if keep {
                if self.order.len() > self.limit.saturating_mul(2) {
                    // Stale queue entries of replaced series: compact.
                    let series = &self.series;
                    self.order
                        .retain(|(k, g)| series.get(k).is_some_and(|s| s.generation == *g));
                }
                return;
            }
            self.order.pop_front();
            if current.is_some() {
                self.series.remove(&key);
            }
        }
    }
}

/// The key of client-go's series: same reporter, object, type, action and reason.
fn event_key(event: &Event, regarding: &ObjectReference) -> u64 {
    let mut hasher = DefaultHasher::new();
    matches!(event.type_, EventType::Warning).hash(&mut hasher);
    event.action.hash(&mut hasher);
    event.reason.hash(&mut hasher);
    regarding.uid.hash(&mut hasher);
    regarding.namespace.hash(&mut hasher);
    regarding.name.hash(&mut hasher);
    regarding.kind.hash(&mut hasher);
    hasher.finish()
}

pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    cache: Mutex<SeriesCache>,
}

impl EventRecorder {
    pub fn new(client: Client, controller: String, instance: String) -> Self {
        EventRecorder {
            client,
            controller,
            instance,
            cache: Mutex::new(SeriesCache::new(SERIES_LIMIT)),
        }
    }

    /// Creates the event, or counts a repeat in the series of the one created before.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let key = event_key(event, regarding);
        let now = Timestamp::now();
        let occurrence = self.cache().observe(key, now);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        if let Occurrence::Repeat { created, count } = occurrence {
            let name = self.event_name(regarding, created);
            let patch = serde_json::json!({
                "series": {"count": count, "lastObservedTime": MicroTime(now)}
            });
            match events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Deleted (events expire after an hour): start a new one.
                Err(kube::Error::Api(status)) if status.code == 404 => self.cache().forget(key),
                Err(error) => return Err(error),
            }
        }
        events
            .create(
                &PostParams::default(),
                &self.new_event(event, regarding, now),
            )
            .await?;
        self.cache().created(key, now);
        Ok(())
    }

    /// The name of the event about `regarding` created at `created` (client-go's form).
    fn event_name(&self, regarding: &ObjectReference, created: Timestamp) -> String {
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        format!("{object}.{:x}", created.as_nanosecond())
    }

    fn new_event(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(self.event_name(regarding, now)),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..K8sEvent::default()
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SeriesCache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn repeats_count_in_the_series_of_the_first_event() {
        let mut cache = SeriesCache::new(8);
        assert_eq!(cache.observe(1, at(0)), Occurrence::First);
        cache.created(1, at(0));
        assert_eq!(
            cache.observe(1, at(10)),
            Occurrence::Repeat {
                created: at(0),
                count: 2
            }
        );
        assert_eq!(
            cache.observe(1, at(20)),
            Occurrence::Repeat {
                created: at(0),
                count: 3
            }
        );
        assert_eq!(cache.observe(2, at(20)), Occurrence::First);
    }

    #[test]
    fn a_repeat_after_the_series_ended_starts_a_new_event() {
        let mut cache = SeriesCache::new(8);
        cache.created(1, at(0));
        // Each repeat keeps the series alive for another six minutes.
        assert!(matches!(
            cache.observe(1, at(300)),
            Occurrence::Repeat { .. }
        ));
        assert!(matches!(
            cache.observe(1, at(600)),
            Occurrence::Repeat { .. }
        ));
        assert_eq!(cache.observe(1, at(600 + 361)), Occurrence::First);
        assert!(cache.is_empty());
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_series_goes_first() {
        let mut cache = SeriesCache::new(3);
        for key in 0..10 {
            cache.created(key, at(key as i64));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.observe(6, at(11)), Occurrence::First);
        assert!(matches!(
            cache.observe(9, at(11)),
            Occurrence::Repeat { .. }
        ));
    }

    #[test]
    fn recreated_keys_leave_no_stale_queue_behind() {
        let mut cache = SeriesCache::new(2);
        for round in 0..100 {
            cache.created(1, at(round));
        }
        assert_eq!(cache.len(), 1);
        assert!(cache.order.len() <= 4, "{}", cache.order.len());
    }

    #[test]
    fn the_key_is_the_object_type_action_and_reason_not_the_note() {
        let object = ObjectReference {
            kind: Some("AzureResource".into()),
            namespace: Some("ns".into()),
            name: Some("a".into()),
            uid: Some("u1".into()),
            ..ObjectReference::default()
        };
        let event = |reason: &str, note: &str| Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let first = event_key(&event("ArmUnavailable", "reset"), &object);
        assert_eq!(
            first,
            event_key(&event("ArmUnavailable", "timeout"), &object)
        );
        assert_ne!(first, event_key(&event("Throttled", "reset"), &object));
        let other = ObjectReference {
            uid: Some("u2".into()),
            ..object.clone()
        };
        assert_ne!(first, event_key(&event("ArmUnavailable", "reset"), &other));
    }
}
