//! Package tarballs, format 3 (HEX-PROTOCOL.md §3): reading and validating an upload or a file in
//! `tarballs/` the way hex_core's `hex_tarball:unpack/2` does, plus the checks a server owes its
//! users that the client leaves to chance: sizes bounded while streaming, not after, and every
//! entry of the contents checked by the rule set in `tarball/entries.rs` (shared with docs
//! tarballs). Also a builder, for tests and tools, that writes tarballs like hex_core's
//! `hex_tarball:create/2`.
//!
//! Everything works on in-memory bytes: tarballs are at most 16 MiB.

use std::io::{self, Read, Write as _};

use flate2::Compression;

use crate::checksum::Checksum;
use crate::metadata::{Metadata, MetadataError};

// Every limit on a tarball, its members and its entries. The first five are hex_core's own
// (`hex_core.erl` and `hex_tarball.erl`); the entry limits are ours, far above any real package
// and far below what would hurt a server, since hex_core has none.

/// Largest tarball accepted, as hex_core ≥ 0.11 (`tarball_max_size`). Docs tarballs too.
pub const MAX_TARBALL_SIZE: u64 = 16 * 1024 * 1024;
/// Largest uncompressed `contents.tar.gz`, as hex_core ≥ 0.11 (`tarball_max_uncompressed_size`).
/// Docs tarballs too (`docs_tarball_max_uncompressed_size`).
pub const MAX_UNCOMPRESSED_SIZE: u64 = 128 * 1024 * 1024;
/// Largest `VERSION` member, as hex_core (`MAX_VERSION_SIZE`).
pub const MAX_VERSION_FILE: u64 = 32;
/// Largest `CHECKSUM` member, as hex_core (`MAX_CHECKSUM_SIZE`).
pub const MAX_CHECKSUM_FILE: u64 = 128;
/// Largest `metadata.config`, as hex_core (`MAX_METADATA_SIZE`, 1 MiB).
pub const MAX_METADATA_FILE: u64 = 1024 * 1024;
/// Most entries in a package's contents or a docs tarball; hex_core has no such limit, this one
/// only has to stop an archive of millions of empty entries.
pub const MAX_ENTRIES: usize = 65_536;
/// Longest entry path or symlink target, in bytes: Linux's `PATH_MAX`.
pub const MAX_PATH_LEN: usize = 4096;
/// Most path bytes (entry paths plus symlink targets) in one archive: 64 bytes on average
/// across [`MAX_ENTRIES`] entries, and what bounds the memory the path checks use.
pub const MAX_PATH_BYTES: u64 = 4 * 1024 * 1024;
/// Largest GNU long-name, long-link or pax extension header: room for a path and a link target
/// of [`MAX_PATH_LEN`] each plus a few records. Checked before the header is read into memory.
pub const MAX_HEADER_EXTENSION: u64 = 4 * MAX_PATH_LEN as u64;
/// The mtime hex_core gives every entry: 2000-01-01T00:00:00Z, for reproducible tarballs.
const FIXED_MTIME: u64 = 946_684_800;

const VERSION: &str = "VERSION";
const CHECKSUM: &str = "CHECKSUM";
const METADATA: &str = "metadata.config";
const CONTENTS: &str = "contents.tar.gz";

