//! Package owners: who is responsible for a package, and who may change that (the rules behind
//! `mix hex.owner`). This server has no user accounts; its identities are its repository keys,
//! by name, and the operator's basic-auth username. Each package has a list of owners, each an
//! identity with a level, `full` or `maintainer`. All packages' owners are kept in one object,
//! `.hexrepo/owners.json` (hidden, never served), so that a key's packages are found in one
//! read (`GET /users/me`, which mix asks before every publish), and written with conditional
//! writes, so concurrent replicas lose no update.
//!
//! The rules, all here and nowhere else:
//! - the key that publishes a package's first release becomes its `full` owner; a publish by the
//!   operator records nobody;
//! - ownership does not gate publishing: as in a hex.pm organization, every key with `api:write`
//!   may publish any package of the repository. Owners say who is responsible and who may
//!   change ownership;
//! - a full owner, the operator, or anyone while the package has no owners yet may add, transfer
//!   (the new owner becomes the only owner, as on hex.pm) and remove owners;
//! - a new owner must be an identity: an active key or the operator's username;
//! - once a package has owners, one of them is `full`: removing or demoting the last full owner
//!   is refused.
//!
//! Owners are names, not key records: a key revoked and created again under the same name (a
//! rotation) keeps its packages, and an owner whose key was revoked stays listed, and can be
//! removed, until someone acts.
//!
//! It never decides who may write at all (`api:write` is the server's check) and never touches
//! the registry files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use hexrepo_store::{Meta, StorageKey, Store};

use crate::error::RegistryError;
use crate::keys::{KeyStore, KeyStoreError, is_valid_key_name};
use crate::layout::locate;
use crate::state_file;

/// How much an owner may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// May change the owners.
    Full,
    /// Listed as responsible; may not change the owners.
    Maintainer,
}

impl Level {
    /// The level as Hex writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Full => "full",
            Level::Maintainer => "maintainer",
        }
    }
}

impl FromStr for Level {
    type Err = OwnersError;

    fn from_str(level: &str) -> Result<Level, OwnersError> {
        match level {
            "full" => Ok(Level::Full),
            "maintainer" => Ok(Level::Maintainer),
            other => Err(OwnersError::InvalidLevel(other.chars().take(64).collect())),
        }
    }
}

/// One owner of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The identity: a key name, or the operator's basic-auth username.
    pub name: String,
    /// What it may do.
    pub level: Level,
    /// When it became an owner, seconds since the epoch.
    pub inserted_at: u64,
    /// When its level last changed.
    pub updated_at: u64,
}

/// `.hexrepo/owners.json`: each package's owners, by package name.
#[derive(Debug, Default, Serialize, Deserialize)]
struct OwnersFile {
    packages: BTreeMap<String, Vec<Owner>>,
}

/// The one rule for a name that may own packages: a key's name ([`is_valid_key_name`]), or an
/// operator's basic-auth username, which may also hold `@` (an e-mail address as user name).
pub fn is_valid_identity_name(name: &str) -> bool {
    is_valid_key_name(&name.replace('@', "-"))
}

/// Who asks for a change.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// The identity it acts as (a key name, or the operator's username).
    pub name: &'a str,
    /// The basic-auth operator, who may change any package's owners.
    pub operator: bool,
}

/// Why an owners operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OwnersError {
    /// Storage failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The key file could not be read, so identities cannot be checked.
    #[error(transparent)]
    Keys(#[from] KeyStoreError),
    /// An owners file is not valid JSON of the expected shape.
    #[error("{path}: invalid owners file: {source}")]
    Corrupt {
        /// The owners file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The repository has no such package.
    #[error("no package named {0:?}")]
    NoSuchPackage(String),
    /// The would-be owner is neither an active key nor the operator.
    #[error("no active key or operator named {0:?}")]
    UnknownIdentity(String),
    /// The requester may not change this package's owners.
    #[error(
        "only a full owner of {package} or the operator may change its owners; {requester:?} is not one"
    )]
    NotAllowed {
        /// The package.
        package: String,
        /// Who asked.
        requester: String,
    },
    /// The identity does not own the package.
    #[error("{owner:?} is not an owner of {package}")]
    NotAnOwner {
        /// The package.
        package: String,
        /// The identity named.
        owner: String,
    },
    /// The change would leave an owned package without a full owner.
    #[error("{package} must keep a full owner: add another full owner first")]
    LastFullOwner {
        /// The package.
        package: String,
    },
    /// A level other than `full` or `maintainer`.
    #[error("invalid level {0:?}: expected full or maintainer")]
    InvalidLevel(String),
}

