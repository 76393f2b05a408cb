//! `hexrepo verify`: audits a repository as a careful client would (HEX-PROTOCOL.md §1.5–1.6):
//! every signature and origin field, the agreement of `names`, `versions` and each
//! `packages/NAME`, and every tarball against the signed checksums. It reports problems instead
//! of stopping at the first, and never changes anything.

use std::collections::BTreeSet;

use hexfmt::checksum::Checksum;
use hexfmt::keys::PublicKey;
use hexfmt::proto::package::Release;
use hexfmt::registry::{read_names, read_package, read_versions};
use hexfmt::tarball::read_tarball;
use rayon::prelude::*;

use hexrepo_store::{Folder, StorageKey, Store};

use crate::build::is_valid_package_name;
use crate::index::retired_indexes;
use crate::layout::parse_tarball_file_name;

/// Where repository resources come from: a folder, or a server (implemented by the binary).
pub trait Source: Sync {
    /// The resource at `path` (`names`, `packages/foo`, `tarballs/foo-1.0.0.tar`, ...);
    /// `Ok(None)` when it does not exist.
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, String>;

    /// [`Source::fetch`] unless the resource still carries `etag` (an HTTP ETag from an
    /// earlier answer). Sources without conditional requests fetch it whole.
    fn fetch_if_none_match(&self, path: &str, etag: Option<&str>) -> Result<Conditional, String> {
        let _ = etag;
        Ok(match self.fetch(path)? {
            Some(bytes) => Conditional::Found { bytes, etag: None },
            None => Conditional::Missing,
        })
    }

    /// Files present in `packages/` and `tarballs/`, when the source can list them (a folder
    /// can, a server cannot). Used to report files the registry does not account for.
    fn listing(&self) -> Option<Listing> {
        None
    }
}

/// The answer to [`Source::fetch_if_none_match`].
#[derive(Debug)]
pub enum Conditional {
    /// The resource, and its ETag when the source gives one.
    Found {
        /// Its bytes.
        bytes: Vec<u8>,
        /// Its ETag.
        etag: Option<String>,
    },
    /// It still carries the ETag asked about.
    NotModified,
    /// It does not exist.
    Missing,
}

/// The files a folder holds.
#[derive(Debug, Default)]
pub struct Listing {
    /// Names in `packages/`.
    pub packages: Vec<String>,
    /// File names in `tarballs/`.
    pub tarballs: Vec<String>,
}

/// A repository in a [`Store`] (a folder, a bucket) as a [`Source`].
#[derive(Debug)]
pub struct StoreSource(pub Store);

impl Source for StoreSource {
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        // Paths are built by `verify` from validated names; refuse anything else anyway.
        let key = StorageKey::from_repository_path(path)
            .ok_or_else(|| format!("refusing to read {path:?}"))?;
        self.0
            .get(&key)
            .map(|object| object.map(|o| o.bytes.to_vec()))
            .map_err(|e| e.to_string())
    }

    fn listing(&self) -> Option<Listing> {
        let list = |folder: Folder| -> Vec<String> {
            self.0
                .list(folder)
                .map(|metas| {
                    metas
                        .into_iter()
                        .filter_map(|m| m.path.rsplit_once('/').map(|(_, name)| name.to_owned()))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Listing {
            packages: list(Folder::Packages),
            tarballs: list(Folder::Tarballs),
        })
    }
}

/// The outcome of an audit.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Each problem found, one line each, naming the resource.
    pub problems: Vec<String>,
    /// Observations that do not make the repository wrong (e.g. a tarball not yet built in).
    pub notes: Vec<String>,
    /// Packages checked.
    pub packages: usize,
    /// Releases checked, tarballs included.
    pub releases: usize,
}

