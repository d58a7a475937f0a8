//! State shared by all reconciles.

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
};

use hmac::{Hmac, Mac};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use sha2::Sha256;

use crate::azure::AzureApiFactory;
use crate::bicep_compiler::BicepCompiler;
use crate::decide::PendingWhatIf;
use crate::error::{Error, Result};
use crate::events::EventRecorder;
use crate::metrics::Metrics;
use crate::own_writes::OwnWrites;
use crate::secret_cache::SecretCache;

pub struct Context {
    pub client: Client,
    pub azure: Arc<dyn AzureApiFactory>,
    pub recorder: EventRecorder,
    pub metrics: Arc<Metrics>,
    /// `AZURE_SUBSCRIPTION_ID` of the operator identity: the last fallback subscription.
    pub operator_subscription_id: Option<String>,
    pub bicep: BicepCompiler,
    /// Objects as our last write left them, for the reconcile that follows.
    pub own_writes: OwnWrites,
    /// Secrets the reconciles read; cached only where a Secret watch keeps it current.
    pub secrets: SecretCache,
    /// Per-installation key of `status.appliedHash` (see [`Context::keyed_hash`]).
    hash_key: Option<Vec<u8>>,
    /// With leader election: Unix milliseconds until which this replica may write to ARM.
    write_deadline: Option<Arc<AtomicI64>>,
    /// When each object was last checked against Azure by this process, in Unix ms by a
    /// hash of its uid: 16 bytes an entry instead of about 100 with the uid as a string,
    /// as every Ready object has one.
    last_checked: Mutex<HashMap<u64, i64>>,
    /// Resource groups this process created or updated (subscription/name/location,
    /// lower case): one PUT per group instead of one per deployment keeps writes under
    /// ARM's per-subscription limits. Forgotten when ARM reports the group missing.
    ensured_groups: Mutex<HashSet<String>>,
    /// What-ifs started and not yet read, by object uid.
    pending_what_ifs: Mutex<HashMap<String, PendingWhatIf>>,
}

impl Context {
    pub fn new(
        client: Client,
        azure: Arc<dyn AzureApiFactory>,
        recorder: EventRecorder,
        metrics: Arc<Metrics>,
        operator_subscription_id: Option<String>,
    ) -> Self {
        Context {
            client,
            azure,
            recorder,
            metrics,
            operator_subscription_id,
            bicep: BicepCompiler::default(),
            secrets: SecretCache::default(),
            own_writes: OwnWrites::default(),
            hash_key: None,
            write_deadline: None,
            last_checked: Mutex::default(),
            ensured_groups: Mutex::default(),
            pending_what_ifs: Mutex::default(),
        }
    }

    /// Keys `status.appliedHash` with `key`, so that reading an object does not allow
    /// testing guesses of its secure parameters offline against the stored digest.
    pub fn with_hash_key(mut self, key: Vec<u8>) -> Self {
        self.hash_key = Some(key);
        self
    }

    /// HMAC-SHA256 of the plain digest under the installation's key; the plain digest
    /// when no key is configured.
    pub fn keyed_hash(&self, plain: &str) -> String {
        keyed_hash(self.hash_key.as_deref(), plain)
    }

    /// Keeps the Secrets reconciles read until `secrets` learns of a change: for a
    /// context whose owner feeds every Secret change to it.
    pub fn with_secret_cache(mut self, secrets: SecretCache) -> Self {
        self.secrets = secrets;
        self
    }

    /// ARM writes are allowed only until the Unix millisecond in `deadline`, which the lease
    /// tracker moves forward while this replica holds the lease.
    pub fn with_write_deadline(mut self, deadline: Arc<AtomicI64>) -> Self {
        self.write_deadline = Some(deadline);
        self
    }

    /// Refuses an ARM write once this replica may no longer hold the lease, so that a
    /// leader cut off from the apiserver stops before another can start.
    pub fn may_write(&self) -> Result<()> {
        match &self.write_deadline {
            Some(deadline)
                if Timestamp::now().as_millisecond() >= deadline.load(Ordering::Acquire) =>
            {
                Err(Error::NotLeader)
            }
            _ => Ok(()),
        }
    }

    pub fn last_checked(&self, uid: &str) -> Option<Timestamp> {
        let at = self.checks().get(&uid_key(uid)).copied()?;
        Timestamp::from_millisecond(at).ok()
    }

    pub fn mark_checked(&self, uid: &str, at: Timestamp) {
        self.checks().insert(uid_key(uid), at.as_millisecond());
    }

    pub fn forget(&self, uid: &str) {
        self.checks().remove(&uid_key(uid));
        self.set_pending_what_if(uid, None);
    }

    pub fn pending_what_if(&self, uid: &str) -> Option<PendingWhatIf> {
        lock(&self.pending_what_ifs).get(uid).cloned()
    }

    pub fn set_pending_what_if(&self, uid: &str, pending: Option<PendingWhatIf>) {
        let mut pending_what_ifs = lock(&self.pending_what_ifs);
        match pending {
            Some(p) => pending_what_ifs.insert(uid.to_owned(), p),
            None => pending_what_ifs.remove(uid),
        };
    }

    pub fn group_ensured(&self, key: &str) -> bool {
        lock(&self.ensured_groups).contains(key)
    }

    pub fn mark_group_ensured(&self, key: &str, ensured: bool) {
        let mut groups = lock(&self.ensured_groups);
        if ensured {
            groups.insert(key.to_owned());
        } else {
            groups.remove(key);
        }
    }

    fn checks(&self) -> std::sync::MutexGuard<'_, HashMap<u64, i64>> {
        lock(&self.last_checked)
    }
}

/// An object's key in per-object maps kept for every object (uids are unique, and a
/// collision of 64-bit hashes would at worst move one drift check).
fn uid_key(uid: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    uid.hash(&mut hasher);
    hasher.finish()
}

fn keyed_hash(key: Option<&[u8]>, plain: &str) -> String {
    let Some(key) = key else {
        return plain.to_owned();
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(plain.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A panic while holding one of these locks leaves a plain collection behind: still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_hashes_are_keyed_per_installation() {
        let plain = "5d41402abc4b2a76b9719d911017c592";
        assert_eq!(keyed_hash(None, plain), plain);
        let keyed = keyed_hash(Some(b"installation-1"), plain);
        assert_eq!(keyed.len(), 64);
        assert_ne!(keyed, plain);
        assert_eq!(keyed_hash(Some(b"installation-1"), plain), keyed);
        assert_ne!(keyed_hash(Some(b"installation-2"), plain), keyed);
    }
}
