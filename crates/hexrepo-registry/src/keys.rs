//! Repository and API keys (HEX-PROTOCOL.md §1.7 "Authentication", §6.2): secrets shown once,
//! stored only as SHA-256 hashes in `.hexrepo/keys.json` with the repository, and checked in
//! constant time. A secret is 128 random bits written as 32 hex characters, like hex.pm's, so
//! a fast hash is enough: there is nothing to brute-force.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use hexfmt::checksum::Checksum;
use serde::{Deserialize, Serialize};

use hexrepo_store::{Meta, StorageKey, Store};

use crate::error::RegistryError;
use crate::layout::locate;
use crate::state_file;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read the repository (registry files, tarballs, docs): what mix and rebar3 need.
    Repository,
    /// Read the HTTP API.
    ApiRead,
    /// Use the whole HTTP API: publish, retire, revert, manage keys.
    ApiWrite,
}

impl Permission {
    /// Whether a key holding `self` may do what `needed` allows.
    pub fn grants(self, needed: Permission) -> bool {
        self == needed || (self == Permission::ApiWrite && needed == Permission::ApiRead)
    }
}

/// Whether a key holding `held` may deal with (create, see, revoke) a key holding `wanted`:
/// only when every permission of `wanted` is one `held` grants, so no key reaches beyond
/// itself.
pub fn covers(held: &[Permission], wanted: &[Permission]) -> bool {
    wanted.iter().all(|w| held.iter().any(|h| h.grants(*w)))
}

/// A stored key: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Unique name, chosen by its creator.
    pub name: String,
    /// Lower-case hex SHA-256 of the secret.
    pub secret_hash: String,
    /// What it may do.
    pub permissions: Vec<Permission>,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// Revocation time; a revoked key authenticates nothing.
    pub revoked_at: Option<u64>,
    /// Who created it (a key name, or "cli").
    #[serde(default)]
    pub created_by: Option<String>,
}

impl KeyRecord {
    /// Whether the key is active and allows `needed`.
    pub fn allows(&self, needed: Permission) -> bool {
        self.revoked_at.is_none() && self.permissions.iter().any(|p| p.grants(needed))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<KeyRecord>,
}

/// Errors specific to keys, on top of IO.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// Storage failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The key file is not valid JSON of the expected shape.
    #[error("{path}: invalid key file: {source}")]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A key with this name exists.
    #[error("a key named {0:?} already exists")]
    Duplicate(String),
    /// No active key has this name.
    #[error("no active key named {0:?}")]
    NotFound(String),
    /// Names are 1–64 characters of letters, digits, `-`, `_` and `.`.
    #[error("invalid key name {0:?}: use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidName(String),
}

/// The keys of one repository.
#[derive(Debug, Clone)]
pub struct KeyStore {
    store: Store,
}

impl KeyStore {
    /// The key store of a repository.
    pub fn new(store: &Store) -> KeyStore {
        KeyStore {
            store: store.clone(),
        }
    }

    /// The store the keys are kept in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Key records from the bytes of the key file.
    pub fn parse(&self, bytes: &[u8]) -> Result<Vec<KeyRecord>, KeyStoreError> {
        serde_json::from_slice::<KeyFile>(bytes)
            .map(|f| f.keys)
            .map_err(|source| KeyStoreError::Corrupt {
                path: self.path(),
                source,
            })
    }

    /// Where the keys are kept, for messages.
    pub fn path(&self) -> PathBuf {
        locate(&self.store, &StorageKey::Keys)
    }

    /// Every key, revoked ones included.
    pub fn load(&self) -> Result<Vec<KeyRecord>, KeyStoreError> {
        Ok(self.load_with_meta()?.0)
    }

    /// Every key, and the version token of the file they came from (`None`: no file yet).
    pub fn load_with_meta(&self) -> Result<(Vec<KeyRecord>, Option<Meta>), KeyStoreError> {
        match self
            .store
            .get(&StorageKey::Keys)
            .map_err(RegistryError::from)?
        {
            None => Ok((Vec::new(), None)),
            Some(object) => Ok((self.parse(&object.bytes)?, Some(object.meta))),
        }
    }

    /// Creates a key and returns its record and its secret, which is not stored anywhere.
    pub fn create(
        &self,
        name: &str,
        permissions: &[Permission],
        created_by: Option<&str>,
    ) -> Result<(KeyRecord, String), KeyStoreError> {
        if !is_valid_key_name(name) {
            return Err(KeyStoreError::InvalidName(name.chars().take(64).collect()));
        }
        let mut raw = [0u8; 16];
        aws_lc_rs::rand::fill(&mut raw).expect("the system RNG is available");
        let secret = hex::encode(raw);
        let record = KeyRecord {
            name: name.to_owned(),
            secret_hash: hash_secret(&secret),
            permissions: permissions.to_vec(),
            created_at: now(),
            revoked_at: None,
            created_by: created_by.map(str::to_owned),
        };
        self.update(|keys| {
            if keys
                .iter()
                .any(|k| k.name == name && k.revoked_at.is_none())
            {
                return Err(KeyStoreError::Duplicate(name.to_owned()));
            }
            keys.push(record.clone());
            Ok(())
        })?;
        Ok((record, secret))
    }

