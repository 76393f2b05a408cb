//! Repository storage: every byte hexrepo keeps (tarballs, registry files, docs, keys, the
//! audit log, the build cache) goes through [`Store`], addressed by a typed [`StorageKey`].
//!
//! Two backends, chosen by URL: local disk (`file:///srv/hex`, the default; ours, because
//! object_store's local backend has neither compare-and-swap nor fsync) and object stores through
//! the `object_store` crate (`s3://bucket/prefix` for any S3-compatible service, `memory://` for
//! tests). Both pass one conformance suite (`tests/it`).
//!
//! The consistency primitives are conditional writes: [`Precondition::Create`] for objects that
//! must never be overwritten by accident (tarballs), and [`Precondition::Match`] on the version
//! token of what was read (`ETag` on S3) for compare-and-swap of registry files. A lost race is a
//! [`StoreError::Conflict`]: the caller re-reads and retries. Never does this crate decide what
//! to write; `hexrepo-registry` owns those rules.
//!
//! The API is blocking, for the registry code that runs on rayon and blocking threads; the
//! object backend drives its requests on a small runtime of its own, so it may be called from
//! any thread that is not itself running async code. [`Store::fetch`] is the async read for
//! the server.

mod error;
mod key;
mod local;
mod remote;
mod stream;
#[cfg(feature = "test-support")]
pub mod testing;
mod url;

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

pub use bytes::Bytes;
pub use error::StoreError;
pub use key::{Folder, STATE_DIR, StorageKey};
pub use stream::{ByteRange, ByteStream, CHUNK, ObjectStream, Opened};
pub use url::{S3Option, StoreOptions};

/// An object's identity as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Path relative to the repository root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Version token: changes whenever the object does (an S3 `ETag`; inode, size and mtime
    /// on disk). Not a content hash: equal content written twice may carry two tokens.
    pub version: String,
    /// When it was last written.
    pub last_modified: SystemTime,
}

/// An object's bytes and identity.
#[derive(Debug, Clone)]
pub struct Object {
    /// The content.
    pub bytes: Bytes,
    /// What the backend says about it.
    pub meta: Meta,
}

/// What one `stat` says of an object on local disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalVersion {
    /// It exists, with this version token.
    Present(String),
    /// There is no such file.
    Missing,
    /// The `stat` failed otherwise (permissions, IO): only a read can tell more.
    Unreadable,
}

impl LocalVersion {
    /// The version token, when the file exists.
    pub fn token(&self) -> Option<&str> {
        match self {
            LocalVersion::Present(token) => Some(token),
            LocalVersion::Missing | LocalVersion::Unreadable => None,
        }
    }
}

/// The answer to a read that may be conditional.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// The object (changed, or read for the first time).
    Found(Object),
    /// It still carries the version token the caller holds.
    NotModified,
    /// There is no such object.
    Missing,
}

/// What must hold for a write to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Nothing: replace whatever is there.
    Overwrite,
    /// The object must not exist.
    Create,
    /// The object must still carry this version token.
    Match(String),
}

impl Precondition {
    /// `Match` on what was read, or `Create` when nothing was.
    pub fn unchanged_since(read: Option<&Meta>) -> Precondition {
        read.map_or(Precondition::Create, |m| {
            Precondition::Match(m.version.clone())
        })
    }
}

/// One write of a [`Store::commit`].
#[derive(Debug, Clone)]
pub struct Write {
    /// Where.
    pub key: StorageKey,
    /// What.
    pub bytes: Bytes,
    /// On what condition.
    pub precondition: Precondition,
}

/// A repository's storage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<Backend>,
    description: Arc<str>,
}

#[derive(Debug)]
enum Backend {
    Local(local::LocalDisk),
    Remote(remote::RemoteStore),
}

