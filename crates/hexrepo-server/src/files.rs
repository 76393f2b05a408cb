//! Repository files as the server sees them: read from the repository folder, with a content
//! ETag, and kept in memory while they do not change.
//!
//! Every request costs one `stat`: an entry is reused only while the file's inode, size and
//! mtime are unchanged, so a registry rebuilt by rename is served the moment it lands, and no
//! restart or cache purge is ever needed. Registry files (small and hot) are always kept;
//! tarballs and docs are kept while a byte budget lasts, and read from disk after that.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use hexfmt::checksum::Checksum;

use crate::resource::{Kind, Resource};

/// Largest single tarball or docs file kept in memory.
const MAX_CACHED_FILE: u64 = 1024 * 1024;

/// A file's identity: when it changes, the cached entry is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    size: u64,
    mtime_ns: i64,
}

/// What the server knows about one file.
#[derive(Debug)]
pub struct FileInfo {
    stamp: Stamp,
    /// Strong ETag derived from the content, so every replica gives the same one.
    pub etag: String,
    /// The file's modification time.
    pub last_modified: SystemTime,
    bytes: Option<Bytes>,
}

/// The cache of repository files.
#[derive(Debug)]
pub struct FileCache {
    root: PathBuf,
    entries: RwLock<HashMap<String, Arc<FileInfo>>>,
    /// Bytes of tarballs and docs still allowed in memory.
    budget: Mutex<u64>,
}

impl FileCache {
    /// A cache over the repository folder `root`, keeping at most `budget` bytes of tarballs
    /// and docs in memory (registry files are always kept).
    pub fn new(root: PathBuf, budget: u64) -> FileCache {
        FileCache {
            root,
            entries: RwLock::new(HashMap::new()),
            budget: Mutex::new(budget),
        }
    }

    /// The resource's info and bytes, or `None` when it does not exist.
    pub async fn get(&self, resource: &Resource) -> io::Result<Option<(Arc<FileInfo>, Bytes)>> {
        let relative = resource.relative_path();
        let path = self.root.join(&relative);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Ok(None),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let stamp = Stamp {
            inode: meta.ino(),
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        };
        let cached = self
            .entries
            .read()
            .expect("cache lock")
            .get(&relative)
            .cloned();
        if let Some(info) = cached.filter(|i| i.stamp == stamp) {
            if let Some(bytes) = &info.bytes {
                return Ok(Some((info.clone(), bytes.clone())));
            }
            return match read(path).await? {
                Some(bytes) => Ok(Some((info, bytes))),
                None => Ok(None),
            };
        }
        let Some(bytes) = read(path).await? else {
            return Ok(None);
        };
        let info = Arc::new(FileInfo {
            stamp,
            etag: format!("\"{}\"", &Checksum::sha256(&bytes).to_hex_lower()[..32]),
            last_modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            bytes: self.admit(resource.kind(), &bytes).then(|| bytes.clone()),
        });
        let replaced = self
            .entries
            .write()
            .expect("cache lock")
            .insert(relative, info.clone());
        let budgeted = !matches!(resource.kind(), Kind::Registry | Kind::Key);
        if let Some(old) = replaced
            .and_then(|old| old.bytes.as_ref().map(Bytes::len))
            .filter(|_| budgeted)
        {
            *self.budget.lock().expect("budget lock") += old as u64;
        }
        Ok(Some((info, bytes)))
    }

    /// Whether to keep these bytes in memory, charging the budget if so.
    fn admit(&self, kind: Kind, bytes: &Bytes) -> bool {
        if matches!(kind, Kind::Registry | Kind::Key) {
            return true;
        }
        let size = bytes.len() as u64;
        let mut budget = self.budget.lock().expect("budget lock");
        if size <= MAX_CACHED_FILE && size <= *budget {
            *budget -= size;
            true
        } else {
            false
        }
    }
}

async fn read(path: PathBuf) -> io::Result<Option<Bytes>> {
    let result = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(io::Error::other)?;
    match result {
        Ok(bytes) => Ok(Some(Bytes::from(bytes))),
        // Removed between stat and read: as if it never existed.
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
