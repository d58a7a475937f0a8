//! The HTTP API: warp filters, bounded bodies, JSON errors, and the cluster writes
//! behind each endpoint.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes};
use crds::AzureResource;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{Instrument, info, info_span, warn};
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::auth::Authenticator;
use crate::completion::{object_request_id, publish_once, superseded};
use crate::driver_files::{DriverFiles, Limits};
use crate::error::ApiError;
use crate::kafka::{Envelope, MESSAGE_VERSION, ResultMessage, ResultPublisher};
use crate::mapping::{
    ANNOTATION_REQUEST, ANNOTATION_RESOURCE_ID, Action, AdoptedEntry, ApplyPlan, DeleteTarget,
    FIELD_MANAGER, LABEL_LIFECYCLE, LABEL_RESOURCE_ID, LABEL_RESOURCE_NAME, MappingContext,
    PendingRequest, accepted_topology, adopt_for_delete, authorise, entry_to_adopt, label_value,
    object_name, owner_digest, request_id, topology_arm_id, topology_entry_name, topology_id,
};
use crate::metrics::Metrics;
use crate::request::{self, ExecuteRequest, Lifecycle};
use crate::tls::ClientCertificate;

/// Bodies above this are refused with 413 (base64 driver files included).
pub const DEFAULT_MAX_BODY_BYTES: usize = 12 * 1024 * 1024;
const TRACE_HEADER_PREFIX: &str = "x-tracectx-";
/// API requests served at once; more are answered 503 with `Retry-After`.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;
/// Memory the API's requests in flight may hold together (see [`Admission`]).
pub const DEFAULT_MEMORY_BUDGET_BYTES: usize = 160 * 1024 * 1024;
/// A request body must arrive within this (408 otherwise).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Copies of each body byte a request may hold at once: the body buffer (up to twice its
/// length while it grows), the parsed JSON, the decoded archive.
const BODY_COPIES: usize = 4;
/// Copies of each inflated driver-files byte: the file, the template text and what is
/// built from it (bounded by the object size cap).
const FILE_COPIES: u64 = 2;
/// Seconds a caller refused with 503 is asked to wait.
const RETRY_AFTER_SECS: &str = "1";

/// Bounds on the API's requests in flight: their number, and the memory they hold, charged
/// before it is taken (body bytes as they arrive, driver files before they are inflated).
/// Worst case of one request: 4 × 12 MiB body + 2 × 16 MiB files = 80 MiB.
#[derive(Clone)]
pub struct Admission {
    requests: Arc<Semaphore>,
    memory_kib: Arc<Semaphore>,
}

/// One admitted request: its slot and the memory charged to it, released when dropped.
pub struct Ticket {
    _slot: OwnedSemaphorePermit,
    memory_kib: Arc<Semaphore>,
    charged: Option<OwnedSemaphorePermit>,
}

fn busy() -> ApiError {
    ApiError::unavailable("The driver is busy; retry shortly")
}

impl Admission {
    pub fn new(max_requests: usize, memory_bytes: usize) -> Self {
        Self {
            requests: Arc::new(Semaphore::new(max_requests)),
            memory_kib: Arc::new(Semaphore::new(memory_bytes.div_ceil(1024))),
        }
    }

    /// A slot for one more request, or 503.
    pub fn admit(&self) -> Result<Ticket, ApiError> {
        let slot = self
            .requests
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        Ok(Ticket {
            _slot: slot,
            memory_kib: self.memory_kib.clone(),
            charged: None,
        })
    }
}