/// Why a tarball was refused. Messages are lower-case and say what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TarballError {
    /// Bigger than [`MAX_TARBALL_SIZE`].
    #[error("tarball is {size} bytes, more than the {MAX_TARBALL_SIZE}-byte limit")]
    TooLarge {
        /// Actual size.
        size: u64,
    },
    /// The outer archive is not a readable tar.
    #[error("not a valid tar archive: {0}")]
    Corrupt(#[source] io::Error),
    /// Required members are absent.
    #[error("missing files: {}", .0.join(", "))]
    MissingFiles(Vec<&'static str>),
    /// A member exceeds its own limit.
    #[error("{member} is {size} bytes, more than its {limit}-byte limit")]
    MemberTooLarge {
        /// The member name.
        member: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// `VERSION` is not `3`.
    #[error("unsupported tarball format version {0:?}: expected \"3\"")]
    BadVersion(String),
    /// `CHECKSUM` is not 64 hex characters.
    #[error("CHECKSUM file is not 64 hex characters")]
    BadChecksumFile,
    /// The inner checksum does not match the members.
    #[error("inner checksum mismatch: CHECKSUM says {expected}, contents hash to {actual}")]
    ChecksumMismatch {
        /// From the `CHECKSUM` file.
        expected: Checksum,
        /// Computed over VERSION, metadata.config and contents.tar.gz.
        actual: Checksum,
    },
    /// `metadata.config` is unreadable or incomplete.
    #[error("metadata.config: {0}")]
    Metadata(#[from] MetadataError),
    /// `contents.tar.gz` is not a gzipped tar.
    #[error("contents.tar.gz is not a valid gzipped tar: {0}")]
    Contents(#[source] io::Error),
    /// The package files are larger than [`MAX_UNCOMPRESSED_SIZE`] once decompressed.
    #[error("contents are more than {MAX_UNCOMPRESSED_SIZE} bytes uncompressed")]
    UncompressedTooLarge,
    /// An outer member appears twice: which copy counts would depend on the reader.
    #[error("{0} appears twice in the tarball: keep one copy")]
    DuplicateMember(&'static str),
    /// An entry would be written outside the root.
    #[error("unsafe path {0:?}: entry paths must be relative and stay inside the root")]
    UnsafePath(String),
    /// A symlink points outside the root, or to an absolute path.
    #[error(
        "unsafe symlink {path:?} -> {target:?}: link targets must be relative and stay inside \
         the root"
    )]
    UnsafeLink {
        /// The link entry.
        path: String,
        /// Where it points.
        target: String,
    },
    /// A hard link, device, fifo or other entry that is not a file, directory or symlink.
    #[error("entry {path:?} is {kind}: only regular files, directories and symlinks are allowed")]
    UnsupportedEntry {
        /// The entry.
        path: String,
        /// What it is, with its article: "a hard link", "a fifo".
        kind: String,
    },
    /// The same path twice (after resolving `.` and `..`).
    #[error("entry {0:?} appears twice: keep one copy")]
    DuplicateEntry(String),
    /// An entry is written inside a symlinked directory (`d/up/x` when `d/up` is a symlink).
    #[error(
        "entry {path:?} passes through the symlink {link:?}: nothing may be written through a \
         symlink, use the real directory"
    )]
    PathThroughLink {
        /// The entry.
        path: String,
        /// The symlink entry it goes through.
        link: String,
    },
    /// A symlink target goes through another symlink, so checking it lexically proves nothing.
    #[error(
        "unsafe symlink {path:?} -> {target:?}: it passes through the symlink {link:?}, point it \
         at the real path instead"
    )]
    LinkThroughLink {
        /// The link entry.
        path: String,
        /// Where it points.
        target: String,
        /// The symlink entry its target goes through.
        link: String,
    },
    /// More than [`MAX_ENTRIES`] entries.
    #[error("entry {0:?} is past the {MAX_ENTRIES}-entry limit: ship fewer files")]
    TooManyEntries(String),
    /// An entry path or symlink target longer than [`MAX_PATH_LEN`].
    #[error(
        "entry path or link target starting {start:?} is {size} bytes, more than the \
         {MAX_PATH_LEN}-byte limit: shorten it"
    )]
    PathTooLong {
        /// Its first characters.
        start: String,
        /// Its length.
        size: u64,
    },
    /// Paths and link targets adding up to more than [`MAX_PATH_BYTES`].
    #[error(
        "entry {0:?} takes the paths past the {MAX_PATH_BYTES}-byte limit: ship fewer or shorter \
         paths"
    )]
    TooManyPathBytes(String),
    /// A GNU long-name or pax header larger than [`MAX_HEADER_EXTENSION`].
    #[error(
        "{what} starting {start:?} is {size} bytes, more than the {MAX_HEADER_EXTENSION}-byte \
         limit: shorten the entry's path"
    )]
    HeaderTooLarge {
        /// "a long name", "a long link name" or "a pax header".
        what: &'static str,
        /// Its first bytes.
        start: String,
        /// Its size.
        size: u64,
    },
    /// A pax header overriding an entry's size: readers disagree on where the next entry is.
    #[error("a pax header sets an entry size: write sizes in the tar header only")]
    PaxSize,
}