/// The owners of the packages of one repository.
#[derive(Debug, Clone)]
pub struct OwnerStore<'a> {
    store: Store,
    /// The operator's basic-auth username, when one is configured: an identity like a key name.
    operator: Option<&'a str>,
}

impl<'a> OwnerStore<'a> {
    /// The owners of a repository's packages; `operator` is the basic-auth username, if any.
    pub fn new(store: &Store, operator: Option<&'a str>) -> OwnerStore<'a> {
        OwnerStore {
            store: store.clone(),
            operator,
        }
    }

    /// The owners of `package`, oldest first; 404-worthy when the package does not exist.
    pub fn list(&self, package: &str) -> Result<Vec<Owner>, OwnersError> {
        self.require_package(package)?;
        self.owners_of(package)
    }

    /// The owners of `package`, without checking it exists (a package read just now).
    pub fn owners_of(&self, package: &str) -> Result<Vec<Owner>, OwnersError> {
        Ok(self.load()?.0.packages.remove(package).unwrap_or_default())
    }

    /// The packages `identity` owns, by name, with its level in each: one read.
    pub fn owned_by(&self, identity: &str) -> Result<Vec<(String, Level)>, OwnersError> {
        Ok(self
            .load()?
            .0
            .packages
            .into_iter()
            .filter_map(|(package, owners)| {
                owners
                    .into_iter()
                    .find(|o| o.name == identity)
                    .map(|owner| (package, owner.level))
            })
            .collect())
    }

    /// Makes `key` the full owner of `package` if the package has no owners yet (its first
    /// release was just published); returns whether it did. Never overwrites: owners written
    /// meanwhile, or left from an earlier life of the package, win.
    pub fn record_first_publisher(&self, package: &str, key: &str) -> Result<bool, OwnersError> {
        self.write(|file| {
            if file.packages.contains_key(package) {
                return Ok(false);
            }
            let now = now();
            file.packages.insert(
                package.to_owned(),
                vec![Owner {
                    name: key.to_owned(),
                    level: Level::Full,
                    inserted_at: now,
                    updated_at: now,
                }],
            );
            Ok(true)
        })
    }

    /// Adds `owner` at `level`, or changes its level; with `transfer`, `owner` becomes the
    /// package's only owner, at `full`. Returns whether anything changed.
    pub fn add(
        &self,
        package: &str,
        by: Requester<'_>,
        owner: &str,
        level: Level,
        transfer: bool,
    ) -> Result<bool, OwnersError> {
        self.require_package(package)?;
        let identities = self.identities()?;
        self.update(package, by, |owners| {
            if !identities.iter().any(|i| i == owner) {
                return Err(OwnersError::UnknownIdentity(owner.to_owned()));
            }
            let now = now();
            let inserted_at = owners
                .iter()
                .find(|o| o.name == owner)
                .map_or(now, |o| o.inserted_at);
            if transfer {
                let sole = vec![Owner {
                    name: owner.to_owned(),
                    level: Level::Full,
                    inserted_at,
                    updated_at: now,
                }];
                let unchanged =
                    owners.len() == 1 && owners[0].name == owner && owners[0].level == Level::Full;
                *owners = sole;
                return Ok(!unchanged);
            }
            match owners.iter_mut().find(|o| o.name == owner) {
                Some(existing) if existing.level == level => return Ok(false),
                Some(existing) => {
                    existing.level = level;
                    existing.updated_at = now;
                }
                None => owners.push(Owner {
                    name: owner.to_owned(),
                    level,
                    inserted_at: now,
                    updated_at: now,
                }),
            }
            Ok(true)
        })
    }

    /// Removes `owner`, which may be a key revoked since it became an owner.
    pub fn remove(&self, package: &str, by: Requester<'_>, owner: &str) -> Result<(), OwnersError> {
        self.require_package(package)?;
        let identities = self.identities()?;
        self.update(package, by, |owners| {
            let before = owners.len();
            owners.retain(|o| o.name != owner);
            if owners.len() == before {
                return Err(if identities.iter().any(|i| i == owner) {
                    OwnersError::NotAnOwner {
                        package: package.to_owned(),
                        owner: owner.to_owned(),
                    }
                } else {
                    OwnersError::UnknownIdentity(owner.to_owned())
                });
            }
            Ok(true)
        })
        .map(drop)
    }

    /// Where the owners are kept, for messages.
    pub fn path(&self) -> PathBuf {
        locate(&self.store, &StorageKey::Owners)
    }

    fn require_package(&self, package: &str) -> Result<(), OwnersError> {
        match self
            .store
            .head(&StorageKey::package(package))
            .map_err(RegistryError::from)?
        {
            Some(_) => Ok(()),
            None => Err(OwnersError::NoSuchPackage(package.to_owned())),
        }
    }

    /// The names that may own packages: active keys and the operator.
    fn identities(&self) -> Result<Vec<String>, OwnersError> {
        let mut names: Vec<String> = KeyStore::new(&self.store)
            .load()?
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| k.name)
            .collect();
        names.extend(self.operator.map(str::to_owned));
        Ok(names)
    }

