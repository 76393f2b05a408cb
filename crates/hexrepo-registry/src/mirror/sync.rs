//! `hexrepo mirror sync`: the eager mirror. Fetches and verifies `names` and `versions`, then
//! the packages (all, or an allow-list closed over its dependencies on the same upstream), then
//! their tarballs, with a bounded number of parallel fetches, and writes what verified.
//!
//! Order is the consistency rule: tarballs first, then each `packages/NAME` whose tarballs are
//! all in the mirror, then `versions`, then `names` (only when nothing failed). An interrupted
//! or failed sync so never exposes a registry file naming a missing tarball, and the next run
//! resumes: a tarball already stored whose SHA-256 matches its signed `outer_checksum` is not
//! fetched again.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hexfmt::proto::package::Package;
use hexrepo_store::{Bytes, Precondition, StorageKey, Store, Write};
use rayon::prelude::*;

pub use super::progress::{Phase, Progress};
use super::upstream::{Etags, RegistryFile, fetch, fetch_registry_file};
use super::verify::{self, Origin, Problem, UpstreamFileError};
use crate::verify::Source;

/// At most this many files per durable commit (one `syncfs` on local disk, instead of one per
/// file); it also bounds the fetched tarballs waiting in memory to be stored.
const WRITE_BATCH: usize = 64;

/// Default number of parallel upstream fetches (Hex's own `HEX_HTTP_CONCURRENCY` default).
pub const DEFAULT_JOBS: usize = 8;

/// What to mirror, from where, into what.
pub struct SyncOptions<'a> {
    /// The upstream repository.
    pub upstream: &'a dyn Source,
    /// What its files must say and be signed with.
    pub origin: &'a Origin,
    /// The mirror's store.
    pub store: &'a Store,
    /// Only these packages and their dependencies on the upstream; `None` for all.
    pub packages: Option<Vec<String>>,
    /// Parallel fetches.
    pub jobs: usize,
    /// Called as the sync goes, from any of its threads.
    pub progress: &'a (dyn Fn(Progress) + Sync),
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Temporaries a killed run left behind, removed before this one.
    pub temporaries_removed: usize,
    /// Names in upstream's verified `names` (for the dependency-confusion check).
    pub upstream_names: BTreeSet<String>,
    /// Packages mirrored (their `packages/NAME` and every tarball verified and stored).
    pub packages: usize,
    /// Tarballs fetched and stored.
    pub tarballs_fetched: usize,
    /// Tarballs already in the mirror with the signed checksum, not fetched again.
    pub tarballs_skipped: usize,
    /// Registry files written because they changed.
    pub registry_files_written: usize,
    /// Registry files upstream answered 304 Not Modified for (the stored copy was verified
    /// again instead).
    pub registry_files_not_modified: usize,
    /// Dependencies on other repositories, left out (`package -> repository/dependency`).
    pub other_repositories: BTreeSet<String>,
    /// Files refused or not mirrored, each naming the file and the reason.
    pub failures: Vec<UpstreamFileError>,
    /// Wall time the sync took.
    pub elapsed: Duration,
}

