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

use hexfmt::proto::package::Package;
use hexrepo_store::{Bytes, Precondition, StorageKey, Store};
use rayon::prelude::*;

use super::upstream::{Etags, RegistryFile, fetch, fetch_registry_file};
use super::verify::{self, Origin, Problem, UpstreamFileError};
use crate::verify::Source;

/// Default number of parallel upstream fetches (Hex's own `HEX_HTTP_CONCURRENCY` default).
pub const DEFAULT_JOBS: usize = 8;

/// A progress line is reported every this many tarballs.
const PROGRESS_EVERY: usize = 100;

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
    /// Called with a line of progress now and then.
    pub progress: &'a (dyn Fn(&str) + Sync),
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
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
    let mut report = SyncReport::default();
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
    (opts.progress)(&format!(
        "upstream lists {} packages; fetching {} {}",
        report.upstream_names.len(),
        roots.len(),
        if opts.packages.is_some() {
            "package(s) and their dependencies"
        } else {
            "packages"
        }
    ));

    let packages = pool.install(|| fetch_closure(opts, &etags, &roots, &mut report));
    (opts.progress)(&format!(
        "{} packages verified; fetching tarballs",
        packages.len()
    ));
    let complete = pool.install(|| mirror_tarballs(opts, &packages, &mut report));

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
    for (key, file) in writes {
        // An ETag is kept only with the bytes it names, so a 304 never confirms other bytes.
        etags.remove(&key.path());
        match write_if_changed(opts.store, &key, file.bytes) {
            Ok(written) => {
                report.registry_files_written += usize::from(written);
                if let Some(etag) = file.etag {
                    etags.insert(key.path(), etag);
                }
            }
            Err(problem) => report.failures.push(UpstreamFileError::new(&key, problem)),
        }
    }
    let etags = serde_json::to_vec(&etags).expect("a string map always serialises");
    if let Err(problem) = write_if_changed(opts.store, &StorageKey::MirrorEtags, etags) {
        report
            .failures
            .push(UpstreamFileError::new(&StorageKey::MirrorEtags, problem));
    }
    report
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
    let done = AtomicUsize::new(0);
    let results: Vec<(&str, Result<Outcome, UpstreamFileError>)> = releases
        .par_iter()
        .map(|(name, release)| {
            let outcome = mirror_tarball(opts, name, release);
            let count = done.fetch_add(1, Ordering::Relaxed) + 1;
            if count.is_multiple_of(PROGRESS_EVERY) {
                (opts.progress)(&format!("tarballs: {count}/{total}"));
            }
            (*name, outcome)
        })
        .collect();
    let mut incomplete = BTreeSet::new();
    for (name, result) in results {
        match result {
            Ok(Outcome::Fetched) => report.tarballs_fetched += 1,
            Ok(Outcome::AlreadyVerified) => report.tarballs_skipped += 1,
            Err(e) => {
                incomplete.insert(name);
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

enum Outcome {
    Fetched,
    AlreadyVerified,
}

fn mirror_tarball(
    opts: &SyncOptions<'_>,
    name: &str,
    release: &hexfmt::proto::package::Release,
) -> Result<Outcome, UpstreamFileError> {
    let key = StorageKey::tarball(name, &release.version);
    let expected = verify::outer_checksum(name, release)?;
    let stored = opts
        .store
        .get(&key)
        .map_err(|e| UpstreamFileError::new(&key, Problem::Store(e)))?;
    if stored.is_some_and(|o| verify::tarball(&key, &o.bytes, expected).is_ok()) {
        return Ok(Outcome::AlreadyVerified);
    }
    let bytes = fetch(opts.upstream, &key)?;
    verify::tarball(&key, &bytes, expected)?;
    // Overwrite: what is there (if anything) failed verification just now.
    opts.store
        .put(&key, Bytes::from(bytes), Precondition::Overwrite)
        .map_err(|e| UpstreamFileError::new(&key, Problem::Store(e)))?;
    Ok(Outcome::Fetched)
}

/// Writes `bytes` unless the store already holds exactly them; `Ok(true)` if written.
fn write_if_changed(store: &Store, key: &StorageKey, bytes: Vec<u8>) -> Result<bool, Problem> {
    let current = store.get(key).map_err(Problem::Store)?;
    if current
        .as_ref()
        .is_some_and(|o| o.bytes.as_ref() == bytes.as_slice())
    {
        return Ok(false);
    }
    store
        .put(key, Bytes::from(bytes), Precondition::Overwrite)
        .map_err(Problem::Store)?;
    Ok(true)
}

/// The report as the lines `hexrepo mirror sync` prints: a summary, then each failure.
pub fn summary(report: &SyncReport) -> Vec<String> {
    let mut lines = vec![format!(
        "{} packages mirrored; tarballs: {} fetched, {} skipped (already verified); {} registry files written, {} not modified upstream; {} failed",
        report.packages,
        report.tarballs_fetched,
        report.tarballs_skipped,
        report.registry_files_written,
        report.registry_files_not_modified,
        report.failures.len()
    )];
    lines.extend(
        report
            .other_repositories
            .iter()
            .map(|dep| format!("skipped dependency on another repository: {dep}")),
    );
    lines.extend(report.failures.iter().map(|e| format!("failed: {e}")));
    lines
}
