//! What a request may take before it is handled: a slot among the requests served at
//! once, memory charged before it is taken, a JSON content type, and a body bounded in size
//! and time.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warp::http::HeaderMap;

use crate::error::ApiError;

/// Bodies above this are refused with 413 (base64 driver files included).
pub const DEFAULT_MAX_BODY_BYTES: usize = 12 * 1024 * 1024;
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
pub(crate) const FILE_COPIES: u64 = 2;

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

pub(crate) fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
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
pub(crate) async fn read_bounded<S, B>(
    stream: S,
    max: usize,
    ticket: &mut Ticket,
) -> Result<Bytes, ApiError>
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
