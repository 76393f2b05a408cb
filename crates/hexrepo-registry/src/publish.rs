//! Publishing and reverting releases (HEX-PROTOCOL.md §6.4): the rules a release must satisfy,
//! and the order of writes that keeps every reader and every crash safe.
//!
//! A publish validates the tarball and its metadata, then, under the repository lock, stages
//! the tarball, the re-signed `packages/NAME`, `versions` and `names`, syncs once, and renames
//! them into place in that order: a reader never sees a version whose tarball or package file
//! is missing. Publishing a byte-identical tarball again succeeds and completes whatever an
//! interrupted attempt left undone, so clients can simply retry.

use std::time::{SystemTime, UNIX_EPOCH};

use hexfmt::checksum::Checksum;
use hexfmt::keys::PrivateKey;
use hexfmt::metadata::Metadata;
use hexfmt::proto::names::Names;
use hexfmt::proto::package::{Package, Timestamp};
use hexfmt::proto::versions::Versions;
use hexfmt::registry::{encode_signed, read_names, read_package, read_versions};
use hexfmt::requirement::Requirement;
use hexfmt::tarball::{TarballError, read_tarball};
use hexfmt::version::{Version, VersionError};
use prost::Message as _;

use crate::build::read_optional;
use crate::error::{RegistryError, io_err};
use crate::files::{Batch, RepoLock, sync_dir};
use crate::index::{update_names, update_versions};
use crate::layout::Layout;
use crate::release::{DependencyInfo, ReleaseInfo};

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
}

/// Publishes and reverts releases of one repository.
#[derive(Debug)]
pub struct Publisher<'a> {
    /// The repository folder.
    pub layout: &'a Layout,
    /// The repository name.
    pub repository: &'a str,
    /// The signing key.
    pub key: &'a PrivateKey,
    /// Names nobody may publish.
    pub reserved: &'a [String],
}

