//! `hexrepo build`: the registry of a repository folder from its `tarballs/`, compatible with
//! `mix hex.registry build` (HEX-PROTOCOL.md §4) in inputs, layout, messages and payloads, and
//! better in four ways:
//!
//! * incremental: tarballs are read only when their file changed (see [`crate::cache`]), and an
//!   output is signed and written only when its payload differs from the file in place;
//! * atomic: all files are staged, synced and renamed `packages/*` → `versions` → `names`, and
//!   stale package files are removed only after `names` stops listing them;
//! * strict: every tarball is validated, and one bad tarball stops the build before anything is
//!   written, unless the caller skips invalid ones;
//! * faithful: retirements, publication times and advisories already in a signed
//!   `packages/NAME` survive (mix throws them away).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use hexfmt::checksum::Checksum;
use hexfmt::keys::{PrivateKey, PublicKey};
use hexfmt::proto::names::{self, Names};
use hexfmt::proto::package::{Package, Release};
use hexfmt::proto::versions::{self, Versions};
use hexfmt::registry::{decode_envelope, encode_signed};
use hexfmt::version::Version;
use prost::Message as _;
use rayon::prelude::*;

use crate::cache::{BuildCache, FileStamp, OutputRecord};
use crate::error::{InvalidTarball, RegistryError, io_err};
use crate::files::{Batch, RepoLock, sync_dir};
use crate::index::retired_indexes;
use crate::layout::{Layout, parse_tarball_file_name};
use crate::release::{ReleaseInfo, analyse_tarball};

/// What to build.
#[derive(Debug)]
pub struct BuildOptions<'a> {
    /// The repository folder.
    pub layout: &'a Layout,
    /// The repository name written into every file (`--name`).
    pub repository: &'a str,
    /// The signing key.
    pub key: &'a PrivateKey,
    /// Build the valid tarballs and report the rest, instead of refusing to write anything.
    pub skip_invalid: bool,
}

/// What a build did.
#[derive(Debug, Default)]
pub struct BuildReport {
    /// Files created, updated and removed, in the order mix prints them.
    pub changes: Vec<Change>,
    /// Tarballs left out (only with `skip_invalid`).
    pub skipped: Vec<InvalidTarball>,
    /// Warnings worth showing the user.
    pub warnings: Vec<String>,
    /// Packages in the registry after the build.
    pub packages: usize,
    /// Releases in the registry after the build.
    pub releases: usize,
    /// Tarballs that had to be read (the rest came from the build cache).
    pub tarballs_read: usize,
}

/// One file the build touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened to it.
    pub action: Action,
    /// The file or folder.
    pub path: PathBuf,
}

/// The verbs mix prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new file or folder.
    Creating,
    /// A rewritten file.
    Updating,
    /// A deleted file.
    Removing,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.action {
            Action::Creating => "creating",
            Action::Updating => "updating",
            Action::Removing => "removing",
        };
        write!(f, "* {verb} {}", self.path.display())
    }
}

struct TarballFile {
    file_name: String,
    path: PathBuf,
    stamp: FileStamp,
}

struct ReleaseEntry {
    version: Version,
    info: ReleaseInfo,
    mtime: i64,
}

/// An output file's fate: already correct, or new bytes to put in place.
enum Output {
    Unchanged,
    Write(Action, Vec<u8>),
}

/// The registry's new files, computed but not yet written.
struct Plan {
    packages: Vec<(String, Output)>,
    versions: Output,
    names: Output,
    stale: Vec<String>,
    /// Each output's cache name, path, input digest and retired indexes, recorded once written.
    records: Vec<(String, PathBuf, String, Vec<i32>)>,
}

