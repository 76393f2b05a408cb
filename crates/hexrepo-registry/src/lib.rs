//! Repository services without HTTP: the incremental registry build (`hexrepo build`), retiring
//! releases, package owners, auditing a repository (`hexrepo verify`), and mirroring an upstream (`hexrepo mirror`). This crate owns the consistency
//! rules: which files a change rewrites, in which order, and what a reader may observe meanwhile
//! (HEX-PROTOCOL.md §4 describes the official builder we stay compatible with).
//!
//! It works on a repository in any `hexrepo-store` backend; formats come from `hexfmt`.

pub mod audit;
pub mod build;
pub mod cache;
pub mod error;
pub mod index;
pub mod keys;
pub mod layout;
pub mod mirror;
pub mod owners;
pub mod publish;
pub mod release;
pub mod retire;
pub mod signed_files;
pub mod snippets;
pub mod state_file;
pub mod upstream;
pub mod verify;

pub use error::RegistryError;
pub use layout::Layout;
