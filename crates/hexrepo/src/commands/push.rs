//! `hexrepo push PUBLIC_DIR STORAGE_URL [--delete] [--dry-run]`: the Hex self-hosting guide's
//! `aws s3 sync public/ s3://bucket`, done safely.
//!
//! Only repository files leave the folder (HEX-PROTOCOL.md §1.1: `names`, `versions`,
//! `public_key`, `packages/*`, `tarballs/*.tar`, `docs/*.tar.gz`, as
//! [`StorageKey::from_repository_path`] recognises them); a private key, `.hexrepo/` state,
//! dot-files, temporaries and strays never do. Uploads go in the order that keeps every index's
//! promise: tarballs and docs, then `packages/*`, `public_key`, `versions`, and `names` last,
//! so a client never reads an index naming a file that is not there yet. For the same reason
//! `--delete` runs only after the indexes are up, and touches only repository objects.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use hexrepo_store::{Bytes, Folder, Meta, Precondition, StorageKey, Store, StoreOptions, Write};
use md5::{Digest as _, Md5};

/// Arguments of `hexrepo push`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The repository folder, as `hexrepo build` writes it.
    public_dir: PathBuf,
    /// Where to: `s3://bucket/prefix` (set up by the usual AWS_* variables), `file:///path` or
    /// a folder.
    storage_url: String,
    /// Also delete the destination's packages, tarballs and docs that the folder no longer has.
    #[arg(long)]
    delete: bool,
    /// Print what would be uploaded and deleted, and write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Folders uploaded in this order, before the top-level files.
const FOLDERS: [Folder; 3] = [Folder::Tarballs, Folder::Docs, Folder::Packages];

