//! Real clients against the repository `mix hex.registry build` wrote (testdata/mix-reference),
//! plus the checks (`assert_hex_core_accepts`, `assert_rebar3_fetches`) that `hexrepo_build`
//! reruns against hexrepo's own output.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::clients::{self, Lock, Rebar3Project};
use crate::support::{
    StaticServer, all_output, copy_dir, describe, file_name, files_ending_with, mix_reference,
    read_text, require_hex_core, require_rebar3_and_nginx, run, sha256_upper, temp_dir,
};

/// The fixture's repository name (`mix hex.registry build --name=acme`).
pub const REPO: &str = "acme";

/// Deps for rebar3 that cover a three-package chain and a pre-release in the fixture:
/// `pkg_00003` 0.2.0 → `pkg_00002` (>= 0.0.0) → `pkg_00001` (>= 0.0.0),
/// and `acme_core` 1.1.0-rc.1.
pub const FIXTURE_DEPS: &[(&str, &str)] = &[("pkg_00003", "0.2.0"), ("acme_core", "1.1.0-rc.1")];

/// What rebar3 must lock for `FIXTURE_DEPS` (newest versions satisfying `>= 0.0.0`).
pub const FIXTURE_LOCKED: &[(&str, &str)] = &[
    ("acme_core", "1.1.0-rc.1"),
    ("pkg_00001", "0.2.0"),
    ("pkg_00002", "0.2.0"),
    ("pkg_00003", "0.2.0"),
];

/// A writable copy of the fixture's `public/` directory, as `TMP/public`.
fn fixture_public_copy() -> tempfile::TempDir {
    let tmp = temp_dir();
    copy_dir(&mix_reference().join("public"), &tmp.path().join("public"));
    tmp
}

