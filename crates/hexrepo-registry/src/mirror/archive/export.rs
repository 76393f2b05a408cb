//! Writing the archive: the mirror's registry files, then the tarballs its packages name, one
//! at a time, with fixed headers so the same mirror always gives the same bytes.

use std::collections::BTreeSet;
use std::io::{self, Write};

use hexfmt::keys::PublicKey;
use hexfmt::proto::package::Package;
use hexfmt::registry::{RegistryError, decode_envelope, decode_payload};
use hexrepo_store::{Folder, StorageKey, Store, StoreError};

/// What an export wrote.
#[derive(Debug, Default)]
pub struct ExportReport {
    /// `names`, `versions`, `public_key` and `packages/*` written.
    pub registry_files: usize,
    /// `packages/*` among them.
    pub packages: usize,
    /// `tarballs/*` written.
    pub tarballs: usize,
    /// Bytes of file contents written (the archive adds headers and padding).
    pub bytes: u64,
    /// Tarballs in the mirror that no `packages/NAME` names, left out.
    pub unreleased_tarballs: usize,
    /// The fingerprint of the mirror's `public_key`, which an importer must be configured with.
    pub key_fingerprint: Option<String>,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store holds no `names`: nothing verified was ever mirrored into it.
    #[error("{store}: no names file, so not a mirror (run `hexrepo mirror sync` first)")]
    NotAMirror {
        /// The store, as [`Store::describe`] gives it.
        store: String,
    },
    /// A file listed in the store was gone when read.
    #[error("{path}: listed in the mirror but gone when read")]
    Vanished {
        /// The file.
        path: String,
    },
    /// A stored `packages/NAME` that does not decode.
    #[error("{path}: {source}")]
    Decode {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// The store failed.
    #[error("reading the mirror: {0}")]
    Store(#[from] StoreError),
    /// The archive could not be written.
    #[error("writing the archive: {0}")]
    Write(#[from] io::Error),
}

/// Writes the mirror's repository files to `writer` as a tar, registry files first, then the
/// tarballs one at a time (so memory holds at most one file). Entries carry mode 0644 and
/// mtime 0, so the same mirror always gives the same archive.
pub fn export<W: Write>(store: &Store, writer: W) -> Result<ExportReport, ExportError> {
    let names = store
        .get(&StorageKey::Names)?
        .ok_or_else(|| ExportError::NotAMirror {
            store: store.describe().to_owned(),
        })?;
    let mut tar = tar::Builder::new(writer);
    let mut report = ExportReport::default();
    append(&mut tar, &StorageKey::Names, &names.bytes, &mut report)?;
    for key in [StorageKey::Versions, StorageKey::PublicKey] {
        if let Some(object) = store.get(&key)? {
            if key == StorageKey::PublicKey {
                report.key_fingerprint = PublicKey::from_pem(&object.bytes)
                    .ok()
                    .map(|k| k.fingerprint());
            }
            append(&mut tar, &key, &object.bytes, &mut report)?;
        }
    }
    // Only the tarballs an exported package names: one a sync stored for a package it then
    // failed to write (or wrote during this export) is not a release the archive could verify.
    let mut released = BTreeSet::new();
    for meta in store.list(Folder::Packages)? {
        let Some(key @ StorageKey::Package(_)) = StorageKey::from_repository_path(&meta.path)
        else {
            continue;
        };
        let object = store
            .get(&key)?
            .ok_or(ExportError::Vanished { path: meta.path })?;
        released.extend(release_paths(&key, &object.bytes)?);
        append(&mut tar, &key, &object.bytes, &mut report)?;
        report.packages += 1;
    }
    for meta in store.list(Folder::Tarballs)? {
        if !released.contains(&meta.path) {
            report.unreleased_tarballs += 1;
            continue;
        }
        let key = StorageKey::from_repository_path(&meta.path)
            .expect("a released tarball's path is a tarball key");
        let object = store
            .get(&key)?
            .ok_or(ExportError::Vanished { path: meta.path })?;
        append(&mut tar, &key, &object.bytes, &mut report)?;
        report.tarballs += 1;
    }
    tar.into_inner()?.flush()?;
    Ok(report)
}

/// The tarball paths of a stored `packages/NAME`'s releases. Decoded only: the mirror verified
/// it when it stored it, and the importer verifies it again with its own key.
fn release_paths(key: &StorageKey, file: &[u8]) -> Result<Vec<String>, ExportError> {
    let StorageKey::Package(name) = key else {
        return Ok(Vec::new());
    };
    let package: Package = decode_envelope(file)
        .and_then(|signed| decode_payload(&signed.payload, "Package"))
        .map_err(|source| ExportError::Decode {
            path: key.path(),
            source,
        })?;
    Ok(package
        .releases
        .iter()
        .map(|r| StorageKey::tarball(name, &r.version).path())
        .collect())
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    key: &StorageKey,
    bytes: &[u8],
    report: &mut ExportReport,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    tar.append_data(&mut header, key.path(), bytes)?;
    if !matches!(key, StorageKey::Tarball { .. }) {
        report.registry_files += 1;
    }
    report.bytes += bytes.len() as u64;
    Ok(())
}
