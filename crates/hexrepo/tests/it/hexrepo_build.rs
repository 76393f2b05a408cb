//! `hexrepo build` output judged by real clients: `hex_core` must verify and decode it (with
//! `--mix-compatible`) exactly as it decodes mix's output, and rebar3 must resolve, fetch and
//! compile from it behind nginx. By default releases carry publication times, which mix's
//! output lacks; the clients must take those too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::clients::{self, Rebar3Project};
use crate::interop::{
    FIXTURE_DEPS, REPO, assert_hex_core_accepts, assert_hex_core_unpacks_tarballs,
    assert_rebar3_fetches, fixture_locked,
};
use crate::support::{
    StaticServer, all_output, describe, file_name, files_ending_with, hexrepo_bin, mix_reference,
    output_of, read_text, require_hex_core, require_rebar3_and_nginx, run, run_expecting_failure,
    stdout_text, temp_dir, tool,
};

/// `hexrepo ARGS`.
fn hexrepo(args: &[&str]) -> Command {
    let mut cmd = Command::new(hexrepo_bin());
    cmd.args(args);
    cmd
}

/// `hexrepo build PUBLIC --name acme --private-key KEY [EXTRA...]`, whatever its exit status.
fn build_command(public: &Path, key: &Path, extra: &[&str]) -> Command {
    let mut cmd = hexrepo(&["build"]);
    cmd.arg(public)
        .args(["--name", REPO, "--private-key"])
        .arg(key)
        .args(extra);
    cmd
}

/// Runs `hexrepo build [EXTRA...]` and asserts it succeeded and wrote a `public_key`.
fn build_with(public: &Path, key: &Path, extra: &[&str]) {
    run(&mut build_command(public, key, extra));
    assert!(
        public.join("public_key").is_file(),
        "hexrepo build wrote no public_key"
    );
}

/// `hexrepo build` in the default mode.
fn build(public: &Path, key: &Path) {
    build_with(public, key, &[]);
}

/// `hexrepo build --mix-compatible`, whose output the fixture's must equal.
fn build_like_mix(public: &Path, key: &Path) {
    build_with(public, key, &["--mix-compatible"]);
}

/// `hexrepo keygen --out DIR/private_key.pem`.
fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("private_key.pem");
    run(hexrepo(&["keygen", "--out"]).arg(&key));
    key
}

/// `TMP/public/tarballs/` holding only the fixture's tarballs, with the modification times mix
/// saw (`tarball_mtimes.txt`), so `names` can be compared byte for byte.
fn fixture_tarballs_only() -> tempfile::TempDir {
    let tmp = temp_dir();
    let tarballs = tmp.path().join("public/tarballs");
    fs::create_dir_all(&tarballs).expect("mkdir tarballs");
    let mtimes = read_text(&mix_reference().join("tarball_mtimes.txt"));
    for line in mtimes.lines() {
        let (name, seconds) = line.split_once(' ').expect("NAME SECONDS");
        let target = tarballs.join(name);
        fs::copy(mix_reference().join("public/tarballs").join(name), &target)
            .expect("copy tarball");
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.parse().expect("seconds"));
        fs::File::options()
            .write(true)
            .open(&target)
            .and_then(|file| file.set_modified(mtime))
            .expect("set mtime");
    }
    tmp
}

/// The registry files of a repository directory, relative to it, sorted.
fn registry_files(public: &Path) -> Vec<String> {
    let mut files = vec!["names".to_owned(), "versions".to_owned()];
    for path in files_ending_with(&public.join("packages"), "") {
        files.push(format!("packages/{}", file_name(&path)));
    }
    files
}

/// The offset of the first differing byte, if the two are not equal.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    (a != b).then(|| a.iter().zip(b).take_while(|(x, y)| x == y).count())
}

fn gunzip(path: &Path) -> Vec<u8> {
    run(Command::new("gzip").arg("-dc").arg(path)).stdout
}

