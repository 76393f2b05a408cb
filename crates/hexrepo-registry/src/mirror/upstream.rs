//! How the mirror asks the upstream for files: tarballs plainly, registry files conditionally
//! with the ETag upstream gave for the bytes the mirror holds (HEX-PROTOCOL.md §1.7), so an
//! unchanged file costs a 304. Nothing here verifies or writes; [`super::sync`] does both.

use std::collections::BTreeMap;

use hexrepo_store::{StorageKey, Store};

use super::verify::{Problem, UpstreamFileError};
use crate::verify::{Conditional, Source};

/// A registry file as upstream gave it (or as the mirror holds it, when upstream said 304).
pub(super) struct RegistryFile {
    pub(super) bytes: Vec<u8>,
    /// Upstream's ETag for these bytes, when it sent one.
    pub(super) etag: Option<String>,
    /// Upstream answered 304: these are the mirror's stored bytes.
    pub(super) not_modified: bool,
}

/// Upstream ETags of the registry files the mirror holds, by path.
pub(super) type Etags = BTreeMap<String, String>;

/// One upstream file; a 404 is [`Problem::Missing`].
pub(super) fn fetch(upstream: &dyn Source, key: &StorageKey) -> Result<Vec<u8>, UpstreamFileError> {
    match upstream.fetch(&key.path()) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(UpstreamFileError::new(key, Problem::Missing)),
        Err(e) => Err(UpstreamFileError::new(key, Problem::Fetch(e))),
    }
}

/// A registry file, asked for conditionally when the mirror holds it with a known upstream
/// ETag: an unchanged file costs a 304, and its stored copy is verified again by the caller
/// all the same.
pub(super) fn fetch_registry_file(
    upstream: &dyn Source,
    store: &Store,
    etags: &Etags,
    key: &StorageKey,
) -> Result<RegistryFile, UpstreamFileError> {
    let known = etags.get(&key.path());
    let stored = match known {
        Some(_) => store
            .get(key)
            .map_err(|e| UpstreamFileError::new(key, Problem::Store(e)))?,
        None => None,
    };
    let etag = stored.as_ref().and(known).map(String::as_str);
    match upstream.fetch_if_none_match(&key.path(), etag) {
        Ok(Conditional::Found { bytes, etag }) => Ok(RegistryFile {
            bytes,
            etag,
            not_modified: false,
        }),
        Ok(Conditional::NotModified) => match stored {
            Some(object) => Ok(RegistryFile {
                bytes: object.bytes.to_vec(),
                etag: known.cloned(),
                not_modified: true,
            }),
            None => Err(UpstreamFileError::new(
                key,
                Problem::Fetch("304 Not Modified to an unconditional request".into()),
            )),
        },
        Ok(Conditional::Missing) => Err(UpstreamFileError::new(key, Problem::Missing)),
        Err(e) => Err(UpstreamFileError::new(key, Problem::Fetch(e))),
    }
}
