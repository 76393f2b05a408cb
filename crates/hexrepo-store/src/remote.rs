//! The object-store backend, over the `object_store` crate: S3-compatible services, and memory
//! for tests.
//!
//! Conditional writes map onto the store's own: [`Precondition::Create`] is `If-None-Match: *`
//! and [`Precondition::Match`] is `If-Match: ETAG`; losing either is a conflict. Requests run
//! on a runtime owned by this backend, so blocking callers on any thread can use it; the
//! runtime is shut down in the background when the store is dropped, which is safe even from
//! async code.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt as _,
    PutMode, PutOptions, PutPayload, UpdateVersion,
};

use crate::error::StoreError;
use crate::stream::{ByteRange, ObjectStream, Opened};
use crate::{Fetched, Meta, Object, Precondition, Write};

/// How many requests one commit, list or log read keeps in flight.
const CONCURRENCY: usize = 16;

#[derive(Debug)]
pub(crate) struct RemoteStore {
    inner: Arc<dyn ObjectStore>,
    runtime: OwnedRuntime,
}

impl RemoteStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>) -> RemoteStore {
        RemoteStore {
            inner,
            runtime: OwnedRuntime::new(),
        }
    }

    fn block<F: Future>(&self, future: F) -> F::Output {
        self.runtime.handle().block_on(future)
    }

    pub(crate) fn get(&self, path: &str, version: Option<&str>) -> Result<Fetched, StoreError> {
        self.block(get(
            Arc::clone(&self.inner),
            path.to_owned(),
            version.map(str::to_owned),
        ))
    }

    pub(crate) async fn fetch(
        &self,
        path: String,
        version: Option<String>,
    ) -> Result<Fetched, StoreError> {
        let read = get(Arc::clone(&self.inner), path.clone(), version);
        self.read_on_runtime(path, read).await
    }

    pub(crate) async fn stream(
        &self,
        path: String,
        version: Option<String>,
        range: ByteRange,
    ) -> Result<Opened, StoreError> {
        let open = open_stream(Arc::clone(&self.inner), path.clone(), version, range);
        self.read_on_runtime(path, open).await
    }

    /// Runs a read of `path` on this backend's runtime, for a caller on another runtime.
    async fn read_on_runtime<T: Send + 'static>(
        &self,
        path: String,
        read: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.runtime.handle().spawn(read).await.unwrap_or_else(|e| {
            Err(StoreError::Io {
                action: "reading",
                path,
                source: std::io::Error::other(e.to_string()),
            })
        })
    }

    pub(crate) fn head(&self, path: &str) -> Result<Option<Meta>, StoreError> {
        match self.block(self.inner.head(&Path::from(path))) {
            Ok(meta) => Ok(Some(meta_of(path, &meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(unavailable("reading", path, source)),
        }
    }

    pub(crate) fn put(
        &self,
        path: &str,
        bytes: Bytes,
        precondition: Precondition,
    ) -> Result<String, StoreError> {
        self.block(put(
            Arc::clone(&self.inner),
            path.to_owned(),
            bytes,
            precondition,
        ))
    }

    /// Writes in order; consecutive writes into the same folder (`packages/`, say) do not
    /// depend on each other and go concurrently.
    pub(crate) fn commit(&self, writes: Vec<Write>) -> Result<Vec<String>, StoreError> {
        self.block(async {
            let mut versions = Vec::with_capacity(writes.len());
            let mut writes = writes.into_iter().peekable();
            while let Some(first) = writes.next() {
                let first_path = first.key.path();
                let folder = folder_of(&first_path);
                let mut group = vec![first];
                while let Some(next) =
                    writes.next_if(|w| folder.is_some() && folder_of(&w.key.path()) == folder)
                {
                    group.push(next);
                }
                let done: Vec<String> = futures_util::stream::iter(group.into_iter().map(|w| {
                    put(
                        Arc::clone(&self.inner),
                        w.key.path(),
                        w.bytes,
                        w.precondition,
                    )
                }))
                .buffered(CONCURRENCY)
                .try_collect()
                .await?;
                versions.extend(done);
            }
            Ok(versions)
        })
    }

    pub(crate) fn delete(&self, path: &str) -> Result<(), StoreError> {
        match self.block(self.inner.delete(&Path::from(path))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(unavailable("deleting", path, source)),
        }
    }

    pub(crate) fn list(&self, folder: &str) -> Result<Vec<Meta>, StoreError> {
        let listing = self
            .block(self.inner.list_with_delimiter(Some(&Path::from(folder))))
            .map_err(|source| unavailable("listing", folder, source))?;
        Ok(listing
            .objects
            .iter()
            .filter(|o| o.location.filename().is_some_and(|n| !n.starts_with('.')))
            .map(|o| meta_of(o.location.as_ref(), o))
            .collect())
    }

    /// Object stores cannot append: each record is an object `PATH.d/TIME-PROCESS-N`, created
    /// only if new, so two writers never overwrite each other's record.
    pub(crate) fn append(&self, path: &str, record: &[u8]) -> Result<(), StoreError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("{path}.d/{nanos:020}-{}-{n}", std::process::id());
            match self.put(&name, Bytes::copy_from_slice(record), Precondition::Create) {
                Err(StoreError::Conflict { .. }) => {}
                other => return other.map(drop),
            }
        }
    }

    pub(crate) fn read_log(&self, path: &str) -> Result<Vec<Bytes>, StoreError> {
        let folder = format!("{path}.d");
        let mut entries = self.list(&folder)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        self.block(
            futures_util::stream::iter(entries.into_iter().map(|entry| {
                let inner = Arc::clone(&self.inner);
                async move {
                    match get(inner, entry.path, None).await? {
                        Fetched::Found(object) => Ok(Some(object.bytes)),
                        // Removed since the listing: skip it.
                        Fetched::Missing | Fetched::NotModified => Ok(None),
                    }
                }
            }))
            .buffered(CONCURRENCY)
            .try_filter_map(|record| async move { Ok(record) })
            .try_collect(),
        )
    }
}

