//! Publishing and reverting releases (HEX-PROTOCOL.md §6.4): the rules a release must satisfy,
//! and the order of writes that keeps every reader and every crash safe.
//!
//! A publish validates the tarball and its metadata, then writes the tarball, the re-signed
//! `packages/NAME`, `versions` and `names` in that order, each only if unchanged since it was
//! read (the tarball only if new): a reader never sees a version whose tarball or package file
//! is missing, and two replicas publishing at once never overwrite each other's indexes: the
//! loser re-reads and tries again. On local disk the repository lock also queues writers on
//! one machine. Publishing a byte-identical tarball again succeeds and completes whatever an
//! interrupted attempt left undone, so clients can simply retry.

use std::time::{SystemTime, UNIX_EPOCH};

use hexfmt::checksum::Checksum;
use hexfmt::keys::PrivateKey;
use hexfmt::metadata::Metadata;
use hexfmt::proto::package::{Package, Timestamp};
use hexfmt::requirement::Requirement;
use hexfmt::tarball::{TarballError, read_tarball};
use hexfmt::version::{Version, VersionError};
use hexrepo_store::{Bytes, Precondition, StorageKey, Store, Write};

use crate::error::RegistryError;
use crate::release::{DependencyInfo, ReleaseInfo};
use crate::signed_files::{SignedFiles, is_conflict};

/// Names hex.pm reserves (HEX-PROTOCOL.md §3.10); publishing them is refused unless the
/// operator configures another list.
pub const DEFAULT_RESERVED_NAMES: &[&str] = &[
    "eex",
    "elixir",
    "elixirc",
    "ex_unit",
    "iex",
    "logger",
    "mix",
    "kernel",
    "stdlib",
    "ssl",
    "crypto",
    "public_key",
    "inets",
    "otp",
    "tftp",
    "httpc",
    "httpd",
    "erlang",
    "rebar",
    "rebar3",
    "hex",
    "hexpm",
    "mix_hex",
    "erl",
    "erlc",
    "nul",
    "con",
    "prn",
    "aux",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
    "package",
    "organization",
    "www",
    "myapp",
    "lock",
    "locked",
    "all",
    "assets",
    "api",
    "docs",
    "preview",
    "search",
    "staging",
    "stats",
    "static",
    "net",
    "http",
    "net_http",
    "gen_http",
];

/// Why a publish was refused. Each maps to a 422 with the field it names, except `Registry`.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The tarball is invalid (`errors.tar`).
    #[error("{0}")]
    Tarball(#[from] TarballError),
    /// The URL names another package than the metadata.
    #[error("metadata does not match package name: {metadata:?} published at {path:?}")]
    NameMismatch {
        /// From the request path.
        path: String,
        /// From metadata.config.
        metadata: String,
    },
    /// Not a valid package name (`errors.name`).
    #[error(
        "invalid package name {0:?}: use lower-case letters, digits and _, starting with a letter, at least 2 characters"
    )]
    InvalidName(String),
    /// A reserved name (`errors.name`).
    #[error("package name {0:?} is reserved")]
    ReservedName(String),
    /// Not a publishable version (`errors.version`).
    #[error("{0}")]
    InvalidVersion(#[from] VersionError),
    /// The version exists and `replace` was not asked for (`errors.inserted_at`).
    #[error("must include the --replace flag to update an existing release ({name} {version})")]
    AlreadyPublished {
        /// The package.
        name: String,
        /// The version.
        version: String,
    },
    /// A dependency problem (`errors.requirements.NAME`).
    #[error("requirement {dependency:?}: {message}")]
    Requirement {
        /// The dependency's name.
        dependency: String,
        /// What is wrong.
        message: String,
    },
    /// Storage or registry failure: a 500 for the client, the detail for the log.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The release's metadata.
    pub metadata: Metadata,
    /// SHA-256 of the tarball.
    pub outer_checksum: Checksum,
    /// A new release (201), as opposed to a replacement or an identical retry (200).
    pub created: bool,
    /// `packages/NAME` as this publish wrote it.
    pub package: Package,
}

/// Publishes and reverts releases of one repository.
#[derive(Debug)]
pub struct Publisher<'a> {
    /// Where the repository is.
    pub store: Store,
    /// The repository name.
    pub repository: &'a str,
    /// The signing key.
    pub key: &'a PrivateKey,
    /// Names nobody may publish.
    pub reserved: &'a [String],
}

