//! Content negotiation for the Hex API (HEX-PROTOCOL.md §6.1): Hex and hex_core send request
//! bodies as Erlang terms and only read `application/vnd.hex+erlang` replies; other tools speak
//! JSON. Handlers see one shape, `serde_json::Value`; this module converts at the edge.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use hexfmt::etf::{self, Term};
use serde_json::{Map, Value};

use super::error::ApiError;

const ETF: &str = "application/vnd.hex+erlang";

/// The format the client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Erlang External Term Format.
    Etf,
    /// JSON.
    Json,
}

impl<S: Send + Sync> FromRequestParts<S> for Format {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Format, Self::Rejection> {
        let accept = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(if accept.contains(ETF) {
            Format::Etf
        } else {
            Format::Json
        })
    }
}

/// A reply: status and body (`None` for an empty body).
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Option<Value>,
    /// A `Location` header.
    pub location: Option<String>,
}

impl Reply {
    /// 200 with a body.
    pub fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
            location: None,
        }
    }

    /// 204.
    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            location: None,
        }
    }
}

/// Encodes a reply or an error in the client's format.
pub fn respond(format: Format, result: Result<Reply, ApiError>) -> Response {
    let reply = result.unwrap_or_else(ApiError::into_reply);
    let mut builder = Response::builder().status(reply.status);
    if reply.status == StatusCode::UNAUTHORIZED {
        builder = builder.header(header::WWW_AUTHENTICATE, "Basic realm=\"hexrepo\"");
    }
    if let Some(location) = &reply.location {
        builder = builder.header(header::LOCATION, location);
    }
    let body = match (&reply.body, format) {
        (None, _) => Body::empty(),
        (Some(value), Format::Json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(serde_json::to_vec(value).expect("JSON values always serialise"))
        }
        (Some(value), Format::Etf) => {
            builder = builder.header(
                header::CONTENT_TYPE,
                "application/vnd.hex+erlang; charset=utf-8",
            );
            Body::from(etf::encode(&json_to_term(value)))
        }
    };
    builder.body(body).expect("static headers are valid")
}

/// Decodes a request body sent as ETF (hex_core) or JSON.
pub fn decode_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.contains(ETF) {
        let term = etf::decode(bytes)
            .map_err(|e| ApiError::BadRequest(format!("invalid Erlang term body: {e}")))?;
        Ok(term_to_json(&term))
    } else if bytes.is_empty() {
        Ok(Value::Object(Map::new()))
    } else {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

fn term_to_json(term: &Term) -> Value {
    match term {
        Term::Bool(b) => Value::Bool(*b),
        Term::Atom(a) => Value::String(a.clone()),
        Term::Integer(i) => Value::from(*i),
        // Beyond i64: JSON numbers cannot carry them exactly, so as text.
        Term::BigInt(i) => Value::String(i.to_string()),
        Term::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Term::Binary(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Term::List(items) | Term::Tuple(items) => {
            Value::Array(items.iter().map(term_to_json).collect())
        }
        Term::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match term_to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, term_to_json(v))
                })
                .collect(),
        ),
        Term::Nil => Value::Null,
    }
}

fn json_to_term(value: &Value) -> Term {
    match value {
        Value::Null => Term::Nil,
        Value::Bool(b) => Term::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Term::Float(n.as_f64().unwrap_or(0.0)), Term::Integer),
        Value::String(s) => Term::Binary(s.as_bytes().to_vec()),
        Value::Array(items) => Term::List(items.iter().map(json_to_term).collect()),
        Value::Object(map) => Term::Map(
            map.iter()
                .map(|(k, v)| (Term::Binary(k.as_bytes().to_vec()), json_to_term(v)))
                .collect(),
        ),
    }
}
