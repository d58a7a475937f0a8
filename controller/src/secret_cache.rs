//! Secrets the reconciles read (credentials, `parametersFrom`), kept after the first read
//! and dropped when the controller's Secret watch reports a change. Without it every
//! reconcile GETs the same credentials Secret again: at 100,000 objects that is 200,000
//! apiserver reads for one Secret. Only the decoded data of Secrets that an object named
//! is kept (never logged), and only while the Secret watch runs: a watch that fails or
//! lists again empties the cache, so that a change missed meanwhile is read afresh.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, Client};

/// A Secret's `data` (decoded) merged with `stringData`, UTF-8 values only.
pub type SecretData = Arc<BTreeMap<String, String>>;

/// Secret data by namespace and name; `None`: the Secret did not exist.
#[derive(Default)]
pub struct SecretCache {
    /// False: nothing watches Secrets, so every read goes to the apiserver.
    watched: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<(String, String), Option<SecretData>>,
    /// Counts changes: a read that a change overtook is used once, not kept.
    changes: u64,
}

impl SecretCache {
    /// A cache whose owner feeds it every change of a Secret ([`SecretCache::changed`]).
    pub fn watched() -> Self {
        SecretCache {
            watched: true,
            state: Mutex::default(),
        }
    }

    /// The Secret's data, from the cache or read from the apiserver.
    pub async fn data(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> kube::Result<Option<SecretData>> {
        let key = (namespace.to_owned(), name.to_owned());
        let changes = {
            let state = self.state();
            if self.watched
                && let Some(entry) = state.entries.get(&key)
            {
                return Ok(entry.clone());
            }
            state.changes
        };
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let data = api
            .get_opt(name)
            .await?
            .map(|secret| Arc::new(secret_data(&secret)));
        let mut state = self.state();
        if self.watched && state.changes == changes {
            state.entries.insert(key, data.clone());
        }
        Ok(data)
    }

    /// The Secret changed (or was deleted): read it again when next needed.
    pub fn changed(&self, namespace: &str, name: &str) {
        let mut state = self.state();
        state.changes += 1;
        state
            .entries
            .remove(&(namespace.to_owned(), name.to_owned()));
    }

    /// Forgets everything: the watch failed or starts over, changes may have been missed.
    pub fn clear(&self) {
        let mut state = self.state();
        state.changes += 1;
        state.entries.clear();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `data` (decoded) merged with `stringData`, UTF-8 values only.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, ByteString(v))| Some((k.clone(), String::from_utf8(v.clone()).ok()?)))
        .collect();
    if let Some(s) = &secret.string_data {
        out.extend(s.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::FakeKube;

    const PATH: &str = "/api/v1/namespaces/ns/secrets/creds";

    fn put_secret(kube: &FakeKube, value: &str) {
        kube.put(
            PATH,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "creds", "namespace": "ns"},
                   "stringData": {"clientId": value}}),
        );
    }

    async fn client_id(cache: &SecretCache, client: &Client) -> Option<String> {
        let data = cache.data(client, "ns", "creds").await.unwrap()?;
        data.get("clientId").cloned()
    }

    #[tokio::test]
    async fn a_watched_secret_is_read_again_only_after_a_change() {
        let kube = FakeKube::default();
        let client = kube.client();
        let cache = SecretCache::watched();
        assert_eq!(client_id(&cache, &client).await, None);
        put_secret(&kube, "1");
        assert_eq!(client_id(&cache, &client).await, None, "kept as absent");
        cache.changed("ns", "creds");
        assert_eq!(client_id(&cache, &client).await.as_deref(), Some("1"));
        put_secret(&kube, "2");
        assert_eq!(client_id(&cache, &client).await.as_deref(), Some("1"));
        cache.changed("ns", "other");
        assert_eq!(client_id(&cache, &client).await.as_deref(), Some("1"));
        cache.clear();
        assert_eq!(client_id(&cache, &client).await.as_deref(), Some("2"));
    }

    #[tokio::test]
    async fn without_a_watch_every_read_goes_to_the_apiserver() {
        let kube = FakeKube::default();
        let client = kube.client();
        let cache = SecretCache::default();
        put_secret(&kube, "1");
        assert_eq!(client_id(&cache, &client).await.as_deref(), Some("1"));
        put_secret(&kube, "2");
        assert_eq!(client_id(&cache, &client).await.as_deref(), Some("2"));
    }
}