impl VerifyReport {
    /// Whether the repository passed.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Audits the repository behind `source`, expecting `repository` and `key`.
pub fn verify(source: &dyn Source, repository: &str, key: &PublicKey) -> VerifyReport {
    let mut report = VerifyReport::default();
    check_public_key(source, key, &mut report);
    let names = fetch(source, "names", &mut report).and_then(|b| {
        read_names(&b, key, repository)
            .map_err(|e| report.problems.push(format!("names: {e}")))
            .ok()
    });
    let versions = fetch(source, "versions", &mut report).and_then(|b| {
        read_versions(&b, key, repository)
            .map_err(|e| report.problems.push(format!("versions: {e}")))
            .ok()
    });
    let (Some(names), Some(versions)) = (names, versions) else {
        return report;
    };
    let listed: BTreeSet<&str> = names.packages.iter().map(|p| p.name.as_str()).collect();
    let versioned: BTreeSet<&str> = versions.packages.iter().map(|p| p.name.as_str()).collect();
    for name in listed.symmetric_difference(&versioned) {
        report.problems.push(format!(
            "package {name:?} is in only one of names and versions"
        ));
    }

    let results: Vec<PackageCheck> = versions
        .packages
        .par_iter()
        .map(|entry| {
            check_package(
                source,
                repository,
                key,
                &entry.name,
                &entry.versions,
                &entry.retired,
            )
        })
        .collect();
    for check in results {
        report.packages += 1;
        report.releases += check.releases;
        report.problems.extend(check.problems);
        report.notes.extend(check.notes);
    }
    if let Some(listing) = source.listing() {
        check_listing(source, repository, key, &listing, &versions, &mut report);
    }
    report
}

fn fetch(source: &dyn Source, path: &str, report: &mut VerifyReport) -> Option<Vec<u8>> {
    match source.fetch(path) {
        Ok(Some(bytes)) => Some(bytes),
        Ok(None) => {
            report.problems.push(format!("{path}: missing"));
            None
        }
        Err(e) => {
            report.problems.push(format!("{path}: {e}"));
            None
        }
    }
}

fn check_public_key(source: &dyn Source, key: &PublicKey, report: &mut VerifyReport) {
    match source.fetch("public_key") {
        Ok(Some(bytes)) => match PublicKey::from_pem(&bytes) {
            Ok(served) if served == *key => {}
            Ok(served) => report.problems.push(format!(
                "public_key: the repository publishes {}, not the expected {}",
                served.fingerprint(),
                key.fingerprint()
            )),
            Err(e) => report.problems.push(format!("public_key: {e}")),
        },
        Ok(None) => report
            .notes
            .push("public_key: not published (clients need the key out of band)".into()),
        Err(e) => report.problems.push(format!("public_key: {e}")),
    }
}

struct PackageCheck {
    releases: usize,
    problems: Vec<String>,
    notes: Vec<String>,
}

fn check_package(
    source: &dyn Source,
    repository: &str,
    key: &PublicKey,
    name: &str,
    versions: &[String],
    retired: &[i32],
) -> PackageCheck {
    let mut check = PackageCheck {
        releases: 0,
        problems: Vec::new(),
        notes: Vec::new(),
    };
    let path = format!("packages/{name}");
    if !is_valid_package_name(name) {
        check.problems.push(format!("{path}: invalid package name"));
        return check;
    }
    let package = match source.fetch(&path) {
        Ok(Some(bytes)) => match read_package(&bytes, key, repository, name) {
            Ok(p) => p,
            Err(e) => {
                check.problems.push(format!("{path}: {e}"));
                return check;
            }
        },
        Ok(None) => {
            check
                .problems
                .push(format!("{path}: missing, but listed in versions"));
            return check;
        }
        Err(e) => {
            check.problems.push(format!("{path}: {e}"));
            return check;
        }
    };
    let in_package: Vec<&str> = package
        .releases
        .iter()
        .map(|r| r.version.as_str())
        .collect();
    let listed: Vec<&str> = versions.iter().map(String::as_str).collect();
    if in_package == listed {
        let retired_in_package = retired_indexes(&package);
        if retired_in_package != retired {
            check.problems.push(format!(
                "versions: retired indexes of {name:?} are {retired:?}, but {path} retires {retired_in_package:?}"
            ));
        }
    } else if listed.iter().all(|v| in_package.contains(v)) {
        // Writers rename packages/NAME before versions: a write interrupted in between leaves
        // releases that clients already see (they resolve through packages/NAME) and the
        // indexes do not list yet. Harmless; the next write completes it.
        check.notes.push(format!(
            "{path}: releases {in_package:?} are ahead of versions' {listed:?} (an interrupted write; the next publish or build completes it)"
        ));
    } else {
        check.problems.push(format!(
            "{path}: releases {in_package:?} differ from versions' {listed:?}"
        ));
    }
    let problems: Vec<String> = package
        .releases
        .par_iter()
        .filter_map(|release| check_release(source, name, release).err())
        .collect();
    check.releases = package.releases.len();
    check.problems.extend(problems);
    check
}

fn check_release(source: &dyn Source, name: &str, release: &Release) -> Result<(), String> {
    let path = format!("tarballs/{name}-{}.tar", release.version);
    let outer = release.outer_checksum.as_deref().ok_or_else(|| {
        format!(
            "packages/{name} {}: no outer_checksum (mix fails every fetch)",
            release.version
        )
    })?;
    let bytes = source
        .fetch(&path)
        .map_err(|e| format!("{path}: {e}"))?
        .ok_or_else(|| format!("{path}: missing"))?;
    let actual = Checksum::sha256(&bytes);
    if actual.as_bytes().as_slice() != outer {
        return Err(format!(
            "{path}: SHA-256 {actual} does not match the registry's outer_checksum"
        ));
    }
    let tarball = read_tarball(&bytes).map_err(|e| format!("{path}: {e}"))?;
    if tarball.inner_checksum.as_bytes().as_slice() != release.inner_checksum.as_slice() {
        return Err(format!(
            "{path}: inner checksum does not match the registry's"
        ));
    }
    if tarball.metadata.name != name || tarball.metadata.version != release.version {
        return Err(format!(
            "{path}: metadata says {} {}",
            tarball.metadata.name, tarball.metadata.version
        ));
    }
    Ok(())
}

fn check_listing(
    source: &dyn Source,
    repository: &str,
    key: &PublicKey,
    listing: &Listing,
    versions: &hexfmt::proto::versions::Versions,
    report: &mut VerifyReport,
) {
    let known: BTreeSet<&str> = versions.packages.iter().map(|p| p.name.as_str()).collect();
    for name in listing
        .packages
        .iter()
        .filter(|n| !known.contains(n.as_str()))
    {
        // A valid, signed package file the indexes do not list yet is an interrupted first
        // publish; anything else a client could fetch there is a problem.
        let path = format!("packages/{name}");
        let valid = is_valid_package_name(name)
            && source
                .fetch(&path)
                .ok()
                .flatten()
                .is_some_and(|bytes| read_package(&bytes, key, repository, name).is_ok());
        if valid {
            report.notes.push(format!(
                "{path}: not yet listed in versions (an interrupted write; the next publish or build completes it)"
            ));
        } else {
            report.problems.push(format!(
                "{path}: not listed in versions, and not a valid package file"
            ));
        }
    }
    let releases: BTreeSet<(&str, &str)> = versions
        .packages
        .iter()
        .flat_map(|p| {
            p.versions
                .iter()
                .map(move |v| (p.name.as_str(), v.as_str()))
        })
        .collect();
    for file in &listing.tarballs {
        let in_registry = parse_tarball_file_name(file).is_some_and(|nv| releases.contains(&nv));
        if !in_registry {
            report.notes.push(format!(
                "tarballs/{file}: not in the registry (run hexrepo build)"
            ));
        }
    }
}
