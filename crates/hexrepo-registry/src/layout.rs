//! Where each repository resource lives under a repository folder: the one place that turns
//! resources into paths (HEX-PROTOCOL.md §1.1), so no other code joins path strings.

use std::path::{Path, PathBuf};

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

    /// `/names`.
    pub fn names(&self) -> PathBuf {
        self.root.join("names")
    }

    /// `/versions`.
    pub fn versions(&self) -> PathBuf {
        self.root.join("versions")
    }

    /// `/public_key`.
    pub fn public_key(&self) -> PathBuf {
        self.root.join("public_key")
    }

    /// The `packages/` folder.
    pub fn packages_dir(&self) -> PathBuf {
        self.root.join("packages")
    }

    /// `/packages/NAME`.
    pub fn package(&self, name: &str) -> PathBuf {
        self.packages_dir().join(name)
    }

    /// The `tarballs/` folder.
    pub fn tarballs_dir(&self) -> PathBuf {
        self.root.join("tarballs")
    }

    /// `/tarballs/NAME-VERSION.tar`.
    pub fn tarball(&self, name: &str, version: &str) -> PathBuf {
        self.tarballs_dir().join(format!("{name}-{version}.tar"))
    }

    /// `/docs/NAME-VERSION.tar.gz`.
    pub fn docs(&self, name: &str, version: &str) -> PathBuf {
        self.root
            .join("docs")
            .join(format!("{name}-{version}.tar.gz"))
    }

    /// `.hexrepo/`: our own state (build cache, lock). Never served: a dot-folder.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".hexrepo")
    }
}

/// Splits a tarball file name `NAME-VERSION.tar` at the first `-` (package names cannot contain
/// one). `None` when the name does not have that shape.
pub fn parse_tarball_file_name(file_name: &str) -> Option<(&str, &str)> {
    let stem = file_name.strip_suffix(".tar")?;
    let (name, version) = stem.split_once('-')?;
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
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
