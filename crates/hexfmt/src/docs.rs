//! Documentation tarballs (HEX-PROTOCOL.md §3.11): a gzipped tar of HTML with `index.html` at
//! its root, at most 16 MiB compressed and 128 MiB uncompressed, every path inside the root.

use std::io::Read;

use flate2::read::GzDecoder;

use crate::tarball::{MAX_TARBALL_SIZE, MAX_UNCOMPRESSED_SIZE};

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
    /// A path that leaves the root.
    #[error("unsafe path in docs: {0:?}")]
    UnsafePath(String),
    /// No `index.html` at the root.
    #[error("docs must contain index.html at the root")]
    MissingIndex,
}

/// Checks a docs tarball without extracting it.
pub fn validate_docs(bytes: &[u8]) -> Result<(), DocsError> {
    if bytes.len() as u64 > MAX_TARBALL_SIZE {
        return Err(DocsError::TooLarge);
    }
    let limited = GzDecoder::new(bytes).take(MAX_UNCOMPRESSED_SIZE + 1);
    let mut archive = tar::Archive::new(limited);
    let mut has_index = false;
    let mut total: u64 = 0;
    for entry in archive.entries().map_err(DocsError::Corrupt)? {
        let entry = entry.map_err(DocsError::Corrupt)?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let escapes = path.starts_with('/')
            || path
                .split('/')
                .try_fold(0i32, |depth, c| match c {
                    "" | "." => Some(depth),
                    ".." => (depth > 0).then(|| depth - 1),
                    _ => Some(depth + 1),
                })
                .is_none();
        if escapes {
            return Err(DocsError::UnsafePath(path));
        }
        has_index |= path.trim_start_matches("./") == "index.html";
        total = total.saturating_add(entry.size());
        if total > MAX_UNCOMPRESSED_SIZE {
            return Err(DocsError::UncompressedTooLarge);
        }
    }
    if has_index {
        Ok(())
    } else {
        Err(DocsError::MissingIndex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (path, data) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if header.set_path(path).is_err() {
                header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            }
            header.set_cksum();
            tar.append(&header, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn accepts_docs_with_an_index_and_refuses_the_rest() {
        validate_docs(&docs(&[("index.html", b"<html>"), ("dist/app.js", b"x")])).unwrap();
        assert!(matches!(
            validate_docs(&docs(&[("readme.html", b"x")])),
            Err(DocsError::MissingIndex)
        ));
        assert!(matches!(
            validate_docs(&docs(&[("index.html", b"x"), ("../evil", b"x")])),
            Err(DocsError::UnsafePath(_))
        ));
        assert!(matches!(
            validate_docs(b"not gzip"),
            Err(DocsError::Corrupt(_))
        ));
    }
}
