//! The registry crate's one error type. Every variant names the file, package or version it is
//! about, so a CLI can print it as it is.

use std::path::PathBuf;

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

/// Shorthand for wrapping an IO error with its path.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> RegistryError {
    let path = path.into();
    move |source| RegistryError::Io {
        action,
        path,
        source,
    }
}
