//! `hexrepo mirror export` and `import` across a simulated air gap: a mirror synced from the
//! local upstream (see `mirror_support`), exported, imported into another mirror with the
//! upstream's key, then served by `hexrepo serve --mirror` with the upstream stopped, where
//! rebar3 resolves through it. Tampered archives are built with the `tar` crate.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::mirror_support::{
    UPSTREAM, Upstream, build_repository, files, keygen, offline_mirror_server,
    rebar3_resolves_alpha_through, sync_ok,
};
use crate::serve_support::hexrepo_in;
use crate::support::{
    StaticServer, all_output, describe, output_of, require_rebar3_and_nginx, stdout_text, temp_dir,
};

/// A mirror of alpha's closure (alpha, beta, gamma 1.0.0 and 1.1.0), synced and exported.
struct Exported {
    upstream: Upstream,
    tmp: tempfile::TempDir,
    /// The key `export` says to import with.
    fingerprint: String,
}

impl Exported {
    fn new() -> Exported {
        let upstream = Upstream::new();
        let tmp = temp_dir();
        let exported = Exported {
            upstream,
            tmp,
            fingerprint: String::new(),
        };
        let nginx = StaticServer::start(&exported.upstream.public());
        let private = exported.tmp.path().join("private");
        sync_ok(
            &exported.upstream,
            &nginx.url(),
            &exported.source(),
            &private,
            &["alpha"],
        );
        drop(nginx); // From here on the mirror is all there is.
        let mut cmd = hexrepo_in(exported.tmp.path(), &["mirror", "export"]);
        cmd.arg(exported.archive())
            .arg("--mirror-storage")
            .arg(exported.source());
        let output = output_of(&mut cmd);
        assert!(output.status.success(), "{}", describe(&cmd, &output));
        let out = stdout_text(&output);
        assert!(
            out.contains("exported 6 registry files (3 packages) and 4 tarballs"),
            "{out}"
        );
        let (_, key) = out
            .split_once("import it with the upstream key ")
            .unwrap_or_else(|| panic!("no key fingerprint: {out}"));
        let fingerprint = key.trim().to_owned();
        Exported {
            fingerprint,
            ..exported
        }
    }

    /// Mirror A, synced from the upstream.
    fn source(&self) -> PathBuf {
        self.tmp.path().join("mirror-a")
    }

    fn archive(&self) -> PathBuf {
        self.tmp.path().join("mirror.tar")
    }

    /// `hexrepo mirror import ARCHIVE` into `mirror` with the upstream's name and key.
    fn import(&self, archive: &Path, mirror: &Path) -> (Command, Output) {
        let mut cmd = hexrepo_in(self.tmp.path(), &["mirror", "import"]);
        cmd.arg(archive)
            .args(["--upstream-name", UPSTREAM, "--upstream-public-key"])
            .arg(self.upstream.public_key())
            .arg("--mirror-storage")
            .arg(mirror);
        let output = output_of(&mut cmd);
        (cmd, output)
    }

    fn import_ok(&self, archive: &Path, mirror: &Path) -> String {
        let (cmd, output) = self.import(archive, mirror);
        assert!(output.status.success(), "{}", describe(&cmd, &output));
        stdout_text(&output)
    }

    fn import_failing(&self, archive: &Path, mirror: &Path) -> String {
        let (cmd, output) = self.import(archive, mirror);
        assert!(
            !output.status.success(),
            "import should have failed: {}",
            describe(&cmd, &output)
        );
        all_output(&output)
    }

    /// The archive's entries, in order.
    fn entries(&self) -> Vec<(String, Vec<u8>)> {
        let file = fs::File::open(self.archive()).unwrap();
        let mut archive = tar::Archive::new(file);
        let entries = archive.entries().unwrap().map(|entry| {
            let mut entry = entry.unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            (path, bytes)
        });
        entries.collect()
    }
}

