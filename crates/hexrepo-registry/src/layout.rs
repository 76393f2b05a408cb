//! A repository folder on local disk: where each resource lives under it, for the commands and
//! tests that work on a folder. Paths come from [`StorageKey`], the one place that turns
//! resources into paths (HEX-PROTOCOL.md §1.1).

use std::path::{Path, PathBuf};

use hexrepo_store::{STATE_DIR, StorageKey, Store};

/// The layout of a repository folder (`PUBLIC_DIR`), identical to `mix hex.registry build`'s.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The repository folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder as a [`Store`].
    pub fn store(&self) -> Store {
        Store::local(&self.root)
    }

    /// Where `key` lives in the folder.
    pub fn path_of(&self, key: &StorageKey) -> PathBuf {
        self.root.join(key.path())
    }

    /// `/names`.
    pub fn names(&self) -> PathBuf {
        self.path_of(&StorageKey::Names)
    }

    /// `/versions`.
    pub fn versions(&self) -> PathBuf {
        self.path_of(&StorageKey::Versions)
    }

    /// `/public_key`.
    pub fn public_key(&self) -> PathBuf {
        self.path_of(&StorageKey::PublicKey)
    }

    /// The `packages/` folder.
    pub fn packages_dir(&self) -> PathBuf {
        self.root.join(hexrepo_store::Folder::Packages.path())
    }

    /// `/packages/NAME`.
    pub fn package(&self, name: &str) -> PathBuf {
        self.path_of(&StorageKey::package(name))
    }

    /// The `tarballs/` folder.
    pub fn tarballs_dir(&self) -> PathBuf {
        self.root.join(hexrepo_store::Folder::Tarballs.path())
    }

    /// `/tarballs/NAME-VERSION.tar`.
    pub fn tarball(&self, name: &str, version: &str) -> PathBuf {
        self.path_of(&StorageKey::tarball(name, version))
    }

    /// `/docs/NAME-VERSION.tar.gz`.
    pub fn docs(&self, name: &str, version: &str) -> PathBuf {
        self.path_of(&StorageKey::docs(name, version))
    }

    /// `.hexrepo/`: our own state (build cache, lock). Never served: a dot-folder.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }
}

/// Splits a tarball file name `NAME-VERSION.tar` at the first `-` (package names cannot contain
/// one). `None` when the name does not have that shape.
pub fn parse_tarball_file_name(file_name: &str) -> Option<(&str, &str)> {
    let stem = file_name.strip_suffix(".tar")?;
    let (name, version) = stem.split_once('-')?;
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

/// Where an object of `store` is, for messages: a path on disk, or the store's URL and the
/// object's path.
pub fn locate(store: &Store, key: &StorageKey) -> PathBuf {
    match store.local_root() {
        Some(root) => root.join(key.path()),
        None => PathBuf::from(format!("{}/{}", store.describe(), key.path())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_dash() {
        assert_eq!(
            parse_tarball_file_name("acme_core-1.1.0-rc.1.tar"),
            Some(("acme_core", "1.1.0-rc.1"))
        );
        assert_eq!(parse_tarball_file_name("nodash.tar"), None);
        assert_eq!(parse_tarball_file_name("-1.0.0.tar"), None);
        assert_eq!(parse_tarball_file_name("foo-1.0.0.tgz"), None);
    }
}
