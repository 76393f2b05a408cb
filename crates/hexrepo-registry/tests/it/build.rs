//! `build` against the official builder's output and its promises: byte-identical payloads (in
//! the mix-compatible mode), incremental, atomic, strict about bad tarballs, faithful to
//! retirements, and (by default) dating releases by their tarballs once and for all.

use std::fs;

use hexfmt::proto::package::{Package, RetirementReason, RetirementStatus, Timestamp};
use hexfmt::registry::{decode_envelope, encode_signed, read_package, read_versions};
use hexrepo_registry::RegistryError;
use hexrepo_registry::retire::{Reason, Retirement, set_retirement};
use prost::Message as _;

use crate::support::*;

#[test]
fn payloads_are_byte_identical_to_mix_hex_registry_build() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    let report = run_mix_build(&layout);
    assert_eq!(report.packages, 5);
    assert_eq!(report.releases, 10);
    let reference = fixture().join("public");
    let mut compared = 0;
    for file in ["names", "versions"].into_iter().map(String::from).chain(
        [
            "acme_core",
            "acme_web",
            "pkg_00001",
            "pkg_00002",
            "pkg_00003",
        ]
        .map(|p| format!("packages/{p}")),
    ) {
        // The whole decompressed Signed message: payload and (deterministic) signature.
        assert_eq!(
            gunzip(&layout.root().join(&file)),
            gunzip(&reference.join(&file)),
            "{file}"
        );
        compared += 1;
    }
    assert_eq!(compared, 7);
    assert_eq!(
        fs::read(layout.public_key()).unwrap(),
        fs::read(reference.join("public_key")).unwrap()
    );
    assert_eq!(
        change_lines(&layout, &report),
        [
            "* creating public_key",
            "* creating packages/acme_core",
            "* creating packages/acme_web",
            "* creating packages/pkg_00001",
            "* creating packages/pkg_00002",
            "* creating packages/pkg_00003",
            "* creating names",
            "* creating versions",
        ]
    );
}

#[test]
fn files_are_world_readable_and_no_temporaries_remain() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    for (path, _) in snapshot(layout.root()) {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(!name.starts_with('.'), "leftover {}", path.display());
        if !path.starts_with(layout.tarballs_dir()) {
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "{}", path.display());
        }
    }
}

#[test]
fn rebuild_with_nothing_changed_rewrites_nothing() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    let before = snapshot(layout.root());
    let report = run_build(&layout);
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert_eq!(report.tarballs_read, 0, "every tarball came from the cache");
    assert_eq!(
        snapshot(layout.root()),
        before,
        "no file was rewritten (same inode and mtime)"
    );
}

#[test]
fn rebuild_without_a_cache_still_rewrites_nothing() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    fs::remove_dir_all(layout.state_dir()).unwrap();
    let before = snapshot(layout.root());
    let report = run_build(&layout);
    assert_eq!(report.tarballs_read, 10);
    assert!(report.changes.is_empty());
    assert_eq!(snapshot(layout.root()), before);
}

#[test]
fn adding_one_tarball_re_signs_only_its_package_and_the_indexes() {
    let (_dir, layout) = repo_with_fixture_tarballs(&["pkg_00003-0.2.0.tar", "acme_web-0.1.0.tar"]);
    run_build(&layout);
    let before = snapshot(layout.root());

    add_fixture_tarball(&layout, "pkg_00003-0.2.0.tar", 1_768_046_400);
    let report = run_build(&layout);
    assert_eq!(report.tarballs_read, 1);
    assert_eq!(
        change_lines(&layout, &report),
        [
            "* updating packages/pkg_00003",
            "* updating names",
            "* updating versions"
        ]
    );
    let after = snapshot(layout.root());
    for (path, old) in &before {
        let rewritten = ["names", "versions", "pkg_00003"]
            .iter()
            .any(|n| path.ends_with(n));
        assert_eq!(after[path] == *old, !rewritten, "{}", path.display());
    }

    add_fixture_tarball(&layout, "acme_web-0.1.0.tar", 1_767_528_000);
    let report = run_build(&layout);
    assert_eq!(
        change_lines(&layout, &report),
        [
            "* creating packages/acme_web",
            "* updating names",
            "* updating versions"
        ]
    );
}