impl Publisher<'_> {
    fn files(&self) -> SignedFiles<'_> {
        SignedFiles {
            store: &self.store,
            repository: self.repository,
            key: self.key,
        }
    }

    /// Validates and publishes `tarball`. `path_name` is the package named in the request URL,
    /// when the route has one.
    pub fn publish(
        &self,
        tarball: &[u8],
        path_name: Option<&str>,
        replace: bool,
    ) -> Result<Published, PublishError> {
        let parsed = read_tarball(tarball)?;
        let info = ReleaseInfo::from_tarball(&parsed);
        let metadata = parsed.metadata;
        let name = metadata.name.clone();
        if let Some(path) = path_name.filter(|p| *p != name) {
            return Err(PublishError::NameMismatch {
                path: path.to_owned(),
                metadata: name,
            });
        }
        if !hexfmt::name::is_new_package_name(&name) {
            return Err(PublishError::InvalidName(name));
        }
        if self.reserved.contains(&name) {
            return Err(PublishError::ReservedName(name));
        }
        let version = Version::parse(&metadata.version)?;
        version.is_valid_for_hex()?;

        let _lock = self.store.lock().map_err(RegistryError::from)?;
        self.check_requirements(&name, &info.dependencies)?;
        let tarball = Bytes::copy_from_slice(tarball);
        let mut created = false;
        let package = self.files().retrying(
            &StorageKey::package(&name),
            |attempt| {
                // A retry after a lost race may find its own release already in place.
                self.publish_attempt(&name, &info, &tarball, replace, attempt > 0, &mut created)
            },
            |e| matches!(e, PublishError::Registry(e) if is_conflict(e)),
        )?;
        Ok(Published {
            metadata,
            outer_checksum: info.outer_checksum,
            created,
            package,
        })
    }

    /// Reads the package, decides, and commits tarball → package → versions → names, each
    /// write conditional on what was read; returns the package as written. Sets `created` when
    /// the release is new, before writing: an attempt that loses a race part-way may already
    /// have added it.
    fn publish_attempt(
        &self,
        name: &str,
        info: &ReleaseInfo,
        tarball: &Bytes,
        replace: bool,
        retrying: bool,
        created: &mut bool,
    ) -> Result<Package, PublishError> {
        let files = self.files();
        let tarball_key = StorageKey::tarball(name, &info.version);
        // Four reads, at once on an object store.
        let ((read, stored), indexes) = files.both(
            || files.both(|| files.package(name), || self.store.get(&tarball_key)),
            || files.indexes(),
        );
        let (read, stored, indexes) = (read?, stored.map_err(RegistryError::from)?, indexes?);
        let mut package = read.as_ref().map_or_else(
            || Package {
                name: name.to_owned(),
                repository: self.repository.to_owned(),
                ..Package::default()
            },
            |r| r.value.clone(),
        );
        let now = now_seconds();
        let identical_tarball = stored.as_ref().is_some_and(|o| o.bytes == *tarball);
        let existing = package
            .releases
            .iter()
            .position(|r| r.version == info.version);
        let new_release = match existing {
            // An identical retry of a publish that did not finish (or that we just raced
            // ourselves through): complete it.
            Some(i)
                if package.releases[i].outer_checksum.as_deref()
                    == Some(info.outer_checksum.as_bytes())
                    && (retrying
                        || !self.is_complete(name, &info.version, identical_tarball)?) =>
            {
                false
            }
            Some(_) if !replace => {
                return Err(PublishError::AlreadyPublished {
                    name: name.to_owned(),
                    version: info.version.clone(),
                });
            }
            Some(i) => {
                let mut release = info.to_proto(self.repository);
                release.retired = package.releases[i].retired.take();
                // A replacement keeps the release's original publication time, as hex.pm does.
                release.published_at = package.releases[i].published_at.or(Some(Timestamp {
                    seconds: now,
                    nanos: 0,
                }));
                package.releases[i] = release;
                false
            }
            None => {
                // A tarball without a release is left by a publish that stopped before the
                // package file; other bytes there are another client's release in progress.
                if stored.is_some() && !identical_tarball && !replace {
                    return Err(PublishError::AlreadyPublished {
                        name: name.to_owned(),
                        version: info.version.clone(),
                    });
                }
                let mut release = info.to_proto(self.repository);
                release.published_at = Some(Timestamp {
                    seconds: now,
                    nanos: 0,
                });
                package.releases.push(release);
                package
                    .releases
                    .sort_by(|a, b| compare_versions(&a.version, &b.version));
                true
            }
        };
        let mut writes = Vec::with_capacity(4);
        if !identical_tarball {
            writes.push(Write {
                key: tarball_key,
                bytes: tarball.clone(),
                precondition: match &stored {
                    Some(object) => Precondition::Match(object.meta.version.clone()),
                    None => Precondition::Create,
                },
            });
        }
        let package_bytes = files.sign(&package);
        writes.push(match &read {
            Some(read) => read.replace_with(StorageKey::package(name), package_bytes),
            None => Write {
                key: StorageKey::package(name),
                bytes: package_bytes,
                precondition: Precondition::Create,
            },
        });
        writes.extend(files.index_writes(indexes, &package, Some(now)));
        *created |= new_release;
        self.store.commit(writes).map_err(RegistryError::from)?;
        Ok(package)
    }

    /// Removes a release; the package disappears with its last release, and the release's
    /// tarball and docs go with it.
    pub fn revert(&self, name: &str, version: &str) -> Result<(), RegistryError> {
        let _lock = self.store.lock()?;
        let files = self.files();
        let last = files.retrying(
            &StorageKey::package(name),
            |_| {
                let read = files
                    .package(name)?
                    .ok_or_else(|| RegistryError::NoSuchPackage(name.to_owned()))?;
                let mut package = read.value.clone();
                let before = package.releases.len();
                package.releases.retain(|r| r.version != version);
                if package.releases.len() == before {
                    return Err(RegistryError::NoSuchRelease {
                        package: name.to_owned(),
                        version: version.to_owned(),
                    });
                }
                let last = package.releases.is_empty();
                let mut writes = Vec::new();
                if !last {
                    writes.push(read.replace_with(StorageKey::package(name), files.sign(&package)));
                }
                writes.extend(files.index_writes(
                    files.indexes()?,
                    &package,
                    (!last).then(now_seconds),
                ));
                self.store.commit(writes)?;
                Ok(last)
            },
            is_conflict,
        )?;
        // Nothing names these objects any more. (Deletes cannot be conditional on object
        // stores: a publish of the same package racing a revert of its last release may lose
        // its package file, which `verify` reports and a re-publish repairs.)
        self.store.delete(&StorageKey::tarball(name, version))?;
        self.store.delete(&StorageKey::docs(name, version))?;
        if last {
            self.store.delete(&StorageKey::package(name))?;
        }
        Ok(())
    }

    /// Whether a release is fully in place: its tarball holds these bytes and `versions`
    /// lists it (`names` is written right after `versions`).
    fn is_complete(
        &self,
        name: &str,
        version: &str,
        identical_tarball: bool,
    ) -> Result<bool, RegistryError> {
        if !identical_tarball {
            return Ok(false);
        }
        Ok(self
            .files()
            .versions()?
            .value
            .packages
            .iter()
            .any(|p| p.name == name && p.versions.iter().any(|v| v == version)))
    }

    fn read_package(&self, name: &str) -> Result<Option<Package>, RegistryError> {
        Ok(self.files().package(name)?.map(|r| r.value))
    }

    /// Each requirement parses; one on this repository names an existing package with a
    /// matching version. Requirements on other repositories (e.g. `hexpm`) are the client's.
    fn check_requirements(
        &self,
        name: &str,
        dependencies: &[DependencyInfo],
    ) -> Result<(), PublishError> {
        for dep in dependencies {
            // Checked before anything else: these are signed into the registry as they are, and
            // a local one becomes a file name.
            if !hexfmt::name::is_valid_package_name(&dep.package) {
                return Err(PublishError::Requirement {
                    dependency: dep.package.chars().take(64).collect(),
                    message: format!(
                        "not a package name: an ASCII letter, then letters, digits or _, at most \
                         {} characters",
                        hexfmt::name::MAX_PACKAGE_NAME
                    ),
                });
            }
            let fail = |message: String| PublishError::Requirement {
                dependency: dep.package.clone(),
                message,
            };
            if let Some(repository) = &dep.repository
                && !hexfmt::name::is_valid_repository_name(repository)
            {
                return Err(fail(format!(
                    "repository {:?} is not a repository name: letters, digits, _ - . and :, \
                     at most {} characters",
                    repository.chars().take(64).collect::<String>(),
                    hexfmt::name::MAX_REPOSITORY_NAME
                )));
            }
            let requirement =
                Requirement::parse(&dep.requirement).map_err(|e| fail(e.to_string()))?;
            let local = dep
                .repository
                .as_deref()
                .is_none_or(|r| r == self.repository);
            if !local {
                continue;
            }
            if dep.package == name {
                return Err(fail("a package cannot depend on itself".to_owned()));
            }
            let Some(package) = self.read_package(&dep.package)? else {
                return Err(fail(format!(
                    "package does not exist in repository {:?}",
                    self.repository
                )));
            };
            let satisfiable = package
                .releases
                .iter()
                .filter_map(|r| Version::parse(&r.version).ok())
                .any(|v| requirement.matches(&v, true));
            if !satisfiable {
                return Err(fail(format!(
                    "no release of {} matches {}",
                    dep.package, dep.requirement
                )));
            }
        }
        Ok(())
    }
}

fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