    /// Revokes the active key called `name`.
    pub fn revoke(&self, name: &str) -> Result<KeyRecord, KeyStoreError> {
        let mut revoked = None;
        self.update(|keys| {
            let key = keys
                .iter_mut()
                .find(|k| k.name == name && k.revoked_at.is_none())
                .ok_or_else(|| KeyStoreError::NotFound(name.to_owned()))?;
            key.revoked_at = Some(now());
            revoked = Some(key.clone());
            Ok(())
        })?;
        Ok(revoked.expect("set by a successful update"))
    }

    /// Read, change, and write back only if nobody wrote in between; else again.
    fn update(
        &self,
        mut change: impl FnMut(&mut Vec<KeyRecord>) -> Result<(), KeyStoreError>,
    ) -> Result<(), KeyStoreError> {
        state_file::update(
            &self.store,
            &StorageKey::Keys,
            || {
                let (keys, meta) = self.load_with_meta()?;
                Ok((KeyFile { keys }, meta))
            },
            |file| change(&mut file.keys).map(|()| true),
        )?;
        self.restrict()
    }

    /// On disk, only the owner may read even the hashes.
    fn restrict(&self) -> Result<(), KeyStoreError> {
        use std::os::unix::fs::PermissionsExt as _;
        let Some(root) = self.store.local_root() else {
            return Ok(());
        };
        let path = root.join(StorageKey::Keys.path());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
            KeyStoreError::Registry(RegistryError::Io {
                action: "setting permissions of",
                path,
                source,
            })
        })
    }
}

/// The one rule for a key's name: 1 to 64 ASCII letters, digits, `-`, `_` and `.`, not
/// starting with a dot and without `..` (a name is shown in URLs and messages, and may become
/// part of a path one day: it can never be a dot-file or a parent folder).
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.')
        && !name.contains("..")
}

/// Finds the active key whose secret is `presented`, comparing against every key in constant
/// time so the position of a match leaks nothing.
pub fn authenticate<'k>(keys: &'k [KeyRecord], presented: &str) -> Option<&'k KeyRecord> {
    let hash = hash_secret(presented);
    let mut found = None;
    for key in keys {
        if verify_slices_are_equal(key.secret_hash.as_bytes(), hash.as_bytes()).is_ok()
            && key.revoked_at.is_none()
        {
            found = Some(key);
        }
    }
    found
}

fn hash_secret(secret: &str) -> String {
    Checksum::sha256(secret.as_bytes()).to_hex_lower()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_follow_one_rule() {
        for good in ["ci", "ci-1.x", "team_a", &"k".repeat(64)] {
            assert!(is_valid_key_name(good), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "a..b",
            "a/b",
            "a b",
            "ci@host",
            &"k".repeat(65),
        ] {
            assert!(!is_valid_key_name(bad), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyStore::new(&Store::local(dir.path()));
        for bad in [".hidden", "a..b"] {
            assert!(matches!(
                keys.create(bad, &[Permission::Repository], None),
                Err(KeyStoreError::InvalidName(_))
            ));
        }
        assert!(crate::owners::is_valid_identity_name("ops@example.com"));
        assert!(!crate::owners::is_valid_identity_name("../keys"));
    }

    #[test]
    fn secrets_are_shown_once_stored_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(&hexrepo_store::Store::local(dir.path()));
        let (record, secret) = store.create("ci", &[Permission::Repository], None).unwrap();
        assert_eq!(secret.len(), 32);
        let stored = std::fs::read_to_string(store.path()).unwrap();
        assert!(
            !stored.contains(&secret),
            "the secret itself is never stored"
        );
        let keys = store.load().unwrap();
        assert_eq!(authenticate(&keys, &secret), Some(&record));
        assert_eq!(
            authenticate(&keys, "0123456789abcdef0123456789abcdef"),
            None
        );
        assert!(matches!(
            store.create("ci", &[], None),
            Err(KeyStoreError::Duplicate(_))
        ));
        assert!(matches!(
            store.create("bad name", &[], None),
            Err(KeyStoreError::InvalidName(_))
        ));
        store.revoke("ci").unwrap();
        assert_eq!(authenticate(&store.load().unwrap(), &secret), None);
        assert!(matches!(
            store.revoke("ci"),
            Err(KeyStoreError::NotFound(_))
        ));
    }

    #[test]
    fn write_implies_read_but_repository_is_separate() {
        assert!(Permission::ApiWrite.grants(Permission::ApiRead));
        assert!(!Permission::ApiRead.grants(Permission::ApiWrite));
        assert!(!Permission::ApiWrite.grants(Permission::Repository));
    }

    #[test]
    fn a_key_covers_only_keys_within_its_permissions() {
        let writer = [Permission::ApiWrite];
        assert!(covers(
            &writer,
            &[Permission::ApiRead, Permission::ApiWrite]
        ));
        assert!(!covers(&writer, &[Permission::Repository]));
        assert!(covers(
            &[Permission::Repository, Permission::ApiWrite],
            &[Permission::Repository]
        ));
        assert!(covers(&writer, &[]));
    }
}