/// Builds or updates the registry. See the module documentation.
pub fn build(opts: &BuildOptions<'_>) -> Result<BuildReport, RegistryError> {
    let layout = opts.layout;
    let _lock = RepoLock::acquire(&layout.state_dir().join("lock"))?;
    let mut report = BuildReport::default();
    let tarballs_dir = layout.tarballs_dir();
    let created_tarballs_dir = !tarballs_dir.is_dir();
    let files = scan_tarballs(&tarballs_dir)?;
    let cache_path = layout.state_dir().join("build-cache.json");
    let mut cache = BuildCache::load(&cache_path);
    let packages = collect_releases(opts, &files, &mut cache, &mut report)?;

    if created_tarballs_dir {
        fs::create_dir_all(&tarballs_dir).map_err(io_err("creating", &tarballs_dir))?;
        report.changes.push(Change {
            action: Action::Creating,
            path: tarballs_dir,
        });
    }
    let packages_dir = layout.packages_dir();
    fs::create_dir_all(&packages_dir).map_err(io_err("creating", &packages_dir))?;
    let mut plan = plan_outputs(opts, &packages, &cache)?;
    let records = std::mem::take(&mut plan.records);
    write_plan(opts, plan, &mut report)?;

    let present: HashSet<&str> = files.iter().map(|f| f.file_name.as_str()).collect();
    let cached_before = cache.len();
    cache.retain(|name| present.contains(name));
    let outputs = records
        .into_iter()
        .filter_map(|(name, path, digest, retired)| {
            let stamp = FileStamp::of(&fs::metadata(path).ok()?);
            Some((
                name,
                OutputRecord {
                    stamp,
                    digest,
                    retired,
                },
            ))
        })
        .collect();
    let outputs_changed = cache.set_outputs(&opts.key.public_key().fingerprint(), outputs);
    if report.tarballs_read > 0 || cache.len() != cached_before || outputs_changed {
        cache.save(&cache_path)?;
    }
    report.packages = packages.len();
    report.releases = packages.values().map(Vec::len).sum();
    Ok(report)
}

/// Every valid release by package, versions ascending; invalid tarballs stop the build
/// unless they are to be skipped.
fn collect_releases(
    opts: &BuildOptions<'_>,
    files: &[TarballFile],
    cache: &mut BuildCache,
    report: &mut BuildReport,
) -> Result<BTreeMap<String, Vec<ReleaseEntry>>, RegistryError> {
    let analysed: Vec<(Result<ReleaseInfo, String>, bool)> =
        files.par_iter().map(|f| analyse(f, cache)).collect();
    let mut packages: BTreeMap<String, Vec<ReleaseEntry>> = BTreeMap::new();
    let mut invalid = Vec::new();
    for (file, (result, fresh)) in files.iter().zip(analysed) {
        let info = match result {
            Ok(info) => info,
            Err(reason) => {
                invalid.push(InvalidTarball {
                    path: file.path.clone(),
                    reason,
                });
                continue;
            }
        };
        if fresh {
            report.tarballs_read += 1;
            cache.insert(file.file_name.clone(), file.stamp, info.clone());
        }
        let (name, _) = parse_tarball_file_name(&file.file_name).expect("checked in analyse");
        packages
            .entry(name.to_owned())
            .or_default()
            .push(ReleaseEntry {
                version: Version::parse(&info.version).expect("checked in analyse"),
                info,
                mtime: file.stamp.mtime_seconds(),
            });
    }
    if !invalid.is_empty() && !opts.skip_invalid {
        return Err(RegistryError::InvalidTarballs(invalid));
    }
    report.skipped = invalid;
    for releases in packages.values_mut() {
        releases.sort_by(|a, b| a.version.cmp(&b.version));
    }
    Ok(packages)
}

/// Computes every output and decides which ones differ from the files in place.
fn plan_outputs(
    opts: &BuildOptions<'_>,
    packages: &BTreeMap<String, Vec<ReleaseEntry>>,
    cache: &BuildCache,
) -> Result<Plan, RegistryError> {
    let public = opts.key.public_key();
    let fingerprint = public.fingerprint();
    let known = Known {
        cache,
        fingerprint: &fingerprint,
        public: &public,
    };
    let package_outputs: Vec<(Output, Vec<i32>, String)> = packages
        .par_iter()
        .map(|(name, releases)| package_output(opts, &known, name, releases))
        .collect::<Result<_, _>>()?;
    let names = Names {
        packages: packages
            .iter()
            .map(|(name, releases)| names::Package {
                name: name.clone(),
                updated_at: Some(names::Timestamp {
                    seconds: releases.iter().map(|r| r.mtime).max().unwrap_or(0),
                    nanos: 0,
                }),
            })
            .collect(),
        repository: opts.repository.to_owned(),
    };
    let versions = Versions {
        packages: packages
            .iter()
            .zip(&package_outputs)
            .map(|((name, releases), (_, retired, _))| versions::Package {
                name: name.clone(),
                versions: releases.iter().map(|r| r.info.version.clone()).collect(),
                retired: retired.clone(),
                with_advisories: Vec::new(),
            })
            .collect(),
        repository: opts.repository.to_owned(),
    };
    let layout = opts.layout;
    let (names, names_digest) = signed_output(
        &known,
        "names",
        &layout.names(),
        names.encode_to_vec(),
        opts.key,
    )?;
    let (versions, versions_digest) = signed_output(
        &known,
        "versions",
        &layout.versions(),
        versions.encode_to_vec(),
        opts.key,
    )?;
    let mut records = vec![
        ("names".to_owned(), layout.names(), names_digest, Vec::new()),
        (
            "versions".to_owned(),
            layout.versions(),
            versions_digest,
            Vec::new(),
        ),
    ];
    let mut outputs = Vec::with_capacity(packages.len());
    for (name, (output, retired, digest)) in packages.keys().zip(package_outputs) {
        records.push((
            format!("packages/{name}"),
            layout.package(name),
            digest,
            retired,
        ));
        outputs.push((name.clone(), output));
    }
    Ok(Plan {
        names,
        versions,
        stale: stale_packages(&layout.packages_dir(), packages)?,
        packages: outputs,
        records,
    })
}

