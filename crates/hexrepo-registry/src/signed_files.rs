//! The signed registry files of one repository in a [`Store`]: read and verified with the
//! version token each was read at, and written re-signed on the condition that nobody wrote
//! in between (HEX-PROTOCOL.md §1.2–1.3). Publish, revert and retire all go through here, so
//! every writer updates `versions` and `names` the same way and loses races the same way: it
//! re-reads and tries again.

use hexfmt::keys::{PrivateKey, PublicKey};
use hexfmt::proto::names::Names;
use hexfmt::proto::package::Package;
use hexfmt::proto::versions::Versions;
use hexfmt::registry::{encode_signed, read_names, read_package, read_versions};
use hexrepo_store::{Bytes, Meta, Precondition, StorageKey, Store, StoreError, Write};

use crate::error::RegistryError;
use crate::index::{update_names, update_versions};
use crate::layout::locate;

/// How many times a writer re-reads and retries after losing a race before giving up.
pub const MAX_ATTEMPTS: u32 = 64;

/// One repository's registry files, with the key that signs them.
#[derive(Debug, Clone, Copy)]
pub struct SignedFiles<'a> {
    /// Where the repository is.
    pub store: &'a Store,
    /// The repository name every file carries.
    pub repository: &'a str,
    /// The signing key.
    pub key: &'a PrivateKey,
}

/// A decoded file and the version token it was read at (`None`: it did not exist).
#[derive(Debug, Clone)]
pub struct Read<T> {
    /// The content (an empty index when the file did not exist).
    pub value: T,
    /// The token to write it back against.
    pub meta: Option<Meta>,
}

impl<T> Read<T> {
    /// The write that replaces this file with `bytes` only if it is unchanged since read.
    pub fn replace_with(&self, key: StorageKey, bytes: Bytes) -> Write {
        Write {
            key,
            bytes,
            precondition: Precondition::unchanged_since(self.meta.as_ref()),
        }
    }
}

/// `versions` and `names`, read together.
#[derive(Debug, Clone)]
pub struct Indexes {
    /// `versions`.
    pub versions: Read<Versions>,
    /// `names`.
    pub names: Read<Names>,
}

impl SignedFiles<'_> {
    /// Runs two reads, at once on an object store (where each is a round trip), one after
    /// the other on local disk (where a thread would cost more than it saves).
    pub fn both<A: Send, B: Send>(
        &self,
        a: impl FnOnce() -> A + Send,
        b: impl FnOnce() -> B + Send,
    ) -> (A, B) {
        if self.store.local_root().is_some() {
            return (a(), b());
        }
        std::thread::scope(|scope| {
            let a = scope.spawn(a);
            let b = b();
            (a.join().expect("a registry read does not panic"), b)
        })
    }

    /// `versions` and `names`, verified.
    pub fn indexes(&self) -> Result<Indexes, RegistryError> {
        let (versions, names) = self.both(|| self.versions(), || self.names());
        Ok(Indexes {
            versions: versions?,
            names: names?,
        })
    }

    /// `packages/NAME`, verified; `None` when there is no such package.
    pub fn package(&self, name: &str) -> Result<Option<Read<Package>>, RegistryError> {
        let key = StorageKey::package(name);
        let Some(object) = self.store.get(&key)? else {
            return Ok(None);
        };
        let value = read_package(&object.bytes, &self.key.public_key(), self.repository, name)
            .map_err(|source| self.corrupt(&key, source))?;
        Ok(Some(Read {
            value,
            meta: Some(object.meta),
        }))
    }

    /// `versions`, verified; empty when there is none yet.
    pub fn versions(&self) -> Result<Read<Versions>, RegistryError> {
        self.index(&StorageKey::Versions, read_versions, |repository| {
            Versions {
                packages: Vec::new(),
                repository,
            }
        })
    }

    /// `names`, verified; empty when there is none yet.
    pub fn names(&self) -> Result<Read<Names>, RegistryError> {
        self.index(&StorageKey::Names, read_names, |repository| Names {
            packages: Vec::new(),
            repository,
        })
    }

    /// An index file read with `decode`, or `empty` (given the repository name) when missing.
    fn index<T>(
        &self,
        key: &StorageKey,
        decode: fn(&[u8], &PublicKey, &str) -> Result<T, hexfmt::registry::RegistryError>,
        empty: impl FnOnce(String) -> T,
    ) -> Result<Read<T>, RegistryError> {
        match self.store.get(key)? {
            Some(object) => Ok(Read {
                value: decode(&object.bytes, &self.key.public_key(), self.repository)
                    .map_err(|source| self.corrupt(key, source))?,
                meta: Some(object.meta),
            }),
            None => Ok(Read {
                value: empty(self.repository.to_owned()),
                meta: None,
            }),
        }
    }

    /// Signs a message.
    pub fn sign(&self, message: &impl prost::Message) -> Bytes {
        Bytes::from(encode_signed(message.encode_to_vec(), self.key))
    }

    /// The writes that bring `versions` and `names` in line with `package` (with no releases:
    /// remove it), each conditional on the index being unchanged since read. `updated_at` is the
    /// `names` timestamp, `None` to keep the one recorded.
    pub fn index_writes(
        &self,
        indexes: Indexes,
        package: &Package,
        updated_at: Option<i64>,
    ) -> Vec<Write> {
        let Indexes {
            mut versions,
            mut names,
        } = indexes;
        update_versions(&mut versions.value, package);
        let seconds = if package.releases.is_empty() {
            None
        } else {
            updated_at
                .or_else(|| {
                    names
                        .value
                        .packages
                        .iter()
                        .find(|p| p.name == package.name)
                        .and_then(|p| p.updated_at.map(|t| t.seconds))
                })
                .or(Some(0))
        };
        update_names(&mut names.value, &package.name, seconds);
        vec![
            versions.replace_with(StorageKey::Versions, self.sign(&versions.value)),
            names.replace_with(StorageKey::Names, self.sign(&names.value)),
        ]
    }

    /// Runs `attempt` until it commits without losing a race, at most [`MAX_ATTEMPTS`] times.
    /// `attempt` is told how many times it ran before, and returns its result or a conflict.
    pub fn retrying<T, E: From<RegistryError>>(
        &self,
        what: &StorageKey,
        mut attempt: impl FnMut(u32) -> Result<T, E>,
        is_conflict: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        for n in 0..MAX_ATTEMPTS {
            match attempt(n) {
                Err(e) if is_conflict(&e) => backoff(n),
                other => return other,
            }
        }
        Err(RegistryError::Contention {
            path: what.path(),
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    fn corrupt(&self, key: &StorageKey, source: hexfmt::registry::RegistryError) -> RegistryError {
        RegistryError::RegistryFile {
            path: locate(self.store, key),
            source,
        }
    }
}

/// Whether a registry error is a lost race, worth re-reading and retrying.
pub fn is_conflict(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Store(StoreError::Conflict { .. }))
}

/// A short, growing, jittered pause, so racing writers spread out instead of colliding again.
/// It grows to 128–384 ms: on a slow store (moto on a loaded machine) one round of eight
/// writers takes longer than the 64 ms it used to stop at, and a writer could lose all of its
/// attempts.
fn backoff(attempt: u32) {
    let mut bytes = [0u8; 2];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG is available");
    let base_ms = 1u64 << attempt.min(8);
    let jitter = u64::from(u16::from_le_bytes(bytes)) % (base_ms + 1);
    std::thread::sleep(std::time::Duration::from_millis(base_ms / 2 + jitter));
}