/// A validated tarball.
#[derive(Debug, Clone)]
pub struct Tarball {
    /// The parsed `metadata.config`.
    pub metadata: Metadata,
    /// The raw `metadata.config` bytes, as the package author's tool wrote them.
    pub metadata_config: Vec<u8>,
    /// SHA-256 over VERSION, metadata.config and contents.tar.gz (the registry's `inner_checksum`).
    pub inner_checksum: Checksum,
    /// SHA-256 of the whole file (the registry's `outer_checksum`).
    pub outer_checksum: Checksum,
    /// Every entry of `contents.tar.gz`, in archive order.
    pub contents: Vec<ContentEntry>,
}

/// One entry of `contents.tar.gz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentEntry {
    /// Path relative to the package root.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Size of its data in bytes.
    pub size: u64,
}

/// The entry types allowed in package contents and docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link to the given relative target.
    Symlink(String),
}

/// Reads and validates a tarball: format version, inner checksum, metadata, every content path.
pub fn read_tarball(bytes: &[u8]) -> Result<Tarball, TarballError> {
    let size = bytes.len() as u64;
    if size > MAX_TARBALL_SIZE {
        return Err(TarballError::TooLarge { size });
    }
    let members = read_members(bytes)?;
    let version = members.version.as_deref().unwrap_or_default();
    if version != b"3" {
        return Err(TarballError::BadVersion(
            String::from_utf8_lossy(version).into_owned(),
        ));
    }
    let checksum_text = members.checksum.as_deref().unwrap_or_default();
    let expected = std::str::from_utf8(checksum_text)
        .ok()
        .and_then(|t| Checksum::from_hex(t).ok())
        .ok_or(TarballError::BadChecksumFile)?;
    let metadata_config = members.metadata.unwrap_or_default();
    let contents = members.contents.unwrap_or_default();
    let actual = Checksum::sha256_parts(&[version, &metadata_config, &contents]);
    if actual != expected {
        return Err(TarballError::ChecksumMismatch { expected, actual });
    }
    let metadata = Metadata::parse(&metadata_config)?;
    let contents = read_contents(&contents)?;
    Ok(Tarball {
        metadata,
        metadata_config,
        inner_checksum: actual,
        outer_checksum: Checksum::sha256(bytes),
        contents,
    })
}

#[derive(Default)]
struct Members {
    version: Option<Vec<u8>>,
    checksum: Option<Vec<u8>>,
    metadata: Option<Vec<u8>>,
    contents: Option<Vec<u8>>,
}

fn read_members(bytes: &[u8]) -> Result<Members, TarballError> {
    let mut members = Members::default();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().map_err(TarballError::Corrupt)? {
        let mut entry = entry.map_err(TarballError::Corrupt)?;
        let (slot, member, limit) = match &*entry.path_bytes() {
            b"VERSION" => (&mut members.version, VERSION, MAX_VERSION_FILE),
            b"CHECKSUM" => (&mut members.checksum, CHECKSUM, MAX_CHECKSUM_FILE),
            b"metadata.config" => (&mut members.metadata, METADATA, MAX_METADATA_FILE),
            b"contents.tar.gz" => (&mut members.contents, CONTENTS, MAX_TARBALL_SIZE),
            // hex_core ignores members it does not know; so do we.
            _ => continue,
        };
        if slot.is_some() {
            return Err(TarballError::DuplicateMember(member));
        }
        let size = entry.size();
        if size > limit {
            return Err(TarballError::MemberTooLarge {
                member,
                size,
                limit,
            });
        }
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .read_to_end(&mut data)
            .map_err(TarballError::Corrupt)?;
        *slot = Some(data);
    }
    let missing: Vec<&'static str> = [
        (members.version.is_none(), VERSION),
        (members.checksum.is_none(), CHECKSUM),
        (members.metadata.is_none(), METADATA),
        (members.contents.is_none(), CONTENTS),
    ]
    .into_iter()
    .filter_map(|(absent, name)| absent.then_some(name))
    .collect();
    if missing.is_empty() {
        Ok(members)
    } else {
        Err(TarballError::MissingFiles(missing))
    }
}

/// A reader that fails once more than `remaining` bytes have passed through it.
struct Bounded<R> {
    inner: R,
    remaining: u64,
    exceeded: bool,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let Some(rest) = self.remaining.checked_sub(n as u64) else {
            self.exceeded = true;
            return Err(io::Error::other("uncompressed size limit exceeded"));
        };
        self.remaining = rest;
        Ok(n)
    }
}

/// Largest contents inflated into one buffer; bigger ones are streamed through the tar reader.
const WHOLE_INFLATE_LIMIT: u64 = 16 * 1024 * 1024;

