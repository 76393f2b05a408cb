//! The store's one error type. Every variant names the object it is about, and tells a
//! conflict (someone else wrote first: re-read and retry) from an outage (retry later: a 503).

/// Something a storage operation could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the object changed since it was read (or exists, for a create).
    #[error("{path} changed since it was read")]
    Conflict {
        /// The object.
        path: String,
    },
    /// Local disk failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file or folder.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The object store failed, after its retries: unreachable, timing out, throttling or 5xx.
    #[error("object store: {action} {path}: {source}")]
    Unavailable {
        /// What was being done.
        action: &'static str,
        /// The object.
        path: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
    /// The storage URL or its options are invalid.
    #[error("invalid storage {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl StoreError {
    /// Whether a retry later could succeed without anything changing on our side: the store
    /// is down, slow or throttling. Servers answer these with a 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Shorthand for wrapping an IO error with its path.
pub(crate) fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.display().to_string();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}
