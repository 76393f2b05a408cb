//! `hexrepo build`: the registry of a repository from its `tarballs/`, compatible with
//! `mix hex.registry build` (HEX-PROTOCOL.md §4) in inputs, layout and messages, and in payloads
//! byte for byte when [`BuildOptions::mix_compatible`] is set. Better in five ways:
//!
//! * incremental: tarballs are read only when their file changed (see [`crate::cache`]), and an
//!   output is signed and written only when its payload differs from the file in place;
//! * atomic: files are written `packages/*` → `versions` → `names` (on disk: staged, synced once
//!   and renamed in that order), each only if unchanged since the build read it, so a publish
//!   racing the build is never overwritten; stale package files are removed only after `names`
//!   stops listing them;
//! * strict: every tarball is validated, and one bad tarball stops the build before anything is
//!   written, unless the caller skips invalid ones;
//! * faithful: retirements, publication times and advisories already in a signed
//!   `packages/NAME` survive (mix throws them away);
//! * dated: a release without a publication time gets its tarball's modification time, in whole
//!   seconds, as `published_at` (Hex lets a release without one through any release-age
//!   cooldown; HEX-PROTOCOL.md §2.4), and keeps it on later builds even if the tarball is
//!   touched. The mix-compatible mode leaves out this one improvement, since mix writes no
//!   `published_at`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use hexfmt::checksum::Checksum;
use hexfmt::keys::{PrivateKey, PublicKey};
use hexfmt::proto::names::{self, Names};
use hexfmt::proto::package::{Package, Release, Timestamp};
use hexfmt::proto::versions::{self, Versions};
use hexfmt::registry::{decode_envelope, encode_signed};
use hexfmt::version::Version;
use hexrepo_store::{Bytes, Folder, Meta, Precondition, StorageKey, Store, StoreError, Write};
use prost::Message as _;
use rayon::prelude::*;

use crate::cache::{BuildCache, FileStamp, OutputRecord};
use crate::error::{InvalidTarball, RegistryError};
use crate::index::retired_indexes;
use crate::layout::{locate, parse_tarball_file_name};
use crate::release::{ReleaseInfo, analyse_tarball};

/// What to build.
#[derive(Debug)]
pub struct BuildOptions<'a> {
    /// Where the repository is.
    pub store: &'a Store,
    /// The repository name written into every file (`--name`).
    pub repository: &'a str,
    /// The signing key.
    pub key: &'a PrivateKey,
    /// Build the valid tarballs and report the rest, instead of refusing to write anything.
    pub skip_invalid: bool,
    /// Write what `mix hex.registry build` writes, byte for byte: no `published_at` for a
    /// release that has none. Times already in a package file (from API publishes or an earlier
    /// build) are kept either way; mix would drop them.
    pub mix_compatible: bool,
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
    stamp: FileStamp,
}

struct ReleaseEntry {
    version: Version,
    info: ReleaseInfo,
    /// The tarball's modification time in whole seconds: `names`' `updated_at`, and the
    /// `published_at` of a release that has none yet.
    mtime: i64,
}

/// An output file's fate: already correct, or new bytes to put in place on the condition that
/// the file is still as the build read it.
enum Output {
    Unchanged,
    Write(Action, Vec<u8>, Precondition),
}

/// The registry's new files, computed but not yet written.
struct Plan {
    packages: Vec<(String, Output)>,
    versions: Output,
    names: Output,
    stale: Vec<String>,
    /// Each output's cache name, key, input digest and retired indexes, recorded once written.
    records: Vec<(String, StorageKey, String, Vec<i32>)>,
}