    fn load(&self) -> Result<(OwnersFile, Option<Meta>), OwnersError> {
        match self
            .store
            .get(&StorageKey::Owners)
            .map_err(RegistryError::from)?
        {
            None => Ok((OwnersFile::default(), None)),
            Some(object) => serde_json::from_slice::<OwnersFile>(&object.bytes)
                .map(|file| (file, Some(object.meta)))
                .map_err(|source| OwnersError::Corrupt {
                    path: self.path(),
                    source,
                }),
        }
    }

    /// Read, check the requester may change `package`'s owners, change them, check a full
    /// owner is left, and write back; `change` says whether it changed anything.
    fn update(
        &self,
        package: &str,
        by: Requester<'_>,
        mut change: impl FnMut(&mut Vec<Owner>) -> Result<bool, OwnersError>,
    ) -> Result<bool, OwnersError> {
        self.write(|file| {
            let mut owners = file.packages.get(package).cloned().unwrap_or_default();
            if !may_change(&owners, by) {
                return Err(OwnersError::NotAllowed {
                    package: package.to_owned(),
                    requester: by.name.to_owned(),
                });
            }
            if !change(&mut owners)? {
                return Ok(false);
            }
            if !owners.iter().any(|o| o.level == Level::Full) {
                return Err(OwnersError::LastFullOwner {
                    package: package.to_owned(),
                });
            }
            file.packages.insert(package.to_owned(), owners);
            Ok(true)
        })
    }

    /// Read the owners, `change` them, and write them back only if nobody wrote in between;
    /// else again. Nothing is written when `change` says it changed nothing.
    fn write(
        &self,
        change: impl FnMut(&mut OwnersFile) -> Result<bool, OwnersError>,
    ) -> Result<bool, OwnersError> {
        state_file::update(&self.store, &StorageKey::Owners, || self.load(), change)
    }
}