async fn get(
    inner: Arc<dyn ObjectStore>,
    path: String,
    version: Option<String>,
) -> Result<Fetched, StoreError> {
    let options = GetOptions {
        if_none_match: version,
        ..GetOptions::default()
    };
    let result = match inner.get_opts(&Path::from(path.as_str()), options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
        Err(object_store::Error::NotModified { .. }) => return Ok(Fetched::NotModified),
        Err(source) => return Err(unavailable("reading", &path, source)),
    };
    let meta = meta_of(&path, &result.meta);
    let bytes = result
        .bytes()
        .await
        .map_err(|source| unavailable("reading", &path, source))?;
    Ok(Fetched::Found(Object { bytes, meta }))
}

/// Starts the GET on this backend's runtime; its body is handed over one chunk at a time
/// through a channel of one, so a slow reader holds one chunk, not the object.
async fn open_stream(
    inner: Arc<dyn ObjectStore>,
    path: String,
    version: Option<String>,
    range: ByteRange,
) -> Result<Opened, StoreError> {
    let options = GetOptions {
        if_match: version,
        range: range.map(GetRange::Bounded),
        ..GetOptions::default()
    };
    let result = match inner.get_opts(&Path::from(path.as_str()), options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(Opened::Missing),
        Err(object_store::Error::Precondition { .. }) => return Ok(Opened::Changed),
        Err(source) => return Err(unavailable("reading", &path, source)),
    };
    let meta = meta_of(&path, &result.meta);
    let mut source = result.into_stream();
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(chunk) = source.next().await {
            let chunk = chunk.map_err(|e| unavailable("reading", &path, e));
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok(Opened::Found(ObjectStream {
        meta,
        body: Box::pin(body),
    }))
}

async fn put(
    inner: Arc<dyn ObjectStore>,
    path: String,
    bytes: Bytes,
    precondition: Precondition,
) -> Result<String, StoreError> {
    let mode = match precondition {
        Precondition::Overwrite => PutMode::Overwrite,
        Precondition::Create => PutMode::Create,
        Precondition::Match(version) => PutMode::Update(UpdateVersion {
            e_tag: Some(version),
            version: None,
        }),
    };
    let options = PutOptions {
        mode,
        attributes: attributes_for(&path),
        ..PutOptions::default()
    };
    match inner
        .put_opts(&Path::from(path.as_str()), PutPayload::from(bytes), options)
        .await
    {
        Ok(result) => Ok(result.e_tag.unwrap_or_default()),
        // A lost race: the object exists (create), changed, or vanished (update).
        Err(
            object_store::Error::Precondition { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::NotFound { .. },
        ) => Err(StoreError::Conflict { path }),
        Err(source) => Err(unavailable("writing", &path, source)),
    }
}

/// Headers for anyone who serves the bucket directly, as the Hex self-hosting guide suggests:
/// bytes as they are (registry files are already gzip; a `Content-Encoding` would make
/// clients decode twice) and the cache lifetimes `hexrepo serve` uses.
pub(crate) fn attributes_for(path: &str) -> Attributes {
    let mut attributes = Attributes::new();
    let content_type = if folder_of(path) == Some("docs") {
        "application/gzip"
    } else {
        "application/octet-stream"
    };
    attributes.insert(Attribute::ContentType, content_type.into());
    let cache_control = match folder_of(path) {
        Some("tarballs") => "public, max-age=604800",
        Some("docs") => "public, max-age=86400",
        _ => "public, max-age=60",
    };
    attributes.insert(Attribute::CacheControl, cache_control.into());
    attributes
}

fn folder_of(path: &str) -> Option<&str> {
    path.split_once('/').map(|(folder, _)| folder)
}

fn meta_of(path: &str, meta: &ObjectMeta) -> Meta {
    let last_modified = SystemTime::from(meta.last_modified);
    Meta {
        path: path.to_owned(),
        size: meta.size,
        // Stores without ETags (none we know) still change their modification time.
        version: meta
            .e_tag
            .clone()
            .unwrap_or_else(|| format!("{}-{}", meta.last_modified.timestamp_micros(), meta.size)),
        last_modified,
    }
}

fn unavailable(action: &'static str, path: &str, source: object_store::Error) -> StoreError {
    StoreError::Unavailable {
        action,
        path: path.to_owned(),
        source,
    }
}

/// A runtime that is shut down without waiting, so dropping the store never blocks (and never
/// panics inside async code, as dropping a runtime there would).
#[derive(Debug)]
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    fn new() -> OwnedRuntime {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hexrepo-store")
            .enable_all()
            .build()
            .expect("the OS lets us start two threads");
        OwnedRuntime(Some(runtime))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("present until dropped").handle()
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
