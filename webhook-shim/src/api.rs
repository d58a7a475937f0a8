//! The HTTP API: warp filters, JSON answers and errors, and what each endpoint does.
//! What a request may take is in [`crate::intake`], the cluster writes behind a request
//! in [`crate::writes`].

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Buf;
use crds::AzureResource;
use futures::Stream;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::{Map, Value, json};
use tracing::{Instrument, info, info_span, warn};
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::auth::Authenticator;
use crate::cache::ObjectCache;
use crate::driver_files::{DriverFiles, Limits};
use crate::error::ApiError;
use crate::error::kube_error;
use crate::intake::{FILE_COPIES, check_json_content_type, read_bounded};
use crate::kafka::{MESSAGE_VERSION, ResultPublisher};
use crate::lean::Lean;
use crate::mapping::{
    Action, LABEL_RESOURCE_NAME, MappingContext, PendingRequest, accepted_topology,
    exact_resource_id, is_resource_object, label_value, owner_digest, topology_entry_name,
    topology_id,
};
use crate::metrics::Metrics;
use crate::request;
use crate::tls::ClientCertificate;

pub use crate::intake::{
    Admission, BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MEMORY_BUDGET_BYTES, Ticket,
};
pub use crate::writes::{ObjectWrite, precondition_failed};

const TRACE_HEADER_PREFIX: &str = "x-tracectx-";
/// Seconds a caller refused with 503 is asked to wait.
const RETRY_AFTER_SECS: &str = "1";

/// Shared state of the handlers.
#[derive(Clone)]
pub struct Shim {
    pub client: Client,
    pub mapping: MappingContext,
    pub publisher: ResultPublisher,
    pub limits: Limits,
    pub max_body_bytes: usize,
    pub metrics: Metrics,
    /// False while a component the API depends on is down; `/management/health` says 503.
    pub healthy: Arc<AtomicBool>,
    pub authenticator: Authenticator,
    pub admission: Admission,
    /// Digest of the credentials Secret content last applied, by Secret name: unchanged
    /// credentials cost no apiserver write.
    pub(crate) applied_credentials: Arc<Mutex<HashMap<String, String>>>,
    /// The reporter's watch cache: where a Create finds the object it replaces, with a
    /// precondition on the write instead of a read per request.
    pub(crate) objects: Option<ObjectCache>,
}

/// Who asked: `tenantId` and `x-tracectx-*` headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: Option<String>,
    pub trace: BTreeMap<String, String>,
}

impl Caller {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut caller = Caller::default();
        for (name, value) in headers {
            let Ok(value) = value.to_str() else { continue };
            let name = name.as_str();
            if name.eq_ignore_ascii_case("tenantid") {
                caller.tenant_id = Some(value.to_string());
            } else if let Some(suffix) = name.to_ascii_lowercase().strip_prefix(TRACE_HEADER_PREFIX)
            {
                caller.trace.insert(suffix.to_string(), value.to_string());
            }
        }
        caller
    }
}

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

fn error_response(err: &ApiError) -> Response {
    json_response(err.status, &err.body())
}

