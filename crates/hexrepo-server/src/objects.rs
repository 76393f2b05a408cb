//! Repository objects as the server sees them: read from the [`Store`], given a content ETag,
//! and kept in memory while the store says they have not changed. This module owns when the
//! server asks the store, and what it serves when the store cannot answer; it never writes.
//!
//! Rules:
//!
//! - An entry holds the store's version token, a strong ETag derived from the content (so
//!   every replica gives the same one for the same bytes), the size, the modification time
//!   and, budget allowing, the bytes. Registry files and the public key (small and hot) are
//!   always kept; tarballs, docs and install files of at most [`MAX_CACHED_FILE`] while
//!   `cache_bytes` lasts. Any other file is streamed from the store on every request
//!   ([`ObjectCache::open`]), so memory per reader is a chunk, not the file: its ETag is
//!   computed once per version, by reading it through once.
//! - Local disk: every request confirms its entry with one `stat` (the file's inode, size and
//!   mtime), so a registry rebuilt by rename is served the moment it lands.
//! - Object stores: an entry confirmed less than `revalidate_after` ago is served without
//!   asking; an older one is revalidated with a conditional read. So a change made elsewhere
//!   (another replica's publish, a push) is served here at most `revalidate_after` plus one
//!   store round trip after it lands; until then this replica may serve the previous bytes
//!   (or a 404 for a new object, since misses are not cached). Clients add their own
//!   `Cache-Control` lifetime on top.
//! - One store request per key at a time: concurrent misses of a key wait for the request
//!   already under way and share its outcome; while an entry is being revalidated, requests
//!   for it are served the kept copy instead of waiting (stale-while-revalidate, so a hot file
//!   never stalls on the store).
//! - When the store is unavailable, a kept entry is served stale (flagged, and logged once
//!   per key per outage) and the store is asked again after `revalidate_after`; with nothing
//!   kept the answer is [`ReadError::Unavailable`] (a 503).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::http::HeaderValue;
use bytes::Bytes;
use hexfmt::checksum::Checksum;
use hexrepo_store::{ByteRange, Fetched, LocalVersion, Meta, Object, Opened, StorageKey, Store};

use crate::resource::{Kind, Resource};
use crate::single_flight::{Flights, share};

/// Largest single tarball, docs or install file kept in memory; larger ones are streamed.
pub const MAX_CACHED_FILE: u64 = 1024 * 1024;
/// Hash larger objects on a blocking thread, not on the async ones.
const HASH_INLINE_MAX: usize = 64 * 1024;

/// What the server knows about one object.
#[derive(Debug)]
pub struct Entry {
    /// The store's version token for these bytes.
    version: String,
    /// Strong ETag derived from the content, so every replica gives the same one.
    pub etag: String,
    /// When the object was last written.
    pub last_modified: SystemTime,
    /// Its size in bytes.
    pub size: u64,
    /// The bytes, when kept in memory.
    bytes: Option<Bytes>,
    /// Bytes charged to the budget, given back when the entry goes.
    charged: u64,
    /// When the store was last asked about it (object stores only).
    checked: Mutex<Instant>,
    /// Whether it is being served because the store could not answer.
    stale: AtomicBool,
    /// `etag` and `last_modified` as response headers, made once.
    pub headers: EntryHeaders,
}

/// An entry's response headers, formatted when the entry is made rather than per request.
#[derive(Debug)]
pub struct EntryHeaders {
    /// `ETag`.
    pub etag: HeaderValue,
    /// `Last-Modified`.
    pub last_modified: HeaderValue,
}

impl Entry {
    fn new(meta: Meta, etag: String, bytes: Option<Bytes>, charged: u64) -> Entry {
        let headers = EntryHeaders {
            etag: HeaderValue::from_str(&etag).expect("an ETag is quoted hex"),
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(meta.last_modified))
                .expect("an HTTP date is ASCII"),
        };
        Entry {
            version: meta.version,
            etag,
            last_modified: meta.last_modified,
            size: meta.size,
            bytes,
            charged,
            checked: Mutex::new(Instant::now()),
            stale: AtomicBool::new(false),
            headers,
        }
    }

    fn checked_within(&self, window: Duration) -> bool {
        self.checked.lock().expect("checked lock").elapsed() < window
    }

    fn mark_checked(&self) {
        *self.checked.lock().expect("checked lock") = Instant::now();
    }
}

/// An object to serve.
#[derive(Debug)]
pub struct Found {
    /// Its identity and headers.
    pub entry: Arc<Entry>,
    /// Its bytes, or where to get them.
    pub content: Content,
    /// Served from memory because the store could not confirm it.
    pub stale: bool,
}