#[test]
fn hexrepo_build_of_fixture_decodes_like_mix() {
    require_hex_core();
    let tmp = fixture_tarballs_only();
    let public = tmp.path().join("public");
    build_like_mix(&public, &mix_reference().join("test_private_key.pem"));
    assert_eq!(
        assert_hex_core_accepts(&public),
        clients::mix_decoded_payloads()
    );
    assert_eq!(assert_hex_core_unpacks_tarballs(&public), 10);
}

#[test]
fn hexrepo_build_of_fixture_matches_mix_byte_for_byte() {
    require_hex_core();
    let tmp = fixture_tarballs_only();
    let public = tmp.path().join("public");
    build_like_mix(&public, &mix_reference().join("test_private_key.pem"));
    let mix = mix_reference().join("public");
    assert_eq!(registry_files(&public), registry_files(&mix));
    for file in registry_files(&mix) {
        // Same payload bytes and a deterministic PKCS#1 v1.5 signature: identical Signed messages.
        // Only the gzip layer may differ.
        let (ours, theirs) = (gunzip(&public.join(&file)), gunzip(&mix.join(&file)));
        if let Some(at) = first_difference(&ours, &theirs) {
            panic!(
                "{file} differs from mix's at byte {at} of the decompressed data \
                 (ours {} bytes, mix's {} bytes)",
                ours.len(),
                theirs.len()
            );
        }
    }
    assert_eq!(
        read_text(&public.join("public_key")).trim(),
        read_text(&mix.join("public_key")).trim(),
        "public_key (PKCS#1 PEM) differs from mix's"
    );
}

/// By default every release carries its tarball's mtime as `published_at`, which the `hex_core`
/// rebar3 bundles predates and skips: it still decodes the files as it decodes mix's. A rebuild
/// after a touch keeps the times and prints nothing.
#[test]
fn hexrepo_build_of_fixture_dates_releases_by_default() {
    use hexfmt::registry::read_package;

    require_hex_core();
    let tmp = fixture_tarballs_only();
    let public = tmp.path().join("public");
    let key = mix_reference().join("test_private_key.pem");
    build(&public, &key);
    assert_eq!(
        assert_hex_core_accepts(&public),
        clients::mix_decoded_payloads()
    );
    let public_key =
        hexfmt::keys::PublicKey::from_pem(&fs::read(public.join("public_key")).unwrap())
            .expect("public key");
    let times = || -> Vec<(String, Option<i64>)> {
        let bytes = fs::read(public.join("packages/pkg_00001")).expect("read package");
        read_package(&bytes, &public_key, REPO, "pkg_00001")
            .expect("valid package")
            .releases
            .into_iter()
            .map(|r| (r.version, r.published_at.map(|t| t.seconds)))
            .collect()
    };
    // From tarball_mtimes.txt.
    let dated = vec![
        ("0.1.0".to_owned(), Some(1_767_614_400)),
        ("0.2.0".to_owned(), Some(1_767_700_800)),
    ];
    assert_eq!(times(), dated);

    // Still older than pkg_00001-0.2.0.tar, so `names` has no reason to change either.
    fs::File::options()
        .write(true)
        .open(public.join("tarballs/pkg_00001-0.1.0.tar"))
        .and_then(|file| {
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_650_000))
        })
        .expect("set mtime");
    let output = run(&mut build_command(&public, &key, &[]));
    assert_eq!(stdout_text(&output), "", "nothing rewritten");
    assert_eq!(times(), dated);
}

#[test]
fn rebar3_fetches_from_hexrepo_build_of_fixture() {
    require_rebar3_and_nginx();
    let tmp = fixture_tarballs_only();
    let public = tmp.path().join("public");
    build(&public, &mix_reference().join("test_private_key.pem"));
    let lock = assert_rebar3_fetches(&public, FIXTURE_DEPS);
    assert_eq!(lock.versions, fixture_locked());
}

