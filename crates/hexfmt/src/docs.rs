//! Documentation tarballs (HEX-PROTOCOL.md §3.11): a gzipped tar of HTML with `index.html` at
//! its root, at most 16 MiB compressed and 128 MiB uncompressed. Its entries go through the
//! same rules as a package's contents (`tarball/entries.rs`): no escaping paths or symlinks,
//! no hard links, devices or duplicates, bounded counts and paths.

use crate::tarball::{
    ContentEntry, EntryKind, MAX_TARBALL_SIZE, MAX_UNCOMPRESSED_SIZE, TarballError, read_contents,
};

/// Why a docs tarball was refused.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// Over 16 MiB.
    #[error("docs tarball is more than {MAX_TARBALL_SIZE} bytes")]
    TooLarge,
    /// Over 128 MiB uncompressed.
    #[error("docs are more than {MAX_UNCOMPRESSED_SIZE} bytes uncompressed")]
    UncompressedTooLarge,
    /// Not a gzipped tar.
    #[error("not a gzipped tar: {0}")]
    Corrupt(#[source] std::io::Error),
    /// An entry breaks the rules shared with package contents.
    #[error(transparent)]
    Entry(TarballError),
    /// No `index.html` at the root.
    #[error("docs must contain index.html at the root")]
    MissingIndex,
}

impl From<TarballError> for DocsError {
    fn from(error: TarballError) -> DocsError {
        match error {
            TarballError::Contents(e) => DocsError::Corrupt(e),
            TarballError::UncompressedTooLarge => DocsError::UncompressedTooLarge,
            other => DocsError::Entry(other),
        }
    }
}

/// Reads and checks a docs tarball without extracting it; returns its entries.
pub fn read_docs_tarball(bytes: &[u8]) -> Result<Vec<ContentEntry>, DocsError> {
    if bytes.len() as u64 > MAX_TARBALL_SIZE {
        return Err(DocsError::TooLarge);
    }
    let entries = read_contents(bytes)?;
    let is_index = |e: &ContentEntry| {
        e.kind == EntryKind::File && e.path.trim_start_matches("./") == "index.html"
    };
    if entries.iter().any(is_index) {
        Ok(entries)
    } else {
        Err(DocsError::MissingIndex)
    }
}

#[cfg(test)]
mod tests {
    use tar::EntryType;

    use super::*;

    /// A gzipped tar of `(path, type, data or link target)` entries, written as given.
    fn docs(entries: &[(&str, EntryType, &str)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for &(path, kind, text) in entries {
            let data = if kind == EntryType::Regular { text } else { "" };
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(kind);
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            if kind != EntryType::Regular {
                header.as_old_mut().linkname[..text.len()].copy_from_slice(text.as_bytes());
            }
            header.set_cksum();
            tar.append(&header, data.as_bytes()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    const INDEX: (&str, EntryType, &str) = ("index.html", EntryType::Regular, "<html>");

    #[test]
    fn accepts_docs_with_an_index_and_refuses_the_rest() {
        let good = [INDEX, ("dist/app.js", EntryType::Regular, "x")];
        assert_eq!(read_docs_tarball(&docs(&good)).unwrap().len(), 2);
        assert!(matches!(
            read_docs_tarball(&docs(&[("readme.html", EntryType::Regular, "x")])),
            Err(DocsError::MissingIndex)
        ));
        assert!(matches!(
            read_docs_tarball(b"not gzip"),
            Err(DocsError::Corrupt(_))
        ));
    }

    #[test]
    fn refuses_every_hostile_entry_by_the_package_rules_naming_it() {
        use EntryType::{Char, Fifo, Link, Regular, Symlink};
        for (hostile, message) in [
            (
                &[("../evil", Regular, "x")][..],
                "unsafe path \"../evil\": entry paths must be relative and stay inside the root",
            ),
            (
                &[("abs", Symlink, "/etc/passwd")],
                "unsafe symlink \"abs\" -> \"/etc/passwd\": link targets must be relative and \
                 stay inside the root",
            ),
            (
                &[("d/up", Symlink, ".."), ("s", Symlink, "d/up/..")],
                "unsafe symlink \"s\" -> \"d/up/..\": it passes through the symlink \"d/up\", \
                 point it at the real path instead",
            ),
            (
                &[("d/up", Symlink, ".."), ("d/up/x.html", Regular, "x")],
                "entry \"d/up/x.html\" passes through the symlink \"d/up\": nothing may be \
                 written through a symlink, use the real directory",
            ),
            (
                &[("hard", Link, "index.html")],
                "entry \"hard\" is a hard link: only regular files, directories and symlinks \
                 are allowed",
            ),
            (
                &[("tty", Char, "")],
                "entry \"tty\" is a character device: only regular files, directories and \
                 symlinks are allowed",
            ),
            (
                &[("pipe", Fifo, "")],
                "entry \"pipe\" is a fifo: only regular files, directories and symlinks are \
                 allowed",
            ),
            (
                &[("./index.html", Regular, "again")],
                "entry \"./index.html\" appears twice: keep one copy",
            ),
        ] {
            let entries = [&[INDEX][..], hostile].concat();
            let err = read_docs_tarball(&docs(&entries)).unwrap_err();
            assert!(matches!(err, DocsError::Entry(_)), "{err:?}");
            assert_eq!(err.to_string(), message);
        }
    }
}
