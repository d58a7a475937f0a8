//! [`ArmClient`]: the operations of the driver, each one or a few HTTP requests.

use crate::answer::{
    Answer, backoff, client_throttled, is_operation_active, no_spare_budget, retry_delay,
    subscription_of,
};
use crate::config::ArmOptions;
use crate::error::{ArmError, ErrorSource, header_str, retry_after};
use crate::ids::{
    DeploymentScope, ResourceId, newest_api_version, subscription_path, validate_deployment_name,
    validate_resource_group_name, validate_stack_name,
};
use crate::lro::{LroHandle, LroOperation, PollResult};
use crate::models::{
    ActionOnUnmanage, Deployment, DeploymentOperation, DeploymentRequest, DeploymentStack, Page,
    Provider, ResourceGroup, StackRequest, WhatIfResult,
};
use crate::throttle::{NotSent, Priority, RequestClass, Throttle};
use azure_core::credentials::TokenCredential;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

/// api-version of resource groups, deployments and providers.
pub const RESOURCES_API_VERSION: &str = "2025-04-01";
/// api-version of deployment stacks.
pub const STACKS_API_VERSION: &str = "2024-03-01";

/// Resource type (lowercase, below the namespace) → api-versions.
pub type ApiVersions = HashMap<String, Vec<String>>;

/// One HTTP exchange, reported to a [`RequestObserver`] after every attempt.
#[derive(Clone, Debug)]
pub struct RequestRecord<'a> {
    /// The client operation (`put_deployment`, `poll_deployment`, ...).
    pub operation: &'a str,
    pub method: &'a str,
    pub subscription: &'a str,
    /// HTTP status, `None` when no answer arrived.
    pub status: Option<u16>,
    /// Time on the wire (after throttling waits).
    pub duration: Duration,
    /// Time spent waiting in the client-side throttle before sending.
    pub throttle_wait: Duration,
    /// 0 for the first attempt, then 1, 2, ... for retries.
    pub attempt: u32,
}

/// Receives every request's outcome, e.g. to feed Prometheus counters and histograms.
pub trait RequestObserver: Send + Sync {
    fn observe(&self, record: &RequestRecord<'_>);
}

/// The result of starting a deployment or stack.
#[derive(Clone, Debug)]
pub struct Started<T> {
    /// The resource as the PUT answered it (absent when resuming a running one).
    pub resource: Option<T>,
    /// Poll this until the operation finishes.
    pub handle: LroHandle,
    /// True when ARM said an operation was already running (409 `DeploymentActive`) and
    /// the handle polls that one instead of a new one.
    pub resumed: bool,
}

/// A what-if either answers at once or runs as a long-running operation whose final
/// body decodes as [`WhatIfResult`] (see [`ArmClient::what_if_result`]).
#[derive(Clone, Debug)]
pub enum WhatIfStart {
    Done(WhatIfResult),
    Running(LroHandle),
}

/// Azure Resource Manager client. Cheap to clone; clones share the HTTP connection pool,
/// the per-subscription throttle, the api-version cache and the observer.
#[derive(Clone)]
pub struct ArmClient {
    shared: Arc<Shared>,
    credential: Arc<dyn TokenCredential>,
    /// The share of the throttle's buckets this client's requests may use.
    priority: Priority,
}

struct Shared {
    options: ArmOptions,
    http: reqwest::Client,
    throttle: Throttle,
    scope: String,
    /// namespace (lowercase) → its types' api-versions.
    api_versions: Mutex<HashMap<String, Arc<ApiVersions>>>,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmClient")
            .field(
                "endpoint",
                &self.shared.options.cloud.resource_manager_endpoint.as_str(),
            )
            .finish_non_exhaustive()
    }
}

