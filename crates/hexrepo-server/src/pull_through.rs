//! The lazy mirror (pull-through cache): makes sure the mirror's store holds a verified,
//! current copy of a requested file before the object cache serves it. A miss is fetched from
//! the upstream, verified (HEX-PROTOCOL.md §1.5–1.7: signature, `repository` and `name`
//! fields, tarball SHA-256 against the signed `outer_checksum`) and stored; nothing unverified
//! is ever stored or served.
//!
//! Rules:
//!
//! - One upstream request per file at a time: concurrent misses wait for the one under way and
//!   share its outcome.
//! - Registry files (`names`, `versions`, `packages/NAME`) are served for `ttl` after upstream
//!   last confirmed them, then revalidated with the ETag upstream gave (a 304 costs no body).
//! - Tarballs are immutable once verified: the router serves a stored one without asking here.
//!   When a new `packages/NAME` changes a release's `outer_checksum` (a replaced release), the
//!   stored tarball is deleted and fetched again on the next request.
//! - Upstream down (or answering with a file that fails verification) with a verified copy
//!   stored: the copy is served, flagged stale, logged once per file per outage, and upstream
//!   is asked again after [`RETRY_AFTER_FAILURE`]. With nothing stored the answer is an error.
//! - Upstream 404s, and files that failed verification with nothing verified stored, are
//!   remembered for `negative_ttl`, so neither is asked for on every request.
//! - `public_key` is the configured upstream key, written at start; docs and install files are
//!   never mirrored (nothing signs them), so they are 404s.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hexfmt::keys::PublicKey;
use hexfmt::proto::package::Package;
use hexrepo_registry::mirror::verify::{self, Origin, UpstreamFileError};
use hexrepo_registry::verify::{Conditional, Source};
use hexrepo_store::{Fetched, Precondition, StorageKey, Store, StoreError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::observe::UpstreamLabels;
use crate::resource::Resource;
use crate::single_flight::{Flights, share};

/// How soon upstream is asked again after it failed for a file that is served stale.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// How the lazy mirror reaches and trusts its upstream.
pub struct PullThroughConfig {
    /// The upstream repository (blocking; called on blocking threads).
    pub upstream: Arc<dyn Source + Send + Sync>,
    /// What its files must say and be signed with.
    pub origin: Origin,
    /// How long upstream's confirmation of a registry file holds.
    pub ttl: Duration,
    /// How long an upstream 404 holds.
    pub negative_ttl: Duration,
}

/// What the store holds for a request, once [`PullThrough::prepare`] is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// A verified copy upstream confirmed; `changed` if it was written just now.
    Current {
        /// Written (or replaced) by this request.
        changed: bool,
    },
    /// A verified copy upstream could not confirm (down, or its answer failed verification).
    Stale,
    /// Upstream has no such file.
    Missing,
    /// Upstream could not be asked and nothing is stored.
    Unavailable,
    /// Upstream's file failed verification and nothing verified is stored.
    Refused,
}

/// Why a lazy mirror cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The store holds another upstream's files.
    #[error(
        "the mirror's public_key is {stored}, but the configured upstream key is {configured}: \
         this store mirrors another upstream (set the upstream's key, or use another store)"
    )]
    OtherKey {
        /// The stored key's fingerprint.
        stored: String,
        /// The configured key's fingerprint.
        configured: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What is known of one file beyond the store.
#[derive(Debug, Default)]
struct Known {
    /// Until when `answer` holds without asking upstream.
    until: Option<Instant>,
    /// What upstream's last answer means for the file.
    answer: Answer,
    /// Upstream's ETag for the stored bytes.
    etag: Option<String>,
}

/// What upstream's last answer about a file means.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// It confirmed the stored copy (or nothing is known yet).
    #[default]
    Confirmed,
    /// It failed or sent a file that did not verify: the stored copy is served stale.
    Failing,
    /// 404.
    Missing,
    /// It sent a file that did not verify, and nothing verified is stored.
    Refused,
}

impl Known {
    /// Whether the entry says nothing the store does not: an expired answer with no ETag.
    fn is_spent(&self, now: Instant) -> bool {
        self.etag.is_none() && self.until.is_none_or(|until| until <= now)
    }
}

/// Past this many remembered files, spent entries (expired 404s and refusals, mostly) are
/// dropped, and if that is not enough every entry without an ETag: requests for made-up
/// names cannot grow memory without bound, however fast they come.
const MAX_KNOWN: usize = 100_000;

