//! Shared test fixtures: the mix-built reference repository, repository folders in temp dirs,
//! and snapshots of a folder for "nothing changed" assertions.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use hexfmt::keys::PrivateKey;
use hexrepo_registry::Layout;
use hexrepo_registry::build::{BuildOptions, BuildReport, build};

pub const REPO: &str = "acme";

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mix-reference")
}

pub fn key() -> PrivateKey {
    PrivateKey::from_pem(&fs::read(fixture().join("test_private_key.pem")).unwrap()).unwrap()
}

/// A temp repository holding the fixture's tarballs (minus `except`), with mix's mtimes.
pub fn repo_with_fixture_tarballs(except: &[&str]) -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("public"));
    fs::create_dir_all(layout.tarballs_dir()).unwrap();
    let mtimes = fs::read_to_string(fixture().join("tarball_mtimes.txt")).unwrap();
    for line in mtimes.lines() {
        let (file, secs) = line.split_once(' ').unwrap();
        if !except.contains(&file) {
            add_fixture_tarball(&layout, file, secs.parse().unwrap());
        }
    }
    (dir, layout)
}

/// Copies one fixture tarball in and sets its mtime.
pub fn add_fixture_tarball(layout: &Layout, file: &str, mtime: u64) {
    let target = layout.tarballs_dir().join(file);
    fs::copy(fixture().join("public/tarballs").join(file), &target).unwrap();
    let f = fs::File::options().write(true).open(&target).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
        .unwrap();
}

/// A build in the default mode, which dates releases by their tarballs.
pub fn run_build(layout: &Layout) -> BuildReport {
    try_build(layout, false).unwrap()
}

/// A build in the mix-compatible mode, for comparisons with the fixture byte for byte.
pub fn run_mix_build(layout: &Layout) -> BuildReport {
    build_with(layout, false, true).unwrap()
}

pub fn try_build(
    layout: &Layout,
    skip_invalid: bool,
) -> Result<BuildReport, hexrepo_registry::RegistryError> {
    build_with(layout, skip_invalid, false)
}

fn build_with(
    layout: &Layout,
    skip_invalid: bool,
    mix_compatible: bool,
) -> Result<BuildReport, hexrepo_registry::RegistryError> {
    build(&BuildOptions {
        store: &layout.store(),
        repository: REPO,
        key: &key(),
        skip_invalid,
        mix_compatible,
    })
}

/// The repository files' names and their change lines, relative to the layout root.
pub fn change_lines(layout: &Layout, report: &BuildReport) -> Vec<String> {
    let root = format!("{}/", layout.root().display());
    report
        .changes
        .iter()
        .map(|c| c.to_string().replace(&root, ""))
        .collect()
}

/// Every file under `root` except our own `.hexrepo/` state: path → (inode, mtime ns, bytes).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".hexrepo") {
                continue;
            }
            let meta = fs::metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let stamp = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
                out.insert(path.clone(), (meta.ino(), stamp, fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// The decompressed bytes of a gzipped registry file.
pub fn gunzip(path: &Path) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}