/// Uploads held in memory at once, at most: enough to keep the store's concurrent writes busy
/// without reading a whole repository into memory.
const BATCH_WRITES: usize = 16;
/// Bytes held in memory at once, at most (a batch of one may be bigger).
const BATCH_BYTES: usize = 64 << 20;

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let dir = args.public_dir.display();
    let local = Store::local(&args.public_dir);
    for required in [StorageKey::Names, StorageKey::PublicKey] {
        let found = local
            .head(&required)
            .context("reading the repository folder")?;
        anyhow::ensure!(
            found.is_some(),
            "{dir} is not a repository folder: it has no {required} (run `hexrepo build` first)"
        );
    }
    let dest = Store::open(&args.storage_url, &StoreOptions::default())
        .with_context(|| format!("opening {}", args.storage_url))?;
    let there = destination(&dest).with_context(|| format!("listing {}", dest.describe()))?;
    let files = repository_files(&local).with_context(|| format!("listing {dir}"))?;

    let mut uploads = Uploads {
        dest: &dest,
        dry_run: args.dry_run,
        pending: Vec::new(),
        pending_bytes: 0,
        pushed: 0,
    };
    let mut unchanged = 0;
    for key in &files {
        let bytes = local
            .get(key)
            .context("reading the repository folder")?
            .with_context(|| format!("{dir}/{key} vanished while pushing"))?
            .bytes;
        let same = is_unchanged(&dest, key, &bytes, there.get(key))
            .with_context(|| format!("comparing {key} with {}", dest.describe()))?;
        if same {
            unchanged += 1;
        } else {
            uploads.add(key.clone(), bytes)?;
        }
    }
    uploads.flush()?;

    let stale = stale_objects(&there, &files);
    let deleted = if args.delete {
        delete(&dest, &stale, args.dry_run)?
    } else {
        if !stale.is_empty() {
            eprintln!(
                "note: {} objects in {} are not in {dir}; --delete removes them",
                stale.len(),
                dest.describe()
            );
        }
        0
    };

    let pushed = uploads.pushed;
    if args.dry_run {
        eprintln!(
            "would push {pushed}, unchanged {unchanged}, would delete {deleted} (dry run: nothing written)"
        );
    } else {
        eprintln!("pushed {pushed}, unchanged {unchanged}, deleted {deleted}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The folder's repository files in upload order. Only what [`StorageKey::from_repository_path`]
/// recognises; the store's listing already leaves out dot-files and temporaries.
fn repository_files(local: &Store) -> anyhow::Result<Vec<StorageKey>> {
    let mut keys = Vec::new();
    for folder in FOLDERS {
        keys.extend(
            repository_objects(local, folder)?
                .into_iter()
                .map(|(k, _)| k),
        );
    }
    for key in [
        StorageKey::PublicKey,
        StorageKey::Versions,
        StorageKey::Names,
    ] {
        if local.head(&key)?.is_some() {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// What the destination holds of the repository: one listing per folder, one `head` per
/// top-level file. S3 listings carry ETags, so comparing needs no request per object.
fn destination(dest: &Store) -> anyhow::Result<HashMap<StorageKey, Meta>> {
    let mut there = HashMap::new();
    for folder in FOLDERS {
        there.extend(repository_objects(dest, folder)?);
    }
    for key in [
        StorageKey::PublicKey,
        StorageKey::Versions,
        StorageKey::Names,
    ] {
        if let Some(meta) = dest.head(&key)? {
            there.insert(key, meta);
        }
    }
    Ok(there)
}

fn repository_objects(store: &Store, folder: Folder) -> anyhow::Result<Vec<(StorageKey, Meta)>> {
    Ok(store
        .list(folder)?
        .into_iter()
        .filter_map(|meta| Some((StorageKey::from_repository_path(&meta.path)?, meta)))
        .collect())
}

/// The destination's packages, tarballs and docs that the folder lacks, `packages/*` first: a
/// package file that outlived its tarball would send clients to a missing file.
fn stale_objects<'a>(
    there: &'a HashMap<StorageKey, Meta>,
    files: &[StorageKey],
) -> Vec<&'a StorageKey> {
    let local: HashSet<&StorageKey> = files.iter().collect();
    let mut stale: Vec<&StorageKey> = there
        .keys()
        .filter(|key| is_in_folder(key) && !local.contains(key))
        .collect();
    stale.sort_by_key(|key| (delete_rank(key), key.path()));
    stale
}

/// Deletes (or, in a dry run, names) each stale object; returns how many.
fn delete(dest: &Store, stale: &[&StorageKey], dry_run: bool) -> anyhow::Result<usize> {
    for key in stale {
        if dry_run {
            println!("Would delete {key}");
        } else {
            println!("Deleting {key}");
            dest.delete(key)
                .with_context(|| format!("deleting {key} from {}", dest.describe()))?;
        }
    }
    Ok(stale.len())
}

/// Whether the destination already has exactly these bytes: same size, and the same MD5 when
/// its ETag is one (S3's single-part uploads), else the same bytes read back (local disk,
/// memory, multipart uploads). An ETag that is 32 hex digits but not the content's MD5
/// (S3 with SSE-KMS) only costs a needless upload.
fn is_unchanged(
    dest: &Store,
    key: &StorageKey,
    bytes: &[u8],
    there: Option<&Meta>,
) -> anyhow::Result<bool> {
    let Some(meta) = there else {
        return Ok(false);
    };
    if meta.size != bytes.len() as u64 {
        return Ok(false);
    }
    if let Some(md5) = etag_md5(&meta.version) {
        return Ok(md5 == md5_hex(bytes));
    }
    Ok(dest.get(key)?.is_some_and(|object| object.bytes == bytes))
}

/// The MD5 an S3 ETag states, lower-case, if it is one (`"<32 hex digits>"`).
fn etag_md5(etag: &str) -> Option<String> {
    let hex = etag.trim_matches('"');
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_lowercase())
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Packages, tarballs and docs: the only objects `--delete` may remove.
fn is_in_folder(key: &StorageKey) -> bool {
    matches!(
        key,
        StorageKey::Package(_) | StorageKey::Tarball { .. } | StorageKey::Docs { .. }
    )
}

fn delete_rank(key: &StorageKey) -> u8 {
    match key {
        StorageKey::Package(_) => 0,
        StorageKey::Tarball { .. } => 1,
        _ => 2,
    }
}

/// Uploads in order, a batch at a time: one folder's files go concurrently (see
/// [`Store::commit`]), and a batch never mixes folders, so every line printed before a batch
/// is written with it, and `names` is written after everything else succeeded.
struct Uploads<'a> {
    dest: &'a Store,
    dry_run: bool,
    pending: Vec<Write>,
    pending_bytes: usize,
    pushed: usize,
}

impl Uploads<'_> {
    fn add(&mut self, key: StorageKey, bytes: Bytes) -> anyhow::Result<()> {
        let other_folder = self
            .pending
            .last()
            .is_some_and(|last| folder_of(&last.key) != folder_of(&key));
        if other_folder
            || self.pending.len() >= BATCH_WRITES
            || self.pending_bytes + bytes.len() > BATCH_BYTES
        {
            self.flush()?;
        }
        self.pending_bytes += bytes.len();
        self.pending.push(Write {
            key,
            bytes,
            precondition: Precondition::Overwrite,
        });
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        let writes = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        if writes.is_empty() {
            return Ok(());
        }
        for write in &writes {
            let verb = if self.dry_run {
                "Would upload"
            } else {
                "Uploading"
            };
            println!("{verb} {}", write.key);
        }
        self.pushed += writes.len();
        if self.dry_run {
            return Ok(());
        }
        self.dest
            .commit(writes)
            .with_context(|| format!("uploading to {}", self.dest.describe()))?;
        Ok(())
    }
}

/// The folder a key lives in; each top-level file is a group of its own.
fn folder_of(key: &StorageKey) -> String {
    let path = key.path();
    match path.split_once('/') {
        Some((folder, _)) => folder.to_owned(),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_that_are_md5s_are_recognised() {
        assert_eq!(md5_hex(b"hello world"), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(
            etag_md5("\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"").as_deref(),
            Some("5eb63bbbe01eeed093cb22bb8f5acdc3")
        );
        for not_md5 in [
            "\"5eb63bbbe01eeed093cb22bb8f5acdc3-2\"",
            "7",
            "1a-5f.3-10",
            "",
        ] {
            assert_eq!(etag_md5(not_md5), None, "{not_md5}");
        }
    }

    #[test]
    fn same_size_other_content_is_a_change_on_every_backend() {
        let store = Store::memory();
        let key = StorageKey::package("acme");
        store
            .put(&key, Bytes::from_static(b"old!"), Precondition::Overwrite)
            .unwrap();
        let meta = store.head(&key).unwrap();
        assert!(!is_unchanged(&store, &key, b"new!", meta.as_ref()).unwrap());
        assert!(is_unchanged(&store, &key, b"old!", meta.as_ref()).unwrap());
        assert!(!is_unchanged(&store, &key, b"old!", None).unwrap());
    }
}
