//! `/metrics`, `/healthz` and `/readyz`.

use std::{
    convert::Infallible,
    sync::{Arc, atomic::Ordering},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
};
use tokio::net::TcpListener;
use tracing::debug;

use crate::metrics::Metrics;
use crate::run::Health;

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Health>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(request.uri().path(), &metrics, &health);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "metrics connection");
            }
        });
    }
}

fn respond(path: &str, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" if !health.live(k8s_openapi::jiff::Timestamp::now().as_millisecond()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the object watch keeps failing".to_owned(),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok".to_owned()),
        "/readyz" if health.ready.load(Ordering::Relaxed) => {
            (StatusCode::OK, "text/plain", "ready".to_owned())
        }
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "watches not synced".to_owned(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let metrics = Metrics::default();
        let health = Health::default();
        assert_eq!(
            respond("/healthz", &metrics, &health).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond("/readyz", &metrics, &health).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.ready.store(true, Ordering::Relaxed);
        assert_eq!(
            respond("/readyz", &metrics, &health).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond("/metrics", &metrics, &health).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond("/nope", &metrics, &health).status(),
            StatusCode::NOT_FOUND
        );
        let now = k8s_openapi::jiff::Timestamp::now().as_millisecond();
        health
            .watch_failing_since
            .store(now - 1_000, Ordering::Relaxed);
        assert_eq!(
            respond("/healthz", &metrics, &health).status(),
            StatusCode::OK,
            "a watch error is retried for a while"
        );
        health
            .watch_failing_since
            .store(now - 61_000, Ordering::Relaxed);
        assert_eq!(
            respond("/healthz", &metrics, &health).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.watch_failing_since.store(1, Ordering::Relaxed);
        assert!(!health.live(now), "a watch that ended");
    }
}