#[test]
fn hexrepo_build_of_gen_corpus_passes_hex_core_and_rebar3() {
    require_rebar3_and_nginx();
    let tmp = temp_dir();
    let public = tmp.path().join("public");
    run(Command::new(tool("gen-corpus"))
        .arg(public.join("tarballs"))
        .args(["20", "3"]));
    let key = keygen(tmp.path());
    build(&public, &key);

    let decoded = assert_hex_core_accepts(&public);
    for i in 1..=20 {
        let section = format!("packages/pkg_{i:05} =");
        assert!(decoded.contains(&section), "no {section} in:\n{decoded}");
    }
    assert_eq!(
        decoded.matches("<<\"0.3.0\">>").count(),
        40,
        "each package in versions and packages/*"
    );

    let lock = assert_rebar3_fetches(&public, &[("pkg_00020", "0.3.0"), ("pkg_00007", "0.1.0")]);
    assert_eq!(
        lock.versions.get("pkg_00020").map(String::as_str),
        Some("0.3.0")
    );
}

#[test]
fn rebar3_compiles_dependency_chain_from_hexrepo_build() {
    require_rebar3_and_nginx();
    let tmp = temp_dir();
    let public = tmp.path().join("public");
    let tarballs = public.join("tarballs");
    fs::create_dir_all(&tarballs).expect("mkdir tarballs");
    clients::create_package(&tarballs, "chain_a", "1.0.0", &[]);
    clients::create_package(&tarballs, "chain_a", "1.1.0", &[]);
    clients::create_package(&tarballs, "chain_a", "2.0.0", &[]);
    clients::create_package(&tarballs, "chain_b", "0.1.0", &["chain_a:~> 1.0"]);
    clients::create_package(&tarballs, "chain_c", "2.0.0-rc.1", &["chain_b:~> 0.1"]);
    let key = keygen(tmp.path());
    build(&public, &key);
    assert_hex_core_accepts(&public);

    let server = StaticServer::start(&public);
    let project = Rebar3Project::new(
        &server.url(),
        &read_text(&public.join("public_key")),
        &[("chain_c", "2.0.0-rc.1")],
    );
    let mut cmd = project.rebar3(&["compile"]);
    let output = output_of(&mut cmd);
    assert!(
        output.status.success(),
        "rebar3 compile failed: {}--- nginx access log ---\n{}",
        describe(&cmd, &output),
        server.access_log()
    );
    let lock = project.lock();
    assert_eq!(
        lock.versions.get("chain_a").map(String::as_str),
        Some("1.1.0"),
        "~> 1.0 picks 1.1.0"
    );
    for app in ["chain_a", "chain_b", "chain_c"] {
        let beam = project.lib_dir(app).join(format!("ebin/{app}.beam"));
        assert!(beam.is_file(), "{} missing", beam.display());
    }
}

#[test]
fn hexrepo_build_skip_invalid_leaves_out_broken_tarballs() {
    require_hex_core();
    let tmp = fixture_tarballs_only();
    let public = tmp.path().join("public");
    let truncated =
        fs::read(public.join("tarballs/pkg_00001-0.1.0.tar")).expect("read")[..3000].to_vec();
    fs::write(public.join("tarballs/broken-1.0.0.tar"), truncated).expect("write");
    let key = mix_reference().join("test_private_key.pem");

    let mut strict = build_command(&public, &key, &[]);
    let output = run_expecting_failure(&mut strict);
    assert!(
        all_output(&output).contains("broken-1.0.0.tar"),
        "error names the file: {}",
        describe(&strict, &output)
    );

    run(&mut build_command(
        &public,
        &key,
        &["--skip-invalid", "--mix-compatible"],
    ));
    let decoded = assert_hex_core_accepts(&public);
    assert_eq!(
        decoded,
        clients::mix_decoded_payloads(),
        "broken package left out, the rest as mix"
    );
}
