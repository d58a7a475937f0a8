//! An in-memory apiserver for a `kube::Client`: objects by path, GET, POST and the three
//! PATCH kinds the controller sends, and a log of every write.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

/// Objects are stored as JSON by their API path (`/apis/g/v/namespaces/n/kind/name`).
#[derive(Clone, Default)]
pub struct FakeKube {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    /// `METHOD path` of every write, in order.
    writes: Vec<String>,
    resource_version: u64,
}

impl FakeKube {
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }

    pub fn put(&self, path: &str, object: Value) {
        self.state().objects.insert(path.to_owned(), object);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.state().objects.get(path).cloned()
    }

    pub fn writes(&self) -> Vec<String> {
        self.state().writes.clone()
    }

    pub fn clear_writes(&self) {
        self.state().writes.clear();
    }

    /// The stored objects whose path starts with `prefix`.
    pub fn list(&self, prefix: &str) -> Vec<Value> {
        let state = self.state();
        let found = state.objects.range(prefix.to_owned()..);
        found
            .take_while(|(path, _)| path.starts_with(prefix))
            .map(|(_, object)| object.clone())
            .collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn handle(
        &self,
        method: &Method,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let mut state = self.state();
        if *method != Method::GET {
            state.writes.push(format!("{method} {path}"));
        }
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match *method {
            Method::GET => match state.objects.get(path) {
                Some(object) => (StatusCode::OK, object.clone()),
                None => not_found(path),
            },
            Method::POST => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default();
                let path = format!("{path}/{name}");
                if state.objects.contains_key(&path) {
                    return status(StatusCode::CONFLICT, "AlreadyExists", &path);
                }
                let object = state.stored(&path, body);
                (StatusCode::CREATED, object)
            }
            Method::PATCH => state.patch(path, content_type, &body),
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", path),
        }
    }
}

impl State {
    /// Stores `object` at `path` with a new resourceVersion; an object being deleted
    /// whose last finalizer went is removed, as the apiserver does.
    fn stored(&mut self, path: &str, mut object: Value) -> Value {
        self.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        let finalizers = object["metadata"]["finalizers"]
            .as_array()
            .map_or(0, Vec::len);
        if object["metadata"]["deletionTimestamp"].is_string() && finalizers == 0 {
            self.objects.remove(path);
        } else {
            self.objects.insert(path.to_owned(), object.clone());
        }
        object
    }

    fn patch(&mut self, path: &str, content_type: &str, body: &Value) -> (StatusCode, Value) {
        let (path, status_only) = match path.strip_suffix("/status") {
            Some(object) => (object, true),
            None => (path, false),
        };
        let existing = self.objects.get(path).cloned();
        let mut object = match (existing, content_type) {
            (Some(object), _) => object,
            // Server-side apply creates what is missing.
            (None, "application/apply-patch+yaml") if !status_only => json!({}),
            (None, _) => return not_found(path),
        };
        match content_type {
            "application/json-patch+json" => {
                let patch: json_patch::Patch =
                    serde_json::from_value(body.clone()).expect("a JSON patch");
                if let Err(error) = json_patch::patch(&mut object, &patch.0) {
                    return status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        &error.to_string(),
                    );
                }
            }
            // The controller owns all of the status it applies.
            _ if status_only => object["status"] = body["status"].clone(),
            _ => json_patch::merge(&mut object, body),
        }
        (StatusCode::OK, self.stored(path, object))
    }
}

fn not_found(path: &str) -> (StatusCode, Value) {
    status(StatusCode::NOT_FOUND, "NotFound", path)
}

fn status(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code.as_u16(),
    });
    (code, body)
}

impl tower_service::Service<Request<kube::client::Body>> for FakeKube {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let fake = self.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let content_type = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let (code, value) = fake.handle(&parts.method, parts.uri.path(), content_type, &body);
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(value.to_string())))
                .expect("a response of status, header and body");
            Ok(response)
        })
    }
}
