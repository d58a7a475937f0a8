//! HTTPS plumbing and the request pipeline every call goes through: auth,
//! api-version, counters, throttling, injected faults, then the route's handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::check_token_request;
use crate::config::{CompiledConfig, RequestFault, SimConfig};
use crate::error::{ArmError, method_not_allowed};
use crate::handlers::dispatch;
use crate::http::{ArmRequest, Reply, error_reply};
use crate::route::{AdminRoute, Route};
use crate::shared::Shared;
use crate::state::lock::LockRecord;
use crate::throttle::{RequestClass, SubscriptionBuckets, retry_after_secs};
use crate::{faults, identity};

/// The service closes the connection without answering (an injected fault).
#[derive(Debug)]
pub(crate) struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by armsim fault injection")
    }
}

impl std::error::Error for DroppedConnection {}

pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(move |request| {
                        handle(shared.clone(), request)
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

enum Outcome {
    Reply(Reply),
    Drop,
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DroppedConnection> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let route = crate::route::parse(parts.uri.path());
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
            .collect();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = header("x-ms-correlation-request-id")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let outcome = match &route {
        Route::Token { tenant } => Outcome::Reply(token(&shared, tenant, &parts.method, &body)),
        Route::Admin(admin) => Outcome::Reply(admin_request(&shared, admin, &parts.method, &body)),
        Route::IdentityToken { protocol } => Outcome::Reply(identity_token(
            &shared,
            *protocol,
            &parts.method,
            &query,
            &header,
        )),
        _ => {
            arm(
                &shared,
                &route,
                parts.method.clone(),
                query,
                body,
                header("authorization"),
                correlation_id.clone(),
            )
            .await
        }
    };
    let reply = match outcome {
        Outcome::Reply(reply) => reply,
        Outcome::Drop => return Err(DroppedConnection),
    };

    let mut response = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("x-ms-request-id", &request_id)
        .header("x-ms-correlation-request-id", &correlation_id)
        .header(
            "x-ms-routing-request-id",
            format!("LOCAL:{}:{request_id}", Utc::now().format("%Y%m%dT%H%M%SZ")),
        )
        .header("cache-control", "no-cache");
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    let body = match reply.body {
        Some(body) => {
            response = response.header("content-type", "application/json; charset=utf-8");
            body
        }
        None => Bytes::new(),
    };
    Ok(response
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

async fn arm(
    shared: &Arc<Shared>,
    route: &Route,
    method: Method,
    query: HashMap<String, String>,
    body: Bytes,
    authorization: Option<String>,
    correlation_id: String,
) -> Outcome {
    let route_key = format!("{method} {}", route.name());
    let subscription = route.subscription().map(str::to_owned);
    let class = RequestClass::of_request(&method, route.name());
    shared
        .counters()
        .record(&route_key, subscription.as_deref(), class);

    let caller = match shared
        .tokens()
        .check(authorization.as_deref(), Instant::now())
    {
        Ok(caller) => caller,
        Err(error) => return Outcome::Reply(error_reply(&error)),
    };
    shared
        .counters()
        .record_caller(&caller.client_id, &route_key, subscription.as_deref());
    if query.get("api-version").is_none_or(|v| v.is_empty()) {
        return Outcome::Reply(error_reply(&ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )));
    }
    let config = shared.config();
    let rate_limit_header = match take_token(shared, &config, subscription.as_deref(), class) {
        Ok(header) => header,
        Err(reply) => return Outcome::Reply(reply),
    };
    if let Some(outcome) = injected_fault(shared, &config, &route_key, subscription.as_deref()) {
        return outcome;
    }
    if let Some(delay) = config.config.latency.responses.get(&route_key) {
        tokio::time::sleep(Duration::from_millis(*delay)).await;
    }

    let request = ArmRequest {
        method,
        query,
        body,
        caller,
        correlation_id,
    };
    let mut reply = match dispatch(shared, route, &request) {
        Ok(reply) => reply,
        Err(error) => error_reply(&error),
    };
    if let Some((name, value)) = rate_limit_header {
        reply.headers.push((name, value));
    }
    Outcome::Reply(reply)
}

/// Takes a token from the subscription's bucket for `class` when throttling is
/// on: the rate-limit header to report, or the 429 when the bucket is empty.
fn take_token(
    shared: &Shared,
    config: &CompiledConfig,
    subscription: Option<&str>,
    class: RequestClass,
) -> Result<Option<(&'static str, String)>, Reply> {
    let Some(subscription) = subscription.filter(|_| config.config.throttling.enabled) else {
        return Ok(None);
    };
    let taken = shared
        .buckets()
        .entry(subscription.to_ascii_lowercase())
        .or_insert_with(|| SubscriptionBuckets::new(&config.config.throttling, Instant::now()))
        .take(class, Instant::now());
    match taken {
        Ok(remaining) => Ok(Some((class.header_name(), remaining.to_string()))),
        Err(wait) => {
            shared.counters().record_throttled(Some(subscription));
            Err(throttled(retry_after_secs(wait)))
        }
    }
}

/// What an injected request fault configured for `route_key` does, if one fires.
fn injected_fault(
    shared: &Shared,
    config: &CompiledConfig,
    route_key: &str,
    subscription: Option<&str>,
) -> Option<Outcome> {
    let fault = faults::request_fault(config, route_key, &mut *shared.rng())?;
    Some(match fault {
        RequestFault::Drop => {
            shared.counters().faults += 1;
            Outcome::Drop
        }
        RequestFault::Throttle { retry_after_secs } => {
            shared.counters().record_throttled(subscription);
            Outcome::Reply(throttled(retry_after_secs))
        }
        RequestFault::Status { status } => {
            shared.counters().faults += 1;
            Outcome::Reply(injected_error(status))
        }
    })
}

fn throttled(retry_after_secs: u64) -> Reply {
    error_reply(&ArmError::new(
        429,
        "SubscriptionRequestsThrottled",
        format!(
            "Number of requests for subscription exceeded the limit. Please try again after '{retry_after_secs}' seconds."
        ),
    ))
    .header("retry-after", retry_after_secs.to_string())
}

/// An injected error answer: 5xx come from the gateway, 4xx as the service's own.
fn injected_error(status: u16) -> Reply {
    let code = match status {
        400 => "BadRequest",
        404 => "NotFound",
        408 => "RequestTimeout",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "InjectedFault",
    };
    let reply = error_reply(&ArmError::new(
        status,
        code,
        format!("armsim injected a {status} response."),
    ));
    if status >= 500 {
        reply.header("x-ms-failure-cause", "gateway")
    } else {
        reply
    }
}

fn token(shared: &Shared, tenant: &str, method: &Method, body: &Bytes) -> Reply {
    shared
        .counters()
        .record(&format!("{method} token"), None, RequestClass::Write);
    if method != Method::POST {
        return error_reply(&method_not_allowed(method));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let config = shared.config();
    match check_token_request(tenant, &form, &config.config.credentials) {
        Ok(client_id) => {
            let lifetime = config.config.token_lifetime_secs;
            let access_token =
                shared
                    .tokens()
                    .issue(tenant, &client_id, Duration::from_secs(lifetime));
            Reply::json(
                200,
                json!({
                    "token_type": "Bearer",
                    "expires_in": lifetime,
                    "ext_expires_in": lifetime,
                    "access_token": access_token,
                }),
            )
        }
        Err(error) => Reply::json(error.status, error.body()),
    }
}

fn identity_token(
    shared: &Shared,
    protocol: identity::Protocol,
    method: &Method,
    query: &HashMap<String, String>,
    header: &dyn Fn(&str) -> Option<String>,
) -> Reply {
    shared
        .counters()
        .record(&format!("{method} identityToken"), None, RequestClass::Read);
    if method != Method::GET {
        return error_reply(&method_not_allowed(method));
    }
    let config = shared.config();
    let identity = &config.config.managed_identity;
    match identity::check_request(protocol, identity, query, header) {
        Ok(request) => {
            let lifetime = config.config.token_lifetime_secs;
            let access_token = shared.tokens().issue(
                &identity.tenant_id,
                &request.client_id,
                Duration::from_secs(lifetime),
            );
            Reply::json(
                200,
                identity::token_body(&request, &access_token, lifetime, Utc::now().timestamp()),
            )
        }
        Err(error) => Reply::json(error.status, error.body),
    }
}

fn admin_request(shared: &Shared, route: &AdminRoute, method: &Method, body: &Bytes) -> Reply {
    match (route, method) {
        (AdminRoute::Counters, &Method::GET) => Reply::json(200, json!(*shared.counters())),
        (AdminRoute::Counters, &Method::DELETE) => {
            *shared.counters() = Default::default();
            Reply::empty(204)
        }
        (AdminRoute::Inventory, &Method::GET) => {
            let state = shared.state();
            let items: Vec<_> = state.inventory.items().cloned().collect();
            let locks: Vec<_> = state.locks.all().map(LockRecord::body).collect();
            Reply::json(200, json!({ "value": items, "locks": locks }))
        }
        (AdminRoute::Events, &Method::GET) => {
            Reply::json(200, json!({ "value": shared.state().inventory.events() }))
        }
        (AdminRoute::Config, &Method::GET) => Reply::json(200, json!(shared.config().config)),
        (AdminRoute::Config, &Method::PUT) => {
            let parsed = std::str::from_utf8(body)
                .map_err(|e| e.to_string())
                .and_then(|text| SimConfig::from_yaml(text).map_err(|e| e.to_string()))
                .and_then(|config| {
                    shared
                        .set_config(config.clone())
                        .map(|_| config)
                        .map_err(|e| e.to_string())
                });
            match parsed {
                Ok(config) => Reply::json(200, json!(config)),
                Err(message) => {
                    error_reply(&ArmError::bad_request("InvalidConfiguration", message))
                }
            }
        }
        _ => error_reply(&method_not_allowed(method)),
    }
}
