//! The registry crate's one error type. Every variant names the file, package or version it is
//! about, so a CLI can print it as it is.

use std::path::PathBuf;

use hexrepo_store::StoreError;

/// Something a registry operation could not do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// One or more tarballs are invalid; nothing was written.
    #[error("{} invalid tarball(s), nothing was written:\n{}", .0.len(), format_invalid(.0))]
    InvalidTarballs(Vec<InvalidTarball>),
    /// A registry file on disk could not be read.
    #[error("{path}: {source}")]
    RegistryFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: hexfmt::registry::RegistryError,
    },
    /// The package has no such release.
    #[error("package {package:?} has no release {version:?} in the registry")]
    NoSuchRelease {
        /// The package.
        package: String,
        /// The version asked for.
        version: String,
    },
    /// The package is not in the registry.
    #[error("package {0:?} is not in the registry")]
    NoSuchPackage(String),
    /// The storage failed (see [`StoreError::is_unavailable`] for outages worth a retry).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another writer changed a registry file while a build was computing it; nothing of the
    /// build past that file was written. Running the build again picks the change up.
    #[error("{path} changed while the build ran (a publish?); run the build again")]
    ChangedDuringBuild {
        /// The file.
        path: String,
    },
    /// So many writers raced on one registry file that this write gave up; a retry succeeds.
    #[error("{path}: too many concurrent writers, gave up after {attempts} attempts")]
    Contention {
        /// The file.
        path: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A retirement message outside hex.pm's bounds.
    #[error("retirement message must be 3 to 140 characters, got {0}")]
    RetirementMessage(usize),
}

/// A tarball that failed validation, and why.
#[derive(Debug)]
pub struct InvalidTarball {
    /// Its path.
    pub path: PathBuf,
    /// The reason, as a sentence fragment.
    pub reason: String,
}

impl std::fmt::Display for InvalidTarball {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

fn format_invalid(list: &[InvalidTarball]) -> String {
    list.iter()
        .map(|t| format!("  {t}"))
        .collect::<Vec<_>>()
        .join("\n")
}
