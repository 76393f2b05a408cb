//! The archive's entries as an import sees them: which are mirror files, in which order and
//! how large (the first pass, [`survey`], reads only headers), and the error that names a
//! refused entry.

use std::collections::BTreeSet;
use std::io::{self, Read, Seek};

use hexfmt::keys::KeyError;
use hexfmt::tarball::MAX_TARBALL_SIZE;
use hexrepo_store::StorageKey;

use crate::mirror::verify::{Problem, UpstreamFileError};

/// The largest registry file an import reads (hex.pm's `versions`, the largest, is about 1 MiB).
pub const MAX_REGISTRY_FILE: u64 = 64 * 1024 * 1024;

/// An archive entry refused or not imported.
#[derive(Debug, thiserror::Error)]
#[error("{entry}: {problem}")]
pub struct ArchiveEntryError {
    /// The entry's path as the archive gives it (`archive` when no entry is to blame).
    pub entry: String,
    /// What is wrong (boxed, as in [`UpstreamFileError`]).
    #[source]
    pub problem: Box<EntryProblem>,
}

/// Why an archive entry was refused.
#[derive(Debug, thiserror::Error)]
pub enum EntryProblem {
    /// Not `names`, `versions`, `public_key`, `packages/NAME` or `tarballs/NAME-VERSION.tar`.
    #[error(
        "refused: not a mirror file (names, versions, public_key, packages/NAME, tarballs/NAME-VERSION.tar)"
    )]
    NotAMirrorFile,
    /// A symlink, hard link, directory or other non-file entry.
    #[error("refused: a {0} entry, not a regular file")]
    NotARegularFile(String),
    /// The same path twice: which one is meant is ambiguous.
    #[error("refused: a second entry with this path")]
    Duplicate,
    /// A registry file after a tarball: it could not be verified before the tarballs are read.
    #[error("refused: a registry file after a tarball (registry files come first)")]
    OutOfOrder,
    /// Larger than any such file may be.
    #[error("refused: {size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// The entry's size.
        size: u64,
        /// The limit for its kind.
        limit: u64,
    },
    /// `names` or `versions` is not in the archive.
    #[error("missing from the archive")]
    Missing,
    /// A tarball that no `packages/NAME` in the archive has a release for.
    #[error("refused: no packages/NAME in the archive has this release")]
    NotReleased,
    /// The archive's `public_key` is not the key the importing side is configured with.
    #[error("refused: the archive's key {archive} is not the configured upstream key {origin}")]
    KeyMismatch {
        /// Its fingerprint.
        archive: String,
        /// The configured key's fingerprint.
        origin: String,
    },
    /// The archive's `public_key` is not a key.
    #[error("refused: {0}")]
    BadKey(#[source] KeyError),
    /// Signature, origin fields, checksum or storage (see [`Problem`]).
    #[error(transparent)]
    Verify(Problem),
    /// The archive itself could not be read.
    #[error("reading the archive: {0}")]
    Read(#[source] io::Error),
}

impl ArchiveEntryError {
    pub(super) fn new(entry: impl Into<String>, problem: EntryProblem) -> ArchiveEntryError {
        ArchiveEntryError {
            entry: entry.into(),
            problem: Box::new(problem),
        }
    }
}

impl From<UpstreamFileError> for ArchiveEntryError {
    fn from(e: UpstreamFileError) -> ArchiveEntryError {
        ArchiveEntryError::new(e.path, EntryProblem::Verify(*e.problem))
    }
}

/// The first pass: every entry's header, without its contents. Returns the tarballs in the
/// archive, or every entry refused.
pub(super) fn survey<R: Read + Seek>(
    reader: R,
) -> Result<BTreeSet<String>, Vec<ArchiveEntryError>> {
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    let mut last: Option<String> = None;
    let mut tarballs = BTreeSet::new();
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| vec![ArchiveEntryError::new("archive", EntryProblem::Read(e))])?;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let after = last.map_or(String::new(), |p| format!(" (after {p})"));
                failures.push(ArchiveEntryError::new(
                    format!("archive{after}"),
                    EntryProblem::Read(e),
                ));
                break;
            }
        };
        last = Some(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        let (path, key) = match mirror_file(&entry) {
            Ok(found) => found,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let is_tarball = matches!(key, StorageKey::Tarball { .. });
        let limit = size_limit(&key);
        let problem = if !seen.insert(path.clone()) {
            Some(EntryProblem::Duplicate)
        } else if !is_tarball && !tarballs.is_empty() {
            Some(EntryProblem::OutOfOrder)
        } else if entry.size() > limit {
            Some(EntryProblem::TooLarge {
                size: entry.size(),
                limit,
            })
        } else {
            None
        };
        match problem {
            Some(problem) => failures.push(ArchiveEntryError::new(path, problem)),
            None if is_tarball => {
                tarballs.insert(path);
            }
            None => {}
        }
    }
    for index in [StorageKey::Names, StorageKey::Versions] {
        if !seen.contains(&index.path()) {
            failures.push(ArchiveEntryError::new(index.path(), EntryProblem::Missing));
        }
    }
    if failures.is_empty() {
        Ok(tarballs)
    } else {
        Err(failures)
    }
}

/// The entry's path and key, if it is a regular file at a mirror file's canonical path.
pub(super) fn mirror_file<R: Read>(
    entry: &tar::Entry<'_, R>,
) -> Result<(String, StorageKey), ArchiveEntryError> {
    let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let kind = entry.header().entry_type();
    if kind != tar::EntryType::Regular {
        return Err(ArchiveEntryError::new(
            path,
            EntryProblem::NotARegularFile(format!("{kind:?}").to_lowercase()),
        ));
    }
    match StorageKey::from_repository_path(&path) {
        Some(
            key @ (StorageKey::Names
            | StorageKey::Versions
            | StorageKey::PublicKey
            | StorageKey::Package(_)
            | StorageKey::Tarball { .. }),
        ) if key.path() == path => Ok((path, key)),
        _ => Err(ArchiveEntryError::new(path, EntryProblem::NotAMirrorFile)),
    }
}

/// The largest entry of `key`'s kind an import reads.
pub(super) fn size_limit(key: &StorageKey) -> u64 {
    match key {
        StorageKey::Tarball { .. } => MAX_TARBALL_SIZE,
        _ => MAX_REGISTRY_FILE,
    }
}

/// An entry's contents: all of them, and no more than its kind's limit.
pub(super) fn read_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    key: &StorageKey,
) -> Result<Vec<u8>, EntryProblem> {
    let (size, limit) = (entry.size(), size_limit(key));
    if size > limit {
        return Err(EntryProblem::TooLarge { size, limit });
    }
    let mut bytes = Vec::new();
    entry
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(EntryProblem::Read)?;
    if bytes.len() as u64 != size {
        let short = io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the archive ends inside this entry",
        );
        return Err(EntryProblem::Read(short));
    }
    Ok(bytes)
}