/// Builds or updates the registry. See the module documentation.
pub fn build(opts: &BuildOptions<'_>) -> Result<BuildReport, RegistryError> {
    let store = opts.store;
    let _lock = store.lock()?;
    let mut report = BuildReport::default();
    // mix creates `tarballs/` in an empty folder, and says so.
    let missing_tarballs_dir = store
        .local_root()
        .map(|root| root.join(Folder::Tarballs.path()))
        .filter(|dir| !dir.is_dir());
    let files = scan_tarballs(store)?;
    let mut cache = BuildCache::load(store);
    let packages = collect_releases(opts, &files, &mut cache, &mut report)?;

    if let Some(root) = store.local_root() {
        // As mix leaves it, even when there is nothing to put in it yet.
        let packages_dir = root.join(Folder::Packages.path());
        std::fs::create_dir_all(&packages_dir).map_err(|source| RegistryError::Io {
            action: "creating",
            path: packages_dir,
            source,
        })?;
    }
    if let Some(dir) = missing_tarballs_dir {
        std::fs::create_dir_all(&dir).map_err(|source| RegistryError::Io {
            action: "creating",
            path: dir.clone(),
            source,
        })?;
        report.changes.push(Change {
            action: Action::Creating,
            path: dir,
        });
    }
    let mut plan = plan_outputs(opts, &packages, &cache)?;
    let records = std::mem::take(&mut plan.records);
    write_plan(opts, plan, &mut report)?;

    let present: HashSet<&str> = files.iter().map(|f| f.file_name.as_str()).collect();
    let cached_before = cache.len();
    cache.retain(|name| present.contains(name));
    let outputs = record_outputs(store, records)?;
    let outputs_changed = cache.set_outputs(&opts.key.public_key().fingerprint(), outputs);
    if report.tarballs_read > 0 || cache.len() != cached_before || outputs_changed {
        cache.save(store)?;
    }
    report.packages = packages.len();
    report.releases = packages.values().map(Vec::len).sum();
    Ok(report)
}

/// What the cache remembers of each output as it is now: one listing of `packages/` and two
/// `head`s, not a request per file.
fn record_outputs(
    store: &Store,
    records: Vec<(String, StorageKey, String, Vec<i32>)>,
) -> Result<HashMap<String, OutputRecord>, RegistryError> {
    let mut metas: HashMap<String, Meta> = store
        .list(Folder::Packages)?
        .into_iter()
        .map(|m| (m.path.clone(), m))
        .collect();
    for key in [StorageKey::Names, StorageKey::Versions] {
        if let Some(meta) = store.head(&key)? {
            metas.insert(key.path(), meta);
        }
    }
    Ok(records
        .into_iter()
        .filter_map(|(name, key, digest, retired)| {
            let stamp = FileStamp::of(metas.get(&key.path())?);
            Some((
                name,
                OutputRecord {
                    stamp,
                    digest,
                    retired,
                },
            ))
        })
        .collect())
}

