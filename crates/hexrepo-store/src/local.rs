//! The local-disk backend: a repository folder, exactly the layout `mix hex.registry build`
//! writes, so nginx or any static server can serve it too.
//!
//! A write goes to a temporary file beside its target (a dot-name, never served), reaches the
//! disk, and is renamed into place. Conditional writes compare the target's version token under
//! an `flock` on `.hexrepo/store.lock`, which every writer through this backend takes. The
//! token is inode, mtime and size; each write stamps its file with the current time to the
//! nanosecond, so two writes in one coarse filesystem tick still get different tokens.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use rayon::prelude::*;

use crate::error::{StoreError, io_err};
use crate::stream::{ByteRange, ByteStream, CHUNK, ObjectStream, Opened};
use crate::{Fetched, LocalVersion, Meta, Object, Precondition, STATE_DIR, Write};

#[derive(Debug)]
pub(crate) struct LocalDisk {
    root: PathBuf,
}

impl LocalDisk {
    pub(crate) fn new(root: PathBuf) -> LocalDisk {
        LocalDisk { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    pub(crate) fn version(&self, path: &str) -> LocalVersion {
        // Not followed: a symbolic link is no object of ours (see `open_object`).
        match fs::symlink_metadata(self.file(path)) {
            Ok(meta) if meta.is_file() => LocalVersion::Present(version_of(&meta)),
            Ok(_) => LocalVersion::Missing,
            Err(e) if is_missing(&e) => LocalVersion::Missing,
            Err(_) => LocalVersion::Unreadable,
        }
    }

    pub(crate) fn get(&self, path: &str, version: Option<&str>) -> Result<Fetched, StoreError> {
        let file_path = self.file(path);
        let mut file = match open_object(&file_path) {
            Ok(file) => file,
            Err(e) if is_missing(&e) || is_symlink(&e) => return Ok(Fetched::Missing),
            Err(e) => return Err(io_err("opening", &file_path)(e)),
        };
        // Identity and bytes from one open file, so they always belong together.
        let meta = file.metadata().map_err(io_err("reading", &file_path))?;
        if !meta.is_file() {
            return Ok(Fetched::Missing);
        }
        let meta = meta_of(path, &meta);
        if version == Some(meta.version.as_str()) {
            return Ok(Fetched::NotModified);
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(io_err("reading", &file_path))?;
        Ok(Fetched::Found(Object {
            bytes: Bytes::from(bytes),
            meta,
        }))
    }

    pub(crate) async fn stream(
        &self,
        path: String,
        version: Option<String>,
        range: ByteRange,
    ) -> Result<Opened, StoreError> {
        let file_path = self.file(&path);
        let name = path.clone();
        tokio::task::spawn_blocking(move || {
            open_for_stream(&name, &file_path, version.as_deref(), range)
        })
        .await
        .unwrap_or_else(|e| Err(join_error(&path, &e)))
    }

    pub(crate) fn head(&self, path: &str) -> Result<Option<Meta>, StoreError> {
        let file_path = self.file(path);
        match fs::symlink_metadata(&file_path) {
            Ok(meta) if meta.is_file() => Ok(Some(meta_of(path, &meta))),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(io_err("reading", &file_path)(e)),
        }
    }

    pub(crate) fn put(
        &self,
        path: &str,
        bytes: &[u8],
        precondition: &Precondition,
    ) -> Result<String, StoreError> {
        let mut versions = self.commit_paths(&[(path.to_owned(), bytes, precondition)])?;
        Ok(versions.pop().unwrap_or_default())
    }

    pub(crate) fn commit(&self, writes: &[Write]) -> Result<Vec<String>, StoreError> {
        let writes: Vec<(String, &[u8], &Precondition)> = writes
            .iter()
            .map(|w| (w.key.path(), &w.bytes[..], &w.precondition))
            .collect();
        self.commit_paths(&writes)
    }

    /// Stages every write, makes the staged files durable with one `syncfs`, checks every
    /// precondition under the store lock, and renames them into place in order.
    fn commit_paths(
        &self,
        writes: &[(String, &[u8], &Precondition)],
    ) -> Result<Vec<String>, StoreError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let mut staged = Staged::default();
        let targets: Vec<PathBuf> = writes.iter().map(|(path, ..)| self.file(path)).collect();
        for target in &targets {
            if let Some(dir) = target.parent() {
                fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
            }
        }
        let temps: Vec<PathBuf> = targets.iter().map(|t| temp_path(t)).collect();
        // Recorded before writing, so a failure part-way still removes every temporary on drop.
        staged.temps.clone_from(&temps);
        temps
            .par_iter()
            .zip(writes.par_iter())
            .try_for_each(|(tmp, (_, bytes, _))| write_temp(tmp, bytes))?;
        // Durable before the lock: concurrent writers' syncs overlap instead of queueing.
        let first = File::open(&temps[0]).map_err(io_err("opening", &temps[0]))?;
        rustix::fs::syncfs(&first).map_err(|e| StoreError::Io {
            action: "syncing filesystem of",
            path: temps[0].display().to_string(),
            source: e.into(),
        })?;
        let _lock = self.lock("store.lock")?;
        for ((path, _, precondition), target) in writes.iter().zip(&targets) {
            check(path, target, precondition)?;
        }
        let mut dirs: Vec<&Path> = Vec::new();
        let mut versions = Vec::with_capacity(writes.len());
        for (tmp, target) in temps.iter().zip(&targets) {
            fs::rename(tmp, target).map_err(io_err("renaming into place", target))?;
            let meta = fs::metadata(target).map_err(io_err("reading", target))?;
            versions.push(version_of(&meta));
            if let Some(dir) = target.parent().filter(|d| !dirs.contains(d)) {
                dirs.push(dir);
            }
        }
        staged.temps.clear();
        for dir in dirs {
            sync_dir(dir)?;
        }
        Ok(versions)
    }

    pub(crate) fn delete(&self, path: &str) -> Result<(), StoreError> {
        let file_path = self.file(path);
        let _lock = self.lock("store.lock")?;
        match fs::remove_file(&file_path) {
            Ok(()) => {}
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(io_err("removing", &file_path)(e)),
        }
        match file_path.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }

    pub(crate) fn list(&self, folder: &str) -> Result<Vec<Meta>, StoreError> {
        let dir = self.file(folder);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_err("listing", &dir)(e)),
        };
        let mut list = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("listing", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Removed between listing and stat.
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(io_err("reading", &entry.path())(e)),
            };
            if meta.is_file() {
                list.push(meta_of(&format!("{folder}/{name}"), &meta));
            }
        }
        Ok(list)
    }

    /// Removes the temporaries in `folder` that a writer killed mid-commit left behind (their
    /// process is gone); returns how many. Others' live temporaries are left alone.
    pub(crate) fn remove_orphaned_temporaries(&self, folder: &str) -> Result<usize, StoreError> {
        let dir = self.file(folder);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_missing(&e) => return Ok(0),
            Err(e) => return Err(io_err("listing", &dir)(e)),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(io_err("listing", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = temporary_owner(&name) else {
                continue;
            };
            if Path::new("/proc").join(pid.to_string()).exists() {
                continue;
            }
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(io_err("removing", &entry.path())(e)),
            }
        }
        Ok(removed)
    }

    pub(crate) fn append(&self, path: &str, record: &[u8]) -> Result<(), StoreError> {
        let file_path = self.file(path);
        if let Some(dir) = file_path.parent() {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        }
        let mut line = Vec::with_capacity(record.len() + 1);
        line.extend_from_slice(record);
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file_path)
            .map_err(io_err("opening", &file_path))?;
        // One write of a whole line with O_APPEND: concurrent writers never interleave lines.
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(io_err("appending to", &file_path))
    }

    pub(crate) fn read_log(&self, path: &str) -> Result<Vec<Bytes>, StoreError> {
        let file_path = self.file(path);
        let bytes = match fs::read(&file_path) {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) if is_missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading", &file_path)(e)),
        };
        let mut records = Vec::new();
        let mut start = 0;
        for (i, byte) in bytes.iter().enumerate() {
            if *byte == b'\n' {
                records.push(bytes.slice(start..i));
                start = i + 1;
            }
        }
        Ok(records)
    }

    pub(crate) fn lock(&self, name: &str) -> Result<File, StoreError> {
        let dir = self.root.join(STATE_DIR);
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let path = dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("opening lock", &path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
            StoreError::Io {
                action: "locking",
                path: path.display().to_string(),
                source: e.into(),
            }
        })?;
        Ok(file)
    }
}

