//! Turning a repository file into the HTTP response clients rely on (HEX-PROTOCOL.md §1.7):
//! the stored bytes with no `Content-Encoding`, a strong `ETag` on every 200 (rebar3 fails a
//! tarball download without one), `If-None-Match`/`If-Modified-Since` answered with 304,
//! `Last-Modified`, `Cache-Control` modelled on hex.pm's, and single byte ranges.

use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

use crate::objects::Entry;
use crate::resource::Kind;

/// What a request's conditional and range headers ask of a file, decided before any of its
/// bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// 304: the client's copy is current.
    NotModified,
    /// 200 with every byte.
    Whole,
    /// 206 with bytes `start..=end`.
    Part {
        /// First byte.
        start: u64,
        /// Last byte, included.
        end: u64,
    },
    /// 416.
    Unsatisfiable,
}

impl Plan {
    /// The bytes to send, as a half-open range; `None` when no body is sent.
    pub fn byte_range(self, total: u64) -> Option<std::ops::Range<u64>> {
        match self {
            Plan::Whole => Some(0..total),
            Plan::Part { start, end } => Some(start..end + 1),
            Plan::NotModified | Plan::Unsatisfiable => None,
        }
    }
}

/// Decides what to send for `info` from the request's headers.
pub fn plan(request: &HeaderMap, info: &Entry) -> Plan {
    if not_modified(request, info) {
        return Plan::NotModified;
    }
    match requested_range(request, info, info.size) {
        RangeRequest::None => Plan::Whole,
        RangeRequest::Satisfiable(start, end) => Plan::Part { start, end },
        RangeRequest::Unsatisfiable => Plan::Unsatisfiable,
    }
}

/// The response for a file, following `plan`; `body` holds the planned bytes (none for a 304
/// or 416).
pub fn file_response(plan: Plan, info: &Entry, kind: Kind, private: bool, body: Body) -> Response {
    let total = info.size;
    let builder = Response::builder()
        .header(header::ETAG, info.headers.etag.clone())
        .header(header::LAST_MODIFIED, info.headers.last_modified.clone())
        .header(header::CACHE_CONTROL, cache_control(kind, private))
        .header(header::CONTENT_TYPE, content_type(kind))
        .header(header::ACCEPT_RANGES, "bytes");
    match plan {
        Plan::NotModified => builder.status(StatusCode::NOT_MODIFIED).body(Body::empty()),
        Plan::Whole => builder.header(header::CONTENT_LENGTH, total).body(body),
        Plan::Part { start, end } => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{total}"),
            )
            .header(header::CONTENT_LENGTH, end - start + 1)
            .body(body),
        Plan::Unsatisfiable => builder
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{total}"))
            .body(Body::empty()),
    }
    .expect("static headers are valid")
}

/// The planned bytes of an object held in memory.
pub fn memory_body(plan: Plan, bytes: &Bytes) -> Body {
    match plan.byte_range(bytes.len() as u64) {
        Some(range) => Body::from(bytes.slice(
            usize::try_from(range.start).unwrap_or(0)..usize::try_from(range.end).unwrap_or(0),
        )),
        None => Body::empty(),
    }
}

/// hex.pm's policy, shortened for registry files: they change on every publish and a
/// self-hosted repository has no CDN purge. `private` whenever credentials are required.
fn cache_control(kind: Kind, private: bool) -> HeaderValue {
    HeaderValue::from_static(match (kind, private) {
        (Kind::Registry, false) => "public, max-age=60",
        (Kind::Registry, true) => "private, max-age=60",
        (Kind::Tarball, false) => "public, max-age=604800",
        (Kind::Tarball, true) => "private, max-age=86400",
        (Kind::Docs | Kind::Key | Kind::Installs, false) => "public, max-age=3600",
        (Kind::Docs | Kind::Key | Kind::Installs, true) => "private, max-age=3600",
    })
}

fn content_type(kind: Kind) -> HeaderValue {
    HeaderValue::from_static(match kind {
        Kind::Registry | Kind::Installs => "application/octet-stream",
        Kind::Tarball => "application/x-tar",
        Kind::Docs => "application/gzip",
        Kind::Key => "text/plain; charset=utf-8",
    })
}

fn not_modified(request: &HeaderMap, info: &Entry) -> bool {
    if let Some(value) = request.get(header::IF_NONE_MATCH) {
        let text = value.to_str().unwrap_or_default().trim();
        // rebar3 3.19 sends an empty If-None-Match when it has no ETag: no condition at all.
        if !text.is_empty() {
            return text
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == info.etag);
        }
    }
    request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| truncate_to_seconds(info.last_modified) <= since)
}

fn truncate_to_seconds(time: SystemTime) -> SystemTime {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

enum RangeRequest {
    None,
    Satisfiable(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; multiple ranges, or an `If-Range` that no longer matches, get the
/// whole file (RFC 9110 allows ignoring Range).
fn requested_range(request: &HeaderMap, info: &Entry, total: u64) -> RangeRequest {
    let Some(spec) = request
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::None;
    };
    let stale_if_range = request
        .get(header::IF_RANGE)
        .is_some_and(|v| v.to_str().ok() != Some(info.etag.as_str()));
    if stale_if_range {
        return RangeRequest::None;
    }
    if spec.contains(',') {
        return RangeRequest::None;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::None;
    };
    let (first, last) = (first.trim(), last.trim());
    let bounds = if first.is_empty() {
        // Suffix range: the last N bytes.
        match last.parse::<u64>() {
            Ok(0) | Err(_) => return RangeRequest::Unsatisfiable,
            Ok(n) => (total.saturating_sub(n), total.saturating_sub(1)),
        }
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return RangeRequest::None;
        };
        let end = if last.is_empty() {
            total.saturating_sub(1)
        } else {
            match last.parse::<u64>() {
                Ok(end) => end.min(total.saturating_sub(1)),
                Err(_) => return RangeRequest::None,
            }
        };
        (start, end)
    };
    if total == 0 || bounds.0 >= total || bounds.0 > bounds.1 {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Satisfiable(bounds.0, bounds.1)
    }
}