/// Writes an archive of `entries` with their paths exactly as given (the `tar` crate's
/// builder would refuse `../evil`, so the header's name field is set directly).
fn write_archive(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut tar = tar::Builder::new(fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append(&header, bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap();
}

/// Every file under `dir` (state included) with its bytes: what "left as it was" compares.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn mirror_archive_carries_a_mirror_byte_for_byte_that_rebar3_resolves_offline() {
    require_rebar3_and_nginx();
    let exported = Exported::new();
    let target = exported.tmp.path().join("mirror-b");
    let out = exported.import_ok(&exported.archive(), &target);
    // The key export named is the one import verifies with: the upstream's.
    assert!(
        out.contains(&format!(
            "verifying with \"hexpm\"'s key {}",
            exported.fingerprint
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "3 packages imported; tarballs: 4 written, 0 unchanged (already verified); \
             registry files: 6 written, 0 unchanged; 0 failed"
        ),
        "{out}"
    );
    let source = exported.source();
    assert_eq!(files(&target), files(&source));
    for file in files(&source) {
        assert!(
            fs::read(target.join(&file)).unwrap() == fs::read(source.join(&file)).unwrap(),
            "{file} differs from mirror A's"
        );
    }

    // The same archive again: everything is already there.
    let before = snapshot(&target);
    let out = exported.import_ok(&exported.archive(), &target);
    assert!(
        out.contains("tarballs: 0 written, 4 unchanged (already verified); registry files: 0 written, 6 unchanged"),
        "{out}"
    );
    assert!(
        out.contains("nothing written: the mirror already holds every file in the archive"),
        "{out}"
    );
    assert_eq!(snapshot(&target), before);

    // Mirror B served with the upstream stopped (since `Exported::new`): rebar3 resolves
    // alpha's closure through it, as in mirror.rs's rebar3 test.
    let work = temp_dir();
    let server = offline_mirror_server(work.path(), &target);
    rebar3_resolves_alpha_through(&server, &exported.upstream);
}

#[test]
fn mirror_import_refuses_a_tampered_archive_naming_the_entry() {
    require_rebar3_and_nginx();
    let exported = Exported::new();
    let entries = exported.entries();
    let tmp = exported.tmp.path();

    // packages/beta signed with another key, under the upstream's name.
    let other = tmp.join("other");
    fs::create_dir_all(other.join("public/tarballs")).unwrap();
    fs::copy(
        exported.upstream.public().join("tarballs/beta-1.0.0.tar"),
        other.join("public/tarballs/beta-1.0.0.tar"),
    )
    .unwrap();
    build_repository(
        &other.join("public"),
        UPSTREAM,
        &keygen(&other, "other_key.pem"),
    );
    let forged = fs::read(other.join("public/packages/beta")).unwrap();
    let mut bad_signature = entries.clone();
    let beta = bad_signature
        .iter_mut()
        .find(|e| e.0 == "packages/beta")
        .unwrap();
    beta.1 = forged;
    let bad_signature_archive = tmp.join("bad-signature.tar");
    write_archive(&bad_signature_archive, &bad_signature);
    // Into an empty mirror: no file at all.
    let empty = tmp.join("mirror-empty");
    let out = exported.import_failing(&bad_signature_archive, &empty);
    assert!(
        out.contains("failed: packages/beta: refused: bad signature"),
        "{out}"
    );
    assert!(out.contains("nothing written to the mirror"), "{out}");
    assert_eq!(snapshot(&empty), []);

    // One tarball's bytes changed.
    let mut bad_tarball = entries.clone();
    let gamma = bad_tarball
        .iter_mut()
        .find(|e| e.0 == "tarballs/gamma-1.1.0.tar")
        .unwrap();
    *gamma.1.last_mut().unwrap() ^= 1;
    let bad_tarball_archive = tmp.join("bad-tarball.tar");
    write_archive(&bad_tarball_archive, &bad_tarball);
    let target = tmp.join("mirror-b");
    let out = exported.import_failing(&bad_tarball_archive, &target);
    assert!(
        out.contains("failed: tarballs/gamma-1.1.0.tar: refused: SHA-256"),
        "{out}"
    );
    let stored = files(&target);
    for file in [
        "tarballs/gamma-1.1.0.tar",
        "packages/gamma",
        "names",
        "versions",
    ] {
        assert!(
            !stored.contains(&file.to_owned()),
            "{file} stored: {stored:?}"
        );
    }

    // The forged package into a mirror that holds something: left exactly as it was.
    let before = snapshot(&target);
    assert!(!before.is_empty());
    let out = exported.import_failing(&bad_signature_archive, &target);
    assert!(
        out.contains("failed: packages/beta: refused: bad signature"),
        "{out}"
    );
    assert_eq!(snapshot(&target), before);
}

#[test]
fn mirror_import_refuses_an_entry_outside_the_mirror_and_writes_nothing() {
    require_rebar3_and_nginx();
    let exported = Exported::new();
    let mut entries = exported.entries();
    let first_tarball = entries
        .iter()
        .position(|e| e.0.starts_with("tarballs/"))
        .unwrap();
    // After every registry file and a tarball, so a one-pass importer would already write.
    entries.insert(first_tarball + 1, ("../evil".to_owned(), b"evil".to_vec()));
    let evil_archive = exported.tmp.path().join("evil.tar");
    write_archive(&evil_archive, &entries);

    let root = exported.tmp.path().join("air-gapped");
    let target = root.join("mirror");
    fs::create_dir_all(&target).unwrap();
    let out = exported.import_failing(&evil_archive, &target);
    assert!(
        out.contains("failed: ../evil: refused: not a mirror file"),
        "{out}"
    );
    assert!(out.contains("nothing written to the mirror"), "{out}");
    assert_eq!(snapshot(&root), []);
    assert!(!exported.tmp.path().join("evil").exists());
}