/// Stages and commits the plan: public key, packages, `versions`, `names`; then removes stale
/// package files, which `names` no longer lists.
fn write_plan(
    opts: &BuildOptions<'_>,
    plan: Plan,
    report: &mut BuildReport,
) -> Result<(), RegistryError> {
    let layout = opts.layout;
    let mut batch = Batch::default();
    let key_pem = opts.key.public_key().to_pkcs1_pem();
    match read_optional(&layout.public_key())? {
        Some(existing) if existing == key_pem.as_bytes() => {}
        existing => {
            let action = if existing.is_some() {
                report.warnings.push(format!(
                    "public key at {} does not match private key, overwriting",
                    layout.public_key().display()
                ));
                Action::Updating
            } else {
                Action::Creating
            };
            batch.stage(&layout.public_key(), key_pem.as_bytes())?;
            // mix prints the key first.
            report.changes.insert(
                0,
                Change {
                    action,
                    path: layout.public_key(),
                },
            );
        }
    }
    let mut package_files = Vec::new();
    for (name, output) in plan.packages {
        if let Output::Write(action, bytes) = output {
            let path = layout.package(&name);
            report.changes.push(Change {
                action,
                path: path.clone(),
            });
            package_files.push((path, bytes));
        }
    }
    batch.stage_all(&package_files)?;
    let mut index_changes = Vec::new();
    stage(
        &mut batch,
        &mut index_changes,
        layout.versions(),
        plan.versions,
    )?;
    stage(&mut batch, &mut index_changes, layout.names(), plan.names)?;
    batch.commit()?;

    for name in &plan.stale {
        let path = layout.package(name);
        fs::remove_file(&path).map_err(io_err("removing", &path))?;
        report.changes.push(Change {
            action: Action::Removing,
            path,
        });
    }
    if !plan.stale.is_empty() {
        sync_dir(&layout.packages_dir())?;
    }
    // mix prints names before versions.
    report.changes.extend(index_changes.into_iter().rev());
    Ok(())
}

fn scan_tarballs(dir: &std::path::Path) -> Result<Vec<TarballFile>, RegistryError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("listing", dir))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let is_tar = Path::new(&file_name)
            .extension()
            .is_some_and(|e| e == "tar");
        if !is_tar || file_name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = fs::metadata(&path).map_err(io_err("reading", &path))?;
        if meta.is_file() {
            files.push(TarballFile {
                file_name,
                path,
                stamp: FileStamp::of(&meta),
            });
        }
    }
    files.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(files)
}

/// The release a tarball file holds, and whether it had to be read (not cached).
fn analyse(file: &TarballFile, cache: &BuildCache) -> (Result<ReleaseInfo, String>, bool) {
    let Some((name, version)) = parse_tarball_file_name(&file.file_name) else {
        return (Err("file name is not NAME-VERSION.tar".to_owned()), false);
    };
    if !is_valid_package_name(name) {
        return (
            Err(format!(
                "invalid package name {name:?}: use letters, digits and _, starting with a letter"
            )),
            false,
        );
    }
    if let Some(info) = cache.get(&file.file_name, file.stamp) {
        return (Ok(info.clone()), false);
    }
    let result = fs::read(&file.path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|bytes| analyse_tarball(&bytes, name, version));
    let read = result.is_ok();
    (result, read)
}