/// The lazy mirror over a store.
pub struct PullThrough {
    store: Store,
    upstream: Arc<dyn Source + Send + Sync>,
    origin: Origin,
    ttl: Duration,
    negative_ttl: Duration,
    known: Mutex<HashMap<StorageKey, Known>>,
    flights: Flights<StorageKey, Ready>,
    events: Family<UpstreamLabels, Counter>,
}

impl std::fmt::Debug for PullThrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullThrough")
            .field("store", &self.store.describe())
            .field("origin", &self.origin.repository)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PullThrough {
    /// The lazy mirror over `store`. Blocking: writes the upstream's key as `public_key` when
    /// the store does not hold it, and reads the ETags `hexrepo mirror sync` stored.
    pub fn new(store: Store, config: PullThroughConfig) -> Result<PullThrough, MirrorError> {
        let pem = config.origin.key.to_spki_pem().into_bytes();
        match store.get(&StorageKey::PublicKey)? {
            None => {
                store.put(
                    &StorageKey::PublicKey,
                    Bytes::from(pem),
                    Precondition::Overwrite,
                )?;
            }
            Some(stored) => {
                let stored_key = PublicKey::from_pem(&stored.bytes).ok();
                if stored_key.as_ref().map(PublicKey::fingerprint)
                    != Some(config.origin.key.fingerprint())
                {
                    return Err(MirrorError::OtherKey {
                        stored: stored_key.map_or_else(|| "unreadable".into(), |k| k.fingerprint()),
                        configured: config.origin.key.fingerprint(),
                    });
                }
            }
        }
        let etags: HashMap<String, String> = store
            .get(&StorageKey::MirrorEtags)?
            .and_then(|o| serde_json::from_slice(&o.bytes).ok())
            .unwrap_or_default();
        let known = etags
            .into_iter()
            .filter_map(|(path, etag)| {
                let key = StorageKey::from_repository_path(&path)?;
                Some((
                    key,
                    Known {
                        etag: Some(etag),
                        ..Known::default()
                    },
                ))
            })
            .collect();
        Ok(PullThrough {
            store,
            upstream: config.upstream,
            origin: config.origin,
            ttl: config.ttl,
            negative_ttl: config.negative_ttl,
            known: Mutex::new(known),
            flights: Flights::new(),
            events: Family::default(),
        })
    }

    /// The mirror's store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Makes the store hold what `resource` should serve, asking upstream if need be.
    pub async fn prepare(&self, resource: &Resource) -> Ready {
        let key = resource.storage_key();
        let ready = match resource {
            Resource::Names | Resource::Versions | Resource::Package(_) => {
                self.registry_file(key, false).await
            }
            Resource::PublicKey => Ready::Current { changed: false },
            Resource::Tarball(_) => self.tarball(key).await,
            Resource::Docs(_) | Resource::Installs(_) => Ready::Missing,
        };
        if ready == Ready::Stale {
            self.count("served_stale");
        }
        ready
    }

    /// Upstream's answers and the stale copies served, for `/metrics`.
    pub fn events(&self) -> &Family<UpstreamLabels, Counter> {
        &self.events
    }

    fn count(&self, answer: &'static str) {
        self.events.get_or_create(&UpstreamLabels { answer }).inc();
    }

    /// The package names upstream's verified `names` lists (fetched if need be), to report
    /// private packages that share one (dependency confusion); what went wrong otherwise.
    pub async fn upstream_names(&self) -> Result<BTreeSet<String>, Ready> {
        match self.registry_file(StorageKey::Names, false).await {
            Ready::Current { .. } | Ready::Stale => {}
            other => return Err(other),
        }
        let bytes = match self.store.fetch(&StorageKey::Names, None).await {
            Ok(Fetched::Found(object)) => object.bytes,
            _ => return Err(Ready::Unavailable),
        };
        let origin = self.origin.clone();
        blocking(move || origin.names(&bytes))
            .await
            .map(|names| names.packages.into_iter().map(|p| p.name).collect())
            .map_err(|e| {
                tracing::error!("stored file no longer verifies: {e}");
                Ready::Refused
            })
    }

    /// What is known of `key` without asking upstream, while it holds.
    fn remembered(&self, key: &StorageKey) -> Option<Ready> {
        let known = self.known.lock().expect("known lock");
        let known = known.get(key)?;
        if known.until? <= Instant::now() {
            return None;
        }
        Some(match known.answer {
            Answer::Confirmed => Ready::Current { changed: false },
            Answer::Failing => Ready::Stale,
            Answer::Missing => Ready::Missing,
            Answer::Refused => Ready::Refused,
        })
    }

    fn remember(&self, key: &StorageKey, update: impl FnOnce(&mut Known)) {
        let mut known = self.known.lock().expect("known lock");
        if known.len() >= MAX_KNOWN && !known.contains_key(key) {
            let now = Instant::now();
            known.retain(|_, k| !k.is_spent(now));
            if known.len() >= MAX_KNOWN {
                // Still full: of made-up names asked for within the negative TTL. Forget every
                // answer that holds no ETag (404s and refusals are asked upstream again, at
                // worst); the entries of stored files, which the store bounds, stay.
                known.retain(|_, k| k.etag.is_some());
            }
        }
        update(known.entry(key.clone()).or_default());
    }

    /// Upstream's `answer` about `key` holds for `ttl`.
    fn answered(&self, key: &StorageKey, answer: Answer, ttl: Duration) {
        let until = Instant::now() + ttl;
        self.remember(key, |k| {
            k.until = Some(until);
            k.answer = answer;
        });
    }

    /// A registry file, revalidated when upstream's last confirmation is older than `ttl` (or
    /// always, with `force`).
    async fn registry_file(&self, key: StorageKey, force: bool) -> Ready {
        let asked = Instant::now();
        if !force && let Some(ready) = self.remembered(&key) {
            return ready;
        }
        let seat = self.flights.join(key);
        let mut slot = seat.take().await;
        share(&mut slot, asked, self.revalidate(seat.key())).await
    }

    async fn revalidate(&self, key: &StorageKey) -> Ready {
        let stored = match self.store.fetch(key, None).await {
            Ok(Fetched::Found(object)) => Some(object.bytes),
            Ok(Fetched::Missing | Fetched::NotModified) => None,
            Err(e) => {
                tracing::warn!(%key, "mirror storage: {e}");
                return Ready::Unavailable;
            }
        };
        let etag = stored.as_ref().and_then(|_| {
            let known = self.known.lock().expect("known lock");
            known.get(key).and_then(|k| k.etag.clone())
        });
        let upstream = Arc::clone(&self.upstream);
        let path = key.path();
        let answer = blocking(move || upstream.fetch_if_none_match(&path, etag.as_deref())).await;
        match answer {
            Ok(Conditional::NotModified) if stored.is_some() => {
                self.count("not_modified");
                self.confirmed(key);
                Ready::Current { changed: false }
            }
            Ok(Conditional::Found { bytes, etag }) => {
                self.store_registry_file(key, stored, bytes, etag).await
            }
            Ok(Conditional::Missing) => {
                self.count("missing");
                tracing::debug!(%key, "not found upstream");
                self.answered(key, Answer::Missing, self.negative_ttl);
                Ready::Missing
            }
            Ok(Conditional::NotModified) => {
                self.upstream_failed(key, false, "304 Not Modified to an unconditional request")
            }
            Err(e) => self.upstream_failed(key, stored.is_some(), &e),
        }
    }

    /// Verifies an upstream registry file and stores it if it differs from the stored bytes.
    async fn store_registry_file(
        &self,
        key: &StorageKey,
        stored: Option<Bytes>,
        bytes: Vec<u8>,
        etag: Option<String>,
    ) -> Ready {
        let (origin, store, owned_key) = (self.origin.clone(), self.store.clone(), key.clone());
        let had_copy = stored.is_some();
        let outcome = blocking(move || -> Result<bool, Refusal> {
            let verified = verify_registry_file(&origin, &owned_key, &bytes)?;
            if stored.as_deref() == Some(bytes.as_slice()) {
                return Ok(false);
            }
            store
                .put(&owned_key, Bytes::from(bytes), Precondition::Overwrite)
                .map_err(Refusal::Store)?;
            if let (Some(new), Some(old)) = (verified, stored) {
                drop_replaced_tarballs(&store, &origin, &new, &old);
            }
            Ok(true)
        })
        .await;
        match outcome {
            Ok(changed) => {
                self.count("fetched");
                if changed {
                    tracing::info!(%key, "mirrored from upstream");
                }
                self.confirmed_with(key, etag);
                Ready::Current { changed }
            }
            Err(Refusal::Upstream(e)) => {
                self.count("refused");
                tracing::error!("refused upstream file {e}");
                if had_copy {
                    self.retry_soon(key);
                    Ready::Stale
                } else {
                    self.answered(key, Answer::Refused, self.negative_ttl);
                    Ready::Refused
                }
            }
            Err(Refusal::Store(e)) => {
                tracing::warn!(%key, "mirror storage: {e}");
                Ready::Unavailable
            }
        }
    }

    /// Upstream just confirmed the stored copy of `key`, which it gave `etag`.
    fn confirmed_with(&self, key: &StorageKey, etag: Option<String>) {
        self.confirmed(key);
        self.remember(key, |k| k.etag = etag);
    }

    /// Upstream just confirmed the stored copy of `key`.
    fn confirmed(&self, key: &StorageKey) {
        let until = Instant::now() + self.ttl;
        self.remember(key, |k| {
            if k.answer == Answer::Failing {
                tracing::info!(%key, "upstream answers again");
            }
            k.until = Some(until);
            k.answer = Answer::Confirmed;
        });
    }

    /// Upstream could not be asked about `key`: stale if a copy is stored, else unavailable.
    fn upstream_failed(&self, key: &StorageKey, have_copy: bool, error: &str) -> Ready {
        self.count("failed");
        if !have_copy {
            tracing::warn!(%key, "upstream unavailable: {error}");
            return Ready::Unavailable;
        }
        let first = !self
            .known
            .lock()
            .expect("known lock")
            .get(key)
            .is_some_and(|k| k.answer == Answer::Failing);
        if first {
            tracing::warn!(%key, "upstream unavailable, serving the stored copy: {error}");
        }
        self.retry_soon(key);
        Ready::Stale
    }

    /// Serve the stored copy of `key` stale for a while, then ask upstream again.
    fn retry_soon(&self, key: &StorageKey) {
        self.answered(key, Answer::Failing, RETRY_AFTER_FAILURE.min(self.ttl));
    }

    /// A tarball the store does not hold: fetched once for everyone asking, verified against
    /// its release's signed checksum, stored.
    async fn tarball(&self, key: StorageKey) -> Ready {
        let asked = Instant::now();
        // Only a 404 or a refusal is remembered for a tarball; a stored one never gets here.
        if let Some(ready @ (Ready::Missing | Ready::Refused)) = self.remembered(&key) {
            return ready;
        }
        let seat = self.flights.join(key);
        let mut slot = seat.take().await;
        share(&mut slot, asked, self.pull_tarball(seat.key())).await
    }

    async fn pull_tarball(&self, key: &StorageKey) -> Ready {
        let StorageKey::Tarball { name, version } = key else {
            unreachable!("only tarball keys come here");
        };
        let package = StorageKey::package(name);
        let mut release = None;
        // A release newer than the stored package file needs the current one: ask again once.
        for force in [false, true] {
            match self.registry_file(package.clone(), force).await {
                Ready::Current { .. } | Ready::Stale => {}
                other => return other,
            }
            release = match self.stored_checksum(name, version).await {
                Ok(found) => found,
                Err(ready) => return ready,
            };
            if release.is_some() {
                break;
            }
        }
        let Some(expected) = release else {
            self.answered(key, Answer::Missing, self.negative_ttl);
            return Ready::Missing;
        };
        let (upstream, store, owned_key) =
            (Arc::clone(&self.upstream), self.store.clone(), key.clone());
        let outcome = blocking(move || -> Result<Option<()>, Refusal> {
            let Some(bytes) = upstream
                .fetch(&owned_key.path())
                .map_err(|e| Refusal::Upstream(unavailable(&owned_key, e)))?
            else {
                return Ok(None);
            };
            verify::tarball(&owned_key, &bytes, expected).map_err(Refusal::Upstream)?;
            store
                .put(&owned_key, Bytes::from(bytes), Precondition::Overwrite)
                .map_err(Refusal::Store)?;
            Ok(Some(()))
        })
        .await;
        match outcome {
            Ok(Some(())) => {
                self.count("fetched");
                tracing::info!(%key, "mirrored from upstream");
                Ready::Current { changed: true }
            }
            Ok(None) => {
                self.count("missing");
                self.answered(key, Answer::Missing, self.negative_ttl);
                Ready::Missing
            }
            Err(Refusal::Upstream(e)) if e.is_fetch() => {
                self.count("failed");
                tracing::warn!("upstream unavailable: {e}");
                Ready::Unavailable
            }
            Err(Refusal::Upstream(e)) => {
                self.count("refused");
                tracing::error!("refused upstream file {e}");
                self.answered(key, Answer::Refused, self.negative_ttl);
                Ready::Refused
            }
            Err(Refusal::Store(e)) => {
                tracing::warn!(%key, "mirror storage: {e}");
                Ready::Unavailable
            }
        }
    }

    /// The signed checksum of `name` `version` in the stored `packages/NAME`, if it lists it.
    async fn stored_checksum(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<hexfmt::checksum::Checksum>, Ready> {
        let key = StorageKey::package(name);
        let bytes = match self.store.fetch(&key, None).await {
            Ok(Fetched::Found(object)) => object.bytes,
            Ok(_) => return Ok(None),
            Err(e) => {
                tracing::warn!(%key, "mirror storage: {e}");
                return Err(Ready::Unavailable);
            }
        };
        let (origin, name, version) = (self.origin.clone(), name.to_owned(), version.to_owned());
        let found = blocking(move || {
            let package = origin.package(&name, &bytes)?;
            package
                .releases
                .iter()
                .find(|r| r.version == version)
                .map(|r| verify::outer_checksum(&name, r))
                .transpose()
        })
        .await;
        found.map_err(|e| {
            tracing::error!("stored file no longer verifies: {e}");
            Ready::Refused
        })
    }
}

/// Why an upstream file was not stored.
enum Refusal {
    /// Upstream's answer: unreachable, or it failed verification.
    Upstream(UpstreamFileError),
    /// The mirror's store failed.
    Store(StoreError),
}

fn unavailable(key: &StorageKey, error: String) -> UpstreamFileError {
    UpstreamFileError::new(key, verify::Problem::Fetch(error))
}

/// Verifies a registry file; the package it decodes to, for `packages/NAME`.
fn verify_registry_file(
    origin: &Origin,
    key: &StorageKey,
    bytes: &[u8],
) -> Result<Option<Package>, Refusal> {
    let verified = match key {
        StorageKey::Names => origin.names(bytes).map(|_| None),
        StorageKey::Versions => origin.versions(bytes).map(|_| None),
        StorageKey::Package(name) => origin.package(name, bytes).map(Some),
        other => unreachable!("{other} is not a registry file"),
    };
    verified.map_err(Refusal::Upstream)
}

/// Deletes the stored tarballs of releases whose signed checksum `new` changed or dropped, so
/// they are fetched (and verified) again rather than served against the wrong checksum.
fn drop_replaced_tarballs(store: &Store, origin: &Origin, new: &Package, old: &[u8]) {
    let Ok(old) = origin.package(&new.name, old) else {
        return;
    };
    for release in &old.releases {
        let kept = new
            .releases
            .iter()
            .any(|r| r.version == release.version && r.outer_checksum == release.outer_checksum);
        if kept {
            continue;
        }
        let key = StorageKey::tarball(&new.name, &release.version);
        match store.delete(&key) {
            Ok(()) => tracing::info!(%key, "release replaced upstream; stored tarball dropped"),
            Err(e) => tracing::warn!(%key, "dropping a replaced tarball: {e}"),
        }
    }
}

/// Runs blocking work (upstream HTTP, store writes, signature checks) off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("mirror work does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &[u8] = include_bytes!("../../../testdata/mix-reference/public/public_key");
    const ACME_WEB: &[u8] =
        include_bytes!("../../../testdata/mix-reference/public/packages/acme_web");
    const ACME_WEB_TARBALL: &[u8] =
        include_bytes!("../../../testdata/mix-reference/public/tarballs/acme_web-0.1.0.tar");

    /// The reference repository (`acme`), answering slowly and counting requests by path.
    #[derive(Default)]
    struct SlowUpstream {
        requests: Mutex<HashMap<String, usize>>,
    }

    impl Source for SlowUpstream {
        fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
            *self
                .requests
                .lock()
                .unwrap()
                .entry(path.to_owned())
                .or_default() += 1;
            std::thread::sleep(Duration::from_millis(200));
            Ok(match path {
                "packages/acme_web" => Some(ACME_WEB.to_vec()),
                "tarballs/acme_web-0.1.0.tar" => Some(ACME_WEB_TARBALL.to_vec()),
                _ => None,
            })
        }
    }

    fn pull_through(upstream: &Arc<SlowUpstream>) -> PullThrough {
        let upstream: Arc<dyn Source + Send + Sync> = upstream.clone();
        PullThrough::new(
            Store::memory(),
            PullThroughConfig {
                upstream,
                origin: Origin {
                    repository: "acme".into(),
                    key: PublicKey::from_pem(PUBLIC).unwrap(),
                },
                ttl: Duration::from_mins(1),
                negative_ttl: Duration::from_mins(1),
            },
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_make_one_upstream_request_and_share_its_outcome() {
        let upstream = Arc::new(SlowUpstream::default());
        let pull = {
            let upstream = Arc::clone(&upstream);
            Arc::new(blocking(move || pull_through(&upstream)).await)
        };
        let tarball = Resource::tarball("acme_web-0.1.0.tar").unwrap();
        let missing = Resource::package("nosuch").unwrap();
        let asks: Vec<_> = (0..8)
            .map(|i| {
                let (pull, resource) = (
                    Arc::clone(&pull),
                    if i % 2 == 0 {
                        tarball.clone()
                    } else {
                        missing.clone()
                    },
                );
                tokio::spawn(async move { pull.prepare(&resource).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for ask in asks {
            outcomes.push(ask.await.unwrap());
        }
        for (i, outcome) in outcomes.iter().enumerate() {
            if i % 2 == 0 {
                assert!(matches!(outcome, Ready::Current { .. }), "{outcome:?}");
            } else {
                assert_eq!(*outcome, Ready::Missing);
            }
        }
        let requests = upstream.requests.lock().unwrap().clone();
        assert_eq!(requests["packages/acme_web"], 1, "{requests:?}");
        assert_eq!(requests["tarballs/acme_web-0.1.0.tar"], 1, "{requests:?}");
        assert_eq!(requests["packages/nosuch"], 1, "{requests:?}");
        let stored = pull.store.fetch(&tarball.storage_key(), None).await;
        assert!(
            matches!(stored, Ok(Fetched::Found(o)) if o.bytes == ACME_WEB_TARBALL),
            "the verified tarball is stored"
        );
    }

    #[test]
    fn remembered_404s_are_dropped_once_spent_when_there_are_too_many() {
        let pull = pull_through(&Arc::new(SlowUpstream::default()));
        for i in 0..MAX_KNOWN {
            pull.answered(
                &StorageKey::package(&format!("made_up_{i}")),
                Answer::Missing,
                Duration::ZERO,
            );
        }
        let etag = StorageKey::package("kept");
        pull.remember(&etag, |k| k.etag = Some("\"e\"".into()));
        let fresh = StorageKey::package("fresh");
        pull.answered(&fresh, Answer::Missing, Duration::from_mins(1));
        let known = pull.known.lock().unwrap();
        assert_eq!(
            known.len(),
            2,
            "spent 404s dropped, the ETag and the new 404 kept"
        );
        assert!(known.contains_key(&etag) && known.contains_key(&fresh));
    }

    #[test]
    fn fresh_404s_cannot_grow_the_memory_past_the_cap() {
        let pull = pull_through(&Arc::new(SlowUpstream::default()));
        let etag = StorageKey::package("kept");
        pull.remember(&etag, |k| k.etag = Some("\"e\"".into()));
        // Made-up names asked for faster than their 404s expire.
        for i in 0..MAX_KNOWN + 10 {
            pull.answered(
                &StorageKey::package(&format!("made_up_{i}")),
                Answer::Missing,
                Duration::from_mins(10),
            );
        }
        let known = pull.known.lock().unwrap();
        assert!(known.len() <= MAX_KNOWN, "{} entries", known.len());
        assert!(known.contains_key(&etag), "a stored file's ETag is kept");
    }

    #[test]
    fn a_store_holding_another_upstreams_key_is_refused() {
        let store = Store::memory();
        let other = hexrepo_registry::mirror::hexpm_public_key().to_spki_pem();
        store
            .put(
                &StorageKey::PublicKey,
                Bytes::from(other),
                Precondition::Overwrite,
            )
            .unwrap();
        let err = PullThrough::new(
            store,
            PullThroughConfig {
                upstream: Arc::new(SlowUpstream::default()),
                origin: Origin {
                    repository: "acme".into(),
                    key: PublicKey::from_pem(PUBLIC).unwrap(),
                },
                ttl: Duration::from_mins(1),
                negative_ttl: Duration::from_mins(1),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("SHA256:O1LOYhHF"), "{err}");
    }
}