#[test]
fn removing_the_last_tarball_of_a_package_removes_its_file() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    fs::remove_file(layout.tarballs_dir().join("acme_web-0.1.0.tar")).unwrap();
    let report = run_build(&layout);
    assert_eq!(
        change_lines(&layout, &report),
        [
            "* removing packages/acme_web",
            "* updating names",
            "* updating versions"
        ]
    );
    assert!(!layout.package("acme_web").exists());
    let versions = read_versions(
        &fs::read(layout.versions()).unwrap(),
        &key().public_key(),
        REPO,
    )
    .unwrap();
    assert!(versions.packages.iter().all(|p| p.name != "acme_web"));
}

#[test]
fn retirements_and_publication_times_survive_a_rebuild() {
    // In the mix-compatible mode, which writes no times of its own but keeps those it finds.
    let (_dir, layout) = repo_with_fixture_tarballs(&["acme_core-1.1.0-rc.1.tar"]);
    run_mix_build(&layout);
    let retirement = Retirement {
        reason: Reason::Security,
        message: "CVE-2026-0001".into(),
    };
    set_retirement(
        &layout.store(),
        REPO,
        &key(),
        "acme_core",
        "1.0.0",
        Some(&retirement),
    )
    .unwrap();
    // Give 0.1.0 a publication time, as the publish API will.
    let path = layout.package("acme_core");
    let mut package = Package::decode(
        decode_envelope(&fs::read(&path).unwrap())
            .unwrap()
            .payload
            .as_slice(),
    )
    .unwrap();
    package.releases[0].published_at = Some(Timestamp {
        seconds: 1_767_000_000,
        nanos: 0,
    });
    fs::write(&path, encode_signed(package.encode_to_vec(), &key())).unwrap();

    // A new release of the same package forces its file to be rebuilt.
    add_fixture_tarball(&layout, "acme_core-1.1.0-rc.1.tar", 1_767_441_600);
    let report = run_mix_build(&layout);
    assert!(change_lines(&layout, &report).contains(&"* updating packages/acme_core".to_owned()));

    let public = key().public_key();
    let package = read_package(&fs::read(&path).unwrap(), &public, REPO, "acme_core").unwrap();
    let versions: Vec<_> = package
        .releases
        .iter()
        .map(|r| r.version.as_str())
        .collect();
    assert_eq!(versions, ["0.1.0", "1.0.0", "1.1.0-rc.1"]);
    assert_eq!(
        package.releases[0].published_at.unwrap().seconds,
        1_767_000_000
    );
    assert_eq!(package.releases[2].published_at, None, "mix dates nothing");
    assert_eq!(
        package.releases[1].retired,
        Some(RetirementStatus {
            reason: RetirementReason::RetiredSecurity as i32,
            message: Some("CVE-2026-0001".into())
        })
    );
    assert_eq!(package.releases[2].retired, None);
    let index = read_versions(&fs::read(layout.versions()).unwrap(), &public, REPO).unwrap();
    let acme_core = index
        .packages
        .iter()
        .find(|p| p.name == "acme_core")
        .unwrap();
    assert_eq!(acme_core.retired, [1]);
}

#[test]
fn retire_and_unretire_touch_only_the_package_and_versions() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_mix_build(&layout);
    let before = snapshot(layout.root());
    let retirement = Retirement {
        reason: Reason::Deprecated,
        message: "use acme_core 1.x".into(),
    };
    let changes = set_retirement(
        &layout.store(),
        REPO,
        &key(),
        "acme_core",
        "0.1.0",
        Some(&retirement),
    )
    .unwrap();
    assert_eq!(changes.len(), 2);
    let after = snapshot(layout.root());
    for (path, old) in &before {
        let touched = path.ends_with("versions") || path.ends_with("packages/acme_core");
        assert_eq!(after[path] == *old, !touched, "{}", path.display());
    }
    assert!(
        set_retirement(
            &layout.store(),
            REPO,
            &key(),
            "acme_core",
            "0.1.0",
            Some(&retirement)
        )
        .unwrap()
        .is_empty()
    );
    set_retirement(&layout.store(), REPO, &key(), "acme_core", "0.1.0", None).unwrap();
    // Back to the exact bytes mix signed.
    assert_eq!(
        gunzip(&layout.package("acme_core")),
        gunzip(&fixture().join("public/packages/acme_core"))
    );
    assert_eq!(
        gunzip(&layout.versions()),
        gunzip(&fixture().join("public/versions"))
    );

    let err =
        set_retirement(&layout.store(), REPO, &key(), "acme_core", "9.9.9", None).unwrap_err();
    assert!(matches!(err, RegistryError::NoSuchRelease { .. }), "{err}");
    let short = Retirement {
        reason: Reason::Other,
        message: "no".into(),
    };
    let err = set_retirement(
        &layout.store(),
        REPO,
        &key(),
        "acme_core",
        "0.1.0",
        Some(&short),
    )
    .unwrap_err();
    assert!(matches!(err, RegistryError::RetirementMessage(2)));
}

