//! What the registry records about one release, derived from its tarball once: version,
//! checksums and dependencies, converted to the `Release` message exactly as
//! `mix hex.registry build` does (HEX-PROTOCOL.md §2.6 and §4 step 4).

use hexfmt::checksum::Checksum;
use hexfmt::proto::package::{Dependency, Release};
use hexfmt::tarball::{Tarball, read_tarball};
use hexfmt::version::Version;
use serde::{Deserialize, Serialize};

/// The registry facts of one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// The version string, exactly as in `metadata.config` and the file name.
    pub version: String,
    /// Inner checksum (over the tarball members).
    #[serde(with = "hex_checksum")]
    pub inner_checksum: Checksum,
    /// Outer checksum (over the whole file).
    #[serde(with = "hex_checksum")]
    pub outer_checksum: Checksum,
    /// Requirements, in metadata order.
    pub dependencies: Vec<DependencyInfo>,
}

/// One requirement of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyInfo {
    /// The package depended on.
    pub package: String,
    /// Its requirement text.
    pub requirement: String,
    /// Whether the dependency is optional.
    pub optional: bool,
    /// The OTP application name.
    pub app: String,
    /// The repository it comes from, if named in the metadata.
    pub repository: Option<String>,
}

/// Reads and validates a tarball that must be release `name` `version` (from its file name).
/// The error is a reason fit to print after the file's path.
pub fn analyse_tarball(bytes: &[u8], name: &str, version: &str) -> Result<ReleaseInfo, String> {
    let tarball = read_tarball(bytes).map_err(|e| e.to_string())?;
    let meta = &tarball.metadata;
    if meta.name != name {
        return Err(format!(
            "metadata name {:?} does not match the file name's {name:?}",
            meta.name
        ));
    }
    if meta.version != version {
        return Err(format!(
            "metadata version {:?} does not match the file name's {version:?}",
            meta.version
        ));
    }
    Version::parse(version).map_err(|e| e.to_string())?;
    Ok(ReleaseInfo::from_tarball(&tarball))
}

impl ReleaseInfo {
    /// The registry facts of a validated tarball: its version, checksums and requirements.
    pub fn from_tarball(tarball: &Tarball) -> ReleaseInfo {
        let meta = &tarball.metadata;
        ReleaseInfo {
            version: meta.version.clone(),
            inner_checksum: tarball.inner_checksum,
            outer_checksum: tarball.outer_checksum,
            dependencies: meta
                .requirements
                .iter()
                .map(|r| DependencyInfo {
                    package: r.name.clone(),
                    // mix crashes on a requirement without these; hex.pm substitutes the same
                    // defaults.
                    requirement: r
                        .requirement
                        .clone()
                        .unwrap_or_else(|| ">= 0.0.0".to_owned()),
                    optional: r.optional,
                    app: r.app.clone().unwrap_or_else(|| r.name.clone()),
                    repository: r.repository.clone(),
                })
                .collect(),
        }
    }

    /// The `Release` message as mix writes it: `optional` and `app` always present,
    /// `repository` only when it names another repository than `repository`.
    pub fn to_proto(&self, repository: &str) -> Release {
        Release {
            version: self.version.clone(),
            inner_checksum: self.inner_checksum.as_bytes().to_vec(),
            dependencies: self
                .dependencies
                .iter()
                .map(|d| Dependency {
                    package: d.package.clone(),
                    requirement: d.requirement.clone(),
                    optional: Some(d.optional),
                    app: Some(d.app.clone()),
                    repository: d.repository.clone().filter(|r| r != repository),
                })
                .collect(),
            retired: None,
            outer_checksum: Some(self.outer_checksum.as_bytes().to_vec()),
            advisory_indexes: Vec::new(),
            published_at: None,
        }
    }
}

/// Serialises checksums as lower-case hex in the build cache.
mod hex_checksum {
    use hexfmt::checksum::Checksum;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Checksum, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&c.to_hex_lower())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Checksum, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        Checksum::from_hex(&text).map_err(serde::de::Error::custom)
    }
}