/// Names that are safe as file names and that Hex clients accept.
pub fn is_valid_package_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The new `packages/NAME` and the indexes of its retired versions.
fn package_output(
    opts: &BuildOptions<'_>,
    known: &Known<'_>,
    name: &str,
    releases: &[ReleaseEntry],
) -> Result<(Output, Vec<i32>, String), RegistryError> {
    let path = opts.layout.package(name);
    // What the package is computed from, before anything is carried over from the old file.
    let digest = Checksum::sha256(
        &Package {
            releases: releases
                .iter()
                .map(|r| r.info.to_proto(opts.repository))
                .collect(),
            name: name.to_owned(),
            repository: opts.repository.to_owned(),
            advisories: Vec::new(),
        }
        .encode_to_vec(),
    )
    .to_hex_lower();
    if let Some(record) = known.unchanged(&format!("packages/{name}"), &path, &digest) {
        return Ok((Output::Unchanged, record.retired.clone(), digest));
    }
    let existing = read_optional(&path)?;
    let previous: Option<Package> = existing
        .as_deref()
        .and_then(|bytes| decode_envelope(bytes).ok())
        .and_then(|signed| Package::decode(signed.payload.as_slice()).ok());
    let mut kept: HashMap<&str, &Release> = HashMap::new();
    if let Some(previous) = &previous {
        kept.extend(previous.releases.iter().map(|r| (r.version.as_str(), r)));
    }
    let package = Package {
        releases: releases
            .iter()
            .map(|r| {
                let mut release = r.info.to_proto(opts.repository);
                if let Some(old) = kept.get(r.info.version.as_str()) {
                    release.retired.clone_from(&old.retired);
                    release.published_at = old.published_at;
                    release.advisory_indexes.clone_from(&old.advisory_indexes);
                }
                release
            })
            .collect(),
        name: name.to_owned(),
        repository: opts.repository.to_owned(),
        advisories: previous.map(|p| p.advisories).unwrap_or_default(),
    };
    let retired = retired_indexes(&package);
    let output = compare_and_sign(
        existing.as_deref(),
        package.encode_to_vec(),
        opts.key,
        known.public,
    );
    Ok((output, retired, digest))
}

/// `names` or `versions`: unchanged without reading when its record matches, else compared.
fn signed_output(
    known: &Known<'_>,
    name: &str,
    path: &Path,
    payload: Vec<u8>,
    key: &PrivateKey,
) -> Result<(Output, String), RegistryError> {
    let digest = Checksum::sha256(&payload).to_hex_lower();
    if known.unchanged(name, path, &digest).is_some() {
        return Ok((Output::Unchanged, digest));
    }
    let existing = read_optional(path)?;
    Ok((
        compare_and_sign(existing.as_deref(), payload, key, known.public),
        digest,
    ))
}

/// What the build cache remembers of the outputs, with the key they must be signed by.
struct Known<'a> {
    cache: &'a BuildCache,
    fingerprint: &'a str,
    public: &'a PublicKey,
}

impl Known<'_> {
    /// The record of an output that is exactly as we left it: same file, same inputs.
    fn unchanged(&self, name: &str, path: &Path, digest: &str) -> Option<&OutputRecord> {
        let record = self.cache.output(name, self.fingerprint)?;
        let stamp = fs::metadata(path).ok().map(|m| FileStamp::of(&m))?;
        (record.stamp == stamp && record.digest == digest).then_some(record)
    }
}

/// Unchanged when the file in place carries this payload with a valid signature by this key.
fn compare_and_sign(
    existing: Option<&[u8]>,
    payload: Vec<u8>,
    key: &PrivateKey,
    public: &PublicKey,
) -> Output {
    let current = existing.and_then(|bytes| decode_envelope(bytes).ok());
    let unchanged = current.as_ref().is_some_and(|signed| {
        signed.payload == payload
            && signed
                .signature
                .as_ref()
                .is_some_and(|s| public.verify(&payload, s).is_ok())
    });
    if unchanged {
        Output::Unchanged
    } else {
        let action = if existing.is_some() {
            Action::Updating
        } else {
            Action::Creating
        };
        Output::Write(action, encode_signed(payload, key))
    }
}

fn stage(
    batch: &mut Batch,
    changes: &mut Vec<Change>,
    path: PathBuf,
    output: Output,
) -> Result<(), RegistryError> {
    if let Output::Write(action, bytes) = output {
        batch.stage(&path, &bytes)?;
        changes.push(Change { action, path });
    }
    Ok(())
}

fn stale_packages(
    dir: &std::path::Path,
    packages: &BTreeMap<String, Vec<ReleaseEntry>>,
) -> Result<Vec<String>, RegistryError> {
    let mut stale = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("listing", dir))? {
        let entry = entry.map_err(io_err("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !packages.contains_key(&name) && entry.path().is_file() {
            stale.push(name);
        }
    }
    stale.sort();
    Ok(stale)
}

/// The file's bytes, or `None` if it does not exist.
pub(crate) fn read_optional(path: &std::path::Path) -> Result<Option<Vec<u8>>, RegistryError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", path)(e)),
    }
}