#[test]
fn one_bad_tarball_writes_nothing_and_names_every_bad_file() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    let tarballs = layout.tarballs_dir();
    let good = fs::read(tarballs.join("acme_core-0.1.0.tar")).unwrap();
    fs::write(tarballs.join("broken-1.0.0.tar"), &good[..good.len() / 2]).unwrap();
    fs::write(tarballs.join("impostor-0.1.0.tar"), &good).unwrap();
    fs::write(tarballs.join("acme_core-0.1.1.tar"), &good).unwrap();
    fs::write(tarballs.join("nodash.tar"), &good).unwrap();
    let before = snapshot(layout.root());

    let err = try_build(&layout, false).unwrap_err();
    let RegistryError::InvalidTarballs(list) = &err else {
        panic!("{err}")
    };
    let text = err.to_string();
    assert_eq!(list.len(), 4, "{text}");
    for (file, reason) in [
        ("broken-1.0.0.tar", ""),
        (
            "impostor-0.1.0.tar",
            "metadata name \"acme_core\" does not match the file name's \"impostor\"",
        ),
        (
            "acme_core-0.1.1.tar",
            "metadata version \"0.1.0\" does not match the file name's \"0.1.1\"",
        ),
        ("nodash.tar", "file name is not NAME-VERSION.tar"),
    ] {
        assert!(
            text.contains(&format!("{file}: {reason}")),
            "{file} missing from:\n{text}"
        );
    }
    assert_eq!(snapshot(layout.root()), before, "nothing written");

    let report = try_build(&layout, true).unwrap();
    assert_eq!(report.skipped.len(), 4);
    assert_eq!(report.releases, 10);
}

#[test]
fn a_tarball_with_a_hostile_entry_is_refused_and_named() {
    use hexfmt::metadata::Metadata;
    use hexfmt::tarball::TarballBuilder;
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    let tarballs = layout.tarballs_dir();
    let builder = |name: &str| {
        let metadata = Metadata {
            name: name.into(),
            version: "1.0.0".into(),
            app: Some(name.into()),
            build_tools: vec!["mix".into()],
            ..Metadata::default()
        };
        TarballBuilder::new(&metadata).file("mix.exs", "defmodule X do end")
    };
    let hard = builder("hard").entry("lib/x.ex", tar::EntryType::Link, "mix.exs");
    let twice = builder("twice")
        .file("lib/x.ex", "a")
        .file("lib/y/../x.ex", "b");
    fs::write(tarballs.join("hard-1.0.0.tar"), hard.build()).unwrap();
    fs::write(tarballs.join("twice-1.0.0.tar"), twice.build()).unwrap();
    let before = snapshot(layout.root());

    let err = try_build(&layout, false).unwrap_err();
    let RegistryError::InvalidTarballs(list) = &err else {
        panic!("{err}")
    };
    let text = err.to_string();
    assert_eq!(list.len(), 2, "{text}");
    for line in [
        "hard-1.0.0.tar: entry \"lib/x.ex\" is a hard link: only regular files, directories and \
         symlinks are allowed",
        "twice-1.0.0.tar: entry \"lib/y/../x.ex\" appears twice: keep one copy",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert_eq!(snapshot(layout.root()), before, "nothing written");
}

#[test]
fn a_reader_never_sees_a_partial_or_unverifiable_file_during_rebuilds() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    let public = key().public_key();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let names = fs::read(layout.names()).unwrap();
                hexfmt::registry::read_names(&names, &public, REPO).unwrap();
                let versions =
                    read_versions(&fs::read(layout.versions()).unwrap(), &public, REPO).unwrap();
                for package in &versions.packages {
                    // A package named by versions is in place and valid; the one exception is
                    // a package being removed, whose file goes after versions stops naming it.
                    match fs::read(layout.package(&package.name)) {
                        Ok(bytes) => {
                            read_package(&bytes, &public, REPO, &package.name).unwrap();
                        }
                        Err(e)
                            if package.name == "acme_web"
                                && e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => panic!("packages/{}: {e}", package.name),
                    }
                }
                reads += 1;
            }
            reads
        });
        let moved = layout.root().join("acme_web-0.1.0.tar.aside");
        for _ in 0..20 {
            fs::rename(layout.tarballs_dir().join("acme_web-0.1.0.tar"), &moved).unwrap();
            run_build(&layout);
            fs::rename(&moved, layout.tarballs_dir().join("acme_web-0.1.0.tar")).unwrap();
            run_build(&layout);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
}