impl Shim {
    pub fn new(
        client: Client,
        mapping: MappingContext,
        publisher: ResultPublisher,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            mapping,
            publisher,
            limits: Limits::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            metrics,
            healthy: Arc::new(AtomicBool::new(true)),
            authenticator: Authenticator::default(),
            admission: Admission::new(DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MEMORY_BUDGET_BYTES),
            applied_credentials: Arc::default(),
            objects: None,
        }
    }

    /// Serves the replaced-request check from `objects` (the reporter's cache) once it
    /// has synced; until then, and after a failed precondition, from the apiserver.
    pub fn with_object_cache(mut self, objects: ObjectCache) -> Self {
        self.objects = Some(objects);
        self
    }

    /// The object as the synced cache has it: `None` when there is no synced cache.
    pub(crate) fn cached(&self, name: &str) -> Option<Option<AzureResource>> {
        self.objects.as_ref()?.get(name)
    }

    pub(crate) fn resources(&self) -> Api<Lean> {
        Api::namespaced(self.client.clone(), &self.mapping.namespace)
    }

    pub(crate) fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.mapping.namespace)
    }

    /// `POST /api/driver/lifecycle/execute`.
    pub async fn execute(
        &self,
        body: &[u8],
        caller: &Caller,
        ticket: &mut Ticket,
    ) -> Result<Value, ApiError> {
        let req = request::parse_execute(body)?;
        let files = DriverFiles::from_zip_charged(&req.driver_files, &self.limits, &mut |bytes| {
            ticket.charge(bytes * FILE_COPIES)
        })?;
        let pending = PendingRequest {
            uuid: uuid::Uuid::new_v4().to_string(),
            lifecycle: req.lifecycle.name().to_string(),
            tenant_id: caller.tenant_id.clone(),
            trace: caller.trace.clone(),
            delete: false,
        };
        let action = crate::mapping::plan(&req, &files, &self.mapping, &pending)?;
        let owner = owner_digest(&req, &self.mapping, pending.tenant_id.as_deref())?;
        let (request_id, topology) = match action {
            Action::Apply(plan) => {
                let (request_id, created_id) = self.apply(&req, *plan, &pending, &owner).await?;
                (request_id, accepted_topology(&req, created_id.as_deref()))
            }
            Action::Delete(target) => {
                let pending = PendingRequest {
                    delete: true,
                    ..pending
                };
                let request_id = self.delete(&req, target, &pending, &owner).await?;
                (request_id, accepted_topology(&req, None))
            }
        };
        info!(
            request_id = %request_id,
            lifecycle = %req.lifecycle.name(),
            resource_id = %req.system.resource_id,
            "lifecycle request accepted"
        );
        Ok(
            json!({"requestId": request_id, "associatedTopology": topology, "version": MESSAGE_VERSION}),
        )
    }

    /// `POST /api/driver/references/find`.
    pub async fn find(&self, body: &[u8]) -> Result<Value, ApiError> {
        let req = request::parse_find(body)?;
        let selector = format!("{LABEL_RESOURCE_NAME}={}", label_value(&req.instance_name));
        let list = self
            .resources()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|err| kube_error(err, "AzureResource list"))?;
        let found = list
            .items
            .into_iter()
            .map(|Lean(object)| object)
            .find(|o| o.metadata.deletion_timestamp.is_none() && is_resource_object(o));
        let Some(object) = found else {
            return Ok(json!({"result": null}));
        };
        let mut topology = Map::new();
        if let Some(id) = topology_id(&object) {
            topology.insert(
                topology_entry_name(&req.instance_name),
                json!({"id": id, "type": "Azure"}),
            );
        }
        let outputs: Map<String, Value> = object
            .status
            .as_ref()
            .map(|s| s.outputs.clone().into_iter().collect())
            .unwrap_or_default();
        Ok(json!({"result": {
            "resourceId": exact_resource_id(&object),
            "outputs": outputs,
            "associatedTopology": topology,
        }}))
    }
}

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Execute,
    Find,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Execute => "execute",
            Endpoint::Find => "find",
        }
    }

    fn success(self) -> u16 {
        match self {
            Endpoint::Execute => 202,
            Endpoint::Find => 200,
        }
    }
}