impl ArmClient {
    /// A client for `options.cloud`, authenticating with `credential` (usually from a
    /// [`crate::CredentialCache`]).
    pub fn new(
        options: ArmOptions,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self, ArmError> {
        Self::build(options, credential, None)
    }

    /// Like [`ArmClient::new`], reporting every request to `observer`.
    pub fn new_observed(
        options: ArmOptions,
        credential: Arc<dyn TokenCredential>,
        observer: Arc<dyn RequestObserver>,
    ) -> Result<Self, ArmError> {
        Self::build(options, credential, Some(observer))
    }

    fn build(
        options: ArmOptions,
        credential: Arc<dyn TokenCredential>,
        observer: Option<Arc<dyn RequestObserver>>,
    ) -> Result<Self, ArmError> {
        let http = crate::transport::http_client(&options)?;
        Ok(Self {
            shared: Arc::new(Shared {
                throttle: Throttle::new(options.limits),
                scope: options.cloud.arm_scope(),
                http,
                options,
                api_versions: Mutex::default(),
                observer,
            }),
            credential,
            priority: Priority::Queued,
        })
    }

    /// The same client (pool, throttle, caches) acting as another identity. ARM's limits
    /// are per subscription, so all identities share one throttle.
    pub fn with_credential(&self, credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            shared: self.shared.clone(),
            credential,
            priority: self.priority,
        }
    }

    /// The same client sending its requests at `priority`: with [`Priority::Spare`] or
    /// [`Priority::Idle`], a request that finds no spare (or idle) budget is not sent and
    /// fails at once with [`ErrorSource::NoSpareBudget`], on the first attempt as on a
    /// retry.
    pub fn with_priority(&self, priority: Priority) -> Self {
        Self {
            priority,
            ..self.clone()
        }
    }

    /// Whether a request of `class` to `subscription` at `priority` would be sent now
    /// without waiting; takes nothing. Lets a caller skip the reads that would lead up to
    /// it.
    pub fn has_spare_budget(
        &self,
        subscription: &str,
        class: RequestClass,
        priority: Priority,
    ) -> bool {
        self.shared
            .throttle
            .has_spare(subscription, class, priority)
    }

    pub fn options(&self) -> &ArmOptions {
        &self.shared.options
    }

