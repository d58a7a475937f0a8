//! State shared by all reconciles.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use k8s_openapi::jiff::Timestamp;
use kube::{Client, runtime::events::Recorder};

use crate::azure::AzureApiFactory;
use crate::bicep_compiler::BicepCompiler;
use crate::decide::PendingWhatIf;
use crate::metrics::Metrics;

pub struct Context {
    pub client: Client,
    pub azure: Arc<dyn AzureApiFactory>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// `AZURE_SUBSCRIPTION_ID` of the operator identity: the last fallback subscription.
    pub operator_subscription_id: Option<String>,
    pub bicep: BicepCompiler,
    /// When each object (by uid) was last checked against Azure by this process.
    last_checked: Mutex<HashMap<String, Timestamp>>,
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
        recorder: Recorder,
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
            last_checked: Mutex::default(),
            ensured_groups: Mutex::default(),
            pending_what_ifs: Mutex::default(),
        }
    }

    pub fn last_checked(&self, uid: &str) -> Option<Timestamp> {
        self.checks().get(uid).copied()
    }

    pub fn mark_checked(&self, uid: &str, at: Timestamp) {
        self.checks().insert(uid.to_owned(), at);
    }

    pub fn forget(&self, uid: &str) {
        self.checks().remove(uid);
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

    fn checks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Timestamp>> {
        lock(&self.last_checked)
    }
}

/// A panic while holding one of these locks leaves a plain collection behind: still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