#[test]
fn an_output_changed_behind_the_builds_back_is_checked_and_repaired() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_mix_build(&layout);
    fs::write(layout.package("acme_core"), b"tampered").unwrap();
    let report = run_mix_build(&layout);
    assert_eq!(
        change_lines(&layout, &report),
        ["* updating packages/acme_core"]
    );
    assert_eq!(
        gunzip(&layout.package("acme_core")),
        gunzip(&fixture().join("public/packages/acme_core"))
    );
    assert!(run_mix_build(&layout).changes.is_empty());
}

#[test]
fn a_new_signing_key_re_signs_every_file() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    let other = hexfmt::keys::PrivateKey::generate(hexfmt::keys::KeyBits::Rsa2048).unwrap();
    let report = hexrepo_registry::build::build(&hexrepo_registry::build::BuildOptions {
        store: &layout.store(),
        repository: REPO,
        key: &other,
        skip_invalid: false,
        mix_compatible: false,
    })
    .unwrap();
    assert_eq!(
        report.changes.len(),
        8,
        "public_key, 5 packages, names, versions: {:?}",
        report.changes
    );
    let public = other.public_key();
    for name in [
        "acme_core",
        "acme_web",
        "pkg_00001",
        "pkg_00002",
        "pkg_00003",
    ] {
        read_package(
            &fs::read(layout.package(name)).unwrap(),
            &public,
            REPO,
            name,
        )
        .unwrap();
    }
}

/// The same tarballs in a bucket of a real S3-compatible server build the same registry as in a
/// folder, and a second build there reads and writes nothing.
#[test]
fn a_build_on_s3_gives_the_registry_a_folder_gets() {
    use hexfmt::proto::names::Names;
    use hexrepo_store::testing::S3Server;
    use hexrepo_store::{Folder, Precondition, StorageKey};

    // Mix-compatible, because the default mode's publication times come from the tarballs'
    // times, which differ here (upload times) and there (mix's mtimes), as `names` does below.
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_mix_build(&layout);
    let server = S3Server::start();
    let bucket = server.store("build");
    let folder = layout.store();
    for meta in folder.list(Folder::Tarballs).unwrap() {
        let key = StorageKey::from_repository_path(&meta.path).unwrap();
        let object = folder.get(&key).unwrap().unwrap();
        bucket
            .put(&key, object.bytes, Precondition::Create)
            .unwrap();
    }
    let signing_key = key();
    let options = |store| hexrepo_registry::build::BuildOptions {
        store,
        repository: REPO,
        key: &signing_key,
        skip_invalid: false,
        mix_compatible: true,
    };
    let report = hexrepo_registry::build::build(&options(&bucket)).unwrap();
    assert_eq!(report.packages, 5, "{report:?}");
    let mut compared = 0;
    for meta in folder.list(Folder::Packages).unwrap() {
        let key = StorageKey::from_repository_path(&meta.path).unwrap();
        assert_eq!(
            bucket.get(&key).unwrap().unwrap().bytes,
            folder.get(&key).unwrap().unwrap().bytes,
            "{key}"
        );
        compared += 1;
    }
    assert_eq!(compared, report.packages);
    for key in [StorageKey::Versions, StorageKey::PublicKey] {
        assert_eq!(
            bucket.get(&key).unwrap().unwrap().bytes,
            folder.get(&key).unwrap().unwrap().bytes,
            "{key}"
        );
    }
    // `names` records each package's newest tarball time: upload time here, mix's mtimes there.
    let names = |store: &hexrepo_store::Store| -> Vec<String> {
        let bytes = store.get(&StorageKey::Names).unwrap().unwrap().bytes;
        let names = Names::decode(decode_envelope(&bytes).unwrap().payload.as_slice()).unwrap();
        names.packages.into_iter().map(|p| p.name).collect()
    };
    assert_eq!(names(&bucket), names(&folder));

    let again = hexrepo_registry::build::build(&options(&bucket)).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.tarballs_read, 0);
}

