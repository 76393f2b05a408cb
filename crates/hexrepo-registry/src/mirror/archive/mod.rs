//! `hexrepo mirror export` and `import`: a verified mirror carried across an air gap as one
//! plain tar of its repository files (tarballs are already compressed). This module owns the
//! archive's layout and what an import trusts. The import trusts nothing in the archive
//! itself, only the importing side's [`Origin`](super::verify::Origin): its repository name
//! and its configured key. It never re-signs (HEX-PROTOCOL.md §1.7 "Mirrors", §8.25).
//!
//! Layout: `names`, `versions`, `public_key`, then `packages/*`, then `tarballs/*`. An importer
//! so verifies every registry file before it reads any tarball. Export reads in that order too:
//! a sync writes a tarball before the `packages/NAME` naming it, so tarballs listed after the
//! packages include every one they name. A tarball no exported package names is left out.
//!
//! Import writes in sync's order (see [`super::sync`]): tarballs, then `packages/*`, then
//! `public_key`, `versions`, `names`. The archive is read twice. The first pass reads only the
//! headers and refuses any entry that is not a mirror file in the export's order. The second
//! reads and verifies the contents. So a malformed archive, or any registry file that fails
//! verification, writes nothing at all. A tarball whose SHA-256 is not its release's signed
//! `outer_checksum` keeps its package out and the indexes unwritten, as in a sync. One departure
//! from sync's rule: a package is imported even when the archive lacks some of its releases'
//! tarballs, since a lazily filled mirror holds such packages. Those releases are listed in the
//! report.

mod entries;
mod export;
mod import;
#[cfg(test)]
mod tests;

pub use entries::{ArchiveEntryError, EntryProblem, MAX_REGISTRY_FILE};
pub use export::{ExportError, ExportReport, export};
pub use import::{ImportReport, import, summary};
