//! What an upstream file must pass before the mirror stores or serves it (HEX-PROTOCOL.md
//! §1.5–1.6): registry files their signature and origin fields (`repository`, and a package's
//! `name`), tarballs the SHA-256 their release's verified `outer_checksum` signs. A failure is an
//! [`UpstreamFileError`] naming the file and the reason.

use hexfmt::checksum::Checksum;
use hexfmt::keys::PublicKey;
use hexfmt::proto::names::Names;
use hexfmt::proto::package::{Package, Release};
use hexfmt::proto::versions::Versions;
use hexfmt::registry::{RegistryError, read_names, read_package, read_versions};
use hexfmt::version::Version;
use hexrepo_store::{StorageKey, StoreError};

use crate::build::is_valid_package_name;

/// An upstream file that was refused or could not be mirrored; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct UpstreamFileError {
    /// The file, relative to the repository root (`packages/foo`, `tarballs/foo-1.0.0.tar`).
    pub path: String,
    /// What is wrong (boxed: a checksum pair or a decode error would make every `Result`
    /// carrying this error large).
    #[source]
    pub problem: Box<Problem>,
}

/// Why an upstream file was not mirrored.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The upstream could not be asked (network, HTTP status other than 200 or 404).
    #[error("fetching from upstream: {0}")]
    Fetch(String),
    /// The upstream answered 404.
    #[error("not found upstream")]
    Missing,
    /// Signature, origin field or encoding (see [`RegistryError`]).
    #[error("refused: {0}")]
    Registry(#[source] RegistryError),
    /// A tarball whose bytes are not what the registry signed.
    #[error("refused: SHA-256 {actual} does not match the signed outer_checksum {expected}")]
    Checksum {
        /// SHA-256 of the bytes received.
        actual: Checksum,
        /// The release's `outer_checksum`.
        expected: Checksum,
    },
    /// A release without a usable `outer_checksum`: its tarball cannot be verified.
    #[error("refused: the release has no valid outer_checksum")]
    NoOuterChecksum,
    /// A name or version that is not valid, so not a file name we would write.
    #[error("refused: invalid package name or version")]
    InvalidName,
    /// The mirror's store failed.
    #[error("storing: {0}")]
    Store(#[source] StoreError),
}

impl UpstreamFileError {
    /// The error for `key`.
    pub fn new(key: &StorageKey, problem: Problem) -> UpstreamFileError {
        UpstreamFileError {
            path: key.path(),
            problem: Box::new(problem),
        }
    }
    /// Whether the upstream could not be asked (as opposed to a refused file).
    pub fn is_fetch(&self) -> bool {
        matches!(*self.problem, Problem::Fetch(_))
    }
}

/// An upstream's identity: what its files must say and be signed with.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The repository name clients expect (`hexpm`).
    pub repository: String,
    /// The key its registry files are signed with.
    pub key: PublicKey,
}

impl Origin {
    /// Verifies a `names` file.
    pub fn names(&self, file: &[u8]) -> Result<Names, UpstreamFileError> {
        read_names(file, &self.key, &self.repository)
            .map_err(|e| UpstreamFileError::new(&StorageKey::Names, Problem::Registry(e)))
    }

    /// Verifies a `versions` file.
    pub fn versions(&self, file: &[u8]) -> Result<Versions, UpstreamFileError> {
        read_versions(file, &self.key, &self.repository)
            .map_err(|e| UpstreamFileError::new(&StorageKey::Versions, Problem::Registry(e)))
    }

    /// Verifies a `packages/NAME` file, and that each release's version is one we can name a
    /// tarball after.
    pub fn package(&self, name: &str, file: &[u8]) -> Result<Package, UpstreamFileError> {
        let key = StorageKey::package(name);
        if !is_valid_package_name(name) {
            return Err(UpstreamFileError::new(&key, Problem::InvalidName));
        }
        let package = read_package(file, &self.key, &self.repository, name)
            .map_err(|e| UpstreamFileError::new(&key, Problem::Registry(e)))?;
        if package
            .releases
            .iter()
            .any(|r| Version::parse(&r.version).is_err())
        {
            return Err(UpstreamFileError::new(&key, Problem::InvalidName));
        }
        Ok(package)
    }
}

/// The signed SHA-256 of a release's tarball.
pub fn outer_checksum(name: &str, release: &Release) -> Result<Checksum, UpstreamFileError> {
    release
        .outer_checksum
        .as_deref()
        .and_then(|raw| Checksum::from_slice(raw).ok())
        .ok_or_else(|| {
            UpstreamFileError::new(
                &StorageKey::tarball(name, &release.version),
                Problem::NoOuterChecksum,
            )
        })
}

/// Verifies a tarball's bytes against the checksum its verified release signs.
pub fn tarball(
    key: &StorageKey,
    bytes: &[u8],
    expected: Checksum,
) -> Result<(), UpstreamFileError> {
    let actual = Checksum::sha256(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(UpstreamFileError::new(
            key,
            Problem::Checksum { actual, expected },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &[u8] = include_bytes!("../../../../testdata/mix-reference/public/public_key");
    const NAMES: &[u8] = include_bytes!("../../../../testdata/mix-reference/public/names");
    const ACME_WEB: &[u8] =
        include_bytes!("../../../../testdata/mix-reference/public/packages/acme_web");

    fn origin(repository: &str) -> Origin {
        Origin {
            repository: repository.to_owned(),
            key: PublicKey::from_pem(PUBLIC).unwrap(),
        }
    }

    #[test]
    fn verified_files_decode_and_others_are_refused_by_name() {
        assert_eq!(origin("acme").names(NAMES).unwrap().packages.len(), 5);
        let err = origin("hexpm").names(NAMES).unwrap_err();
        assert_eq!(err.path, "names");
        assert!(
            err.to_string().contains("repository name mismatch"),
            "{err}"
        );
        let err = origin("acme").package("acme_core", ACME_WEB).unwrap_err();
        assert_eq!(err.path, "packages/acme_core");
        let wrong_key = Origin {
            key: crate::mirror::hexpm_public_key(),
            ..origin("acme")
        };
        let err = wrong_key.package("acme_web", ACME_WEB).unwrap_err();
        assert!(err.to_string().contains("bad signature"), "{err}");
    }

    #[test]
    fn a_tarball_must_match_its_outer_checksum() {
        let package = origin("acme").package("acme_web", ACME_WEB).unwrap();
        let expected = outer_checksum("acme_web", &package.releases[0]).unwrap();
        let key = StorageKey::tarball("acme_web", &package.releases[0].version);
        let err = tarball(&key, b"not the tarball", expected).unwrap_err();
        assert!(err.to_string().starts_with("tarballs/acme_web-"), "{err}");
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