/// Each release of `packages/NAME` with its publication time.
fn publication_times(
    layout: &hexrepo_registry::Layout,
    name: &str,
) -> Vec<(String, Option<Timestamp>)> {
    let bytes = fs::read(layout.package(name)).unwrap();
    read_package(&bytes, &key().public_key(), REPO, name)
        .unwrap()
        .releases
        .into_iter()
        .map(|r| (r.version, r.published_at))
        .collect()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

#[test]
fn a_default_build_dates_each_release_by_its_tarball_once_and_for_all() {
    use std::time::{Duration, UNIX_EPOCH};
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    let set_mtime = |file: &str, seconds: u64, nanos: u32| {
        fs::File::options()
            .write(true)
            .open(layout.tarballs_dir().join(file))
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::new(seconds, nanos))
            .unwrap();
    };
    // A fraction of a second, which the protocol's whole seconds drop.
    set_mtime("acme_core-0.1.0.tar", 1_767_200_000, 750_000_000);
    run_build(&layout);
    let dated = [
        ("0.1.0".to_owned(), Some(at(1_767_200_000))),
        ("1.0.0".to_owned(), Some(at(1_767_355_200))),
        ("1.1.0-rc.1".to_owned(), Some(at(1_767_441_600))),
    ];
    assert_eq!(publication_times(&layout, "acme_core"), dated);
    assert_eq!(
        publication_times(&layout, "acme_web"),
        [("0.1.0".to_owned(), Some(at(1_767_528_000)))]
    );

    // Touched, but still older than the package's newest tarball (so `names`, which records
    // that, stays as it is): the tarball is read again, and nothing is written.
    let before = snapshot(layout.root());
    set_mtime("acme_core-0.1.0.tar", 1_767_300_000, 0);
    let report = run_build(&layout);
    assert_eq!(report.tarballs_read, 1);
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    let mut touched = before.clone();
    touched.retain(|path, _| !path.ends_with("acme_core-0.1.0.tar"));
    let mut after = snapshot(layout.root());
    after.retain(|path, _| !path.ends_with("acme_core-0.1.0.tar"));
    assert_eq!(after, touched, "no registry file was rewritten");
    assert_eq!(publication_times(&layout, "acme_core"), dated);

    // Touched past every other tarball: `names` moves on, the publication time does not.
    set_mtime("acme_core-0.1.0.tar", 1_769_000_000, 0);
    let report = run_build(&layout);
    assert_eq!(change_lines(&layout, &report), ["* updating names"]);
    assert_eq!(publication_times(&layout, "acme_core"), dated);

    // Nor does the cache's loss, or a mix-compatible build, which keeps the times it finds.
    fs::remove_dir_all(layout.state_dir()).unwrap();
    assert!(run_build(&layout).changes.is_empty());
    assert!(run_mix_build(&layout).changes.is_empty());
    assert_eq!(publication_times(&layout, "acme_core"), dated);
}

#[test]
fn a_default_build_dates_the_releases_of_a_registry_mix_built() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_mix_build(&layout);
    assert!(
        publication_times(&layout, "pkg_00001")
            .iter()
            .all(|(_, time)| time.is_none())
    );
    // With the cache the mix-compatible build left, which must not pass its files as current.
    let report = run_build(&layout);
    assert_eq!(
        change_lines(&layout, &report),
        [
            "* updating packages/acme_core",
            "* updating packages/acme_web",
            "* updating packages/pkg_00001",
            "* updating packages/pkg_00002",
            "* updating packages/pkg_00003",
        ]
    );
    assert_eq!(
        publication_times(&layout, "pkg_00001"),
        [
            ("0.1.0".to_owned(), Some(at(1_767_614_400))),
            ("0.2.0".to_owned(), Some(at(1_767_700_800))),
        ]
    );
    assert!(run_build(&layout).changes.is_empty());
}