/// The one rule for who may change a package's owners.
fn may_change(owners: &[Owner], by: Requester<'_>) -> bool {
    by.operator
        || owners.is_empty()
        || owners
            .iter()
            .any(|o| o.name == by.name && o.level == Level::Full)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Permission;
    use hexrepo_store::{Bytes, Precondition};

    fn repository() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path());
        store
            .put(
                &StorageKey::package("foo"),
                Bytes::from_static(b"x"),
                Precondition::Overwrite,
            )
            .unwrap();
        let keys = KeyStore::new(&store);
        for name in ["alice", "bob", "carol"] {
            keys.create(name, &[Permission::ApiWrite], None).unwrap();
        }
        (store, dir)
    }

    fn key(name: &str) -> Requester<'_> {
        Requester {
            name,
            operator: false,
        }
    }

    #[test]
    fn the_first_publisher_owns_and_full_owners_decide() {
        let (store, _dir) = repository();
        let owners = OwnerStore::new(&store, Some("admin"));
        assert!(owners.record_first_publisher("foo", "alice").unwrap());
        assert!(!owners.record_first_publisher("foo", "bob").unwrap());
        assert!(matches!(
            owners.add("foo", key("bob"), "bob", Level::Full, false),
            Err(OwnersError::NotAllowed { .. })
        ));
        assert!(
            owners
                .add("foo", key("alice"), "bob", Level::Maintainer, false)
                .unwrap()
        );
        assert!(
            !owners
                .add("foo", key("alice"), "bob", Level::Maintainer, false)
                .unwrap()
        );
        // A maintainer may not change owners; the operator may.
        assert!(matches!(
            owners.remove("foo", key("bob"), "alice"),
            Err(OwnersError::NotAllowed { .. })
        ));
        let operator = Requester {
            name: "admin",
            operator: true,
        };
        assert!(
            owners
                .add("foo", operator, "admin", Level::Maintainer, false)
                .unwrap()
        );
        let listed: Vec<_> = owners
            .list("foo")
            .unwrap()
            .into_iter()
            .map(|o| (o.name, o.level))
            .collect();
        assert_eq!(
            listed,
            [
                ("alice".to_owned(), Level::Full),
                ("bob".to_owned(), Level::Maintainer),
                ("admin".to_owned(), Level::Maintainer)
            ]
        );
        assert_eq!(
            owners.owned_by("bob").unwrap(),
            [("foo".to_owned(), Level::Maintainer)]
        );
    }

    #[test]
    fn a_full_owner_is_always_left() {
        let (store, _dir) = repository();
        let owners = OwnerStore::new(&store, None);
        owners.record_first_publisher("foo", "alice").unwrap();
        assert!(matches!(
            owners.remove("foo", key("alice"), "alice"),
            Err(OwnersError::LastFullOwner { .. })
        ));
        assert!(matches!(
            owners.add("foo", key("alice"), "alice", Level::Maintainer, false),
            Err(OwnersError::LastFullOwner { .. })
        ));
        assert!(matches!(
            owners.add("foo", key("alice"), "nobody", Level::Full, false),
            Err(OwnersError::UnknownIdentity(name)) if name == "nobody"
        ));
        assert!(matches!(
            owners.remove("foo", key("alice"), "carol"),
            Err(OwnersError::NotAnOwner { .. })
        ));
        assert!(matches!(
            owners.list("bar"),
            Err(OwnersError::NoSuchPackage(_))
        ));
        owners
            .add("foo", key("alice"), "bob", Level::Maintainer, false)
            .unwrap();
        assert!(
            owners
                .add("foo", key("alice"), "carol", Level::Maintainer, true)
                .unwrap()
        );
        let listed: Vec<_> = owners
            .list("foo")
            .unwrap()
            .into_iter()
            .map(|o| (o.name, o.level))
            .collect();
        assert_eq!(listed, [("carol".to_owned(), Level::Full)]);
    }

    #[test]
    fn levels_parse_as_hex_writes_them() {
        assert_eq!("full".parse::<Level>().unwrap(), Level::Full);
        assert_eq!(Level::Maintainer.as_str(), "maintainer");
        assert!(matches!(
            "owner".parse::<Level>(),
            Err(OwnersError::InvalidLevel(_))
        ));
    }
}