impl SyncReport {
    /// Whether everything asked for was mirrored.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A verified `packages/NAME`.
struct Fetched {
    name: String,
    file: RegistryFile,
    package: Package,
}

/// Runs a sync. Failures are collected in the report, never half-written to the store.
pub fn sync(opts: &SyncOptions<'_>) -> SyncReport {
    let started = Instant::now();
    let mut report = run(opts);
    report.elapsed = started.elapsed();
    report
}

fn run(opts: &SyncOptions<'_>) -> SyncReport {
    let mut report = SyncReport {
        // What a sync killed mid-commit left (hidden, never served) goes before this one
        // starts. Only hygiene: a store that cannot be listed fails the reads and writes below.
        temporaries_removed: opts.store.remove_orphaned_temporaries().unwrap_or(0),
        ..SyncReport::default()
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
    {
        Ok(pool) => pool,
        Err(e) => {
            report.failures.push(UpstreamFileError::new(
                &StorageKey::Names,
                Problem::Fetch(format!("starting {} fetch threads: {e}", opts.jobs)),
            ));
            return report;
        }
    };
    let mut etags: Etags = opts
        .store
        .get(&StorageKey::MirrorEtags)
        .ok()
        .flatten()
        .and_then(|o| serde_json::from_slice(&o.bytes).ok())
        .unwrap_or_default();
    (opts.progress)(Progress::Phase(Phase::Indexes));
    let indexes = fetch_registry_file(opts.upstream, opts.store, &etags, &StorageKey::Names)
        .and_then(|names_file| {
            let names = opts.origin.names(&names_file.bytes)?;
            let versions_file =
                fetch_registry_file(opts.upstream, opts.store, &etags, &StorageKey::Versions)?;
            let versions = opts.origin.versions(&versions_file.bytes)?;
            Ok((names_file, names, versions_file, versions))
        });
    let (names_file, names, versions_file, versions) = match indexes {
        Ok(indexes) => indexes,
        Err(e) => {
            report.failures.push(e);
            return report;
        }
    };
    report.registry_files_not_modified +=
        usize::from(names_file.not_modified) + usize::from(versions_file.not_modified);
    report.upstream_names = names.packages.iter().map(|p| p.name.clone()).collect();
    let roots = opts
        .packages
        .clone()
        .unwrap_or_else(|| versions.packages.iter().map(|p| p.name.clone()).collect());
    (opts.progress)(Progress::Phase(Phase::Packages {
        upstream: report.upstream_names.len(),
        roots: roots.len(),
        allow_list: opts.packages.is_some(),
    }));

    let packages = pool.install(|| fetch_closure(opts, &etags, &roots, &mut report));
    let complete = pool.install(|| mirror_tarballs(opts, &packages, &mut report));
    (opts.progress)(Progress::Phase(Phase::RegistryFiles));

    // Registry files last: each package only once all its tarballs are in.
    let mut writes: Vec<(StorageKey, RegistryFile)> = packages
        .into_iter()
        .filter(|p| complete.contains(&p.name))
        .map(|p| (StorageKey::Package(p.name), p.file))
        .collect();
    report.packages = writes.len();
    if report.failures.is_empty() {
        let key = RegistryFile {
            bytes: opts.origin.key.to_spki_pem().into_bytes(),
            etag: None,
            not_modified: false,
        };
        writes.push((StorageKey::PublicKey, key));
        writes.push((StorageKey::Versions, versions_file));
        writes.push((StorageKey::Names, names_file));
    }
    store_registry_files(opts.store, writes, &mut etags, &mut report);
    let etags = serde_json::to_vec(&etags).expect("a string map always serialises");
    if let Err(problem) = write_if_changed(opts.store, &StorageKey::MirrorEtags, etags) {
        report
            .failures
            .push(UpstreamFileError::new(&StorageKey::MirrorEtags, problem));
    }
    report
}

/// Stores the registry files that changed, a batch at a time and in order (packages, then the
/// key and the indexes), keeping upstream's ETag only with the bytes it names.
fn store_registry_files(
    store: &Store,
    writes: Vec<(StorageKey, RegistryFile)>,
    etags: &mut Etags,
    report: &mut SyncReport,
) {
    let mut changed: Vec<(Write, Option<String>)> = Vec::new();
    for (key, file) in writes {
        // An ETag is kept only with the bytes it names, so a 304 never confirms other bytes.
        etags.remove(&key.path());
        match holds(store, &key, &file.bytes) {
            Ok(true) => {
                if let Some(etag) = file.etag {
                    etags.insert(key.path(), etag);
                }
            }
            Ok(false) => changed.push((
                Write {
                    key,
                    bytes: Bytes::from(file.bytes),
                    precondition: Precondition::Overwrite,
                },
                file.etag,
            )),
            Err(problem) => report.failures.push(UpstreamFileError::new(&key, problem)),
        }
    }
    for batch in changed.chunks(WRITE_BATCH) {
        let writes = batch.iter().map(|(w, _)| w.clone()).collect();
        for ((write, etag), outcome) in batch.iter().zip(store_all(store, writes)) {
            match outcome {
                Ok(()) => {
                    report.registry_files_written += 1;
                    if let Some(etag) = etag {
                        etags.insert(write.key.path(), etag.clone());
                    }
                }
                Err(e) => report.failures.push(e),
            }
        }
    }
}

/// Fetches and verifies `roots` and, wave by wave, every dependency their releases name on the
/// same repository (a dependency without `repository` is on its parent's).
fn fetch_closure(
    opts: &SyncOptions<'_>,
    etags: &Etags,
    roots: &[String],
    report: &mut SyncReport,
) -> Vec<Fetched> {
    let mut seen: BTreeSet<String> = roots.iter().cloned().collect();
    let mut wave: Vec<String> = seen.iter().cloned().collect();
    let mut fetched = Vec::new();
    let done = AtomicUsize::new(0);
    while !wave.is_empty() {
        let results: Vec<Result<Fetched, UpstreamFileError>> = wave
            .par_iter()
            .map(|name| {
                let file = fetch_registry_file(
                    opts.upstream,
                    opts.store,
                    etags,
                    &StorageKey::package(name),
                )?;
                let package = opts.origin.package(name, &file.bytes)?;
                let done = done.fetch_add(1, Ordering::Relaxed) + 1;
                (opts.progress)(Progress::Packages { done });
                Ok(Fetched {
                    name: name.clone(),
                    file,
                    package,
                })
            })
            .collect();
        let mut next = BTreeSet::new();
        for result in results {
            let package = match result {
                Ok(package) => package,
                Err(e) => {
                    report.failures.push(e);
                    continue;
                }
            };
            report.registry_files_not_modified += usize::from(package.file.not_modified);
            let deps = package
                .package
                .releases
                .iter()
                .flat_map(|r| &r.dependencies);
            for dep in deps {
                match dep.repository.as_deref() {
                    Some(other) if other != opts.origin.repository => {
                        report
                            .other_repositories
                            .insert(format!("{} -> {other}/{}", package.name, dep.package));
                    }
                    _ => {
                        if seen.insert(dep.package.clone()) {
                            next.insert(dep.package.clone());
                        }
                    }
                }
            }
            fetched.push(package);
        }
        wave = next.into_iter().collect();
    }
    fetched.sort_by(|a, b| a.name.cmp(&b.name));
    fetched
}

/// Stores every release's verified tarball; returns the packages whose tarballs are all in.
fn mirror_tarballs(
    opts: &SyncOptions<'_>,
    packages: &[Fetched],
    report: &mut SyncReport,
) -> BTreeSet<String> {
    let releases: Vec<(&str, &hexfmt::proto::package::Release)> = packages
        .iter()
        .flat_map(|p| p.package.releases.iter().map(|r| (p.name.as_str(), r)))
        .collect();
    let total = releases.len();
    (opts.progress)(Progress::Phase(Phase::Tarballs {
        packages: packages.len(),
        total,
    }));
    let done = AtomicUsize::new(0);
    let tick = &|| {
        let done = done.fetch_add(1, Ordering::Relaxed) + 1;
        (opts.progress)(Progress::Tarballs { done, total });
    };
    // Fetched and verified in parallel; stored by one writer that commits whatever has arrived
    // since its last commit (group commit: one durable commit, one `syncfs` on local disk, for
    // many files when they come fast, and no waiting for a batch to fill when they come slowly).
    let (fetched, stored) = std::thread::scope(|scope| {
        let (sender, arrivals) = std::sync::mpsc::sync_channel::<(usize, Write)>(WRITE_BATCH);
        let writer = scope.spawn(move || {
            let mut stored = Vec::new();
            while let Ok(first) = arrivals.recv() {
                let mut batch = vec![first];
                while batch.len() < WRITE_BATCH {
                    let Ok(next) = arrivals.try_recv() else { break };
                    batch.push(next);
                }
                let (indexes, writes): (Vec<usize>, Vec<Write>) = batch.into_iter().unzip();
                for (index, outcome) in indexes.into_iter().zip(store_all(opts.store, writes)) {
                    stored.push((index, outcome));
                    tick();
                }
            }
            stored
        });
        let fetched: Vec<Result<bool, UpstreamFileError>> = releases
            .par_iter()
            .enumerate()
            .map(
                |(index, (name, release))| match fetch_tarball(opts, name, release) {
                    Ok(Some(write)) => {
                        // The writer only stops when every sender is gone.
                        sender
                            .send((index, write))
                            .expect("the writer outlives the fetches");
                        Ok(true)
                    }
                    Ok(None) => {
                        tick();
                        Ok(false)
                    }
                    Err(e) => {
                        tick();
                        Err(e)
                    }
                },
            )
            .collect();
        drop(sender);
        (
            fetched,
            writer.join().expect("the tarball writer does not panic"),
        )
    });
    let mut outcomes: Vec<Result<bool, UpstreamFileError>> = fetched;
    for (index, outcome) in stored {
        if let Err(e) = outcome {
            outcomes[index] = Err(e);
        }
    }
    let mut incomplete = BTreeSet::new();
    for ((name, _), outcome) in releases.iter().zip(outcomes) {
        match outcome {
            Ok(true) => report.tarballs_fetched += 1,
            Ok(false) => report.tarballs_skipped += 1,
            Err(e) => {
                incomplete.insert(*name);
                report.failures.push(e);
            }
        }
    }
    packages
        .iter()
        .map(|p| p.name.clone())
        .filter(|name| !incomplete.contains(name.as_str()))
        .collect()
}

/// A release's tarball, fetched and verified: the write that stores it, or `None` when the
/// mirror already holds it with the signed checksum.
fn fetch_tarball(
    opts: &SyncOptions<'_>,
    name: &str,
    release: &hexfmt::proto::package::Release,
) -> Result<Option<Write>, UpstreamFileError> {
    let key = StorageKey::tarball(name, &release.version);
    let expected = verify::outer_checksum(name, release)?;
    let stored = opts
        .store
        .get(&key)
        .map_err(|e| UpstreamFileError::new(&key, Problem::Store(e)))?;
    if stored.is_some_and(|o| verify::tarball(&key, &o.bytes, expected).is_ok()) {
        return Ok(None);
    }
    let bytes = fetch(opts.upstream, &key)?;
    verify::tarball(&key, &bytes, expected)?;
    Ok(Some(Write {
        key,
        bytes: Bytes::from(bytes),
        // What is there (if anything) failed verification just now.
        precondition: Precondition::Overwrite,
    }))
}

/// Stores `writes` in order with one durable commit; if that fails, one by one, so each
/// failure names its file. One outcome per write, in order.
fn store_all(store: &Store, writes: Vec<Write>) -> Vec<Result<(), UpstreamFileError>> {
    if writes.is_empty() {
        return Vec::new();
    }
    if store.commit(writes.clone()).is_ok() {
        return writes.iter().map(|_| Ok(())).collect();
    }
    writes
        .into_iter()
        .map(|w| {
            store
                .put(&w.key, w.bytes, w.precondition)
                .map(drop)
                .map_err(|e| UpstreamFileError::new(&w.key, Problem::Store(e)))
        })
        .collect()
}

/// Whether the store already holds exactly `bytes` at `key`.
fn holds(store: &Store, key: &StorageKey, bytes: &[u8]) -> Result<bool, Problem> {
    let current = store.get(key).map_err(Problem::Store)?;
    Ok(current.is_some_and(|o| o.bytes.as_ref() == bytes))
}

/// Writes `bytes` unless the store already holds exactly them.
fn write_if_changed(store: &Store, key: &StorageKey, bytes: Vec<u8>) -> Result<(), Problem> {
    if !holds(store, key, &bytes)? {
        store
            .put(key, Bytes::from(bytes), Precondition::Overwrite)
            .map_err(Problem::Store)?;
    }
    Ok(())
}

/// The report as the lines `hexrepo mirror sync` prints: a summary, then each failure.
pub fn summary(report: &SyncReport) -> Vec<String> {
    let mut lines = vec![format!(
        "{} packages mirrored; tarballs: {} fetched, {} skipped (already verified); {} registry files written, {} not modified upstream; {} failed; took {}",
        report.packages,
        report.tarballs_fetched,
        report.tarballs_skipped,
        report.registry_files_written,
        report.registry_files_not_modified,
        report.failures.len(),
        duration(report.elapsed)
    )];
    if report.temporaries_removed > 0 {
        lines.push(format!(
            "removed {} temporary files an interrupted run left behind",
            report.temporaries_removed
        ));
    }
    lines.extend(
        report
            .other_repositories
            .iter()
            .map(|dep| format!("skipped dependency on another repository: {dep}")),
    );
    lines.extend(report.failures.iter().map(|e| format!("failed: {e}")));
    lines
}

/// A wall time as people read it: `850ms`, `4.2s`, `3m 05s`, `2h 07m`.
pub fn duration(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    match secs {
        0 => format!("{}ms", elapsed.as_millis()),
        1..60 => format!("{:.1}s", elapsed.as_secs_f64()),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_the_scale_of_a_sync() {
        let cases = [
            (Duration::from_millis(850), "850ms"),
            (Duration::from_millis(4_240), "4.2s"),
            (Duration::from_secs(185), "3m 05s"),
            (Duration::from_secs(2 * 3600 + 7 * 60 + 59), "2h 07m"),
        ];
        for (elapsed, shown) in cases {
            assert_eq!(duration(elapsed), shown);
        }
    }
}