/// Temporaries of an unfinished commit, removed when it is dropped.
#[derive(Default)]
struct Staged {
    temps: Vec<PathBuf>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        for tmp in &self.temps {
            let _ = fs::remove_file(tmp);
        }
    }
}

fn check(path: &str, target: &Path, precondition: &Precondition) -> Result<(), StoreError> {
    let current = match fs::metadata(target) {
        Ok(meta) => Some(version_of(&meta)),
        Err(e) if is_missing(&e) => None,
        Err(e) => return Err(io_err("reading", target)(e)),
    };
    let holds = match precondition {
        Precondition::Overwrite => true,
        Precondition::Create => current.is_none(),
        Precondition::Match(version) => current.as_deref() == Some(version.as_str()),
    };
    if holds {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            path: path.to_owned(),
        })
    }
}

fn write_temp(tmp: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err("creating", tmp))?;
    file.write_all(bytes).map_err(io_err("writing", tmp))?;
    // A nanosecond stamp of our own: the filesystem's clock may tick only every few ms.
    file.set_modified(SystemTime::now())
        .map_err(io_err("stamping", tmp))?;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(io_err("setting permissions of", tmp))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing folder", dir))
}

fn temp_path(target: &Path) -> PathBuf {
    // Unique per process and per call, so concurrent writers never share a temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    target.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// The process that wrote a temporary named by [`temp_path`] (`.NAME.tmp-PID-N`).
fn temporary_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (_, suffix) = rest.rsplit_once(".tmp-")?;
    let (pid, n) = suffix.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

fn version_of(meta: &fs::Metadata) -> String {
    format!(
        "{:x}-{:x}.{:x}-{:x}",
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.len()
    )
}

fn meta_of(path: &str, meta: &fs::Metadata) -> Meta {
    Meta {
        path: path.to_owned(),
        size: meta.len(),
        version: version_of(meta),
        last_modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// Opens an object for reading, refusing a symbolic link in its place (`O_NOFOLLOW`). The store
/// writes only regular files, by rename; a link can only have been put there by someone else,
/// and it may point anywhere (`/etc/shadow`, a private key): it is never an object, so never
/// served or read.
fn open_object(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let no_follow = i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).expect("O_NOFOLLOW fits");
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(no_follow)
        .open(path)
}

/// Opens `file_path` (the object `path`) at the start of `range`, if it still is `version`.
fn open_for_stream(
    path: &str,
    file_path: &Path,
    version: Option<&str>,
    range: ByteRange,
) -> Result<Opened, StoreError> {
    let mut file = match open_object(file_path) {
        Ok(file) => file,
        Err(e) if is_missing(&e) || is_symlink(&e) => return Ok(Opened::Missing),
        Err(e) => return Err(io_err("opening", file_path)(e)),
    };
    // Identity and bytes from one open file: a rename over it later changes neither.
    let file_meta = file.metadata().map_err(io_err("reading", file_path))?;
    if !file_meta.is_file() {
        return Ok(Opened::Missing);
    }
    let meta = meta_of(path, &file_meta);
    if version.is_some_and(|v| v != meta.version) {
        return Ok(Opened::Changed);
    }
    let range = range.unwrap_or(0..meta.size);
    let start = range.start.min(meta.size);
    let end = range.end.clamp(start, meta.size);
    file.seek(SeekFrom::Start(start))
        .map_err(io_err("reading", file_path))?;
    Ok(Opened::Found(ObjectStream {
        meta,
        body: read_chunks(file, end - start, file_path.display().to_string()),
    }))
}

/// `len` bytes of `file` from where it stands, [`CHUNK`] at a time, each read on a blocking
/// thread.
fn read_chunks(file: File, len: u64, name: String) -> ByteStream {
    Box::pin(futures_util::stream::try_unfold(
        (file, len),
        move |(mut file, left)| {
            let name = name.clone();
            async move {
                if left == 0 {
                    return Ok(None);
                }
                let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                let read = tokio::task::spawn_blocking(move || {
                    let mut chunk = vec![0; want];
                    file.read_exact(&mut chunk).map(|()| (file, chunk))
                })
                .await
                .map_err(|e| join_error(&name, &e))?;
                let (file, chunk) = read.map_err(|source| StoreError::Io {
                    action: "reading",
                    path: name,
                    source,
                })?;
                Ok(Some((Bytes::from(chunk), (file, left - want as u64))))
            }
        },
    ))
}

/// What opening a symbolic link with `O_NOFOLLOW` fails with.
fn is_symlink(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

fn is_missing(e: &std::io::Error) -> bool {
    // A file where a folder should be (`names/x`) is as missing as no file at all.
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

pub(crate) fn join_error(path: &str, e: &tokio::task::JoinError) -> StoreError {
    StoreError::Io {
        action: "reading",
        path: path.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn only_temporaries_of_processes_that_are_gone_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let tarballs = dir.path().join("tarballs");
        std::fs::create_dir_all(&tarballs).unwrap();
        // Above any pid_max Linux allows, so never a running process.
        let orphan = tarballs.join(".foo-1.0.0.tar.tmp-2147483647-0");
        let live = tarballs.join(format!(".foo-1.0.0.tar.tmp-{}-1", std::process::id()));
        let tarball = tarballs.join("foo-1.0.0.tar");
        let dotfile = tarballs.join(".keep");
        for file in [&orphan, &live, &tarball, &dotfile] {
            std::fs::write(file, b"x").unwrap();
        }
        let root_orphan = dir.path().join(".names.tmp-2147483647-3");
        std::fs::write(&root_orphan, b"x").unwrap();
        let store = Store::local(dir.path());
        assert_eq!(store.remove_orphaned_temporaries().unwrap(), 2);
        assert!(!orphan.exists() && !root_orphan.exists());
        assert!(live.exists() && tarball.exists() && dotfile.exists());
        assert_eq!(store.remove_orphaned_temporaries().unwrap(), 0);
    }

    #[test]
    fn a_symbolic_link_in_place_of_an_object_is_no_object() {
        use crate::{LocalVersion, StorageKey};
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("private_key.pem");
        std::fs::write(&secret, b"secret").unwrap();
        for folder in ["packages", "tarballs"] {
            std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        }
        std::os::unix::fs::symlink(&secret, dir.path().join("packages/evil")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join("tarballs/evil-1.0.0.tar")).unwrap();
        let store = Store::local(dir.path());
        for key in [
            StorageKey::package("evil"),
            StorageKey::tarball("evil", "1.0.0"),
        ] {
            assert!(store.get(&key).unwrap().is_none(), "{key}");
            assert!(store.head(&key).unwrap().is_none(), "{key}");
            assert!(
                matches!(store.local_version(&key), Some(LocalVersion::Missing)),
                "{key}"
            );
        }
    }
}