/// One API request: authenticate, admit, read the body, handle, answer.
async fn answer<S, B>(
    shim: Shim,
    endpoint: Endpoint,
    headers: HeaderMap,
    certificate: Option<ClientCertificate>,
    body: S,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let caller = Caller::from_headers(&headers);
    let span = info_span!("request", endpoint = endpoint.name(), tracectx = %crate::logging::trace_field(&caller.trace));
    async {
        let result = async {
            shim.authenticator.check(&headers, certificate)?;
            let mut ticket = shim.admission.admit()?;
            check_json_content_type(&headers)?;
            let body = read_bounded(body, shim.max_body_bytes, &mut ticket).await?;
            match endpoint {
                Endpoint::Execute => shim.execute(&body, &caller, &mut ticket).await,
                Endpoint::Find => shim.find(&body).await,
            }
        }
        .await;
        let mut response = match &result {
            Ok(value) => json_response(endpoint.success(), value),
            Err(err) => {
                warn!(status = err.status, error = %err.message, "request refused");
                error_response(err)
            }
        };
        shim.metrics
            .record_request(endpoint.name(), response.status().as_u16());
        if let Some(Ok(value)) = caller.tenant_id.as_ref().map(|t| t.parse()) {
            response.headers_mut().insert("tenantId", value);
        }
        match response.status() {
            StatusCode::SERVICE_UNAVAILABLE => {
                response.headers_mut().insert(
                    warp::http::header::RETRY_AFTER,
                    warp::http::HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            StatusCode::UNAUTHORIZED => {
                response.headers_mut().insert(
                    warp::http::header::WWW_AUTHENTICATE,
                    warp::http::HeaderValue::from_static("Bearer"),
                );
            }
            _ => {}
        }
        response
    }
    .instrument(span)
    .await
}

/// All routes of the shim.
pub fn routes(shim: Shim) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let with_shim = {
        let shim = shim.clone();
        warp::any().map(move || shim.clone())
    };
    let execute = warp::path!("api" / "driver" / "lifecycle" / "execute")
        .and(warp::post())
        .and(with_shim.clone())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<ClientCertificate>())
        .and(warp::body::stream())
        .then(|shim, headers, certificate, body| {
            answer(shim, Endpoint::Execute, headers, certificate, body)
        });
    let find = warp::path!("api" / "driver" / "references" / "find")
        .and(warp::post())
        .and(with_shim.clone())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<ClientCertificate>())
        .and(warp::body::stream())
        .then(|shim, headers, certificate, body| {
            answer(shim, Endpoint::Find, headers, certificate, body)
        });
    let health = warp::path!("management" / "health")
        .and(warp::get())
        .and(with_shim.clone())
        .map(|shim: Shim| {
            if shim.healthy.load(Ordering::Relaxed) {
                json_response(200, &json!({"vitals": {"app": {"status": "OK"}}}))
            } else {
                json_response(503, &json!({"vitals": {"app": {"status": "UNHEALTHY"}}}))
            }
        });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_shim)
        .map(|shim: Shim| {
            let mut response = Response::new(shim.metrics.encode().into());
            response.headers_mut().insert(
                warp::http::header::CONTENT_TYPE,
                warp::http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        });
    execute
        .or(find)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            let err = if rejection.is_not_found() {
                ApiError::with_status(404, "Not found")
            } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
                ApiError::with_status(405, "Method not allowed")
            } else {
                ApiError::bad_request("Invalid request")
            };
            Ok::<_, Infallible>(error_response(&err))
        })
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KafkaSettings;
    use crate::driver_files::tests::zip_of;
    use base64::Engine;

    /// A shim whose cluster and broker are unreachable: every request here must be
    /// refused before touching either.
    fn offline_shim() -> Shim {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        Shim::new(
            Client::try_from(config).unwrap(),
            MappingContext {
                namespace: "default".into(),
                ..MappingContext::default()
            },
            ResultPublisher::new(&KafkaSettings {
                bootstrap_servers: "127.0.0.1:9".into(),
                topic: "t".into(),
                client_config: BTreeMap::new(),
            })
            .unwrap(),
            Metrics::default(),
        )
    }

    fn valid() -> Value {
        json!({
            "lifecycleName": "Create",
            "driverFiles": "",
            "systemProperties": {
                "resourceId": {"type": "string", "value": "be3870d2-891c-487e-9736-ca19e4741cf4"},
                "resourceName": {"type": "string", "value": "net-a"},
                "resourceType": {"type": "string", "value": "resource::AzureVNet::1.0"}
            },
            "resourceProperties": {"resourcegroup_name": {"type": "string", "value": "rg1"}},
            "deploymentLocation": {"name": "dl", "type": "Azure", "properties": {
                "tenantId": "t", "clientId": "c", "clientSecret": "s",
                "subscriptionId": "00000000-0000-0000-0000-000000000001"}}
        })
    }

    fn b64(bytes: &[u8]) -> Value {
        Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    async fn post(path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let response = warp::test::request()
            .method("POST")
            .path(path)
            .header("content-type", content_type)
            .body(body)
            .reply(&routes(offline_shim()))
            .await;
        (
            response.status().as_u16(),
            serde_json::from_slice(response.body()).unwrap(),
        )
    }

    #[tokio::test]
    async fn bad_requests_get_4xx_json_and_touch_nothing() {
        let with = |pointer: &str, value: Value| {
            let mut body = valid();
            *body.pointer_mut(pointer).unwrap() = value;
            body
        };
        let without = |field: &str| {
            let mut body = valid();
            body.as_object_mut().unwrap().remove(field);
            body
        };
        let bomb = zip_of(&[("Create.json", &vec![b' '; 8 * 1024 * 1024])]);
        let cases: Vec<(Value, u16, &str)> = vec![
            (
                without("lifecycleName"),
                400,
                "'lifecycleName' is a required field but was not found in the request data body",
            ),
            (
                without("systemProperties"),
                400,
                "'systemProperties' is a required field but was not found in the request data body",
            ),
            (
                with("/driverFiles", json!("%%%")),
                400,
                "'driverFiles' is not valid base64",
            ),
            (
                with("/driverFiles", b64(b"just text")),
                400,
                "'driverFiles' is not a valid zip archive",
            ),
            (
                with("/driverFiles", b64(&bomb)),
                400,
                "driverFiles entry \"Create.json\" has a suspicious compression ratio",
            ),
            (
                with("/driverFiles", b64(&zip_of(&[("../Create.bicep", b"x")]))),
                400,
                "driverFiles entry \"../Create.bicep\" escapes the package folder",
            ),
            (
                with(
                    "/systemProperties/resourceType/value",
                    json!("resource::Unknown::1.0"),
                ),
                400,
                "Unknown resource type \"resource::Unknown::1.0\": no template in driverFiles and no built-in template",
            ),
            (
                with("/deploymentLocation/properties", json!({})),
                400,
                "AZURE credentials are missing",
            ),
        ];
        for (body, status, message) in cases {
            let (got_status, got) = post(
                "/api/driver/lifecycle/execute",
                "application/json",
                body.to_string().into_bytes(),
            )
            .await;
            assert_eq!(
                (got_status, got),
                (
                    status,
                    json!({"localizedMessage": message, "status": status})
                )
            );
        }
    }

    #[tokio::test]
    async fn oversize_bodies_and_wrong_content_types_are_refused() {
        let (status, body) = post(
            "/api/driver/lifecycle/execute",
            "application/json",
            vec![b' '; 20 * 1024 * 1024],
        )
        .await;
        assert_eq!(status, 413);
        assert_eq!(
            body["localizedMessage"],
            format!("Request body is larger than {DEFAULT_MAX_BODY_BYTES} bytes")
        );
        let (status, body) = post(
            "/api/driver/lifecycle/execute",
            "text/plain",
            valid().to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 415);
        assert_eq!(
            body,
            json!({"localizedMessage": "Invalid Content-Type (text/plain), expected JSON data", "status": 415})
        );
        let (status, _) = post(
            "/api/driver/references/find",
            "application/json",
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn health_and_unknown_paths() {
        let shim = offline_shim();
        let response = warp::test::request()
            .path("/management/health")
            .reply(&routes(shim.clone()))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            serde_json::from_slice::<Value>(response.body()).unwrap(),
            json!({"vitals": {"app": {"status": "OK"}}})
        );
        shim.healthy.store(false, Ordering::Relaxed);
        let response = warp::test::request()
            .path("/management/health")
            .reply(&routes(shim.clone()))
            .await;
        assert_eq!(response.status(), 503);
        let response = warp::test::request()
            .path("/nope")
            .reply(&routes(shim.clone()))
            .await;
        assert_eq!(response.status(), 404);
        let response = warp::test::request()
            .path("/metrics")
            .reply(&routes(shim))
            .await;
        assert!(
            String::from_utf8_lossy(response.body())
                .contains("azure_driver_shim_publish_failures_total 0")
        );
    }

    #[test]
    fn caller_headers_are_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert("TenantId", "t-1".parse().unwrap());
        headers.insert("x-tracectx-TransactionId", "tx".parse().unwrap());
        let caller = Caller::from_headers(&headers);
        assert_eq!(caller.tenant_id.as_deref(), Some("t-1"));
        assert_eq!(
            caller.trace,
            BTreeMap::from([("transactionid".into(), "tx".into())])
        );
    }
}
