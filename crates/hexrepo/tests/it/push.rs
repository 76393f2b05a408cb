//! `hexrepo push` run as a binary against a real S3-compatible server (moto, through
//! `hexrepo_store::testing`) and a local folder. The bucket is read back over plain HTTP, not
//! through our store, so what arrived, and with which headers, is judged by the server itself.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use hexrepo_store::testing::{BUCKET, S3Server};
use hexrepo_store::{Bytes, Precondition, StorageKey};

use crate::interop::REPO;
use crate::support::{
    all_output, hexrepo_bin, mix_reference, read_text, run, run_expecting_failure, stdout_text,
    temp_dir,
};

/// The tarball left out of the first build and added later.
const LATE_TARBALL: &str = "acme_core-1.1.0-rc.1.tar";
/// Docs the fixture lacks; push does not look inside them.
const DOCS: &str = "docs/acme_core-1.0.0.tar.gz";

/// `TMP/public`: the fixture's tarballs but `leave_out`, built by `hexrepo build`, with docs, and
/// with files that must never leave the folder: a private key, `.hexrepo/` state, a stray file
/// and a temporary.
fn repository(tmp: &Path, leave_out: &[&str]) -> PathBuf {
    let public = tmp.join("public");
    let tarballs = public.join("tarballs");
    fs::create_dir_all(&tarballs).unwrap();
    let mtimes = read_text(&mix_reference().join("tarball_mtimes.txt"));
    for name in mtimes.lines().filter_map(|line| line.split(' ').next()) {
        if !leave_out.contains(&name) {
            add_tarball(&public, name);
        }
    }
    rebuild(&public);
    fs::create_dir_all(public.join("docs")).unwrap();
    fs::write(public.join(DOCS), b"\x1f\x8b not really docs").unwrap();
    fs::copy(
        mix_reference().join("test_private_key.pem"),
        public.join("private.pem"),
    )
    .unwrap();
    fs::create_dir_all(public.join(".hexrepo")).unwrap();
    fs::write(public.join(".hexrepo/keys.json"), b"{\"secret\": true}").unwrap();
    fs::write(public.join("notes.txt"), b"stray").unwrap();
    fs::write(public.join("tarballs/README"), b"stray").unwrap();
    fs::write(public.join("packages/.acme_web.tmp-1-2"), b"temporary").unwrap();
    public
}

/// Copies a fixture tarball with the modification time mix saw, so `names` (which records the
/// newest release's time) changes only when a package gets a newer release.
fn add_tarball(public: &Path, name: &str) {
    let mtimes = read_text(&mix_reference().join("tarball_mtimes.txt"));
    let seconds = mtimes
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap();
    let target = public.join("tarballs").join(name);
    fs::copy(mix_reference().join("public/tarballs").join(name), &target).unwrap();
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.parse().unwrap());
    fs::File::options()
        .write(true)
        .open(&target)
        .and_then(|file| file.set_modified(mtime))
        .unwrap();
}

fn rebuild(public: &Path) {
    run(Command::new(hexrepo_bin())
        .arg("build")
        .arg(public)
        .args(["--name", REPO, "--private-key"])
        .arg(mix_reference().join("test_private_key.pem")));
}

/// The repository files of `public`, by the protocol's grammar (not our `StorageKey`).
fn repository_files(public: &Path) -> BTreeSet<String> {
    let mut files: BTreeSet<String> = ["names", "versions", "public_key"]
        .map(str::to_owned)
        .into();
    for (folder, suffix) in [("packages", ""), ("tarballs", ".tar"), ("docs", ".tar.gz")] {
        let Ok(entries) = fs::read_dir(public.join(folder)) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if !name.starts_with('.') && name.ends_with(suffix) {
                files.insert(format!("{folder}/{name}"));
            }
        }
    }
    files
}

/// `hexrepo push PUBLIC URL [EXTRA...]` with `env`, which must succeed.
fn push(public: &Path, url: &str, env: &[(&str, String)], extra: &[&str]) -> Output {
    run(Command::new(hexrepo_bin())
        .arg("push")
        .arg(public)
        .arg(url)
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v))))
}

/// The paths after `VERB ` on stdout, in order.
fn lines(output: &Output, verb: &str) -> Vec<String> {
    stdout_text(output)
        .lines()
        .filter_map(|line| line.strip_prefix(verb)?.strip_prefix(' '))
        .map(str::to_owned)
        .collect()
}

fn uploaded(output: &Output) -> Vec<String> {
    lines(output, "Uploading")
}