impl Ticket {
    /// Charges `bytes` more to this request, or 503 when the budget is spent.
    pub fn charge(&mut self, bytes: u64) -> Result<(), ApiError> {
        let kib = u32::try_from(bytes.div_ceil(1024)).map_err(|_| busy())?;
        if kib == 0 {
            return Ok(());
        }
        let permit = self
            .memory_kib
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| busy())?;
        match &mut self.charged {
            Some(charged) => charged.merge(permit),
            None => self.charged = Some(permit),
        }
        Ok(())
    }
}

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
    applied_credentials: Arc<Mutex<HashMap<String, String>>>,
    /// The reporter's watch cache: where a Create finds the object it replaces, with a
    /// precondition on the write instead of a read per request.
    objects: Option<Store<AzureResource>>,
}

/// The write of a request's object, conditioned on the object the request was decided on
/// (from the watch cache, or read): whatever changed in between fails it with 409 and
/// nothing else was written before it.
#[derive(Debug, Clone)]
pub enum ObjectWrite {
    /// There was no object: create it (409 if one exists by now).
    Create(AzureResource),
    /// Replace the object as of its resourceVersion (409 if it changed since): the spec
    /// becomes the request's exactly; labels and annotations are merged into the existing
    /// ones; finalizers and owner references stay as they are.
    Replace(AzureResource),
}

impl ObjectWrite {
    pub fn of(existing: Option<&AzureResource>, desired: &AzureResource) -> Self {
        let Some(existing) = existing else {
            return ObjectWrite::Create(desired.clone());
        };
        let mut object = desired.clone();
        let metadata = &mut object.metadata;
        metadata.resource_version = existing.metadata.resource_version.clone();
        metadata.uid = existing.metadata.uid.clone();
        metadata.finalizers = existing.metadata.finalizers.clone();
        metadata.owner_references = existing.metadata.owner_references.clone();
        for (merged, kept) in [
            (&mut metadata.labels, &existing.metadata.labels),
            (&mut metadata.annotations, &existing.metadata.annotations),
        ] {
            let mut all = kept.clone().unwrap_or_default();
            all.extend(merged.take().unwrap_or_default());
            *merged = (!all.is_empty()).then_some(all);
        }
        object.status = None;
        ObjectWrite::Replace(object)
    }
}

/// Whether the apiserver refused a write because the object is no longer the one the
/// request was decided on (it exists by now, or changed).
pub fn precondition_failed(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
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

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(warp::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::with_status(
            415,
            format!("Invalid Content-Type ({content_type}), expected JSON data"),
        ))
    }
}

/// Reads a body (chunked or not) up to `max` bytes within [`BODY_TIMEOUT`], charging
/// the memory it takes to `ticket` before taking it.
async fn read_bounded<S, B>(stream: S, max: usize, ticket: &mut Ticket) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    tokio::time::timeout(BODY_TIMEOUT, read_body(stream, max, ticket))
        .await
        .map_err(|_| {
            ApiError::with_status(
                408,
                format!(
                    "Request body not received within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            )
        })?
}

async fn read_body<S, B>(stream: S, max: usize, ticket: &mut Ticket) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk =
            chunk.map_err(|_| ApiError::bad_request("Request body could not be read"))?;
        if body.len() + chunk.remaining() > max {
            return Err(ApiError::with_status(
                413,
                format!("Request body is larger than {max} bytes"),
            ));
        }
        ticket.charge((chunk.remaining() * BODY_COPIES) as u64)?;
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let len = part.len();
            chunk.advance(len);
        }
    }
    Ok(Bytes::from(body))
}

/// How an attempt at [`Shim::apply`] ended without writing the object.
#[derive(Debug)]
enum Attempt {
    /// The object was not what the attempt decided on (a stale cache): decide again.
    Stale,
    /// An answer for the caller.
    Refused(ApiError),
}

impl From<ApiError> for Attempt {
    fn from(err: ApiError) -> Self {
        Attempt::Refused(err)
    }
}

impl Attempt {
    fn from_kube(err: kube::Error, what: &str) -> Self {
        if precondition_failed(&err) {
            Attempt::Stale
        } else {
            Attempt::Refused(kube_error(err, what))
        }
    }
}

