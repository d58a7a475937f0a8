//! State shared by all reconciles.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use k8s_openapi::jiff::Timestamp;
use kube::{Client, runtime::events::Recorder};

use crate::azure::AzureApiFactory;
use crate::bicep_compiler::BicepCompiler;
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
    }

    fn checks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Timestamp>> {
        // A panic while holding this lock leaves a plain map behind: still usable.
        self.last_checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
