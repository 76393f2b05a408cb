//! The events a sync reports as it goes ([`Progress`]), for the caller to draw as it likes: a
//! terminal bar, plain lines, log records. Nothing here knows about terminals.

use std::fmt;

/// What a sync is doing, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A phase begins.
    Phase(Phase),
    /// One more `packages/NAME` verified; `done` so far (the total grows as dependencies are
    /// found, so there is none).
    Packages {
        /// Verified so far.
        done: usize,
    },
    /// One more tarball checked (fetched, or found already verified); `done` of `total`.
    Tarballs {
        /// Checked so far.
        done: usize,
        /// Tarballs of the releases being mirrored.
        total: usize,
    },
}

/// The phases of a sync, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fetching and verifying upstream's `names` and `versions`.
    Indexes,
    /// Fetching and verifying `packages/NAME` for `roots` and their dependencies.
    Packages {
        /// Packages upstream's `names` lists.
        upstream: usize,
        /// Packages asked for (all of upstream's without an allow-list).
        roots: usize,
        /// Whether `roots` is an allow-list (dependencies are added to it).
        allow_list: bool,
    },
    /// Fetching the tarballs not already in the mirror.
    Tarballs {
        /// Packages verified.
        packages: usize,
        /// Their releases' tarballs.
        total: usize,
    },
    /// Writing `packages/NAME`, `public_key`, `versions` and `names`.
    RegistryFiles,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Indexes => f.write_str("fetching names and versions"),
            Phase::Packages {
                upstream,
                roots,
                allow_list,
            } => write!(
                f,
                "upstream lists {upstream} packages; fetching {roots} {}",
                if *allow_list {
                    "package(s) and their dependencies"
                } else {
                    "packages"
                }
            ),
            Phase::Tarballs { packages, total } => {
                write!(f, "{packages} packages verified; checking {total} tarballs")
            }
            Phase::RegistryFiles => f.write_str("writing registry files"),
        }
    }
}