/// Where an object's bytes are.
#[derive(Debug, Clone)]
pub enum Content {
    /// In memory.
    Bytes(Bytes),
    /// In the store, to be streamed with [`ObjectCache::open`].
    Stream,
}

/// The answer to [`ObjectCache::open`].
pub enum Streamed {
    /// The entry's bytes (the range asked for).
    Body(hexrepo_store::ByteStream),
    /// The object changed since the entry was made (it was dropped): ask again.
    Changed,
    /// The object is gone.
    Missing,
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Streamed::Body(_) => "Body",
            Streamed::Changed => "Changed",
            Streamed::Missing => "Missing",
        })
    }
}

/// Why an object could not be served; the details are logged where they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The store is down, slow or throttling, and nothing is kept: retry later.
    Unavailable,
    /// Anything else.
    Failed,
}

/// The outcome of one store request, shared by everyone who waited for it.
#[derive(Debug, Clone)]
enum Outcome {
    Found(Arc<Entry>, Bytes),
    Stale(Arc<Entry>, Bytes),
    /// Known, not kept: stream it.
    Large(Arc<Entry>),
    Missing,
    Failed(ReadError),
}

impl Outcome {
    fn into_result(self) -> Result<Option<Found>, ReadError> {
        match self {
            Outcome::Found(entry, bytes) => Ok(Some(Found {
                entry,
                content: Content::Bytes(bytes),
                stale: false,
            })),
            Outcome::Stale(entry, bytes) => Ok(Some(Found {
                entry,
                content: Content::Bytes(bytes),
                stale: true,
            })),
            Outcome::Large(entry) => Ok(Some(Found {
                entry,
                content: Content::Stream,
                stale: false,
            })),
            Outcome::Missing => Ok(None),
            Outcome::Failed(e) => Err(e),
        }
    }
}

/// The cache of repository objects.
#[derive(Debug)]
pub struct ObjectCache {
    store: Store,
    revalidate_after: Duration,
    entries: RwLock<HashMap<StorageKey, Arc<Entry>>>,
    /// Bytes of tarballs, docs and install files still allowed in memory.
    budget: Mutex<u64>,
    /// Keys with a store request under way or awaited.
    flights: Flights<StorageKey, Outcome>,
}

impl ObjectCache {
    /// A cache over `store`, keeping at most `budget` bytes of tarballs, docs and install
    /// files in memory; on object stores entries are trusted for `revalidate_after`.
    pub fn new(store: Store, budget: u64, revalidate_after: Duration) -> ObjectCache {
        ObjectCache {
            store,
            revalidate_after,
            entries: RwLock::new(HashMap::new()),
            budget: Mutex::new(budget),
            flights: Flights::new(),
        }
    }

    /// The resource's entry and bytes, or `None` when it does not exist.
    pub async fn get(&self, resource: &Resource) -> Result<Option<Found>, ReadError> {
        let key = resource.storage_key();
        // `Some` on local disk: the file's current version, from one stat.
        let on_disk = self.store.local_version(&key);
        if on_disk == Some(LocalVersion::Missing) {
            self.evict(&key);
            return Ok(None);
        }
        let mut kept = None;
        if let Some(entry) = self.entry(&key) {
            let current = match &on_disk {
                Some(version) => version.token() == Some(entry.version.as_str()),
                None => entry.checked_within(self.revalidate_after),
            };
            if let Some(bytes) = entry.bytes.clone() {
                let stale = entry.stale.load(Ordering::Relaxed);
                let found = Found {
                    entry,
                    content: Content::Bytes(bytes),
                    stale,
                };
                if current {
                    return Ok(Some(found));
                }
                // An object store's copy past its age may still be served while another
                // request revalidates it; a file on disk that changed may not.
                kept = on_disk.is_none().then_some(found);
            } else if current || on_disk.is_none() {
                // Streamed: opening it checks the version again (an object store's always).
                return Ok(Some(Found {
                    entry,
                    content: Content::Stream,
                    stale: false,
                }));
            }
        }
        // A stat that failed for another reason than a missing file: the read tells why.
        self.ask_store(key, resource.kind(), kept).await
    }

