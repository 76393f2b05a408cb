//! The repository resources a client may ask for (HEX-PROTOCOL.md §1.1), parsed from request
//! paths and validated segment by segment. This is the allow-list: a path that is not one of
//! these, after percent-decoding, is a 404, so dot-files, keys, `..` and encoded slashes can
//! never name a file.

use hexrepo_store::StorageKey;

/// A servable repository resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `/names`.
    Names,
    /// `/versions`.
    Versions,
    /// `/public_key`.
    PublicKey,
    /// `/packages/NAME`.
    Package(String),
    /// `/tarballs/NAME-VERSION.tar`.
    Tarball(String),
    /// `/docs/NAME-VERSION.tar.gz`.
    Docs(String),
    /// `/installs/...`: Hex's self-update files, when an operator put them there.
    Installs(String),
}

/// How a resource should be cached and labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Signed registry files: small, hot, change on every publish.
    Registry,
    /// Package tarballs: large, effectively immutable.
    Tarball,
    /// Documentation tarballs.
    Docs,
    /// The public key.
    Key,
    /// Hex install files.
    Installs,
}

impl Resource {
    /// Where the resource is stored.
    pub fn storage_key(&self) -> StorageKey {
        match self {
            Resource::Names => StorageKey::Names,
            Resource::Versions => StorageKey::Versions,
            Resource::PublicKey => StorageKey::PublicKey,
            Resource::Package(name) => StorageKey::package(name),
            Resource::Tarball(file) => release_key(file, ".tar", StorageKey::tarball),
            Resource::Docs(file) => release_key(file, ".tar.gz", StorageKey::docs),
            Resource::Installs(path) => StorageKey::Install(path.clone()),
        }
    }

    /// The kind of the resource.
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Names | Resource::Versions | Resource::Package(_) => Kind::Registry,
            Resource::Tarball(_) => Kind::Tarball,
            Resource::Docs(_) => Kind::Docs,
            Resource::PublicKey => Kind::Key,
            Resource::Installs(_) => Kind::Installs,
        }
    }

    /// `/packages/NAME`, if NAME is a valid package name.
    pub fn package(name: &str) -> Option<Resource> {
        is_package_name(name).then(|| Resource::Package(name.to_owned()))
    }

    /// `/tarballs/FILE`, if FILE is `NAME-VERSION.tar` with a valid name and version characters.
    pub fn tarball(file: &str) -> Option<Resource> {
        let stem = file.strip_suffix(".tar")?;
        release_stem(stem).then(|| Resource::Tarball(file.to_owned()))
    }

    /// `/docs/FILE`, if FILE is `NAME-VERSION.tar.gz`.
    pub fn docs(file: &str) -> Option<Resource> {
        let stem = file.strip_suffix(".tar.gz")?;
        release_stem(stem).then(|| Resource::Docs(file.to_owned()))
    }

    /// `/installs/PATH` for one or two plain segments.
    pub fn installs(path: &str) -> Option<Resource> {
        let segments: Vec<&str> = path.split('/').collect();
        let plain = |s: &&str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        (segments.len() <= 2 && segments.iter().all(plain))
            .then(|| Resource::Installs(path.to_owned()))
    }
}

/// The key of `NAME-VERSION{suffix}`, which the constructors have already validated.
fn release_key(file: &str, suffix: &str, key: fn(&str, &str) -> StorageKey) -> StorageKey {
    let (name, version) = file
        .strip_suffix(suffix)
        .and_then(|stem| stem.split_once('-'))
        .expect("validated on construction");
    key(name, version)
}

fn is_package_name(name: &str) -> bool {
    hexfmt::name::is_valid_package_name(name)
}

fn release_stem(stem: &str) -> bool {
    let Some((name, version)) = stem.split_once('-') else {
        return false;
    };
    is_package_name(name)
        && !version.is_empty()
        && version.len() <= hexfmt::version::MAX_VERSION_TEXT
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_resources() {
        assert_eq!(
            Resource::package("acme_core"),
            Some(Resource::Package("acme_core".into()))
        );
        assert!(Resource::tarball("acme_core-1.1.0-rc.1.tar").is_some());
        assert!(Resource::docs("acme_core-1.0.0.tar.gz").is_some());
        assert!(Resource::installs("hex-1.x.csv").is_some());
        assert!(Resource::installs("1.16.0/hex-2.0.6.ez").is_some());
    }

    #[test]
    fn storage_keys_name_the_files_clients_ask_for() {
        for (resource, path) in [
            (Resource::Names, "names"),
            (Resource::PublicKey, "public_key"),
            (Resource::package("acme").unwrap(), "packages/acme"),
            (
                Resource::tarball("acme_core-1.1.0-rc.1.tar").unwrap(),
                "tarballs/acme_core-1.1.0-rc.1.tar",
            ),
            (
                Resource::docs("acme-1.0.0.tar.gz").unwrap(),
                "docs/acme-1.0.0.tar.gz",
            ),
            (
                Resource::installs("1.16.0/hex-2.0.6.ez").unwrap(),
                "installs/1.16.0/hex-2.0.6.ez",
            ),
        ] {
            assert_eq!(resource.storage_key().path(), path);
        }
    }

    #[test]
    fn refuses_everything_else() {
        for name in [
            "",
            ".hexrepo",
            "..",
            "a/b",
            "a%2Fb",
            "private_key.pem",
            "_x",
            "Ab-",
        ] {
            assert_eq!(Resource::package(name), None, "{name}");
        }
        for file in [
            "../names.tar",
            ".x-1.0.0.tar",
            "x-.tar",
            "x-1.0.0.tar.gz",
            "x-1.0.0/..tar",
            "x-a.tar",
            "x.tar",
        ] {
            assert_eq!(Resource::tarball(file), None, "{file}");
        }
        for path in ["../x", ".env", "a/b/c", "a//b", "", "a/.."] {
            assert_eq!(Resource::installs(path), None, "{path}");
        }
    }
}