    fn url(&self, path: &str, api_version: &str) -> Result<Url, ArmError> {
        let base = self
            .shared
            .options
            .cloud
            .resource_manager_endpoint
            .as_str()
            .trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}{path}")).map_err(|e| {
            ArmError::invalid_input("InvalidResourceId", format!("cannot build URL: {e}"))
        })?;
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        Ok(url)
    }

    /// Operation URLs come back from storage (CR status), so they must point at the ARM
    /// endpoint this client trusts: a bearer token is never sent anywhere else.
    fn checked_url(&self, raw: &str) -> Result<Url, ArmError> {
        let url = Url::parse(raw).map_err(|e| {
            ArmError::invalid_input("InvalidOperationUrl", format!("operation URL: {e}"))
        })?;
        let endpoint = &self.shared.options.cloud.resource_manager_endpoint;
        if url.scheme() != "https" || url.origin() != endpoint.origin() {
            return Err(ArmError::invalid_input(
                "InvalidOperationUrl",
                format!(
                    "operation URL host {:?} is not the ARM endpoint {:?}",
                    url.host_str().unwrap_or_default(),
                    endpoint.host_str().unwrap_or_default()
                ),
            ));
        }
        Ok(url)
    }

    /// Sends one logical request with the client's retries (408/429/5xx/connection), the
    /// throttle and `Retry-After`. Returns every HTTP answer it does not retry; callers
    /// decide what a status means.
    async fn send(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        correlation_id: &str,
    ) -> Result<Answer, ArmError> {
        let subscription = subscription_of(&url);
        let class = RequestClass::of(&method);
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ArmError::invalid_input("InvalidRequestContent", e.to_string()))?;
        let span = tracing::info_span!(
            "arm_request",
            operation,
            method = %method,
            path = url.path(),
            subscription = %subscription,
            correlation_id,
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let call = Call {
            operation,
            method: &method,
            url: &url,
            subscription: &subscription,
            class,
            body: body.as_deref(),
            correlation_id,
        };
        async move {
            let mut attempt = 0u32;
            loop {
                let outcome = self.exchange_once(&call, attempt).await?;
                let status = outcome.as_ref().ok().map(|a| a.status.as_u16());
                let paused = match &outcome {
                    Ok(answer) => self.throttle_feedback(call.subscription, class, answer),
                    Err(_) => false,
                };
                if let Some(delay) = retry_delay(&outcome, attempt, &self.shared.options) {
                    attempt += 1;
                    // A Retry-After pause makes the next acquire wait; other retries sleep here.
                    if !paused {
                        tokio::time::sleep(delay).await;
                    }
                    continue;
                }
                let span = tracing::Span::current();
                span.record("attempts", attempt + 1);
                if let Some(status) = status {
                    span.record("status", status);
                }
                return outcome.map_err(|e| e.with_correlation(correlation_id));
            }
        }
        .instrument(span)
        .await
    }

    /// One HTTP exchange of `call`: token, throttle slot, request, observation. The outer
    /// error ends the call (no token, throttled too long, unbuildable request); the inner
    /// result is ARM's answer or a transport failure, for the retry decision.
    async fn exchange_once(
        &self,
        call: &Call<'_>,
        attempt: u32,
    ) -> Result<Result<Answer, ArmError>, ArmError> {
        // The token first: a slow token fetch must not use up the pacing slot.
        let token = self
            .credential
            .get_token(&[&self.shared.scope], None)
            .await
            .map_err(|e| ArmError::from_credential(&e).with_correlation(call.correlation_id))?;
        let throttle_wait = self
            .shared
            .throttle
            .acquire(
                call.subscription,
                call.class,
                self.priority,
                self.shared.options.max_retry_wait,
            )
            .await
            .map_err(|not_sent| match not_sent {
                NotSent::Paused(left) => {
                    client_throttled(call.subscription, left, call.correlation_id)
                }
                NotSent::NoSpareBudget => {
                    no_spare_budget(call.subscription, call.class, call.correlation_id)
                }
            })?;
        let request = self.request(
            call.method,
            call.url,
            token.token.secret(),
            call.correlation_id,
            call.body,
        )?;
        let started = Instant::now();
        let outcome = exchange(request).await;
        let duration = started.elapsed();
        let status = outcome.as_ref().ok().map(|a| a.status.as_u16());
        if let Some(observer) = &self.shared.observer {
            observer.observe(&RequestRecord {
                operation: call.operation,
                method: call.method.as_str(),
                subscription: call.subscription,
                status,
                duration,
                throttle_wait,
                attempt,
            });
        }
        tracing::debug!(
            status = status.unwrap_or_default(),
            duration_ms = duration.as_millis() as u64,
            request_id = outcome
                .as_ref()
                .ok()
                .and_then(|a| header_str(&a.headers, "x-ms-request-id"))
                .unwrap_or_default(),
            attempt,
            "ARM answered"
        );
        Ok(outcome)
    }

    fn request(
        &self,
        method: &Method,
        url: &Url,
        token: &str,
        correlation_id: &str,
        body: Option<&[u8]>,
    ) -> Result<reqwest::RequestBuilder, ArmError> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ArmError::bare(
                ErrorSource::Credential,
                "InvalidToken",
                "the access token is not a valid header value",
            )
        })?;
        auth.set_sensitive(true);
        let request = self
            .shared
            .http
            .request(method.clone(), url.clone())
            .header(reqwest::header::AUTHORIZATION, auth)
            .header("x-ms-correlation-request-id", correlation_id)
            .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string())
            .header(reqwest::header::ACCEPT, "application/json");
        Ok(match body {
            Some(body) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec()),
            None if *method == Method::POST || *method == Method::PUT => {
                request.header(reqwest::header::CONTENT_LENGTH, "0")
            }
            None => request,
        })
    }

    /// Feeds ARM's throttling signals into the shared buckets; true when a `Retry-After`
    /// pause was set.
    fn throttle_feedback(&self, subscription: &str, class: RequestClass, answer: &Answer) -> bool {
        let throttle = &self.shared.throttle;
        if let Some(remaining) = header_str(&answer.headers, class.remaining_header())
            .and_then(|v| v.parse::<f64>().ok())
        {
            throttle.observe_remaining(subscription, class, remaining);
        }
        match retry_after(&answer.headers) {
            Some(wait) if matches!(answer.status.as_u16(), 429 | 503) => {
                throttle.pause(subscription, class, wait);
                true
            }
            _ => false,
        }
    }

    // ---- resource groups ----

    /// Creates or updates a resource group (idempotent PUT).
    pub async fn ensure_resource_group(
        &self,
        subscription: &str,
        name: &str,
        location: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<ResourceGroup, ArmError> {
        let url = self.url(
            &resource_group_path(subscription, name)?,
            RESOURCES_API_VERSION,
        )?;
        if location.trim().is_empty() {
            return Err(ArmError::invalid_input(
                "LocationRequired",
                "a resource group needs a location",
            ));
        }
        let body = serde_json::json!({ "location": location, "tags": tags });
        let cid = new_correlation_id();
        self.send("ensure_resource_group", Method::PUT, url, Some(&body), &cid)
            .await?
            .success(&cid)
    }

    /// The resource group, or `None` when it does not exist.
    pub async fn get_resource_group(
        &self,
        subscription: &str,
        name: &str,
    ) -> Result<Option<ResourceGroup>, ArmError> {
        let url = self.url(
            &resource_group_path(subscription, name)?,
            RESOURCES_API_VERSION,
        )?;
        self.get_optional("get_resource_group", url).await
    }

    /// Deletes a resource group and everything in it. `None` when it is already gone.
    pub async fn delete_resource_group(
        &self,
        subscription: &str,
        name: &str,
    ) -> Result<Option<LroHandle>, ArmError> {
        let url = self.url(
            &resource_group_path(subscription, name)?,
            RESOURCES_API_VERSION,
        )?;
        self.delete(
            "delete_resource_group",
            LroOperation::ResourceGroupDelete,
            url,
        )
        .await
    }

    // ---- deployments ----

    fn deployment_url(
        &self,
        scope: &DeploymentScope,
        name: &str,
        suffix: &str,
    ) -> Result<Url, ArmError> {
        let path = format!(
            "{}/providers/Microsoft.Resources/deployments/{}{suffix}",
            scope.path()?,
            validate_deployment_name(name)?
        );
        self.url(&path, RESOURCES_API_VERSION)
    }

    /// Starts (or updates) a deployment. A 409 `DeploymentActive` resumes: the handle
    /// polls the deployment that is already running and `resumed` is set.
    pub async fn put_deployment(
        &self,
        scope: &DeploymentScope,
        name: &str,
        request: &DeploymentRequest,
    ) -> Result<Started<Deployment>, ArmError> {
        let url = self.deployment_url(scope, name, "")?;
        let body = scoped_body(request, scope)?;
        let cid = new_correlation_id();
        self.start(
            "put_deployment",
            LroOperation::DeploymentPut,
            url,
            &body,
            &cid,
        )
        .await
    }

    /// The deployment, or `None` when it (or its resource group) does not exist.
    pub async fn get_deployment(
        &self,
        scope: &DeploymentScope,
        name: &str,
    ) -> Result<Option<Deployment>, ArmError> {
        let url = self.deployment_url(scope, name, "")?;
        self.get_optional("get_deployment", url).await
    }

    /// Cancels a running deployment. 409 `DeploymentCannotBeCancelled` (it already
    /// finished) is returned as a terminal error.
    pub async fn cancel_deployment(
        &self,
        scope: &DeploymentScope,
        name: &str,
    ) -> Result<(), ArmError> {
        let url = self.deployment_url(scope, name, "/cancel")?;
        let cid = new_correlation_id();
        let answer = self
            .send("cancel_deployment", Method::POST, url, None, &cid)
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(answer.error())
        }
    }

    /// Deletes the deployment history record (never the deployed resources). `None` when
    /// it is already gone.
    pub async fn delete_deployment(
        &self,
        scope: &DeploymentScope,
        name: &str,
    ) -> Result<Option<LroHandle>, ArmError> {
        let url = self.deployment_url(scope, name, "")?;
        self.delete("delete_deployment", LroOperation::DeploymentDelete, url)
            .await
    }

    /// Preflight validation. `Ok` with ARM's answer body when valid; the 400
    /// `InvalidTemplate`/`InvalidTemplateDeployment` error otherwise.
    pub async fn validate_deployment(
        &self,
        scope: &DeploymentScope,
        name: &str,
        request: &DeploymentRequest,
    ) -> Result<Value, ArmError> {
        let url = self.deployment_url(scope, name, "/validate")?;
        let body = scoped_body(request, scope)?;
        let cid = new_correlation_id();
        self.send("validate_deployment", Method::POST, url, Some(&body), &cid)
            .await?
            .success(&cid)
    }

    /// Starts a what-if; usually a long-running operation answered with 202 + Location.
    pub async fn what_if(
        &self,
        scope: &DeploymentScope,
        name: &str,
        request: &DeploymentRequest,
    ) -> Result<WhatIfStart, ArmError> {
        let resource_url = self.deployment_url(scope, name, "")?;
        let url = self.deployment_url(scope, name, "/whatIf")?;
        let body = scoped_body(request, scope)?;
        let cid = new_correlation_id();
        let answer = self
            .send("what_if", Method::POST, url, Some(&body), &cid)
            .await?;
        match answer.status.as_u16() {
            202 => Ok(WhatIfStart::Running(LroHandle::from_response(
                LroOperation::WhatIf,
                resource_url.as_str(),
                &answer.headers,
                &cid,
                self.shared.options.default_poll_interval,
            ))),
            200 => Ok(WhatIfStart::Done(answer.json(&cid)?)),
            _ => Err(answer.error()),
        }
    }

    /// Decodes the final body of a finished what-if operation.
    pub fn what_if_result(body: Option<Value>) -> Result<WhatIfResult, ArmError> {
        serde_json::from_value(body.unwrap_or(Value::Null)).map_err(|e| {
            ArmError::bare(
                ErrorSource::Decode,
                "InvalidResponse",
                format!("cannot decode what-if result: {e}"),
            )
        })
    }

    /// Every operation of a deployment (following `nextLink`).
    pub async fn list_deployment_operations(
        &self,
        scope: &DeploymentScope,
        name: &str,
    ) -> Result<Vec<DeploymentOperation>, ArmError> {
        let url = self.deployment_url(scope, name, "/operations")?;
        self.list("list_deployment_operations", url).await
    }

    // ---- deployment stacks ----

    fn stack_url(&self, scope: &DeploymentScope, name: &str) -> Result<Url, ArmError> {
        let path = format!(
            "{}/providers/Microsoft.Resources/deploymentStacks/{}",
            scope.path()?,
            validate_stack_name(name)?
        );
        self.url(&path, STACKS_API_VERSION)
    }

    /// Creates or updates a deployment stack. Resources the template no longer declares
    /// are deleted or detached per `actionOnUnmanage`.
    pub async fn put_stack(
        &self,
        scope: &DeploymentScope,
        name: &str,
        request: &StackRequest,
    ) -> Result<Started<DeploymentStack>, ArmError> {
        let url = self.stack_url(scope, name)?;
        let body = scoped_body(request, scope)?;
        let cid = new_correlation_id();
        self.start("put_stack", LroOperation::StackPut, url, &body, &cid)
            .await
    }

    /// The stack, or `None` when it does not exist.
    pub async fn get_stack(
        &self,
        scope: &DeploymentScope,
        name: &str,
    ) -> Result<Option<DeploymentStack>, ArmError> {
        let url = self.stack_url(scope, name)?;
        self.get_optional("get_stack", url).await
    }

    /// Deletes a stack; `unmanage` says whether ARM deletes or detaches what it managed.
    /// `None` when the deletion finished at once or the stack is already gone.
    pub async fn delete_stack(
        &self,
        scope: &DeploymentScope,
        name: &str,
        unmanage: ActionOnUnmanage,
    ) -> Result<Option<LroHandle>, ArmError> {
        let mut url = self.stack_url(scope, name)?;
        url.query_pairs_mut()
            .append_pair("unmanageAction.Resources", unmanage.resources.as_str())
            .append_pair(
                "unmanageAction.ResourceGroups",
                unmanage.resource_groups.as_str(),
            )
            .append_pair(
                "unmanageAction.ManagementGroups",
                unmanage.management_groups.as_str(),
            );
        self.delete("delete_stack", LroOperation::StackDelete, url)
            .await
    }

    // ---- resources by id ----

    /// The provider's resource types and their api-versions. Cached per namespace for
    /// the life of the client (and its clones).
    pub async fn provider_api_versions(
        &self,
        subscription: &str,
        namespace: &str,
    ) -> Result<Arc<ApiVersions>, ArmError> {
        let key = namespace.to_ascii_lowercase();
        if let Some(cached) = self.cached_versions(&key) {
            return Ok(cached);
        }
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            return Err(ArmError::invalid_input(
                "InvalidResourceNamespace",
                format!("{namespace:?} is not a provider namespace"),
            ));
        }
        let path = format!("{}/providers/{namespace}", subscription_path(subscription)?);
        let url = self.url(&path, RESOURCES_API_VERSION)?;
        let cid = new_correlation_id();
        let provider: Provider = self
            .send("get_provider", Method::GET, url, None, &cid)
            .await?
            .success(&cid)?;
        let versions: ApiVersions = provider
            .resource_types
            .into_iter()
            .map(|t| (t.resource_type.to_ascii_lowercase(), t.api_versions))
            .collect();
        let versions = Arc::new(versions);
        self.shared
            .api_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, versions.clone());
        Ok(versions)
    }

    fn cached_versions(&self, namespace: &str) -> Option<Arc<ApiVersions>> {
        self.shared
            .api_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(namespace)
            .cloned()
    }

    /// The newest non-preview api-version of the resource's type.
    pub async fn api_version_for(&self, id: &ResourceId) -> Result<String, ArmError> {
        if id.namespace == "microsoft.resources" && id.resource_type == "resourcegroups" {
            return Ok(RESOURCES_API_VERSION.to_string());
        }
        let versions = self
            .provider_api_versions(&id.subscription, &id.namespace)
            .await?;
        versions
            .get(&id.resource_type)
            .and_then(|v| newest_api_version(v))
            .map(str::to_string)
            .ok_or_else(|| {
                ArmError::invalid_input(
                    "NoRegisteredProviderFound",
                    format!(
                        "provider {} has no api-version for type {}",
                        id.namespace, id.resource_type
                    ),
                )
            })
    }

    /// The resource as ARM returns it, or `None` when it does not exist.
    pub async fn get_resource_by_id(&self, id: &str) -> Result<Option<Value>, ArmError> {
        let id = ResourceId::parse(id)?;
        let version = self.api_version_for(&id).await?;
        let url = self.url(&id.id, &version)?;
        self.get_optional("get_resource", url).await
    }

    /// Creates or replaces a resource by id with its type's newest stable api-version
    /// (a synchronous PUT; resources whose provider answers 201/202 asynchronously are
    /// returned as first answered).
    pub async fn put_resource_by_id(&self, id: &str, body: &Value) -> Result<Value, ArmError> {
        let id = ResourceId::parse(id)?;
        let version = self.api_version_for(&id).await?;
        let url = self.url(&id.id, &version)?;
        let cid = new_correlation_id();
        self.send("put_resource", Method::PUT, url, Some(body), &cid)
            .await?
            .success(&cid)
    }

    /// Deletes a resource by id with its type's newest stable api-version. `None` when the
    /// deletion finished at once or the resource is already gone.
    pub async fn delete_resource_by_id(&self, id: &str) -> Result<Option<LroHandle>, ArmError> {
        let id = ResourceId::parse(id)?;
        let version = self.api_version_for(&id).await?;
        let url = self.url(&id.id, &version)?;
        self.delete("delete_resource", LroOperation::ResourceDelete, url)
            .await
    }

    // ---- long-running operations ----

    /// Polls once. Updates `handle.not_before` from the answer's `Retry-After`. `Err` means
    /// this poll failed (retry later; the operation itself may be fine);
    /// [`PollResult::Failed`] means the operation failed.
    pub async fn poll(&self, handle: &mut LroHandle) -> Result<PollResult, ArmError> {
        let url = self.checked_url(&handle.operation_url)?;
        let default_poll = self.shared.options.default_poll_interval;
        let answer = self
            .send(
                handle.operation.name(),
                Method::GET,
                url,
                None,
                &handle.correlation_id,
            )
            .await?;
        let result = handle.interpret(
            answer.status.as_u16(),
            &answer.headers,
            &answer.body,
            default_poll,
        )?;
        if let PollResult::InProgress { retry_after, .. } = &result {
            handle.reschedule(*retry_after);
        }
        Ok(result)
    }

    /// Polls until the operation finishes, sleeping as ARM asks. Blocks: for tests and
    /// command-line tools only; a reconciler stores the handle and calls [`Self::poll`].
    pub async fn wait(&self, handle: &LroHandle) -> Result<Option<Value>, ArmError> {
        let mut handle = handle.clone();
        let mut poll_errors = 0u32;
        loop {
            tokio::time::sleep(handle.wait_time()).await;
            match self.poll(&mut handle).await {
                Ok(PollResult::InProgress { .. }) => poll_errors = 0,
                Ok(PollResult::Done(body)) => return Ok(body),
                Ok(PollResult::Failed(error)) => return Err(error),
                Err(error)
                    if error.is_retryable() && poll_errors < self.shared.options.max_retries =>
                {
                    poll_errors += 1;
                    let delay = error
                        .retry_after
                        .unwrap_or_else(|| backoff(self.shared.options.retry_backoff, poll_errors));
                    handle.reschedule(delay);
                }
                Err(error) => return Err(error),
            }
        }
    }

    // ---- shared request shapes ----

    async fn get_optional<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
    ) -> Result<Option<T>, ArmError> {
        let cid = new_correlation_id();
        let answer = self.send(operation, Method::GET, url, None, &cid).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        answer.success(&cid).map(Some)
    }

    async fn list<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
    ) -> Result<Vec<T>, ArmError> {
        let cid = new_correlation_id();
        let mut items = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let page: Page<T> = self
                .send(operation, Method::GET, url, None, &cid)
                .await?
                .success(&cid)?;
            items.extend(page.value);
            if let Some(link) = page.next_link.filter(|l| !l.is_empty()) {
                next = Some(self.checked_url(&link)?);
            }
        }
        Ok(items)
    }

    async fn start<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        lro: LroOperation,
        url: Url,
        body: &Value,
        cid: &str,
    ) -> Result<Started<T>, ArmError> {
        let answer = self
            .send(operation, Method::PUT, url.clone(), Some(body), cid)
            .await?;
        let default_poll = self.shared.options.default_poll_interval;
        if answer.status.is_success() {
            let handle =
                LroHandle::from_response(lro, url.as_str(), &answer.headers, cid, default_poll);
            let resource = answer.json(cid)?;
            return Ok(Started {
                resource: Some(resource),
                handle,
                resumed: false,
            });
        }
        let error = answer.error();
        if answer.status == StatusCode::CONFLICT && is_operation_active(&error.code) {
            tracing::info!(code = %error.code, "operation already running; resuming it");
            let delay = error.retry_after.unwrap_or_default();
            return Ok(Started {
                resource: None,
                handle: LroHandle::provisioning_state(lro, url.as_str(), cid, delay),
                resumed: true,
            });
        }
        Err(error)
    }

    async fn delete(
        &self,
        operation: &'static str,
        lro: LroOperation,
        url: Url,
    ) -> Result<Option<LroHandle>, ArmError> {
        let cid = new_correlation_id();
        let answer = self
            .send(operation, Method::DELETE, url.clone(), None, &cid)
            .await?;
        match answer.status.as_u16() {
            202 => Ok(Some(LroHandle::from_response(
                lro,
                url.as_str(),
                &answer.headers,
                &cid,
                self.shared.options.default_poll_interval,
            ))),
            200..=299 | 404 => Ok(None),
            _ => Err(answer.error()),
        }
    }
}

