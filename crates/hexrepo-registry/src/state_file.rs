//! Our own small JSON state objects beside the repository (`.hexrepo/keys.json`,
//! `.hexrepo/owners.json`): read, changed, and written back only if nobody wrote in between
//! (compare-and-swap), else read again, so concurrent writers and replicas lose no update.

use hexrepo_store::{Bytes, Meta, Precondition, StorageKey, Store, StoreError};
use serde::Serialize;

use crate::error::RegistryError;
use crate::signed_files::MAX_ATTEMPTS;

/// Updates the JSON object at `key`: `load` reads it with the version it was read at, `change`
/// changes it and says whether it changed anything (nothing is written when it did not). Holds
/// the local repository lock, so writers on one machine queue rather than retry; returns
/// whether it wrote.
pub fn update<T: Serialize, E: From<RegistryError>>(
    store: &Store,
    key: &StorageKey,
    mut load: impl FnMut() -> Result<(T, Option<Meta>), E>,
    mut change: impl FnMut(&mut T) -> Result<bool, E>,
) -> Result<bool, E> {
    let _lock = store.lock().map_err(RegistryError::from)?;
    for _ in 0..MAX_ATTEMPTS {
        let (mut value, meta) = load()?;
        if !change(&mut value)? {
            return Ok(false);
        }
        let bytes = serde_json::to_vec_pretty(&value).expect("state files always serialise");
        let precondition = Precondition::unchanged_since(meta.as_ref());
        match store.put(key, Bytes::from(bytes), precondition) {
            Ok(_) => return Ok(true),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(RegistryError::from(e).into()),
        }
    }
    Err(RegistryError::Contention {
        path: key.path(),
        attempts: MAX_ATTEMPTS,
    }
    .into())
}
