//! What handlers see of an HTTP exchange: the parsed ARM request and the reply.

use std::collections::HashMap;

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use crate::auth::TokenInfo;
use crate::error::ArmError;

/// What a handler answers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// Serialized JSON.
    pub body: Option<Bytes>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self::serialized_json(status, Bytes::from(body.to_string()))
    }

    /// A JSON body serialized beforehand (kept results answer many polls).
    pub fn serialized_json(status: u16, body: Bytes) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

pub(crate) type Handled = Result<Reply, ArmError>;

/// A parsed ARM request as handlers see it.
pub(crate) struct ArmRequest {
    pub method: Method,
    /// Query parameters with lower-cased names.
    pub query: HashMap<String, String>,
    pub body: Bytes,
    pub caller: TokenInfo,
    pub correlation_id: String,
}

impl ArmRequest {
    pub fn api_version(&self) -> &str {
        self.query
            .get("api-version")
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The body as a JSON object, or ARM's 400 for unreadable content.
    pub fn json_body(&self) -> Result<serde_json::Map<String, Value>, ArmError> {
        let invalid = |why: String| {
            ArmError::bad_request(
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: {why}"),
            )
        };
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(invalid("expected a JSON object.".into())),
            Err(e) => Err(invalid(e.to_string())),
        }
    }
}

/// ARM's error envelope with the code repeated in `x-ms-error-code`.
pub(crate) fn error_reply(error: &ArmError) -> Reply {
    Reply::json(error.status, error.envelope()).header("x-ms-error-code", error.code.clone())
}
