//! Reading the archive into a mirror: every registry file verified with the importing side's
//! [`Origin`] before any tarball is read, every tarball against its release's signed checksum,
//! and the writes in sync's order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};

use hexfmt::checksum::Checksum;
use hexfmt::keys::PublicKey;
use hexrepo_store::{Bytes, Precondition, StorageKey, Store};

use super::entries::{ArchiveEntryError, EntryProblem, mirror_file, read_entry, survey};
use crate::mirror::upstream::Etags;
use crate::mirror::verify::{self, Origin, Problem, UpstreamFileError};

/// At most this many releases without a tarball are listed one by one in [`summary`].
const LISTED_WITHOUT_TARBALL: usize = 20;

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// `packages/NAME` verified and now in the mirror (written, or already there).
    pub packages: usize,
    /// Tarballs verified and written.
    pub tarballs_written: usize,
    /// Tarballs the mirror already held with the signed checksum, not rewritten.
    pub tarballs_unchanged: usize,
    /// Registry files written because they changed.
    pub registry_files_written: usize,
    /// Registry files the mirror already held byte for byte.
    pub registry_files_unchanged: usize,
    /// Tarballs of imported releases that the archive does not hold (a lazily filled mirror's
    /// export), sorted: served offline, they are 404 unless the mirror already had them.
    pub without_tarball: Vec<String>,
    /// Entries refused or not imported, each naming the entry and the reason.
    pub failures: Vec<ArchiveEntryError>,
}

impl ImportReport {
    /// Whether everything in the archive was imported.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Files written to the mirror.
    pub fn written(&self) -> usize {
        self.tarballs_written + self.registry_files_written
    }
}

/// Imports an archive written by [`export`](super::export()) into `store`, verifying it with `origin`. The
/// archive's own `public_key` is only checked against `origin.key`: it must be the same key
/// (in either PEM form). The mirror's `public_key` is written as `origin.key`, as a sync writes
/// it. The reader must seek, because the headers are checked in a first pass.
pub fn import<R: Read + Seek>(store: &Store, origin: &Origin, mut reader: R) -> ImportReport {
    let mut import = Import {
        store,
        origin,
        report: ImportReport::default(),
        names: None,
        versions: None,
        packages: BTreeMap::new(),
        releases: HashMap::new(),
        incomplete: BTreeSet::new(),
    };
    let contents = reader.stream_position().and_then(|start| {
        let contents = survey(&mut reader);
        reader.seek(SeekFrom::Start(start))?;
        Ok(contents)
    });
    let tarballs = match contents {
        Ok(Ok(tarballs)) => tarballs,
        Ok(Err(failures)) => {
            import.report.failures = failures;
            return import.report;
        }
        Err(e) => {
            import.fail(ArchiveEntryError::new("archive", EntryProblem::Read(e)));
            return import.report;
        }
    };
    if import.read(reader, &tarballs) {
        import.write_registry();
    }
    import.report
}

/// The second pass's state: what verified so far.
struct Import<'a> {
    store: &'a Store,
    origin: &'a Origin,
    report: ImportReport,
    names: Option<Vec<u8>>,
    versions: Option<Vec<u8>>,
    /// Verified `packages/NAME` files, by name.
    packages: BTreeMap<String, Vec<u8>>,
    /// Every release's tarball path: its package, and its signed checksum (if usable).
    releases: HashMap<String, (String, Option<Checksum>)>,
    /// Packages with a tarball that failed: not imported.
    incomplete: BTreeSet<String>,
}

