//! Atomic replacement of repository files and the repository lock.
//!
//! A batch of files is written to temporary names beside their targets, flushed to disk with one
//! `syncfs` (one call instead of an fsync per file keeps a 1,000-package build fast), then
//! renamed into place in the caller's order, so a reader sees either the old or the new file,
//! never a partial one. Temporary names start with a dot, which `hexrepo serve` never serves.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::error::{RegistryError, io_err};

/// Files to put in place together. Dropping an uncommitted batch removes its temporary files.
#[derive(Debug, Default)]
pub struct Batch {
    staged: Vec<(PathBuf, PathBuf)>,
}

impl Batch {
    /// Writes `bytes` to a temporary file beside `target` (mode 0644, whatever the umask).
    pub fn stage(&mut self, target: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
        let tmp = temp_path(target);
        self.staged.push((tmp.clone(), target.to_owned()));
        write_temp(&tmp, bytes)
    }

    /// Stages many files at once, writing them in parallel; they commit in the given order.
    pub fn stage_all(&mut self, files: &[(PathBuf, Vec<u8>)]) -> Result<(), RegistryError> {
        use rayon::prelude::*;
        let staged: Vec<(PathBuf, PathBuf)> = files
            .iter()
            .map(|(target, _)| (temp_path(target), target.clone()))
            .collect();
        // Recorded before writing, so a failure part-way still removes every temporary on drop.
        self.staged.extend(staged.iter().cloned());
        staged
            .par_iter()
            .zip(files.par_iter())
            .try_for_each(|((tmp, _), (_, bytes))| write_temp(tmp, bytes))
    }

    /// Flushes every staged file to disk, then renames them into place in staging order.
    pub fn commit(mut self) -> Result<(), RegistryError> {
        let Some((first, _)) = self.staged.first() else {
            return Ok(());
        };
        let file = File::open(first).map_err(io_err("opening", first))?;
        rustix::fs::syncfs(&file).map_err(|e| RegistryError::Io {
            action: "syncing filesystem of",
            path: first.clone(),
            source: e.into(),
        })?;
        let staged = std::mem::take(&mut self.staged);
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (i, (tmp, target)) in staged.iter().enumerate() {
            if let Err(e) = fs::rename(tmp, target) {
                // Leave nothing behind: the rest of the batch is abandoned.
                for (tmp, _) in &staged[i..] {
                    let _ = fs::remove_file(tmp);
                }
                return Err(io_err("renaming into place", target)(e));
            }
            if let Some(dir) = target
                .parent()
                .filter(|d| !dirs.iter().any(|known| known == d))
            {
                dirs.push(dir.to_owned());
            }
        }
        for dir in dirs {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Whether nothing was staged.
    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = fs::remove_file(tmp);
        }
    }
}

fn write_temp(tmp: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err("creating", tmp))?;
    file.write_all(bytes).map_err(io_err("writing", tmp))?;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(io_err("setting permissions of", tmp))
}

/// Writes one file atomically (a batch of one).
pub fn write_atomic(target: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let mut batch = Batch::default();
    batch.stage(target, bytes)?;
    batch.commit()
}

/// Makes renames and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), RegistryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing folder", dir))
}

fn temp_path(target: &Path) -> PathBuf {
    // Unique per process and per call, so concurrent batches never share a temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    target.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// An exclusive lock on a repository folder, held until dropped, so two builds, or a build and
/// a retire, never interleave their writes.
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
}

impl RepoLock {
    /// Takes the lock at `path`, waiting for another holder to finish.
    pub fn acquire(path: &Path) -> Result<RepoLock, RegistryError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err("opening lock", path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
            RegistryError::Io {
                action: "locking",
                path: path.to_owned(),
                source: e.into(),
            }
        })?;
        Ok(RepoLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_renames_in_order_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, "old").unwrap();
        let mut batch = Batch::default();
        batch.stage(&a, b"new a").unwrap();
        batch.stage(&b, b"new b").unwrap();
        assert_eq!(
            fs::read(&a).unwrap(),
            b"old",
            "nothing visible before commit"
        );
        batch.commit().unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"new a");
        assert_eq!(
            fs::metadata(&b).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn dropped_batch_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut batch = Batch::default();
        batch.stage(&dir.path().join("a"), b"x").unwrap();
        drop(batch);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