fn assert_summary(output: &Output, summary: &str) {
    let text = all_output(output);
    assert!(text.contains(summary), "expected {summary:?} in:\n{text}");
}

/// The bucket over plain HTTP. moto wants some SigV4 `Authorization` header, and checks no
/// signature (tools/s3-server).
struct Bucket<'a> {
    server: &'a S3Server,
    prefix: &'a str,
    client: reqwest::blocking::Client,
}

impl<'a> Bucket<'a> {
    fn new(server: &'a S3Server, prefix: &'a str) -> Bucket<'a> {
        Bucket {
            server,
            prefix,
            client: reqwest::blocking::Client::new(),
        }
    }

    fn request(&self, query: &str) -> reqwest::blocking::Response {
        self.client
            .get(format!("{}/{BUCKET}{query}", self.server.endpoint))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .send()
            .unwrap()
    }

    /// `GET /BUCKET/PREFIX/PATH`, expecting a 200.
    fn get(&self, path: &str) -> reqwest::blocking::Response {
        let response = self.request(&format!("/{}/{path}", self.prefix));
        assert_eq!(response.status(), 200, "GET {path}");
        response
    }

    /// Every key under the prefix, relative to it (ListObjectsV2).
    fn keys(&self) -> BTreeSet<String> {
        let xml = self
            .request(&format!("?list-type=2&prefix={}/", self.prefix))
            .text()
            .unwrap();
        assert!(!xml.contains("<IsTruncated>true"), "{xml}");
        xml.split("<Key>")
            .skip(1)
            .map(|rest| {
                let key = rest.split_once("</Key>").unwrap().0;
                key.strip_prefix(&format!("{}/", self.prefix))
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

#[test]
fn push_to_s3_uploads_every_repository_file_indexes_last_and_nothing_else() {
    let server = S3Server::start();
    let tmp = temp_dir();
    let public = repository(tmp.path(), &[]);
    let url = server.url("repo");
    let bucket = Bucket::new(&server, "repo");

    let dry = push(&public, &url, &server.env(), &["--dry-run"]);
    assert_eq!(
        lines(&dry, "Would upload").len(),
        repository_files(&public).len()
    );
    assert_eq!(bucket.keys(), BTreeSet::new(), "a dry run writes nothing");

    let output = push(&public, &url, &server.env(), &[]);
    let order = uploaded(&output);
    let expected = repository_files(&public);
    assert_eq!(order.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(
        order[order.len() - 3..],
        ["public_key", "versions", "names"]
    );
    let first_package = order
        .iter()
        .position(|p| p.starts_with("packages/"))
        .unwrap();
    assert!(
        order[..first_package]
            .iter()
            .all(|p| p.starts_with("tarballs/") || p.starts_with("docs/")),
        "tarballs and docs go before the packages that name them: {order:?}"
    );
    assert_summary(
        &output,
        &format!("pushed {}, unchanged 0, deleted 0", expected.len()),
    );

    // Exactly the repository files arrived: no key, state, stray or temporary.
    assert_eq!(bucket.keys(), expected);
    for path in &expected {
        let body = bucket.get(path).bytes().unwrap();
        assert!(
            body == fs::read(public.join(path)).unwrap(),
            "{path} differs"
        );
    }
    // Headers for anyone serving the bucket directly.
    let tarball = bucket.get("tarballs/acme_core-1.0.0.tar");
    let header = |name: &str| tarball.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("cache-control"), "public, max-age=604800");
    assert_eq!(header("content-type"), "application/octet-stream");
    let docs = bucket.get(DOCS);
    assert_eq!(docs.headers()["content-type"], "application/gzip");

    let again = push(&public, &url, &server.env(), &[]);
    assert_eq!(uploaded(&again), Vec::<String>::new());
    assert_summary(
        &again,
        &format!("pushed 0, unchanged {}, deleted 0", expected.len()),
    );
}

#[test]
fn push_to_s3_uploads_only_changes_and_deletes_only_with_delete() {
    let server = S3Server::start();
    let tmp = temp_dir();
    let public = repository(tmp.path(), &[LATE_TARBALL]);
    let url = server.url("repo");
    let bucket = Bucket::new(&server, "repo");
    push(&public, &url, &server.env(), &[]);

    // A new release of one package: its tarball, its package file and the indexes, names last.
    add_tarball(&public, LATE_TARBALL);
    rebuild(&public);
    let output = push(&public, &url, &server.env(), &[]);
    assert_eq!(
        uploaded(&output),
        [
            &format!("tarballs/{LATE_TARBALL}"),
            "packages/acme_core",
            "versions",
            "names"
        ]
    );
    assert_eq!(bucket.keys(), repository_files(&public));

    // Same size, other bytes: the ETag (an MD5) tells them apart.
    let s3 = server.store("repo");
    let package = StorageKey::package("pkg_00001");
    let size = fs::metadata(public.join(package.path())).unwrap().len();
    let same_size = Bytes::from(vec![b'x'; usize::try_from(size).unwrap()]);
    s3.put(&package, same_size, Precondition::Overwrite)
        .unwrap();
    assert_eq!(
        uploaded(&push(&public, &url, &server.env(), &[])),
        ["packages/pkg_00001"]
    );

    // A release removed locally stays in the bucket until --delete, and state is never deleted.
    // pkg_00003's newest release stays, so `names` does not change.
    s3.put(
        &StorageKey::Keys,
        Bytes::from_static(b"{}"),
        Precondition::Overwrite,
    )
    .unwrap();
    let gone = "tarballs/pkg_00003-0.1.0.tar";
    fs::remove_file(public.join(gone)).unwrap();
    rebuild(&public);
    let without = push(&public, &url, &server.env(), &[]);
    assert_eq!(uploaded(&without), ["packages/pkg_00003", "versions"]);
    assert!(all_output(&without).contains("--delete removes them"));
    bucket.get(gone);

    let dry = push(&public, &url, &server.env(), &["--delete", "--dry-run"]);
    assert_eq!(lines(&dry, "Would delete"), [gone]);
    assert_summary(&dry, "would push 0, unchanged");
    bucket.get(gone);

    let output = push(&public, &url, &server.env(), &["--delete"]);
    assert_eq!(lines(&output, "Deleting"), [gone]);
    assert_summary(&output, "pushed 0, unchanged");
    assert_summary(&output, "deleted 1");
    let mut expected = repository_files(&public);
    expected.insert(StorageKey::Keys.path());
    assert_eq!(bucket.keys(), expected);
}

#[test]
fn push_to_a_folder_copies_repository_files_only_and_compares_content() {
    let tmp = temp_dir();
    let public = repository(tmp.path(), &[]);
    let mirror = tmp.path().join("mirror");
    let url = format!("file://{}", mirror.display());

    push(&public, &url, &[], &["--dry-run"]);
    assert!(!mirror.exists(), "a dry run writes nothing");

    push(&public, &url, &[], &[]);
    let expected = repository_files(&public);
    assert_eq!(repository_files(&mirror), expected);
    for path in &expected {
        assert!(
            fs::read(public.join(path)).unwrap() == fs::read(mirror.join(path)).unwrap(),
            "{path} differs"
        );
    }
    for secret in [
        "private.pem",
        ".hexrepo/keys.json",
        "notes.txt",
        "tarballs/README",
    ] {
        assert!(!mirror.join(secret).exists(), "{secret} was pushed");
    }
    let temporaries = fs::read_dir(mirror.join("packages"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(temporaries, 0);

    // No ETag to compare here: the bytes are read back, so a same-size change is still seen.
    let again = push(&public, &url, &[], &[]);
    assert_summary(
        &again,
        &format!("pushed 0, unchanged {}, deleted 0", expected.len()),
    );
    let tampered = mirror.join("packages/acme_web");
    let size = fs::metadata(&tampered).unwrap().len();
    fs::write(&tampered, vec![0; usize::try_from(size).unwrap()]).unwrap();
    let output = push(&public, &url, &[], &[]);
    assert_eq!(uploaded(&output), ["packages/acme_web"]);
    assert_eq!(
        fs::read(&tampered).unwrap(),
        fs::read(public.join("packages/acme_web")).unwrap()
    );
}

#[test]
fn push_refuses_a_folder_that_is_not_a_repository() {
    let tmp = temp_dir();
    let folder = tmp.path().join("just-tarballs");
    fs::create_dir_all(folder.join("tarballs")).unwrap();
    let mirror = tmp.path().join("mirror");
    let output = run_expecting_failure(
        Command::new(hexrepo_bin())
            .arg("push")
            .arg(&folder)
            .arg(&mirror),
    );
    let text = all_output(&output);
    assert!(
        text.contains(&format!("{} is not a repository folder", folder.display())),
        "{text}"
    );
    assert!(!mirror.exists());
}