/// `hex_core` verifies every signed file in `public` with `public/public_key` and decodes it with
/// the origin checks; returns the decoded payloads (the `decoded.txt` layout), trimmed.
pub fn assert_hex_core_accepts(public: &Path) -> String {
    let output = clients::verify_registry(public, REPO, &public.join("public_key"));
    assert!(
        output.status.success(),
        "hex_core rejects the registry in {}:\n{}",
        public.display(),
        all_output(&output)
    );
    // Erlang prints a binary that happens to be printable Latin-1 (a checksum, by chance) as a
    // string, which need not be UTF-8: read it lossily rather than fail 1 run in 7.
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `hex_core` unpacks every `public/tarballs/*.tar`; each one's outer checksum is the file's
/// SHA-256 and its name and version match the file name. Returns how many were checked.
pub fn assert_hex_core_unpacks_tarballs(public: &Path) -> usize {
    let tarballs = files_ending_with(&public.join("tarballs"), ".tar");
    assert!(!tarballs.is_empty(), "no tarballs in {}", public.display());
    for (path, unpacked) in tarballs.iter().zip(clients::unpack_all(&tarballs)) {
        assert_eq!(
            unpacked.outer_checksum.to_ascii_uppercase(),
            sha256_upper(path),
            "outer checksum of {}",
            path.display()
        );
        assert_eq!(
            format!("{}-{}.tar", unpacked.name, unpacked.version),
            file_name(path),
            "name and version in {}",
            unpacked.json
        );
    }
    tarballs.len()
}

/// Serves `public` with nginx and runs `rebar3 get-deps` for `deps` against it (repo `acme`,
/// key `public/public_key`). Asserts success, then that every locked package is unpacked under
/// `_build/default/lib/` with `pkg_hash_ext` = SHA-256 of `public/tarballs/NAME-VSN.tar` and
/// `pkg_hash` = the inner checksum `hex_core` computes. Returns the lock.
pub fn assert_rebar3_fetches(public: &Path, deps: &[(&str, &str)]) -> Lock {
    let server = StaticServer::start(public);
    assert_rebar3_fetches_from(&server.url(), public, deps, || {
        format!("--- nginx access log ---\n{}", server.access_log())
    })
}

/// The checks of [`assert_rebar3_fetches`] against a repository already served at `url` from
/// `public`, by any server; `server_log` is appended to a failure message.
pub fn assert_rebar3_fetches_from(
    url: &str,
    public: &Path,
    deps: &[(&str, &str)],
    server_log: impl Fn() -> String,
) -> Lock {
    let key = read_text(&public.join("public_key"));
    let project = Rebar3Project::new(url, &key, deps);
    let (cmd, output) = project.get_deps();
    assert!(
        output.status.success(),
        "rebar3 get-deps failed: {}{}",
        describe(&cmd, &output),
        server_log()
    );
    let lock = project.lock();
    assert!(!lock.versions.is_empty(), "empty rebar.lock");
    let tarballs: Vec<_> = lock
        .versions
        .iter()
        .map(|(name, version)| public.join(format!("tarballs/{name}-{version}.tar")))
        .collect();
    let unpacked = clients::unpack_all(&tarballs);
    for ((name, _), (tarball, unpacked)) in lock.versions.iter().zip(tarballs.iter().zip(unpacked))
    {
        assert_eq!(
            lock.pkg_hash_ext.get(name),
            Some(&sha256_upper(tarball)),
            "pkg_hash_ext of {name}"
        );
        assert_eq!(
            lock.pkg_hash.get(name),
            Some(&unpacked.inner_checksum.to_ascii_uppercase()),
            "pkg_hash of {name}"
        );
        let lib = project.lib_dir(name);
        assert!(
            lib.join("hex_metadata.config").is_file(),
            "{name} not unpacked into {}",
            lib.display()
        );
    }
    lock
}

/// `FIXTURE_LOCKED` as a map, to compare with `Lock::versions`.
pub fn fixture_locked() -> BTreeMap<String, String> {
    FIXTURE_LOCKED
        .iter()
        .map(|(name, version)| ((*name).to_owned(), (*version).to_owned()))
        .collect()
}

/// Gunzips `path`, flips one bit of the byte `from_end` bytes before the end of the decompressed
/// data (inside the trailing RSA signature of a Signed message), and gzips it again.
pub fn flip_signature_byte(path: &Path, from_end: usize) {
    let mut raw = run(Command::new("gzip").arg("-dc").arg(path)).stdout;
    assert!(raw.len() > from_end, "{} too short", path.display());
    let index = raw.len() - from_end;
    raw[index] ^= 0x01;
    fs::write(path, &raw).expect("write decompressed file");
    let gz = path.with_extension("gz");
    run(Command::new("gzip")
        .args(["-n", "-f", "-S", ".gz"])
        .arg(path));
    fs::rename(&gz, path).expect("rename gzipped file");
}

#[test]
fn hex_core_verifies_mix_fixture() {
    require_hex_core();
    let tmp = fixture_public_copy();
    let decoded = assert_hex_core_accepts(&tmp.path().join("public"));
    assert_eq!(decoded, clients::mix_decoded_payloads());
}

#[test]
fn hex_core_rejects_wrong_repository_name() {
    require_hex_core();
    let public = mix_reference().join("public");
    let output = clients::verify_registry(&public, "hexpm", &public.join("public_key"));
    assert!(
        !output.status.success(),
        "origin check passed for the wrong name"
    );
    assert!(
        all_output(&output).contains("origin check failed"),
        "{}",
        all_output(&output)
    );
}

#[test]
fn hex_core_unpacks_fixture_tarballs() {
    require_hex_core();
    let tmp = fixture_public_copy();
    assert_eq!(
        assert_hex_core_unpacks_tarballs(&tmp.path().join("public")),
        10
    );
}

#[test]
fn rebar3_fetches_from_static_repository() {
    require_rebar3_and_nginx();
    let tmp = fixture_public_copy();
    let lock = assert_rebar3_fetches(&tmp.path().join("public"), FIXTURE_DEPS);
    assert_eq!(lock.versions, fixture_locked());
}

#[test]
fn rebar3_rejects_flipped_signature() {
    require_rebar3_and_nginx();
    let tmp = fixture_public_copy();
    let public = tmp.path().join("public");
    flip_signature_byte(&public.join("packages/pkg_00003"), 10);

    let oracle = clients::verify_registry(&public, REPO, &public.join("public_key"));
    assert!(
        all_output(&oracle).contains("packages/pkg_00003: bad signature"),
        "hex_core should reject the flipped signature:\n{}",
        all_output(&oracle)
    );

    let server = StaticServer::start(&public);
    let project = Rebar3Project::new(
        &server.url(),
        &read_text(&public.join("public_key")),
        &[("pkg_00003", "0.2.0")],
    );
    let (cmd, output) = project.get_deps();
    assert!(
        !output.status.success(),
        "rebar3 accepted a bad signature: {}",
        describe(&cmd, &output)
    );
    assert!(
        all_output(&output).contains("pkg_00003"),
        "{}",
        describe(&cmd, &output)
    );
    assert!(
        !project.lib_dir("pkg_00003").exists(),
        "pkg_00003 was unpacked anyway"
    );
}

#[test]
fn rebar3_rejects_tarball_not_matching_registry() {
    require_rebar3_and_nginx();
    let tmp = fixture_public_copy();
    let tarballs = tmp.path().join("public/tarballs");
    // A valid tarball, but not the one whose checksum the registry signed.
    fs::copy(
        tarballs.join("pkg_00001-0.1.0.tar"),
        tarballs.join("pkg_00001-0.2.0.tar"),
    )
    .expect("copy");

    let public = tmp.path().join("public");
    let server = StaticServer::start(&public);
    let project = Rebar3Project::new(
        &server.url(),
        &read_text(&public.join("public_key")),
        &[("pkg_00001", "0.2.0")],
    );
    let (cmd, output) = project.get_deps();
    assert!(
        !output.status.success(),
        "rebar3 accepted a swapped tarball: {}",
        describe(&cmd, &output)
    );
    // rebar3 3.19 crashes in rebar_fetch:format_error/1 on this error, but names it first.
    assert!(
        all_output(&output).contains("bad_registry_checksum"),
        "{}",
        describe(&cmd, &output)
    );
}

/// Tarballs written by our own builder (`hexfmt::tarball::TarballBuilder`) are unpacked by
/// hex_core with the checksums we compute and the files and requirements we wrote.
#[test]
fn hex_core_unpacks_tarballs_our_builder_writes() {
    use hexfmt::metadata::{Metadata, MetadataRequirement};
    use hexfmt::tarball::{TarballBuilder, read_tarball};
    require_hex_core();
    let tmp = crate::support::temp_dir();
    let metadata = Metadata {
        name: "built".into(),
        version: "1.2.3-rc.1".into(),
        app: Some("built".into()),
        description: Some("Made by hexfmt's builder, ünïcode included".into()),
        licenses: vec!["Apache-2.0".into()],
        build_tools: vec!["rebar3".into()],
        requirements: vec![MetadataRequirement {
            name: "dep_a".into(),
            app: Some("dep_a".into()),
            requirement: Some("~> 1.0".into()),
            optional: true,
            repository: Some("hexpm".into()),
        }],
        ..Metadata::default()
    };
    let bytes = TarballBuilder::new(&metadata)
        .file("src/built.erl", "-module(built).\n")
        .file("rebar.config", "{deps, []}.\n")
        .symlink("src/alias.erl", "built.erl")
        .build();
    let ours = read_tarball(&bytes).unwrap();
    let path = tmp.path().join("built-1.2.3-rc.1.tar");
    fs::write(&path, &bytes).unwrap();
    // hex_core accepts the in-tree symlink; its in-memory unpack lists regular files only.
    let unpacked = clients::unpack_all(std::slice::from_ref(&path)).remove(0);
    assert_eq!(
        (unpacked.name.as_str(), unpacked.version.as_str()),
        ("built", "1.2.3-rc.1")
    );
    assert_eq!(unpacked.inner_checksum, ours.inner_checksum.to_hex_lower());
    assert_eq!(unpacked.outer_checksum, ours.outer_checksum.to_hex_lower());
    for expected in ["src/built.erl", "rebar.config", "dep_a", "~> 1.0", "hexpm"] {
        assert!(
            unpacked.json.contains(expected),
            "{expected} missing from {}",
            unpacked.json
        );
    }
}