/// Reads a gzipped tar of files (a package's `contents.tar.gz` or a docs tarball) and lists
/// its entries under the rules of `tarball/entries.rs`, within [`MAX_UNCOMPRESSED_SIZE`].
pub(crate) fn read_contents(gz: &[u8]) -> Result<Vec<ContentEntry>, TarballError> {
    // The gzip trailer's ISIZE: the uncompressed length (mod 2^32), a hint we verify below.
    let hint = gz
        .last_chunk::<4>()
        .map_or(u64::MAX, |b| u64::from(u32::from_le_bytes(*b)));
    if hint <= WHOLE_INFLATE_LIMIT {
        // Inflating in one large read lets the decoder run its fast loop; the tar headers are
        // then walked by seeking, without copying file data (about 2x faster on real packages).
        let mut decoder = flate2::bufread::GzDecoder::new(gz);
        let mut tar = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        (&mut decoder)
            .take(WHOLE_INFLATE_LIMIT + 1)
            .read_to_end(&mut tar)
            .map_err(TarballError::Contents)?;
        check_single_member(decoder.into_inner(), tar.len() as u64, hint)?;
        entries::check_extension_headers(
            tar::Archive::new(io::Cursor::new(&tar[..])).entries_with_seek(),
        )?;
        return entries::list_contents(tar::Archive::new(io::Cursor::new(tar)).entries_with_seek());
    }
    // Streamed twice: the first pass bounds the headers the second reads into memory.
    stream_entries(gz, |archive| {
        entries::check_extension_headers(archive.entries())
    })?;
    stream_entries(gz, |archive| entries::list_contents(archive.entries()))
}

type Streamed<'g> = tar::Archive<Bounded<flate2::bufread::GzDecoder<&'g [u8]>>>;

/// Runs `visit` over the tar inflated from `gz` as it streams, within
/// [`MAX_UNCOMPRESSED_SIZE`], then checks that nothing follows the gzip stream.
fn stream_entries<'g, T>(
    gz: &'g [u8],
    visit: impl FnOnce(&mut Streamed<'g>) -> Result<T, TarballError>,
) -> Result<T, TarballError> {
    let mut archive = tar::Archive::new(Bounded {
        inner: flate2::bufread::GzDecoder::new(gz),
        remaining: MAX_UNCOMPRESSED_SIZE,
        exceeded: false,
    });
    let result = visit(&mut archive);
    let Bounded {
        inner: mut decoder,
        exceeded,
        ..
    } = archive.into_inner();
    if exceeded {
        return Err(TarballError::UncompressedTooLarge);
    }
    let value = result?;
    // Drain what the tar reader left (end-of-archive padding) before checking the trailer.
    io::copy(
        &mut (&mut decoder).take(MAX_UNCOMPRESSED_SIZE),
        &mut io::sink(),
    )
    .map_err(TarballError::Contents)?;
    if !decoder.into_inner().is_empty() {
        return Err(TarballError::Contents(io::Error::other(
            "data after the end of the gzip stream",
        )));
    }
    Ok(value)
}

/// One gzip member, nothing after it, and a trailer that states the length we got: a second
/// member could otherwise carry entries that one reader checks and another extracts.
fn check_single_member(rest: &[u8], length: u64, hint: u64) -> Result<(), TarballError> {
    if !rest.is_empty() {
        return Err(TarballError::Contents(io::Error::other(
            "data after the end of the gzip stream",
        )));
    }
    if length != hint {
        return Err(TarballError::Contents(io::Error::other(
            "gzip length does not match its trailer",
        )));
    }
    Ok(())
}

/// Writes tarballs the way hex_core does: fixed mtimes, uid/gid 0, mode 0644, members in the
/// order VERSION, CHECKSUM, metadata.config, contents.tar.gz. It does not validate: tests use it
/// to craft hostile tarballs as well as good ones.
#[derive(Debug, Clone)]
pub struct TarballBuilder {
    metadata_config: Vec<u8>,
    files: Vec<(String, FileData)>,
    checksum_override: Option<String>,
    version_override: Option<Vec<u8>>,
    level: Compression,
}

#[derive(Debug, Clone)]
enum FileData {
    Regular(Vec<u8>),
    /// Any other entry type, empty, with a link name (symlinks, hard links).
    Other(tar::EntryType, String),
}