/// Every valid release by package, versions ascending; invalid tarballs stop the build
/// unless they are to be skipped.
fn collect_releases(
    opts: &BuildOptions<'_>,
    files: &[TarballFile],
    cache: &mut BuildCache,
    report: &mut BuildReport,
) -> Result<BTreeMap<String, Vec<ReleaseEntry>>, RegistryError> {
    let analysed: Vec<(Result<ReleaseInfo, String>, bool)> = files
        .par_iter()
        .map(|f| analyse(opts.store, f, cache))
        .collect();
    let mut packages: BTreeMap<String, Vec<ReleaseEntry>> = BTreeMap::new();
    let mut invalid = Vec::new();
    for (file, (result, fresh)) in files.iter().zip(analysed) {
        let info = match result {
            Ok(info) => info,
            Err(reason) => {
                invalid.push(InvalidTarball {
                    path: tarball_location(opts.store, &file.file_name),
                    reason,
                });
                continue;
            }
        };
        if fresh {
            report.tarballs_read += 1;
            cache.insert(file.file_name.clone(), file.stamp.clone(), info.clone());
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

/// Where a file of `tarballs/` is, for messages (its name may not make a valid key).
fn tarball_location(store: &Store, file_name: &str) -> PathBuf {
    match store.local_root() {
        Some(root) => root.join(Folder::Tarballs.path()).join(file_name),
        None => PathBuf::from(format!("{}/tarballs/{file_name}", store.describe())),
    }
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
        store: opts.store,
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
    let (names, names_digest) = signed_output(
        &known,
        "names",
        &StorageKey::Names,
        names.encode_to_vec(),
        opts.key,
    )?;
    let (versions, versions_digest) = signed_output(
        &known,
        "versions",
        &StorageKey::Versions,
        versions.encode_to_vec(),
        opts.key,
    )?;
    let mut records = vec![
        (
            "names".to_owned(),
            StorageKey::Names,
            names_digest,
            Vec::new(),
        ),
        (
            "versions".to_owned(),
            StorageKey::Versions,
            versions_digest,
            Vec::new(),
        ),
    ];
    let mut outputs = Vec::with_capacity(packages.len());
    for (name, (output, retired, digest)) in packages.keys().zip(package_outputs) {
        records.push((
            format!("packages/{name}"),
            StorageKey::package(name),
            digest,
            retired,
        ));
        outputs.push((name.clone(), output));
    }
    Ok(Plan {
        names,
        versions,
        stale: stale_packages(opts.store, packages)?,
        packages: outputs,
        records,
    })
}

/// Writes the plan: public key, packages, `versions`, `names`; then removes stale package
/// files, which `names` no longer lists.
fn write_plan(
    opts: &BuildOptions<'_>,
    plan: Plan,
    report: &mut BuildReport,
) -> Result<(), RegistryError> {
    let store = opts.store;
    let mut writes = Vec::new();
    let key_pem = opts.key.public_key().to_pkcs1_pem();
    let existing_key = store.get(&StorageKey::PublicKey)?;
    match &existing_key {
        Some(existing) if existing.bytes == key_pem.as_bytes() => {}
        existing => {
            let path = locate(store, &StorageKey::PublicKey);
            let action = if existing.is_some() {
                report.warnings.push(format!(
                    "public key at {} does not match private key, overwriting",
                    path.display()
                ));
                Action::Updating
            } else {
                Action::Creating
            };
            writes.push(Write {
                key: StorageKey::PublicKey,
                bytes: Bytes::from(key_pem.into_bytes()),
                precondition: Precondition::unchanged_since(existing.as_ref().map(|o| &o.meta)),
            });
            // mix prints the key first.
            report.changes.insert(0, Change { action, path });
        }
    }
    for (name, output) in plan.packages {
        push_write(
            store,
            &mut writes,
            &mut report.changes,
            StorageKey::package(&name),
            output,
        );
    }
    let mut index_changes = Vec::new();
    push_write(
        store,
        &mut writes,
        &mut index_changes,
        StorageKey::Versions,
        plan.versions,
    );
    push_write(
        store,
        &mut writes,
        &mut index_changes,
        StorageKey::Names,
        plan.names,
    );
    store.commit(writes).map_err(|e| match e {
        StoreError::Conflict { path } => RegistryError::ChangedDuringBuild { path },
        other => other.into(),
    })?;

    for name in &plan.stale {
        let key = StorageKey::package(name);
        store.delete(&key)?;
        report.changes.push(Change {
            action: Action::Removing,
            path: locate(store, &key),
        });
    }
    // mix prints names before versions.
    report.changes.extend(index_changes.into_iter().rev());
    Ok(())
}

fn scan_tarballs(store: &Store) -> Result<Vec<TarballFile>, RegistryError> {
    Ok(store
        .list(Folder::Tarballs)?
        .into_iter()
        .filter_map(|meta| {
            let file_name = meta.path.rsplit_once('/')?.1.to_owned();
            let is_tar = std::path::Path::new(&file_name)
                .extension()
                .is_some_and(|e| e == "tar");
            is_tar.then(|| TarballFile {
                file_name,
                stamp: FileStamp::of(&meta),
            })
        })
        .collect())
}

/// The release a tarball file holds, and whether it had to be read (not cached).
fn analyse(
    store: &Store,
    file: &TarballFile,
    cache: &BuildCache,
) -> (Result<ReleaseInfo, String>, bool) {
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
    if let Some(info) = cache.get(&file.file_name, &file.stamp) {
        return (Ok(info.clone()), false);
    }
    let result = match store.get(&StorageKey::tarball(name, version)) {
        Ok(Some(object)) => analyse_tarball(&object.bytes, name, version),
        Ok(None) => Err("removed while the build ran".to_owned()),
        Err(e) => Err(format!("cannot read: {e}")),
    };
    let read = result.is_ok();
    (result, read)
}

pub use hexfmt::name::is_valid_package_name;

/// The new `packages/NAME` and the indexes of its retired versions.
fn package_output(
    opts: &BuildOptions<'_>,
    known: &Known<'_>,
    name: &str,
    releases: &[ReleaseEntry],
) -> Result<(Output, Vec<i32>, String), RegistryError> {
    let key = StorageKey::package(name);
    // What the package is computed from, before anything is carried over from the old file.
    let mut digest = Checksum::sha256(
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
    if !opts.mix_compatible {
        // The mode is an input too: a file a mix-compatible build left may lack times this
        // build must fill in. The tarballs' mtimes are not: a time, once written, is kept.
        digest.push_str("+published_at");
    }
    if let Some(record) = known.unchanged(&format!("packages/{name}"), &key, &digest)? {
        return Ok((Output::Unchanged, record.retired.clone(), digest));
    }
    let existing = opts.store.get(&key)?;
    let previous: Option<Package> = existing
        .as_ref()
        .and_then(|object| decode_envelope(&object.bytes).ok())
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
                if release.published_at.is_none() && !opts.mix_compatible {
                    release.published_at = Some(Timestamp {
                        seconds: r.mtime,
                        nanos: 0,
                    });
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
        existing.as_ref(),
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
    key: &StorageKey,
    payload: Vec<u8>,
    signing_key: &PrivateKey,
) -> Result<(Output, String), RegistryError> {
    let digest = Checksum::sha256(&payload).to_hex_lower();
    if known.unchanged(name, key, &digest)?.is_some() {
        return Ok((Output::Unchanged, digest));
    }
    let existing = known.store.get(key)?;
    Ok((
        compare_and_sign(existing.as_ref(), payload, signing_key, known.public),
        digest,
    ))
}

/// What the build cache remembers of the outputs, with the key they must be signed by.
struct Known<'a> {
    store: &'a Store,
    cache: &'a BuildCache,
    fingerprint: &'a str,
    public: &'a PublicKey,
}

impl Known<'_> {
    /// The record of an output that is exactly as we left it: same object, same inputs.
    fn unchanged(
        &self,
        name: &str,
        key: &StorageKey,
        digest: &str,
    ) -> Result<Option<&OutputRecord>, RegistryError> {
        let Some(record) = self.cache.output(name, self.fingerprint) else {
            return Ok(None);
        };
        if record.digest != digest {
            return Ok(None);
        }
        let Some(meta) = self.store.head(key)? else {
            return Ok(None);
        };
        Ok((record.stamp == FileStamp::of(&meta)).then_some(record))
    }
}

/// Unchanged when the file in place carries this payload with a valid signature by this key.
fn compare_and_sign(
    existing: Option<&hexrepo_store::Object>,
    payload: Vec<u8>,
    key: &PrivateKey,
    public: &PublicKey,
) -> Output {
    let current = existing.and_then(|object| decode_envelope(&object.bytes).ok());
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
        Output::Write(
            action,
            encode_signed(payload, key),
            Precondition::unchanged_since(existing.map(|o| &o.meta)),
        )
    }
}

fn push_write(
    store: &Store,
    writes: &mut Vec<Write>,
    changes: &mut Vec<Change>,
    key: StorageKey,
    output: Output,
) {
    if let Output::Write(action, bytes, precondition) = output {
        changes.push(Change {
            action,
            path: locate(store, &key),
        });
        writes.push(Write {
            key,
            bytes: Bytes::from(bytes),
            precondition,
        });
    }
}

fn stale_packages(
    store: &Store,
    packages: &BTreeMap<String, Vec<ReleaseEntry>>,
) -> Result<Vec<String>, RegistryError> {
    let mut stale: Vec<String> = store
        .list(Folder::Packages)?
        .into_iter()
        .filter_map(|meta| meta.path.rsplit_once('/').map(|(_, name)| name.to_owned()))
        .filter(|name| !packages.contains_key(name))
        .collect();
    stale.sort();
    Ok(stale)
}