    /// Asks the store once for everyone asking about `key` now. While that request is under
    /// way, others with a kept copy are served it instead of waiting (stale-while-revalidate:
    /// a hot file never makes every request wait for the store).
    async fn ask_store(
        &self,
        key: StorageKey,
        kind: Kind,
        kept: Option<Found>,
    ) -> Result<Option<Found>, ReadError> {
        let asked = Instant::now();
        let seat = self.flights.join(key);
        let mut slot = match (seat.try_take(), kept) {
            (Some(slot), _) => slot,
            (None, Some(kept)) => return Ok(Some(kept)),
            (None, None) => seat.take().await,
        };
        share(&mut slot, asked, self.fetch(seat.key(), kind))
            .await
            .into_result()
    }

    async fn fetch(&self, key: &StorageKey, kind: Kind) -> Outcome {
        // Ask conditionally only when "not modified" leaves bytes to serve.
        let kept = self.entry(key).filter(|e| e.bytes.is_some());
        if kept.is_none() && !matches!(kind, Kind::Registry | Kind::Key) {
            return self.fetch_file(key, kind).await;
        }
        let condition = kept.as_ref().map(|e| e.version.clone());
        match self.store.fetch(key, condition).await {
            Ok(Fetched::NotModified) => {
                let entry = kept.expect("conditional reads only with a kept entry");
                entry.mark_checked();
                if entry.stale.swap(false, Ordering::Relaxed) {
                    tracing::info!(%key, "storage answers again");
                }
                let bytes = entry.bytes.clone().expect("kept entries have bytes");
                Outcome::Found(entry, bytes)
            }
            Ok(Fetched::Found(object)) => {
                let bytes = object.bytes.clone();
                match self.entry(key).filter(|e| e.version == object.meta.version) {
                    // Unchanged but not kept (over budget): no need to hash it again.
                    Some(entry) => {
                        entry.mark_checked();
                        Outcome::Found(entry, bytes)
                    }
                    None => Outcome::Found(self.insert(key, kind, object).await, bytes),
                }
            }
            Ok(Fetched::Missing) => {
                self.evict(key);
                Outcome::Missing
            }
            Err(e) if e.is_unavailable() => {
                let Some(entry) = kept else {
                    tracing::warn!(%key, "{e}");
                    return Outcome::Failed(ReadError::Unavailable);
                };
                // Ask again after a while, not on every request of the outage.
                entry.mark_checked();
                if !entry.stale.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%key, "serving a cached copy: {e}");
                }
                let bytes = entry.bytes.clone().expect("kept entries have bytes");
                Outcome::Stale(entry, bytes)
            }
            Err(e) => {
                tracing::error!(%key, "{e}");
                Outcome::Failed(ReadError::Failed)
            }
        }
    }

    /// A tarball, docs or install file read for the first time (or since it changed): kept
    /// whole when small, else read through once for its ETag and streamed from then on.
    async fn fetch_file(&self, key: &StorageKey, kind: Kind) -> Outcome {
        let opened = match self.store.stream(key, None, None).await {
            Ok(Opened::Found(opened)) => opened,
            Ok(Opened::Missing | Opened::Changed) => {
                self.evict(key);
                return Outcome::Missing;
            }
            Err(e) => return failed(key, &e),
        };
        let meta = opened.meta;
        if meta.size <= MAX_CACHED_FILE {
            let bytes = match collect(opened.body, meta.size).await {
                Ok(bytes) => bytes,
                Err(e) => return failed(key, &e),
            };
            let bytes = Bytes::from(bytes);
            let object = Object {
                bytes: bytes.clone(),
                meta,
            };
            return Outcome::Found(self.insert(key, kind, object).await, bytes);
        }
        if let Some(entry) = self.entry(key).filter(|e| e.version == meta.version) {
            return Outcome::Large(entry);
        }
        let etag = match etag_of_stream(opened.body).await {
            Ok(etag) => etag,
            Err(e) => return failed(key, &e),
        };
        let entry = Arc::new(Entry::new(meta, etag, None, 0));
        self.replace(key, Arc::clone(&entry));
        Outcome::Large(entry)
    }

    /// The bytes of `entry` (its `range`, when given), streamed from the store, if the object
    /// still is that version.
    pub async fn open(
        &self,
        key: &StorageKey,
        entry: &Entry,
        range: ByteRange,
    ) -> Result<Streamed, ReadError> {
        match self
            .store
            .stream(key, Some(entry.version.clone()), range)
            .await
        {
            Ok(Opened::Found(opened)) => Ok(Streamed::Body(opened.body)),
            Ok(Opened::Changed) => {
                self.evict(key);
                Ok(Streamed::Changed)
            }
            Ok(Opened::Missing) => {
                self.evict(key);
                Ok(Streamed::Missing)
            }
            Err(e) => Err(read_error(key, &e)),
        }
    }

    /// Drops what is kept of `key`, so the next request reads the store (which was just
    /// written through another path).
    pub fn forget(&self, key: &StorageKey) {
        self.evict(key);
    }

    fn entry(&self, key: &StorageKey) -> Option<Arc<Entry>> {
        self.entries.read().expect("cache lock").get(key).cloned()
    }

    async fn insert(&self, key: &StorageKey, kind: Kind, object: Object) -> Arc<Entry> {
        let etag = content_etag(object.bytes.clone()).await;
        let charged = self.charge(kind, &object.bytes);
        let entry = Arc::new(Entry::new(
            object.meta,
            etag,
            charged.map(|_| object.bytes),
            charged.unwrap_or(0),
        ));
        self.replace(key, Arc::clone(&entry));
        entry
    }

    fn replace(&self, key: &StorageKey, entry: Arc<Entry>) {
        let old = self
            .entries
            .write()
            .expect("cache lock")
            .insert(key.clone(), entry);
        if let Some(old) = old {
            self.refund(old.charged);
        }
    }

    fn evict(&self, key: &StorageKey) {
        let old = self.entries.write().expect("cache lock").remove(key);
        if let Some(old) = old {
            self.refund(old.charged);
        }
    }

    /// Whether to keep these bytes in memory: `Some(bytes charged)` if so.
    fn charge(&self, kind: Kind, bytes: &Bytes) -> Option<u64> {
        if matches!(kind, Kind::Registry | Kind::Key) {
            return Some(0);
        }
        let size = bytes.len() as u64;
        let mut budget = self.budget.lock().expect("budget lock");
        (size <= MAX_CACHED_FILE && size <= *budget).then(|| {
            *budget -= size;
            size
        })
    }

    fn refund(&self, charged: u64) {
        *self.budget.lock().expect("budget lock") += charged;
    }
}