impl TarballBuilder {
    /// Starts a tarball with `metadata` written by [`Metadata::to_config`].
    pub fn new(metadata: &Metadata) -> TarballBuilder {
        TarballBuilder::with_metadata_config(metadata.to_config())
    }

    /// Starts a tarball with a raw `metadata.config`.
    pub fn with_metadata_config(config: Vec<u8>) -> TarballBuilder {
        TarballBuilder {
            metadata_config: config,
            files: Vec::new(),
            checksum_override: None,
            version_override: None,
            level: Compression::default(),
        }
    }

    /// Writes `contents.tar.gz` without compressing it (gzip level 0): a tarball of a chosen
    /// size in the time of a copy, for tests of size limits.
    #[must_use]
    pub fn stored(mut self) -> TarballBuilder {
        self.level = Compression::none();
        self
    }

    /// Adds a regular file; the path is written as given, unchecked.
    #[must_use]
    pub fn file(mut self, path: &str, data: impl Into<Vec<u8>>) -> TarballBuilder {
        self.files
            .push((path.to_owned(), FileData::Regular(data.into())));
        self
    }

    /// Adds a symlink; the target is written as given, unchecked.
    #[must_use]
    pub fn symlink(self, path: &str, target: &str) -> TarballBuilder {
        self.entry(path, tar::EntryType::Symlink, target)
    }

    /// Adds an empty entry of any type (a hard link, a device, a fifo) with this link name;
    /// written as given, unchecked.
    #[must_use]
    pub fn entry(mut self, path: &str, kind: tar::EntryType, link: &str) -> TarballBuilder {
        self.files
            .push((path.to_owned(), FileData::Other(kind, link.to_owned())));
        self
    }

    /// Writes this text into `CHECKSUM` instead of the real inner checksum.
    #[must_use]
    pub fn checksum_text(mut self, text: &str) -> TarballBuilder {
        self.checksum_override = Some(text.to_owned());
        self
    }

    /// Writes these bytes into `VERSION` instead of `3`.
    #[must_use]
    pub fn version_file(mut self, bytes: &[u8]) -> TarballBuilder {
        self.version_override = Some(bytes.to_vec());
        self
    }

    /// The tarball bytes.
    pub fn build(&self) -> Vec<u8> {
        let contents = self.contents_tar_gz();
        let version = self
            .version_override
            .clone()
            .unwrap_or_else(|| b"3".to_vec());
        let checksum = self.checksum_override.clone().unwrap_or_else(|| {
            Checksum::sha256_parts(&[&version, &self.metadata_config, &contents]).to_hex_upper()
        });
        let mut outer = tar::Builder::new(Vec::new());
        append(&mut outer, VERSION, &version);
        append(&mut outer, CHECKSUM, checksum.as_bytes());
        append(&mut outer, METADATA, &self.metadata_config);
        append(&mut outer, CONTENTS, &contents);
        outer.into_inner().expect("writing to a Vec cannot fail")
    }

    fn contents_tar_gz(&self) -> Vec<u8> {
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), self.level);
        let mut tar = tar::Builder::new(gz);
        for (path, data) in &self.files {
            match data {
                FileData::Regular(bytes) => append(&mut tar, path, bytes),
                FileData::Other(kind, target) => {
                    let mut header = fixed_header(path, 0);
                    header.set_entry_type(*kind);
                    set_raw(&mut header.as_old_mut().linkname, target);
                    header.set_cksum();
                    tar.append(&header, io::empty())
                        .expect("writing to a Vec cannot fail");
                }
            }
        }
        let mut gz = tar.into_inner().expect("writing to a Vec cannot fail");
        gz.flush().expect("writing to a Vec cannot fail");
        gz.finish().expect("writing to a Vec cannot fail")
    }
}

fn fixed_header(path: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(FIXED_MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    // `set_path` refuses `..` and absolute paths; hostile test paths go in raw.
    if header.set_path(path).is_err() {
        set_raw(&mut header.as_old_mut().name, path);
    }
    header.set_cksum();
    header
}

fn set_raw(field: &mut [u8], value: &str) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value.as_bytes()[..n]);
}

fn append<W: io::Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) {
    let header = fixed_header(path, data.len() as u64);
    tar.append(&header, data)
        .expect("writing to a Vec cannot fail");
}

mod entries;
#[cfg(test)]
mod tests;
