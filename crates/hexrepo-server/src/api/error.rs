//! The API's one error type, mapped exhaustively onto a status and Hex's error body
//! `{"status", "message", "errors"}` (HEX-PROTOCOL.md §6.3). A 5xx tells the client only
//! "internal server error"; the detail goes to the log.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::format::Reply;

/// Why an API request failed.
#[derive(Debug)]
pub enum ApiError {
    /// 401: no usable credentials.
    Unauthorized(&'static str),
    /// 403: the key may not do this.
    Forbidden(String),
    /// 404.
    NotFound,
    /// 404 naming what is missing (a package, an owner).
    Missing(String),
    /// 404: `/api/repos/NAME` names a repository this server does not host (`mix hex.publish
    /// --organization NAME` with the wrong name).
    UnknownRepository {
        /// The name asked for (cut to 64 characters).
        asked: String,
        /// The repository this server hosts.
        served: String,
    },
    /// 400: a malformed request.
    BadRequest(String),
    /// 413: the body is over the limit; the field named in the errors (`tar` for a tarball,
    /// `body` for anything else).
    TooLarge(&'static str),
    /// 408: the body did not arrive within the server's `body_timeout`.
    Timeout,
    /// 422: validation failed; `errors` is Hex's field → message map.
    Validation(Value),
    /// 503: publishing is not configured on this server.
    Unavailable(&'static str),
    /// 500: logged, never shown.
    Internal(String),
}

impl ApiError {
    /// 422 with one field error.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::Validation(json!({ field: message.into() }))
    }

    /// The reply for this error.
    pub fn into_reply(self) -> Reply {
        let (status, message, errors) = match self {
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_owned(), None),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m, None),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "Page not found".to_owned(), None),
            ApiError::Missing(m) => (StatusCode::NOT_FOUND, m, None),
            ApiError::UnknownRepository { asked, served } => (
                StatusCode::NOT_FOUND,
                format!(
                    "this server hosts no repository (organization) named {asked:?}; \
                     its repository is {served:?}: use --organization {served}"
                ),
                None,
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m, None),
            ApiError::TooLarge(field) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Validation error(s)".to_owned(),
                Some(json!({ field: "too big" })),
            ),
            ApiError::Timeout => (
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time (the server's body_timeout)".to_owned(),
                None,
            ),
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Validation error(s)".to_owned(),
                Some(errors),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m.to_owned(), None),
            ApiError::Internal(detail) => {
                tracing::error!("API request failed: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal server error".to_owned(),
                    None,
                )
            }
        };
        let mut body = json!({"status": status.as_u16(), "message": message});
        if let Some(errors) = errors {
            body["errors"] = errors;
        }
        Reply {
            status,
            body: Some(body),
            location: None,
        }
    }
}
