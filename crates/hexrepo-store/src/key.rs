//! Typed storage keys: the one place that turns repository resources into object paths
//! (HEX-PROTOCOL.md §1.1), so no other code joins path strings. Paths are relative to the
//! repository root (a folder, or a bucket prefix) and identical on every backend.

use std::fmt;

/// A resource of the repository, or a piece of our own state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StorageKey {
    /// `names`.
    Names,
    /// `versions`.
    Versions,
    /// `public_key`.
    PublicKey,
    /// `packages/NAME`.
    Package(String),
    /// `tarballs/NAME-VERSION.tar`.
    Tarball {
        /// The package.
        name: String,
        /// The version.
        version: String,
    },
    /// `docs/NAME-VERSION.tar.gz`.
    Docs {
        /// The package.
        name: String,
        /// The version.
        version: String,
    },
    /// `installs/PATH`: Hex's self-update files, when an operator put them there. Served, but
    /// hexrepo never writes them, so [`StorageKey::from_repository_path`] never returns one.
    Install(String),
    /// `.hexrepo/build-cache.json`: what the last build read and wrote.
    BuildCache,
    /// `.hexrepo/keys.json`: repository and API keys, hashed.
    Keys,
    /// `.hexrepo/audit.log` (an append-only log; see `Store::append`).
    AuditLog,
    /// `.hexrepo/mirror-etags.json`: in a mirror's store, the upstream's ETag of each
    /// registry file stored, for conditional requests on the next sync.
    MirrorEtags,
    /// `.hexrepo/owners.json`: the owners of every package. One object, like the keys, so that
    /// `GET /users/me` (which mix asks before every publish) finds a key's packages in one
    /// read; owner changes are rare enough to share one compare-and-swap.
    Owners,
}

/// The folders that hold many objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// `packages/`.
    Packages,
    /// `tarballs/`.
    Tarballs,
    /// `docs/`.
    Docs,
}

impl Folder {
    /// The folder's path, without a trailing slash.
    pub fn path(self) -> &'static str {
        match self {
            Folder::Packages => "packages",
            Folder::Tarballs => "tarballs",
            Folder::Docs => "docs",
        }
    }
}

/// The folder of our own state. Never served, never pushed.
pub const STATE_DIR: &str = ".hexrepo";

impl StorageKey {
    /// A tarball key.
    pub fn tarball(name: &str, version: &str) -> StorageKey {
        StorageKey::Tarball {
            name: name.to_owned(),
            version: version.to_owned(),
        }
    }

    /// A docs key.
    pub fn docs(name: &str, version: &str) -> StorageKey {
        StorageKey::Docs {
            name: name.to_owned(),
            version: version.to_owned(),
        }
    }

    /// A package key.
    pub fn package(name: &str) -> StorageKey {
        StorageKey::Package(name.to_owned())
    }

    /// The object's path relative to the repository root.
    pub fn path(&self) -> String {
        match self {
            StorageKey::Names => "names".to_owned(),
            StorageKey::Versions => "versions".to_owned(),
            StorageKey::PublicKey => "public_key".to_owned(),
            StorageKey::Package(name) => format!("packages/{name}"),
            StorageKey::Tarball { name, version } => format!("tarballs/{name}-{version}.tar"),
            StorageKey::Docs { name, version } => format!("docs/{name}-{version}.tar.gz"),
            StorageKey::Install(path) => format!("installs/{path}"),
            StorageKey::BuildCache => format!("{STATE_DIR}/build-cache.json"),
            StorageKey::Keys => format!("{STATE_DIR}/keys.json"),
            StorageKey::AuditLog => format!("{STATE_DIR}/audit.log"),
            StorageKey::MirrorEtags => format!("{STATE_DIR}/mirror-etags.json"),
            StorageKey::Owners => format!("{STATE_DIR}/owners.json"),
        }
    }

    /// The repository file at `path`, if it is one: the inverse of [`StorageKey::path`] for
    /// what clients may fetch. State files, temporaries and anything else give `None`.
    pub fn from_repository_path(path: &str) -> Option<StorageKey> {
        match path {
            "names" => return Some(StorageKey::Names),
            "versions" => return Some(StorageKey::Versions),
            "public_key" => return Some(StorageKey::PublicKey),
            _ => {}
        }
        let (folder, file) = path.split_once('/')?;
        if !is_plain_segment(file) {
            return None;
        }
        match folder {
            "packages" => Some(StorageKey::Package(file.to_owned())),
            "tarballs" => {
                let (name, version) = split_release(file.strip_suffix(".tar")?)?;
                Some(StorageKey::tarball(name, version))
            }
            "docs" => {
                let (name, version) = split_release(file.strip_suffix(".tar.gz")?)?;
                Some(StorageKey::docs(name, version))
            }
            _ => None,
        }
    }

    /// Whether clients may fetch it (everything but our state).
    pub fn is_repository_file(&self) -> bool {
        !matches!(
            self,
            StorageKey::BuildCache
                | StorageKey::Keys
                | StorageKey::AuditLog
                | StorageKey::MirrorEtags
                | StorageKey::Owners
        )
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// A file name we would write: not empty, no separator, not hidden, no control characters.
fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && !segment.contains(['/', '\\'])
        && !segment.chars().any(char::is_control)
}

/// `NAME-VERSION` split at the first `-` (package names cannot contain one).
fn split_release(stem: &str) -> Option<(&str, &str)> {
    let (name, version) = stem.split_once('-')?;
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_paths_round_trip() {
        for key in [
            StorageKey::Names,
            StorageKey::Versions,
            StorageKey::PublicKey,
            StorageKey::package("acme"),
            StorageKey::tarball("acme_core", "1.1.0-rc.1"),
            StorageKey::docs("acme", "1.0.0"),
        ] {
            assert_eq!(StorageKey::from_repository_path(&key.path()), Some(key));
        }
    }

    #[test]
    fn state_and_odd_paths_are_not_repository_files() {
        for path in [
            ".hexrepo/keys.json",
            "packages/.acme.tmp-1-2",
            "packages/",
            "tarballs/acme.tar",
            "tarballs/acme-1.0.0.tgz",
            "private.pem",
            "packages/a/b",
        ] {
            assert_eq!(StorageKey::from_repository_path(path), None, "{path}");
        }
        assert!(!StorageKey::Keys.is_repository_file());
        let owners = StorageKey::Owners;
        assert_eq!(owners.path(), ".hexrepo/owners.json");
        assert!(!owners.is_repository_file());
        assert_eq!(StorageKey::from_repository_path(&owners.path()), None);
        let install = StorageKey::Install("1.16.0/hex-2.0.6.ez".into());
        assert_eq!(install.path(), "installs/1.16.0/hex-2.0.6.ez");
        assert!(install.is_repository_file());
        assert_eq!(StorageKey::from_repository_path(&install.path()), None);
    }
}