impl Import<'_> {
    fn fail(&mut self, e: impl Into<ArchiveEntryError>) {
        self.report.failures.push(e.into());
    }

    /// The second pass: registry files read and verified, then tarballs verified and stored.
    /// False if it stopped (a registry file failed, or the archive could not be read), in
    /// which case no registry file may be written.
    fn read<R: Read + Seek>(&mut self, reader: R, tarballs: &BTreeSet<String>) -> bool {
        let mut archive = tar::Archive::new(reader);
        let entries = match archive.entries_with_seek() {
            Ok(entries) => entries,
            Err(e) => {
                self.fail(ArchiveEntryError::new("archive", EntryProblem::Read(e)));
                return false;
            }
        };
        let mut checked = false;
        for entry in entries {
            let read = entry
                .map_err(|e| ArchiveEntryError::new("archive", EntryProblem::Read(e)))
                .and_then(|mut entry| {
                    // Checked again: the archive may have changed since the first pass.
                    let (path, key) = mirror_file(&entry)?;
                    let bytes = read_entry(&mut entry, &key)
                        .map_err(|problem| ArchiveEntryError::new(path, problem))?;
                    Ok((key, bytes))
                });
            let (key, bytes) = match read {
                Ok(read) => read,
                Err(e) => {
                    self.fail(e);
                    return false;
                }
            };
            if let StorageKey::Tarball { .. } = key {
                if !checked && !self.check_registry(tarballs) {
                    return false;
                }
                checked = true;
                self.import_tarball(&key, bytes);
            } else if checked {
                self.fail(ArchiveEntryError::new(key.path(), EntryProblem::OutOfOrder));
                return false;
            } else {
                self.verify_registry_file(&key, bytes);
            }
        }
        checked || self.check_registry(tarballs)
    }

    fn verify_registry_file(&mut self, key: &StorageKey, bytes: Vec<u8>) {
        let verified = match key {
            StorageKey::Names => self.origin.names(&bytes).map(|_| self.names = Some(bytes)),
            StorageKey::Versions => {
                let verified = self.origin.versions(&bytes);
                verified.map(|_| self.versions = Some(bytes))
            }
            StorageKey::Package(name) => self.origin.package(name, &bytes).map(|package| {
                for release in &package.releases {
                    let checksum = verify::outer_checksum(name, release).ok();
                    let path = StorageKey::tarball(name, &release.version).path();
                    self.releases.insert(path, (name.clone(), checksum));
                }
                self.packages.insert(name.clone(), bytes);
            }),
            _ => {
                let problem = match PublicKey::from_pem(&bytes) {
                    Err(e) => EntryProblem::BadKey(e),
                    Ok(key) if key == self.origin.key => return,
                    Ok(key) => EntryProblem::KeyMismatch {
                        archive: key.fingerprint(),
                        origin: self.origin.key.fingerprint(),
                    },
                };
                return self.fail(ArchiveEntryError::new(key.path(), problem));
            }
        };
        if let Err(e) = verified {
            self.fail(e);
        }
    }

    /// Once every registry file is read: true if all verified and every tarball in the
    /// archive is a release of one of its packages. Lists the releases without a tarball.
    fn check_registry(&mut self, tarballs: &BTreeSet<String>) -> bool {
        if !self.report.is_ok() {
            return false;
        }
        for path in tarballs {
            if !self.releases.contains_key(path) {
                self.fail(ArchiveEntryError::new(path, EntryProblem::NotReleased));
            }
        }
        let mut without: Vec<String> = self
            .releases
            .keys()
            .filter(|path| !tarballs.contains(*path))
            .cloned()
            .collect();
        without.sort();
        self.report.without_tarball = without;
        self.report.is_ok()
    }

    /// Verifies a tarball against its release's signed checksum and stores it unless the
    /// mirror already holds it verified.
    fn import_tarball(&mut self, key: &StorageKey, bytes: Vec<u8>) {
        // Known since `check_registry`, unless the archive changed since the first pass.
        let Some((package, expected)) = self.releases.get(&key.path()).cloned() else {
            return self.fail(ArchiveEntryError::new(
                key.path(),
                EntryProblem::NotReleased,
            ));
        };
        let stored = expected
            .ok_or_else(|| UpstreamFileError::new(key, Problem::NoOuterChecksum))
            .and_then(|expected| {
                verify::tarball(key, &bytes, expected)?;
                let store_err = |e| UpstreamFileError::new(key, Problem::Store(e));
                let current = self.store.get(key).map_err(store_err)?;
                if current.is_some_and(|o| o.bytes == bytes) {
                    return Ok(false);
                }
                let bytes = Bytes::from(bytes);
                // Overwrite: what is there (if anything) is not the verified tarball.
                self.store
                    .put(key, bytes, Precondition::Overwrite)
                    .map_err(store_err)?;
                Ok(true)
            });
        match stored {
            Ok(true) => self.report.tarballs_written += 1,
            Ok(false) => self.report.tarballs_unchanged += 1,
            Err(e) => {
                self.incomplete.insert(package);
                self.fail(e);
            }
        }
    }

    /// Writes the verified registry files in sync's order: each package whose tarballs in
    /// the archive are all in, then (only if nothing failed) `public_key`, `versions`, `names`;
    /// a file already holding the same bytes is left alone.
    fn write_registry(&mut self) {
        let mut writes: Vec<(StorageKey, Vec<u8>)> = std::mem::take(&mut self.packages)
            .into_iter()
            .filter(|(name, _)| !self.incomplete.contains(name))
            .map(|(name, bytes)| (StorageKey::Package(name), bytes))
            .collect();
        self.report.packages = writes.len();
        if self.report.is_ok() {
            let key = self.origin.key.to_spki_pem().into_bytes();
            writes.push((StorageKey::PublicKey, key));
            writes.extend(self.versions.take().map(|v| (StorageKey::Versions, v)));
            writes.extend(self.names.take().map(|n| (StorageKey::Names, n)));
        }
        let mut changed = Vec::new();
        for (key, bytes) in writes {
            match self.store.get(&key) {
                Ok(Some(current)) if current.bytes == bytes => {
                    self.report.registry_files_unchanged += 1;
                }
                Ok(_) => changed.push((key, bytes)),
                Err(e) => return self.fail(UpstreamFileError::new(&key, Problem::Store(e))),
            }
        }
        // Before the files change, so that no crash leaves an ETag naming bytes not stored.
        let paths: Vec<String> = changed.iter().map(|(key, _)| key.path()).collect();
        if let Err(problem) = forget_etags(self.store, &paths) {
            return self.fail(UpstreamFileError::new(&StorageKey::MirrorEtags, problem));
        }
        for (key, bytes) in changed {
            // A failure stops here: later files (the indexes last) must not name what failed.
            if let Err(e) = self.store.put(&key, bytes.into(), Precondition::Overwrite) {
                return self.fail(UpstreamFileError::new(&key, Problem::Store(e)));
            }
            self.report.registry_files_written += 1;
        }
    }
}

