//! How much of a request body an API route reads, in how much time, and how many large bodies
//! are held in memory at once. Every route reads its body here.
//!
//! - A route reads at most what its content needs, refused before reading when the declared
//!   length is over it: [`MAX_SMALL_BODY`] for JSON/ETF requests (keys, owners, retire, the
//!   OAuth exchange), `MAX_TARBALL_SIZE` for package and docs tarballs (413 naming the field).
//! - A body that does not arrive within the edge's `body_timeout` gets 408
//!   ([`crate::edge::BodyTimeout`]).
//! - Tarball uploads take a share of [`UPLOAD_MEMORY`] before their body is read and keep it
//!   until their request is done, so many publishes at once wait for each other instead of
//!   each holding 48 MiB. A tarball is charged three times its size: its bytes, its
//!   `contents.tar.gz` member copied out, and the contents inflated for checking.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;

/// The most a JSON or ETF request body may take (a retire reason, an owner, a key request).
pub const MAX_SMALL_BODY: u64 = 64 * 1024;

/// Bytes of uploaded tarballs (each counted three times: see the module docs) held at once.
pub const UPLOAD_MEMORY: u64 = 64 * 1024 * 1024;

/// The budget is counted in KiB, so it fits a semaphore's `u32`.
const UNIT: u64 = 1024;

/// The memory budget of tarball uploads.
#[derive(Debug, Clone)]
pub struct UploadBudget(Arc<Semaphore>);

impl Default for UploadBudget {
    fn default() -> UploadBudget {
        UploadBudget(Arc::new(Semaphore::new(budget_units(UPLOAD_MEMORY))))
    }
}

fn budget_units(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(UNIT)).unwrap_or(usize::MAX)
}

/// A body read whole, with the share of the upload budget it holds until dropped.
#[derive(Debug)]
pub struct Received {
    /// The bytes.
    pub bytes: Bytes,
    _share: OwnedSemaphorePermit,
}

/// Reads a JSON or ETF body (at most [`MAX_SMALL_BODY`]).
pub async fn read_small(request: Request) -> Result<Bytes, ApiError> {
    read(request, MAX_SMALL_BODY, "body").await
}

/// Reads an uploaded tarball of at most `max` bytes, once the upload budget has room for it.
pub async fn read_upload(
    budget: &UploadBudget,
    request: Request,
    max: u64,
    field: &'static str,
) -> Result<Received, ApiError> {
    let declared = declared_length(&request);
    if declared.is_some_and(|len| len > max) {
        return Err(ApiError::TooLarge(field));
    }
    // A body of unknown length is charged the most it may be.
    let charge = declared.unwrap_or(max).saturating_mul(3).min(UPLOAD_MEMORY);
    let units = u32::try_from(budget_units(charge)).unwrap_or(u32::MAX);
    let share = Arc::clone(&budget.0)
        .acquire_many_owned(units)
        .await
        .expect("the upload budget is never closed");
    let bytes = read(request, max, field).await?;
    Ok(Received {
        bytes,
        _share: share,
    })
}

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The request's body, refused (413, naming `field`) once it is over `max` bytes, declared or
/// sent; 408 when it does not arrive in time.
async fn read(request: Request, max: u64, field: &'static str) -> Result<Bytes, ApiError> {
    if declared_length(&request).is_some_and(|len| len > max) {
        return Err(ApiError::TooLarge(field));
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|e| {
            if caused_by::<crate::edge::BodyTimeout>(&e) {
                ApiError::Timeout
            } else if caused_by::<http_body_util::LengthLimitError>(&e) {
                ApiError::TooLarge(field)
            } else {
                ApiError::BadRequest(format!("the request body could not be read: {e}"))
            }
        })
}

/// Whether `error`, or an error it wraps, is a `T`.
fn caused_by<T: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<T>() {
            return true;
        }
        current = e.source();
    }
    false
}
