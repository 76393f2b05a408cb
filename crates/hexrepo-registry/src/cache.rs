//! The build cache: what each tarball file yielded last time, keyed by its size, mtime and
//! version token, so a rebuild reads only tarballs that changed; and what each output file was when we
//! last wrote or verified it, so a rebuild reads only outputs that may have changed. Stored as JSON in
//! `.hexrepo/build-cache.json`; a missing, unreadable or old-format cache just means a full
//! re-read, never a wrong registry (outputs are always compared by content before writing).

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use hexrepo_store::{Bytes, Meta, Precondition, StorageKey, Store};
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;
use crate::release::ReleaseInfo;

const FORMAT: u32 = 3;

/// An object's identity as far as the cache is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// The store's version token (inode, mtime and size on disk; the ETag on S3), so a file
    /// replaced with equal size and mtime is still noticed.
    pub version: String,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl FileStamp {
    /// The stamp of an object.
    pub fn of(meta: &Meta) -> FileStamp {
        let mtime_ns = match meta.last_modified.duration_since(UNIX_EPOCH) {
            Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
            Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
        };
        FileStamp {
            size: meta.size,
            version: meta.version.clone(),
            mtime_ns,
        }
    }

    /// Whole seconds of the modification time, as `names` records it.
    pub fn mtime_seconds(&self) -> i64 {
        i64::try_from(self.mtime_ns.div_euclid(1_000_000_000)).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile<T, O> {
    format: u32,
    tarballs: T,
    /// Fingerprint of the key the outputs were signed with: another key trusts no output.
    key: Option<String>,
    outputs: O,
}

/// An output file as we last wrote or verified it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// The file's identity then.
    pub stamp: FileStamp,
    /// SHA-256 of what the output was computed from (its payload, or for a package the payload
    /// before retirements and publication times are carried over, marked `+published_at` when
    /// the build fills in missing publication times).
    pub digest: String,
    /// For a package: the retired indexes it held, which `versions` repeats.
    #[serde(default)]
    pub retired: Vec<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedRelease {
    stamp: FileStamp,
    release: ReleaseInfo,
}

type Parsed = CacheFile<HashMap<String, CachedRelease>, HashMap<String, OutputRecord>>;

/// The cache in memory.
#[derive(Debug, Default)]
pub struct BuildCache {
    tarballs: HashMap<String, CachedRelease>,
    key: Option<String>,
    outputs: HashMap<String, OutputRecord>,
}

impl BuildCache {
    /// Loads the cache, or an empty one when it is missing or unreadable.
    pub fn load(store: &Store) -> BuildCache {
        let parsed = store
            .get(&StorageKey::BuildCache)
            .ok()
            .flatten()
            .and_then(|object| serde_json::from_slice::<Parsed>(&object.bytes).ok())
            .filter(|file| file.format == FORMAT);
        let parsed = parsed.unwrap_or_default();
        BuildCache {
            tarballs: parsed.tarballs,
            key: parsed.key,
            outputs: parsed.outputs,
        }
    }

    /// What `file_name` yielded last time, if it has not changed since.
    pub fn get(&self, file_name: &str, stamp: &FileStamp) -> Option<&ReleaseInfo> {
        self.tarballs
            .get(file_name)
            .filter(|c| c.stamp == *stamp)
            .map(|c| &c.release)
    }

    /// Records what `file_name` yielded.
    pub fn insert(&mut self, file_name: String, stamp: FileStamp, release: ReleaseInfo) {
        self.tarballs
            .insert(file_name, CachedRelease { stamp, release });
    }

    /// Forgets every file not in `keep`.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.tarballs.retain(|name, _| keep(name));
    }

    /// Saves the cache. After a crash it is at worst missing or unreadable, which costs one
    /// full re-read, never a wrong registry.
    pub fn save(&self, store: &Store) -> Result<(), RegistryError> {
        let file = CacheFile {
            format: FORMAT,
            tarballs: &self.tarballs,
            key: self.key.clone(),
            outputs: &self.outputs,
        };
        let bytes = serde_json::to_vec(&file).expect("the cache always serialises");
        store.put(
            &StorageKey::BuildCache,
            Bytes::from(bytes),
            Precondition::Overwrite,
        )?;
        Ok(())
    }
}

impl BuildCache {
    /// The record of output `name` (relative path), if made with the key `fingerprint`.
    pub fn output(&self, name: &str, fingerprint: &str) -> Option<&OutputRecord> {
        (self.key.as_deref() == Some(fingerprint))
            .then(|| self.outputs.get(name))
            .flatten()
    }

    /// Replaces every output record; returns whether anything differs from before.
    pub fn set_outputs(
        &mut self,
        fingerprint: &str,
        outputs: HashMap<String, OutputRecord>,
    ) -> bool {
        let changed = self.key.as_deref() != Some(fingerprint) || self.outputs != outputs;
        self.key = Some(fingerprint.to_owned());
        self.outputs = outputs;
        changed
    }

    /// Number of cached tarballs.
    pub fn len(&self) -> usize {
        self.tarballs.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.tarballs.is_empty()
    }
}
