//! Retiring and unretiring a release in place (`hexrepo retire` / `unretire`): re-signs that
//! package's `packages/NAME` and the `retired` indexes of `versions`, touching nothing else
//! (HEX-PROTOCOL.md §2.4 `RetirementStatus`, §6.4 retire semantics).

use std::str::FromStr;

use hexfmt::keys::PrivateKey;
use hexfmt::proto::package::{RetirementReason, RetirementStatus};
use hexrepo_store::{StorageKey, Store};

use crate::build::{Action, Change};
use crate::error::RegistryError;
use crate::index::update_versions;
use crate::layout::locate;
use crate::signed_files::{SignedFiles, is_conflict};

/// Why a release was retired: the five reasons Hex knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Any other reason.
    Other,
    /// The release is broken.
    Invalid,
    /// It has a security problem.
    Security,
    /// The package is no longer maintained.
    Deprecated,
    /// The package was renamed.
    Renamed,
}

impl FromStr for Reason {
    type Err = String;

    fn from_str(s: &str) -> Result<Reason, String> {
        Ok(match s {
            "other" => Reason::Other,
            "invalid" => Reason::Invalid,
            "security" => Reason::Security,
            "deprecated" => Reason::Deprecated,
            "renamed" => Reason::Renamed,
            _ => {
                return Err(format!(
                    "unknown retirement reason {s:?}: use other, invalid, security, deprecated or renamed"
                ));
            }
        })
    }
}

impl Reason {
    fn to_proto(self) -> RetirementReason {
        match self {
            Reason::Other => RetirementReason::RetiredOther,
            Reason::Invalid => RetirementReason::RetiredInvalid,
            Reason::Security => RetirementReason::RetiredSecurity,
            Reason::Deprecated => RetirementReason::RetiredDeprecated,
            Reason::Renamed => RetirementReason::RetiredRenamed,
        }
    }
}

/// A retirement to record.
#[derive(Debug, Clone)]
pub struct Retirement {
    /// Why.
    pub reason: Reason,
    /// What users are told; 3 to 140 characters, as on hex.pm.
    pub message: String,
}

/// Sets (`Some`) or clears (`None`) the retirement of `package` `version`. Returns the files
/// rewritten: none when the release was already in that state.
pub fn set_retirement(
    store: &Store,
    repository: &str,
    key: &PrivateKey,
    package: &str,
    version: &str,
    retirement: Option<&Retirement>,
) -> Result<Vec<Change>, RegistryError> {
    if let Some(r) = retirement {
        let len = r.message.chars().count();
        if !(3..=140).contains(&len) {
            return Err(RegistryError::RetirementMessage(len));
        }
    }
    let _lock = store.lock()?;
    let files = SignedFiles {
        store,
        repository,
        key,
    };
    let package_key = StorageKey::package(package);
    files.retrying(
        &package_key,
        |_| {
            let read = files
                .package(package)?
                .ok_or_else(|| RegistryError::NoSuchPackage(package.to_owned()))?;
            let mut decoded = read.value.clone();
            let release = decoded
                .releases
                .iter_mut()
                .find(|r| r.version == version)
                .ok_or_else(|| RegistryError::NoSuchRelease {
                    package: package.to_owned(),
                    version: version.to_owned(),
                })?;
            let status = retirement.map(|r| RetirementStatus {
                reason: r.reason.to_proto() as i32,
                message: Some(r.message.clone()),
            });
            if release.retired == status {
                return Ok(Vec::new());
            }
            release.retired = status;
            let mut versions = files.versions()?;
            update_versions(&mut versions.value, &decoded);
            store.commit(vec![
                read.replace_with(package_key.clone(), files.sign(&decoded)),
                versions.replace_with(StorageKey::Versions, files.sign(&versions.value)),
            ])?;
            Ok(vec![
                Change {
                    action: Action::Updating,
                    path: locate(store, &package_key),
                },
                Change {
                    action: Action::Updating,
                    path: locate(store, &StorageKey::Versions),
                },
            ])
        },
        is_conflict,
    )
}
