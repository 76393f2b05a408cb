//! The audit log: one JSON record per write to the repository (who, what, when, from where),
//! kept with the data it describes (`.hexrepo/audit.log` on disk, one object per record on
//! object stores). `hexrepo audit` prints it.

use std::time::{SystemTime, UNIX_EPOCH};

use hexrepo_store::{StorageKey, Store};
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;

/// One write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Seconds since the epoch.
    pub time: u64,
    /// The key name that authorised it (or "basic-auth", "cli").
    pub actor: String,
    /// What was done: "publish", "replace", "revert", "retire", "unretire", "docs.publish",
    /// "docs.remove", "key.create", "key.revoke", "owner.add", "owner.transfer",
    /// "owner.remove".
    pub action: String,
    /// The package, when the action has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The version, when the action has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The key created or revoked, for key actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The owner added, changed or removed, for owner actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The owner's level after an owner action ("full", "maintainer").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

impl AuditEntry {
    /// An entry stamped now.
    pub fn now(
        actor: &str,
        action: &str,
        package: Option<&str>,
        version: Option<&str>,
        remote: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            actor: actor.to_owned(),
            action: action.to_owned(),
            package: package.map(str::to_owned),
            version: version.map(str::to_owned),
            key: None,
            owner: None,
            level: None,
            remote,
        }
    }
}

/// Appends `entry` to the repository's audit log, durably.
pub fn append(store: &Store, entry: &AuditEntry) -> Result<(), RegistryError> {
    let line = serde_json::to_vec(entry).expect("audit entries always serialise");
    Ok(store.append(&StorageKey::AuditLog, &line)?)
}

/// Every entry, oldest first; records that do not parse are skipped.
pub fn read(store: &Store) -> Result<Vec<AuditEntry>, RegistryError> {
    Ok(store
        .read_log(&StorageKey::AuditLog)?
        .iter()
        .filter_map(|record| serde_json::from_slice(record).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Store::local(dir.path());
        let first = AuditEntry::now(
            "ci",
            "publish",
            Some("foo"),
            Some("1.0.0"),
            Some("127.0.0.1".into()),
        );
        let second = AuditEntry::now("cli", "key.create", None, None, None);
        append(&layout, &first).unwrap();
        append(&layout, &second).unwrap();
        assert_eq!(read(&layout).unwrap(), [first, second]);
    }
}