impl Store {
    /// Opens the store a URL names: `file:///path` (or a plain path), `s3://bucket/prefix`,
    /// or `memory://`.
    pub fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        url::open(url, options)
    }

    /// A store in a folder on local disk.
    pub fn local(root: impl AsRef<Path>) -> Store {
        let root = root.as_ref();
        Store {
            description: root.display().to_string().into(),
            backend: Arc::new(Backend::Local(local::LocalDisk::new(root.to_owned()))),
        }
    }

    /// An empty store in memory, for tests.
    pub fn memory() -> Store {
        Store::remote(
            Arc::new(object_store::memory::InMemory::new()),
            "memory://".to_owned(),
        )
    }

    fn remote(inner: Arc<dyn object_store::ObjectStore>, description: String) -> Store {
        Store {
            description: description.into(),
            backend: Arc::new(Backend::Remote(remote::RemoteStore::new(inner))),
        }
    }

    /// Where it is, for logs and messages: a folder or a URL (never credentials).
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Removes what writers killed mid-commit left on local disk (temporaries of processes
    /// that are gone) beside the registry files, packages, tarballs and docs; how many. Object
    /// stores have no such leftovers: 0.
    pub fn remove_orphaned_temporaries(&self) -> Result<usize, StoreError> {
        let Backend::Local(disk) = &*self.backend else {
            return Ok(0);
        };
        let folders = [Folder::Packages, Folder::Tarballs, Folder::Docs].map(Folder::path);
        std::iter::once("")
            .chain(folders)
            .map(|folder| disk.remove_orphaned_temporaries(folder))
            .sum()
    }

    /// The folder, when the store is on local disk.
    pub fn local_root(&self) -> Option<&Path> {
        match &*self.backend {
            Backend::Local(disk) => Some(disk.root()),
            Backend::Remote(_) => None,
        }
    }

    /// Reads an object; `None` if it does not exist.
    pub fn get(&self, key: &StorageKey) -> Result<Option<Object>, StoreError> {
        match self.get_if_changed(key, None)? {
            Fetched::Found(object) => Ok(Some(object)),
            Fetched::Missing | Fetched::NotModified => Ok(None),
        }
    }

    /// Reads an object unless it still carries `version`.
    pub fn get_if_changed(
        &self,
        key: &StorageKey,
        version: Option<&str>,
    ) -> Result<Fetched, StoreError> {
        let path = key.path();
        match &*self.backend {
            Backend::Local(disk) => disk.get(&path, version),
            Backend::Remote(remote) => remote.get(&path, version),
        }
    }

    /// The async form of [`Store::get_if_changed`], for servers: never blocks an async thread.
    pub async fn fetch(
        &self,
        key: &StorageKey,
        version: Option<String>,
    ) -> Result<Fetched, StoreError> {
        let path = key.path();
        match &*self.backend {
            Backend::Local(_) => {
                let store = self.clone();
                let key = key.clone();
                tokio::task::spawn_blocking(move || store.get_if_changed(&key, version.as_deref()))
                    .await
                    .unwrap_or_else(|e| Err(local::join_error(&path, &e)))
            }
            Backend::Remote(remote) => remote.fetch(path, version).await,
        }
    }

    /// Opens the object for reading piece by piece ([`CHUNK`] at a time), only the `range` of
    /// it when given, and only if it still carries `version` when given ([`Opened::Changed`]
    /// otherwise). For files too large to read whole.
    pub async fn stream(
        &self,
        key: &StorageKey,
        version: Option<String>,
        range: ByteRange,
    ) -> Result<Opened, StoreError> {
        let path = key.path();
        match &*self.backend {
            Backend::Local(disk) => disk.stream(path, version, range).await,
            Backend::Remote(remote) => remote.stream(path, version, range).await,
        }
    }

    /// What one `stat` says of the object on local disk; `None` on object stores, which must
    /// be asked with [`Store::fetch`].
    pub fn local_version(&self, key: &StorageKey) -> Option<LocalVersion> {
        match &*self.backend {
            Backend::Local(disk) => Some(disk.version(&key.path())),
            Backend::Remote(_) => None,
        }
    }

    /// The object's identity without its bytes; `None` if it does not exist.
    pub fn head(&self, key: &StorageKey) -> Result<Option<Meta>, StoreError> {
        let path = key.path();
        match &*self.backend {
            Backend::Local(disk) => disk.head(&path),
            Backend::Remote(remote) => remote.head(&path),
        }
    }

    /// Writes an object atomically (readers see the old or the new bytes, never a mix) and
    /// durably, if `precondition` holds; returns its new version token.
    pub fn put(
        &self,
        key: &StorageKey,
        bytes: Bytes,
        precondition: Precondition,
    ) -> Result<String, StoreError> {
        let path = key.path();
        match &*self.backend {
            Backend::Local(disk) => disk.put(&path, &bytes, &precondition),
            Backend::Remote(remote) => remote.put(&path, bytes, precondition),
        }
    }

    /// Writes several objects, each atomically, in order: a reader (or a crash) sees a prefix
    /// of the sequence, never a later write without an earlier one. Every precondition is
    /// checked first on local disk; on object stores a failed precondition stops the sequence
    /// there. Returns the new version token of each write.
    pub fn commit(&self, writes: Vec<Write>) -> Result<Vec<String>, StoreError> {
        match &*self.backend {
            Backend::Local(disk) => disk.commit(&writes),
            Backend::Remote(remote) => remote.commit(writes),
        }
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub fn delete(&self, key: &StorageKey) -> Result<(), StoreError> {
        let path = key.path();
        match &*self.backend {
            Backend::Local(disk) => disk.delete(&path),
            Backend::Remote(remote) => remote.delete(&path),
        }
    }

    /// Every object in a folder (not its subfolders), sorted by path. Temporaries and hidden
    /// files are left out.
    pub fn list(&self, folder: Folder) -> Result<Vec<Meta>, StoreError> {
        let mut list = match &*self.backend {
            Backend::Local(disk) => disk.list(folder.path())?,
            Backend::Remote(remote) => remote.list(folder.path())?,
        };
        list.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(list)
    }

    /// Appends one record to a log (the audit log), durably. On disk, one `O_APPEND` write;
    /// object stores cannot append, so each record is an object of its own under
    /// `PATH.d/`, named by time, and [`Store::read_log`] joins them.
    pub fn append(&self, key: &StorageKey, record: &[u8]) -> Result<(), StoreError> {
        let path = key.path();
        match &*self.backend {
            Backend::Local(disk) => disk.append(&path, record),
            Backend::Remote(remote) => remote.append(&path, record),
        }
    }

    /// Every record appended to a log, oldest first.
    pub fn read_log(&self, key: &StorageKey) -> Result<Vec<Bytes>, StoreError> {
        let path = key.path();
        match &*self.backend {
            Backend::Local(disk) => disk.read_log(&path),
            Backend::Remote(remote) => remote.read_log(&path),
        }
    }

    /// Takes the repository's write lock where one exists (local disk: `flock` on
    /// `.hexrepo/lock`), so writers on one machine queue instead of racing. Object stores
    /// have no lock; their writers rely on conditional writes alone.
    pub fn lock(&self) -> Result<Option<RepoLock>, StoreError> {
        match &*self.backend {
            Backend::Local(disk) => disk.lock("lock").map(|file| Some(RepoLock { _file: file })),
            Backend::Remote(_) => Ok(None),
        }
    }
}

/// The repository's write lock, held until dropped.
#[derive(Debug)]
pub struct RepoLock {
    _file: std::fs::File,
}
