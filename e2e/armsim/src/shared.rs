//! State shared by the connections and the long-running operations, and the
//! evaluator's view of the live inventory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

use crate::auth::TokenStore;
use crate::config::{CompiledConfig, ConfigError, SimConfig};
use crate::counters::Counters;
use crate::state::State;
use crate::template::{ResourceLookup, synthesize_runtime};
use crate::throttle::SubscriptionBuckets;

/// State shared by the connections and the long-running operations.
pub(crate) struct Shared {
    pub endpoint: String,
    config: RwLock<Arc<CompiledConfig>>,
    state: Mutex<State>,
    tokens: Mutex<TokenStore>,
    counters: Mutex<Counters>,
    buckets: Mutex<HashMap<String, SubscriptionBuckets>>,
    rng: Mutex<StdRng>,
}

/// Locks ignoring poisoning: a panicking request must not take the simulator down.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(endpoint: String, config: CompiledConfig) -> Self {
        let seed = config.config.seed;
        let mut state = State::default();
        state
            .operations
            .set_retention(config.config.operation_retention);
        Self {
            endpoint,
            config: RwLock::new(Arc::new(config)),
            state: Mutex::new(state),
            tokens: Mutex::new(TokenStore::default()),
            counters: Mutex::new(Counters::default()),
            buckets: Mutex::new(HashMap::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    pub fn config(&self) -> Arc<CompiledConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_config(&self, config: SimConfig) -> Result<(), ConfigError> {
        let compiled = config.compile()?;
        let old = self.config();
        if old.config.seed != compiled.config.seed {
            *lock(&self.rng) = StdRng::seed_from_u64(compiled.config.seed);
        }
        if old.config.throttling != compiled.config.throttling {
            lock(&self.buckets).clear();
        }
        self.state()
            .operations
            .set_retention(compiled.config.operation_retention);
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(compiled);
        Ok(())
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn tokens(&self) -> MutexGuard<'_, TokenStore> {
        lock(&self.tokens)
    }

    pub fn counters(&self) -> MutexGuard<'_, Counters> {
        lock(&self.counters)
    }

    pub fn buckets(&self) -> MutexGuard<'_, HashMap<String, SubscriptionBuckets>> {
        lock(&self.buckets)
    }

    pub fn rng(&self) -> MutexGuard<'_, StdRng> {
        lock(&self.rng)
    }
}

/// `reference()` and `existing` lookups for the evaluator, over the live inventory.
/// Locks per lookup, so evaluation itself runs without the state lock. Absent
/// resources of a type the configuration's `assumeExisting` covers answer as
/// [`assumed_resource`] describes.
pub(crate) struct InventoryLookup<'a> {
    pub shared: &'a Shared,
    pub tenant_id: &'a str,
}

impl ResourceLookup for InventoryLookup<'_> {
    fn get(&self, resource_id: &str) -> Option<Value> {
        if let Some(item) = self.shared.state().inventory.get(resource_id) {
            return Some(item.body.clone());
        }
        let resource_type = resource_type_of(resource_id)?;
        if !self.shared.config().assumes_existing(&resource_type) {
            return None;
        }
        let location = resource_group_id(resource_id)
            .and_then(|group| {
                self.shared
                    .state()
                    .inventory
                    .get(&group)
                    .and_then(|item| item.body["location"].as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| ASSUMED_LOCATION.to_owned());
        Some(assumed_resource(
            resource_id,
            &resource_type,
            &location,
            self.tenant_id,
        ))
    }
}

/// Location of assumed resources outside any resource group.
const ASSUMED_LOCATION: &str = "westeurope";

/// The resource type an id names: `Microsoft.Network/virtualNetworks/subnets` for
/// `.../providers/Microsoft.Network/virtualNetworks/v/subnets/s`; resource groups
/// and subscriptions by their own types. `None` for ids that name no resource.
pub fn resource_type_of(resource_id: &str) -> Option<String> {
    let segments: Vec<&str> = resource_id.split('/').filter(|s| !s.is_empty()).collect();
    match segments
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))
    {
        Some(p) => {
            let tail = &segments[p + 1..];
            if tail.len() < 3 || tail.len().is_multiple_of(2) {
                return None;
            }
            let mut parts = vec![tail[0]];
            parts.extend(tail[1..].iter().step_by(2));
            Some(parts.join("/"))
        }
        None => match segments.as_slice() {
            [s, _, g, _]
                if s.eq_ignore_ascii_case("subscriptions")
                    && g.eq_ignore_ascii_case("resourceGroups") =>
            {
                Some("Microsoft.Resources/resourceGroups".into())
            }
            [s, _] if s.eq_ignore_ascii_case("subscriptions") => {
                Some("Microsoft.Resources/subscriptions".into())
            }
            _ => None,
        },
    }
}

fn resource_group_id(resource_id: &str) -> Option<String> {
    let segments: Vec<&str> = resource_id.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [s, sub, g, group, ..]
            if s.eq_ignore_ascii_case("subscriptions")
                && g.eq_ignore_ascii_case("resourceGroups") =>
        {
            Some(format!("/subscriptions/{sub}/resourceGroups/{group}"))
        }
        _ => None,
    }
}

/// The body a resource that "already exists" reports: its id, name, type and
/// location, empty tags and properties, plus the runtime values its provider would
/// add (endpoints, principal ids, `provisioningState`).
pub fn assumed_resource(
    resource_id: &str,
    resource_type: &str,
    location: &str,
    tenant_id: &str,
) -> Value {
    let name = resource_id
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let mut body = serde_json::json!({
        "id": resource_id,
        "name": name,
        "type": resource_type,
        "location": location,
        "tags": {},
        "properties": {},
    });
    if let Some(object) = body.as_object_mut() {
        synthesize_runtime(object, resource_id, resource_type, tenant_id);
    }
    body
}