fn credentials_digest(credentials: &Secret) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(&credentials.string_data).unwrap_or_default(),
    ))
}

fn kube_error(err: kube::Error, what: &str) -> ApiError {
    match err {
        kube::Error::Api(status) if status.code == 413 => {
            ApiError::with_status(413, format!("{what} is too large: {}", status.message))
        }
        kube::Error::Api(status) if status.code == 422 || status.code == 400 => {
            ApiError::bad_request(format!("{what} was rejected: {}", status.message))
        }
        kube::Error::Api(status) if status.code == 409 || status.code == 429 => {
            ApiError::unavailable(format!("{what}: {}; retry", status.message))
        }
        kube::Error::Api(status) => {
            ApiError::internal(format!("{what} failed: {}", status.message))
        }
        _ => ApiError::unavailable(format!("{what}: Kubernetes API unavailable")),
    }
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
    pub fn with_object_cache(mut self, objects: Store<AzureResource>) -> Self {
        self.objects = Some(objects);
        self
    }

    /// The object as the synced cache has it: `None` when there is no synced cache.
    fn cached(&self, name: &str) -> Option<Option<AzureResource>> {
        let store = self.objects.as_ref()?;
        store.wait_until_ready().now_or_never()?.ok()?;
        let key = ObjectRef::new(name).within(&self.mapping.namespace);
        Some(store.get(&key).map(|o| (*o).clone()))
    }

    fn resources(&self) -> Api<AzureResource> {
        Api::namespaced(self.client.clone(), &self.mapping.namespace)
    }

    fn secrets(&self) -> Api<Secret> {
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

    /// Writes a validated plan: authorise against the resource's objects, dry-run the
    /// object (when anything is written before it), then the Secrets, the earlier
    /// request's result, the object. Whatever the shim or the apiserver refuses before the
    /// object's apply leaves everything as it was. The object is looked up in the watch
    /// cache; every write is conditioned on what was looked at, and a failed condition
    /// (a stale cache) decides again on the apiserver's copy.
    /// Answers the request id and the ARM id the resource's topology entry holds.
    async fn apply(
        &self,
        req: &ExecuteRequest,
        plan: ApplyPlan,
        pending: &PendingRequest,
        owner: &str,
    ) -> Result<(String, Option<String>), ApiError> {
        let name = plan.resource.name_any();
        if let Some(cached) = self.cached(&name) {
            match self
                .apply_on(req, plan.clone(), pending, owner, cached)
                .await
            {
                Err(Attempt::Stale) => {
                    self.metrics.stale_cache.inc();
                }
                Err(Attempt::Refused(err)) => return Err(err),
                Ok(done) => return Ok(done),
            }
        }
        let existing = self.get(&name).await?;
        self.apply_on(req, plan, pending, owner, existing)
            .await
            .map_err(|attempt| match attempt {
                Attempt::Refused(err) => err,
                Attempt::Stale => ApiError::unavailable(format!(
                    "{name} changed while this request was recorded; retry"
                )),
            })
    }

    /// [`Shim::apply`] decided on `existing`, the object as last seen.
    async fn apply_on(
        &self,
        req: &ExecuteRequest,
        plan: ApplyPlan,
        pending: &PendingRequest,
        owner: &str,
        existing: Option<AzureResource>,
    ) -> Result<(String, Option<String>), Attempt> {
        let name = plan.resource.name_any();
        let primary_name = object_name(&req.system.resource_id, &Lifecycle::Create);
        // The primary is not written here, so no precondition covers it: read it.
        let primary = if primary_name == name {
            None
        } else {
            self.get(&primary_name).await?
        };
        authorise(owner, &existing.iter().chain(&primary).collect::<Vec<_>>())?;
        if let Some(existing) = &existing
            && existing.metadata.deletion_timestamp.is_some()
        {
            return Err(ApiError::unavailable(format!(
                "{name} is being deleted; retry once its Delete completed"
            ))
            .into());
        }
        let mut write = ObjectWrite::of(existing.as_ref(), &plan.resource);
        let replaced = existing
            .as_ref()
            .is_some_and(|e| superseded(e, &pending.uuid).is_some());
        let credentials_due = plan
            .credentials
            .as_ref()
            .is_some_and(|c| !self.credentials_applied(c));
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        if credentials_due || plan.secure_parameters.is_some() || replaced {
            // Writes come before the object's: the apiserver judges the object first.
            self.write_object(&write, true)
                .await
                .map_err(|err| Attempt::from_kube(err, "AzureResource"))?;
        }

        if let Some(credentials) = &plan.credentials {
            self.apply_credentials(credentials).await?;
        }
        let mut secure_parameters = plan.secure_parameters;
        let params_owned = match (&mut secure_parameters, &existing) {
            (Some(secret), Some(existing)) => {
                secret.metadata.owner_references =
                    existing.controller_owner_ref(&()).map(|r| vec![r]);
                true
            }
            _ => false,
        };
        if let Some(secret) = &secure_parameters {
            self.secrets()
                .patch(&secret.name_any(), &apply, &Patch::Apply(secret))
                .await
                .map_err(|err| kube_error(err, "Secret"))?;
        }
        if let Some(existing) = &existing
            && let Some(answered) = self.answer_superseded(existing, pending).await?
        {
            // Answering wrote the object: the next write expects that version.
            write = ObjectWrite::of(Some(&answered), &plan.resource);
        }
        let applied = self
            .write_object(&write, false)
            .await
            .map_err(|err| Attempt::from_kube(err, "AzureResource"))?;
        if let Some(secret) = secure_parameters.filter(|_| !params_owned) {
            // A new object's uid exists only now; the Secret had to be there before the
            // controller could read it.
            let owned =
                json!({"metadata": {"ownerReferences": [applied.controller_owner_ref(&())]}});
            self.secrets()
                .patch(
                    &secret.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&owned),
                )
                .await
                .map_err(|err| kube_error(err, "Secret"))?;
        }
        Ok((object_request_id(&applied, pending), topology_id(&applied)))
    }

    /// One request: the object's create or conditioned replace (or its dry run).
    async fn write_object(
        &self,
        write: &ObjectWrite,
        dry_run: bool,
    ) -> Result<AzureResource, kube::Error> {
        let params = PostParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        match write {
            ObjectWrite::Create(object) => self.resources().create(&params, object).await,
            ObjectWrite::Replace(object) => {
                self.resources()
                    .replace(&object.name_any(), &params, object)
                    .await
            }
        }
    }

    async fn get(&self, name: &str) -> Result<Option<AzureResource>, ApiError> {
        self.resources()
            .get_opt(name)
            .await
            .map_err(|err| kube_error(err, "AzureResource"))
    }

    /// Whether this replica applied the same content to this credentials Secret already.
    fn credentials_applied(&self, credentials: &Secret) -> bool {
        self.applied_credentials
            .lock()
            .expect("credentials cache")
            .get(&credentials.name_any())
            == Some(&credentials_digest(credentials))
    }

    /// Applies a credentials Secret unless this replica applied the same content already.
    async fn apply_credentials(&self, credentials: &Secret) -> Result<(), ApiError> {
        if self.credentials_applied(credentials) {
            return Ok(());
        }
        let name = credentials.name_any();
        let digest = credentials_digest(credentials);
        self.secrets()
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(credentials),
            )
            .await
            .map_err(|err| kube_error(err, "Secret"))?;
        self.applied_credentials
            .lock()
            .expect("credentials cache")
            .insert(name, digest);
        Ok(())
    }

    async fn delete(
        &self,
        req: &ExecuteRequest,
        target: DeleteTarget,
        pending: &PendingRequest,
        owner: &str,
    ) -> Result<String, ApiError> {
        let api = self.resources();
        let (objects, whole_resource) = match &target {
            DeleteTarget::Resource { resource_id_label } => {
                let list = api
                    .list(
                        &ListParams::default()
                            .labels(&format!("{LABEL_RESOURCE_ID}={resource_id_label}")),
                    )
                    .await
                    .map_err(|err| kube_error(err, "AzureResource list"))?;
                (list.items, true)
            }
            DeleteTarget::Object { name, previous, .. } => {
                let mut object = self.get(name).await?;
                if let (None, Some(previous)) = (&object, previous) {
                    object = self
                        .get(&previous.name)
                        .await?
                        .filter(|o| previous.matches(o));
                }
                (object.into_iter().collect(), false)
            }
        };
        authorise(owner, &objects.iter().collect::<Vec<_>>())?;
        let primary = object_name(&req.system.resource_id, &Lifecycle::Create);
        let Some(reporter) = objects
            .iter()
            .find(|o| o.name_any() == primary)
            .or_else(|| objects.first())
        else {
            return match entry_to_adopt(req, &target) {
                Some(adopted) => self.delete_adopted(req, pending, owner, &adopted).await,
                None => self.report_gone(req, pending, whole_resource).await,
            };
        };
        self.answer_superseded(reporter, pending).await?;
        let record = json!({"metadata": {"annotations": {
            ANNOTATION_REQUEST: serde_json::to_string(pending).map_err(|e| ApiError::internal(e.to_string()))?
        }}});
        let recorded = api
            .patch(
                &reporter.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&record),
            )
            .await
            .map_err(|err| kube_error(err, "AzureResource"))?;
        for object in &objects {
            match api
                .delete(&object.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(kube_error(err, "AzureResource delete")),
            }
        }
        Ok(object_request_id(&recorded, pending))
    }

    /// A request about to replace one on `object` that has no result yet: that one gets
    /// its FAILED first, so that no accepted request goes unanswered. Nothing is written
    /// when this fails (the caller answers 503 and Brent retries). Answers the object as
    /// the answer left it, if it wrote one.
    async fn answer_superseded(
        &self,
        object: &AzureResource,
        pending: &PendingRequest,
    ) -> Result<Option<AzureResource>, ApiError> {
        let Some(outcome) = superseded(object, &pending.uuid) else {
            return Ok(None);
        };
        let published = publish_once(
            &self.resources(),
            &self.publisher,
            &self.metrics,
            &pending.uuid,
            object,
            &outcome,
        )
        .await
        .map_err(|err| {
            warn!(error = %err, "the result of a replaced request could not be published");
            ApiError::unavailable("the earlier request's result could not be published; retry")
        })?;
        match published {
            Some(answered) => Ok(Some(answered)),
            None => Err(ApiError::unavailable(
                "the resource changed while this request was recorded; retry",
            )),
        }
    }

    /// Delete or removal of something with no object whose ARM id Brent holds (made by
    /// the Python driver, or deleted before): an object adopting that id is created and
    /// deleted, so the controller removes it from Azure with the caller's credentials and
    /// the result is reported like any delete.
    async fn delete_adopted(
        &self,
        req: &ExecuteRequest,
        pending: &PendingRequest,
        owner: &str,
        adopted: &AdoptedEntry,
    ) -> Result<String, ApiError> {
        let plan = adopt_for_delete(req, &self.mapping, pending, adopted)?;
        let name = plan.resource.name_any();
        let (request_id, _) = self.apply(req, plan, pending, owner).await?;
        match self
            .resources()
            .delete(&name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(request_id),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(request_id),
            Err(err) => Err(kube_error(err, "AzureResource delete")),
        }
    }

    /// Delete of something with no object and no ARM id in the topology: COMPLETE,
    /// published before answering so the result cannot be lost.
    async fn report_gone(
        &self,
        req: &ExecuteRequest,
        pending: &PendingRequest,
        whole_resource: bool,
    ) -> Result<String, ApiError> {
        let entry = topology_entry_name(&req.system.resource_name);
        let arm_id = topology_arm_id(req).unwrap_or_else(|| req.system.resource_id.clone());
        let request_id = request_id(&pending.lifecycle, &arm_id, &pending.uuid);
        let mut topology = Map::new();
        if whole_resource {
            topology.insert(entry, Value::Null);
        }
        let message = ResultMessage::complete(request_id.clone(), Map::new(), topology);
        let envelope = Envelope {
            tenant_id: pending.tenant_id.clone(),
            trace: pending.trace.clone(),
        };
        self.publisher
            .publish(&message, &envelope)
            .await
            .map_err(|err| {
                warn!(error = %err, "result of a delete without objects could not be published");
                ApiError::unavailable("Kafka is unavailable; retry the request")
            })?;
        self.metrics.record_result(&message.status);
        Ok(request_id)
    }

    /// `POST /api/driver/references/find`.
    pub async fn find(&self, body: &[u8]) -> Result<Value, ApiError> {
        let req = request::parse_find(body)?;
        let selector = format!(
            "{LABEL_RESOURCE_NAME}={},{LABEL_LIFECYCLE}=create",
            label_value(&req.instance_name)
        );
        let list = self
            .resources()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|err| kube_error(err, "AzureResource list"))?;
        let found = list
            .items
            .into_iter()
            .find(|o| o.metadata.deletion_timestamp.is_none());
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
            "resourceId": object.annotations().get(ANNOTATION_RESOURCE_ID),
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

    fn resource(value: Value) -> AzureResource {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_object_write_is_conditioned_on_what_the_request_saw() {
        let desired = resource(json!({
            "apiVersion": "azure-driver.io/v1alpha1", "kind": "AzureResource",
            "metadata": {"name": "r-1", "labels": {"a": "new"},
                         "annotations": {"azure-driver.io/request": "{\"uuid\":\"2\"}"}},
            "spec": {"resourceGroup": "rg", "template": {"bicep": "param p string"},
                     "parameters": {"p": "1"}}
        }));
        let ObjectWrite::Create(created) = ObjectWrite::of(None, &desired) else {
            panic!("no object: a create, which fails if one exists by now");
        };
        assert_eq!(created.metadata.resource_version, None);

        let existing = resource(json!({
            "apiVersion": "azure-driver.io/v1alpha1", "kind": "AzureResource",
            "metadata": {"name": "r-1", "resourceVersion": "41", "uid": "u1",
                         "finalizers": ["azure-driver.io/cleanup"],
                         "labels": {"a": "old", "b": "kept"},
                         "annotations": {"azure-driver.io/request": "{\"uuid\":\"1\"}",
                                         "azure-driver.io/check-drift": "x"}},
            "spec": {"resourceGroup": "rg", "parameters": {"p": "0", "gone": "1"}},
            "status": {"phase": "Ready"}
        }));
        let ObjectWrite::Replace(replaced) = ObjectWrite::of(Some(&existing), &desired) else {
            panic!("an object: a replace of the version seen");
        };
        let metadata = &replaced.metadata;
        assert_eq!(metadata.resource_version.as_deref(), Some("41"));
        assert_eq!(metadata.uid.as_deref(), Some("u1"));
        assert_eq!(metadata.finalizers, existing.metadata.finalizers);
        let labels = metadata.labels.as_ref().unwrap();
        assert_eq!(
            (labels["a"].as_str(), labels["b"].as_str()),
            ("new", "kept")
        );
        let annotations = metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations["azure-driver.io/request"], "{\"uuid\":\"2\"}");
        assert_eq!(annotations["azure-driver.io/check-drift"], "x");
        assert_eq!(
            replaced.spec, desired.spec,
            "the spec is the request's exactly"
        );
        assert!(replaced.status.is_none());
    }

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