/// What a failed read of `key` means for the request.
fn failed(key: &StorageKey, e: &hexrepo_store::StoreError) -> Outcome {
    Outcome::Failed(read_error(key, e))
}

/// Logs a failed read of `key` and says what it means for the request: an outage (503) or
/// anything else (500).
fn read_error(key: &StorageKey, e: &hexrepo_store::StoreError) -> ReadError {
    if e.is_unavailable() {
        tracing::warn!(%key, "{e}");
        ReadError::Unavailable
    } else {
        tracing::error!(%key, "{e}");
        ReadError::Failed
    }
}

/// A small object's stream, whole (it said it has `size` bytes).
async fn collect(
    mut body: hexrepo_store::ByteStream,
    size: u64,
) -> Result<Vec<u8>, hexrepo_store::StoreError> {
    use futures_util::TryStreamExt as _;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    while let Some(chunk) = body.try_next().await? {
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The ETag of a large object, hashed chunk by chunk on a blocking thread as it is read.
async fn etag_of_stream(
    mut body: hexrepo_store::ByteStream,
) -> Result<String, hexrepo_store::StoreError> {
    use futures_util::TryStreamExt as _;
    let mut hasher = Some(Checksum::hasher());
    while let Some(chunk) = body.try_next().await? {
        let mut moved = hasher.take().expect("put back after each chunk");
        moved = tokio::task::spawn_blocking(move || {
            moved.update(&chunk);
            moved
        })
        .await
        .expect("hashing does not panic");
        hasher = Some(moved);
    }
    Ok(etag_from(
        &hasher.expect("put back after each chunk").finish(),
    ))
}

/// The strong ETag of some bytes: the first 128 bits of their SHA-256.
async fn content_etag(bytes: Bytes) -> String {
    if bytes.len() <= HASH_INLINE_MAX {
        return etag_of(&bytes);
    }
    let moved = bytes.clone();
    tokio::task::spawn_blocking(move || etag_of(&moved))
        .await
        // Only when the runtime is shutting down: hash here instead.
        .unwrap_or_else(|_| etag_of(&bytes))
}

fn etag_of(bytes: &[u8]) -> String {
    etag_from(&Checksum::sha256(bytes))
}

fn etag_from(digest: &Checksum) -> String {
    format!("\"{}\"", &digest.to_hex_lower()[..32])
}

#[cfg(test)]
mod tests {
    use hexrepo_store::Precondition;

    use super::*;

    fn in_memory(read: Result<Option<Found>, ReadError>) -> Bytes {
        match read.unwrap().unwrap().content {
            Content::Bytes(bytes) => bytes,
            Content::Stream => panic!("a small object is kept in memory"),
        }
    }

    #[tokio::test]
    async fn waiters_share_the_outcome_of_the_request_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path());
        let key = StorageKey::package("foo");
        store
            .put(&key, Bytes::from_static(b"foo"), Precondition::Overwrite)
            .unwrap();
        let cache = Arc::new(ObjectCache::new(store, 0, Duration::from_secs(1)));
        let resource = Resource::package("foo").unwrap();

        // Hold the key's slot, as a request to the store under way would.
        let seat = cache.flights.join(key.clone());
        let mut slot = seat.take().await;
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (cache, resource) = (Arc::clone(&cache), resource.clone());
                tokio::spawn(async move { cache.get(&resource).await.map(|f| f.is_some()) })
            })
            .collect();
        while seat.queued() < 1 + waiters.len() {
            tokio::task::yield_now().await;
        }
        // That request found nothing: its waiters believe it rather than ask again.
        *slot = Some((Instant::now(), Outcome::Missing));
        drop(slot);
        drop(seat);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Ok(false));
        }
        assert!(cache.flights.is_idle(), "slots go with their users");
        // A later request asks the store itself.
        assert!(cache.get(&resource).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_kept_copy_is_served_while_another_request_revalidates_it() {
        let store = Store::memory();
        let key = StorageKey::package("hot");
        let put = {
            let (store, key) = (store.clone(), key.clone());
            move |bytes: &'static [u8]| {
                let (store, key) = (store.clone(), key.clone());
                tokio::task::spawn_blocking(move || {
                    store.put(&key, Bytes::from_static(bytes), Precondition::Overwrite)
                })
            }
        };
        put(b"old").await.unwrap().unwrap();
        let cache = ObjectCache::new(store, 0, Duration::from_millis(50));
        let resource = Resource::package("hot").unwrap();
        assert_eq!(&in_memory(cache.get(&resource).await)[..], b"old");
        put(b"new").await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;

        // Past its age, with a revalidation under way: the kept copy, at once.
        let seat = cache.flights.join(key.clone());
        let slot = seat.take().await;
        let served = tokio::time::timeout(Duration::from_secs(1), cache.get(&resource))
            .await
            .expect("served without waiting for the store");
        assert_eq!(&in_memory(served)[..], b"old");
        drop(slot);
        drop(seat);
        // With nobody revalidating, the request asks the store and gets the new bytes.
        assert_eq!(&in_memory(cache.get(&resource).await)[..], b"new");
    }

    /// Reads a streamed body whole.
    async fn drain(body: hexrepo_store::ByteStream) -> Vec<u8> {
        collect(body, 0).await.unwrap()
    }

    #[tokio::test]
    async fn large_files_are_streamed_from_either_store_and_a_change_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        for store in [Store::local(dir.path()), Store::memory()] {
            let key = StorageKey::tarball("big", "1.0.0");
            let big: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
            let put = |bytes: Vec<u8>| {
                let (store, key) = (store.clone(), key.clone());
                tokio::task::spawn_blocking(move || {
                    store.put(&key, Bytes::from(bytes), Precondition::Overwrite)
                })
            };
            put(big.clone()).await.unwrap().unwrap();
            let cache = ObjectCache::new(store.clone(), 64 << 20, Duration::from_mins(1));
            let resource = Resource::tarball("big-1.0.0.tar").unwrap();

            let found = cache.get(&resource).await.unwrap().unwrap();
            assert!(
                matches!(found.content, Content::Stream),
                "{}: more than MAX_CACHED_FILE is never held in memory",
                store.describe()
            );
            assert_eq!(found.entry.size, big.len() as u64);
            assert_eq!(found.entry.etag, etag_of(&big), "the ETag is the content's");
            let Streamed::Body(body) = cache.open(&key, &found.entry, None).await.unwrap() else {
                panic!("the unchanged file opens")
            };
            assert!(drain(body).await == big, "{}", store.describe());
            let Streamed::Body(part) = cache
                .open(&key, &found.entry, Some(1_000_000..2_500_000))
                .await
                .unwrap()
            else {
                panic!("a range opens")
            };
            assert!(drain(part).await == big[1_000_000..2_500_000]);

            // Replaced after the lookup: the open says so instead of sending other bytes.
            tokio::time::sleep(Duration::from_millis(10)).await;
            put(vec![7; 2 << 20]).await.unwrap().unwrap();
            assert!(matches!(
                cache.open(&key, &found.entry, None).await.unwrap(),
                Streamed::Changed
            ));
            let again = cache.get(&resource).await.unwrap().unwrap();
            assert_eq!(again.entry.etag, etag_of(&vec![7; 2 << 20]));
        }
    }
}