impl Publisher<'_> {
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
        if !is_hex_package_name(&name) {
            return Err(PublishError::InvalidName(name));
        }
        if self.reserved.contains(&name) {
            return Err(PublishError::ReservedName(name));
        }
        let version = Version::parse(&metadata.version)?;
        version.is_valid_for_hex()?;

        let _lock = RepoLock::acquire(&self.layout.state_dir().join("lock"))?;
        self.check_requirements(&name, &info.dependencies)?;
        let mut package = self.read_package(&name)?.unwrap_or_else(|| Package {
            name: name.clone(),
            repository: self.repository.to_owned(),
            ..Package::default()
        });
        let now = now_seconds();
        let existing = package
            .releases
            .iter()
            .position(|r| r.version == info.version);
        let created = match existing {
            // An identical retry of a publish that did not finish: complete it.
            Some(i)
                if package.releases[i].outer_checksum.as_deref()
                    == Some(info.outer_checksum.as_bytes())
                    && !self.is_complete(&name, &info.version, tarball)? =>
            {
                false
            }
            Some(_) if !replace => {
                return Err(PublishError::AlreadyPublished {
                    name,
                    version: info.version,
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
        let tarballs = self.layout.tarballs_dir();
        std::fs::create_dir_all(&tarballs).map_err(io_err("creating", &tarballs))?;
        let mut batch = Batch::default();
        batch.stage(&self.layout.tarball(&name, &info.version), tarball)?;
        self.stage_indexes(&mut batch, &package, Some(now))?;
        batch.commit()?;
        Ok(Published {
            metadata,
            outer_checksum: info.outer_checksum,
            created,
        })
    }

    /// Removes a release; the package disappears with its last release, and the release's
    /// tarball and docs go with it.
    pub fn revert(&self, name: &str, version: &str) -> Result<(), RegistryError> {
        let _lock = RepoLock::acquire(&self.layout.state_dir().join("lock"))?;
        let mut package = self
            .read_package(name)?
            .ok_or_else(|| RegistryError::NoSuchPackage(name.to_owned()))?;
        let before = package.releases.len();
        package.releases.retain(|r| r.version != version);
        if package.releases.len() == before {
            return Err(RegistryError::NoSuchRelease {
                package: name.to_owned(),
                version: version.to_owned(),
            });
        }
        let mut batch = Batch::default();
        let last = package.releases.is_empty();
        self.stage_indexes(&mut batch, &package, (!last).then(now_seconds))?;
        batch.commit()?;
        // Nothing names these files any more.
        let mut doomed = vec![
            self.layout.tarball(name, version),
            self.layout.docs(name, version),
        ];
        if last {
            doomed.push(self.layout.package(name));
        }
        for path in doomed {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing", &path)(e)),
            }
        }
        sync_dir(&self.layout.tarballs_dir())
    }

    /// Whether a release is fully in place: its tarball holds these bytes and `versions`
    /// lists it (`names` is written with `versions`, in the same batch).
    fn is_complete(
        &self,
        name: &str,
        version: &str,
        tarball: &[u8],
    ) -> Result<bool, RegistryError> {
        if read_optional(&self.layout.tarball(name, version))?.as_deref() != Some(tarball) {
            return Ok(false);
        }
        let Some(bytes) = read_optional(&self.layout.versions())? else {
            return Ok(false);
        };
        let versions =
            read_versions(&bytes, &self.key.public_key(), self.repository).map_err(|source| {
                RegistryError::RegistryFile {
                    path: self.layout.versions(),
                    source,
                }
            })?;
        Ok(versions
            .packages
            .iter()
            .any(|p| p.name == name && p.versions.iter().any(|v| v == version)))
    }

    /// Stages `packages/NAME` (unless the package is now empty), `versions` and `names`.
    fn stage_indexes(
        &self,
        batch: &mut Batch,
        package: &Package,
        updated_at: Option<i64>,
    ) -> Result<(), RegistryError> {
        let public = self.key.public_key();
        let mut versions = match read_optional(&self.layout.versions())? {
            Some(bytes) => read_versions(&bytes, &public, self.repository).map_err(|source| {
                RegistryError::RegistryFile {
                    path: self.layout.versions(),
                    source,
                }
            })?,
            None => Versions {
                packages: Vec::new(),
                repository: self.repository.to_owned(),
            },
        };
        let mut names = match read_optional(&self.layout.names())? {
            Some(bytes) => read_names(&bytes, &public, self.repository).map_err(|source| {
                RegistryError::RegistryFile {
                    path: self.layout.names(),
                    source,
                }
            })?,
            None => Names {
                packages: Vec::new(),
                repository: self.repository.to_owned(),
            },
        };
        update_versions(&mut versions, package);
        update_names(&mut names, &package.name, updated_at);
        if !package.releases.is_empty() {
            std::fs::create_dir_all(self.layout.packages_dir())
                .map_err(io_err("creating", self.layout.packages_dir()))?;
            batch.stage(
                &self.layout.package(&package.name),
                &encode_signed(package.encode_to_vec(), self.key),
            )?;
        }
        batch.stage(
            &self.layout.versions(),
            &encode_signed(versions.encode_to_vec(), self.key),
        )?;
        batch.stage(
            &self.layout.names(),
            &encode_signed(names.encode_to_vec(), self.key),
        )?;
        Ok(())
    }

    fn read_package(&self, name: &str) -> Result<Option<Package>, RegistryError> {
        let path = self.layout.package(name);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        read_package(&bytes, &self.key.public_key(), self.repository, name)
            .map(Some)
            .map_err(|source| RegistryError::RegistryFile { path, source })
    }

    /// Each requirement parses; one on this repository names an existing package with a
    /// matching version. Requirements on other repositories (e.g. `hexpm`) are the client's.
    fn check_requirements(
        &self,
        name: &str,
        dependencies: &[DependencyInfo],
    ) -> Result<(), PublishError> {
        for dep in dependencies {
            let fail = |message: String| PublishError::Requirement {
                dependency: dep.package.clone(),
                message,
            };
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

/// hex.pm's rule: `^[a-z][a-z0-9_]*$`, at least two characters.
pub fn is_hex_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
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