/// Sends and reads the whole body; a body cut off midway is a transport error.
async fn exchange(request: reqwest::RequestBuilder) -> Result<Answer, ArmError> {
    let response = request.send().await.map_err(ArmError::from_transport)?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(ArmError::from_transport)?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// What stays the same across the attempts of one logical request.
struct Call<'a> {
    operation: &'static str,
    method: &'a Method,
    url: &'a Url,
    subscription: &'a str,
    class: RequestClass,
    body: Option<&'a [u8]>,
    correlation_id: &'a str,
}

fn resource_group_path(subscription: &str, name: &str) -> Result<String, ArmError> {
    Ok(format!(
        "{}/resourcegroups/{}",
        subscription_path(subscription)?,
        validate_resource_group_name(name)?
    ))
}

fn new_correlation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The JSON body of a deployment or stack request, with the scope's location filled in when
/// the request names none (ARM requires one at subscription scope).
fn scoped_body(request: &impl Serialize, scope: &DeploymentScope) -> Result<Value, ArmError> {
    let mut body = serde_json::to_value(request)
        .map_err(|e| ArmError::invalid_input("InvalidRequestContent", e.to_string()))?;
    if let (Some(location), Some(fields)) = (scope.body_location(), body.as_object_mut()) {
        fields
            .entry("location")
            .or_insert_with(|| Value::String(location.to_owned()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;

    use super::*;

    #[test]
    fn subscription_from_urls() {
        let url =
            Url::parse("https://arm/subscriptions/ABC-1/resourcegroups/rg?api-version=1").unwrap();
        assert_eq!(subscription_of(&url), "abc-1");
        let url = Url::parse("https://arm/providers/Microsoft.Resources/operations").unwrap();
        assert_eq!(subscription_of(&url), "");
    }

    #[test]
    fn backoff_doubles_and_saturates() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 0), Duration::from_millis(100));
        assert_eq!(backoff(base, 3), Duration::from_millis(800));
        assert!(backoff(base, 60) >= backoff(base, 10));
    }

    fn answer(status: u16, retry_after: Option<&str>) -> Result<Answer, ArmError> {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert("retry-after", HeaderValue::from_str(v).unwrap());
        }
        Ok(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: bytes::Bytes::new(),
        })
    }

    #[test]
    fn retry_decisions() {
        let options = ArmOptions::default()
            .with_max_retries(2)
            .with_retry_backoff(Duration::from_millis(100))
            .with_max_retry_wait(Duration::from_secs(10));
        assert_eq!(retry_delay(&answer(200, None), 0, &options), None);
        assert_eq!(retry_delay(&answer(400, None), 0, &options), None);
        assert_eq!(retry_delay(&answer(404, None), 0, &options), None);
        assert_eq!(
            retry_delay(&answer(503, None), 1, &options),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            retry_delay(&answer(429, Some("3")), 0, &options),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_delay(&answer(429, Some("30")), 0, &options),
            None,
            "too long to wait"
        );
        assert_eq!(
            retry_delay(&answer(500, None), 2, &options),
            None,
            "retries used up"
        );
        let dropped = Err(ArmError::bare(
            ErrorSource::Transport,
            "TransportError",
            "reset",
        ));
        assert!(retry_delay(&dropped, 0, &options).is_some());
        let credential = Err(ArmError::bare(
            ErrorSource::Credential,
            "AADSTS7000215",
            "bad",
        ));
        assert_eq!(retry_delay(&credential, 0, &options), None);
    }

    #[test]
    fn active_operation_codes() {
        assert!(is_operation_active("DeploymentActive"));
        assert!(!is_operation_active("Conflict"));
    }
}