/// Drops the upstream ETags a sync kept for files the import replaces: they name other bytes,
/// and a 304 for them must never vouch for what the import wrote.
fn forget_etags(store: &Store, paths: &[String]) -> Result<(), Problem> {
    let key = StorageKey::MirrorEtags;
    let Some(object) = store.get(&key).map_err(Problem::Store)? else {
        return Ok(());
    };
    // Unreadable: a sync treats it as empty too, and replaces it.
    let mut etags: Etags = serde_json::from_slice(&object.bytes).unwrap_or_default();
    let before = etags.len();
    etags.retain(|path, _| !paths.contains(path));
    if etags.len() == before {
        return Ok(());
    }
    let etags = serde_json::to_vec(&etags).expect("a string map always serialises");
    store
        .put(&key, etags.into(), Precondition::Overwrite)
        .map(drop)
        .map_err(Problem::Store)
}

/// The report as the lines `hexrepo mirror import` prints: a summary, then each failure.
pub fn summary(report: &ImportReport) -> Vec<String> {
    let mut lines = vec![format!(
        "{} packages imported; tarballs: {} written, {} unchanged (already verified); registry files: {} written, {} unchanged; {} failed",
        report.packages,
        report.tarballs_written,
        report.tarballs_unchanged,
        report.registry_files_written,
        report.registry_files_unchanged,
        report.failures.len()
    )];
    if report.written() == 0 {
        lines.push(if report.is_ok() {
            "nothing written: the mirror already holds every file in the archive".to_owned()
        } else {
            "nothing written to the mirror".to_owned()
        });
    }
    let without = &report.without_tarball;
    if !without.is_empty() {
        lines.push(format!(
            "{} releases have no tarball in the archive (the exporting mirror never fetched \
             them): served offline they will 404 unless this mirror already holds them",
            without.len()
        ));
        lines.extend(
            without
                .iter()
                .take(LISTED_WITHOUT_TARBALL)
                .map(|path| format!("  without tarball: {path}")),
        );
        if without.len() > LISTED_WITHOUT_TARBALL {
            lines.push(format!(
                "  ... and {} more",
                without.len() - LISTED_WITHOUT_TARBALL
            ));
        }
    }
    lines.extend(report.failures.iter().map(|e| format!("failed: {e}")));
    lines
}
