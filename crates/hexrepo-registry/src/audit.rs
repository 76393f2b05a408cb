//! The audit log: one JSON line per write to the repository (who, what, when, from where),
//! appended to `.hexrepo/audit.log` beside the data it describes. `hexrepo audit` prints it.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, io_err};
use crate::layout::Layout;

/// One write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Seconds since the epoch.
    pub time: u64,
    /// The key name that authorised it (or "basic-auth", "cli").
    pub actor: String,
    /// What was done: "publish", "replace", "revert", "retire", "unretire", "docs.publish",
    /// "docs.remove", "key.create", "key.revoke".
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
            remote,
        }
    }
}

/// Appends `entry` to the repository's audit log, durably.
pub fn append(layout: &Layout, entry: &AuditEntry) -> Result<(), RegistryError> {
    let path = layout.state_dir().join("audit.log");
    std::fs::create_dir_all(layout.state_dir()).map_err(io_err("creating", layout.state_dir()))?;
    let mut line = serde_json::to_vec(entry).expect("audit entries always serialise");
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err("opening", &path))?;
    // One write of a whole line with O_APPEND: concurrent writers never interleave lines.
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(io_err("appending to", &path))
}

/// Every entry, oldest first; lines that do not parse are skipped.
pub fn read(layout: &Layout) -> Result<Vec<AuditEntry>, RegistryError> {
    let path = layout.state_dir().join("audit.log");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("reading", &path)(e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
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
