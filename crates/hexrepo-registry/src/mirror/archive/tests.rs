//! Export and import over memory stores holding `mix hex.registry build`'s reference output.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;

use hexfmt::keys::PublicKey;
use hexrepo_store::{Bytes, Folder, Precondition, StorageKey, Store};

use super::{ImportReport, export, import, summary};
use crate::mirror::verify::Origin;

/// `mix hex.registry build`'s output: repository `acme`, five packages, ten tarballs.
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/mix-reference/public"
);

fn origin() -> Origin {
    let pem = std::fs::read(Path::new(REFERENCE).join("public_key")).unwrap();
    Origin {
        repository: "acme".to_owned(),
        key: PublicKey::from_pem(&pem).unwrap(),
    }
}

/// A mirror holding the reference repository.
fn mirror() -> Store {
    let store = Store::memory();
    let mut paths = vec!["names".to_owned(), "versions".into(), "public_key".into()];
    for folder in ["packages", "tarballs"] {
        for entry in std::fs::read_dir(Path::new(REFERENCE).join(folder)).unwrap() {
            let name = entry.unwrap().file_name();
            paths.push(format!("{folder}/{}", name.to_str().unwrap()));
        }
    }
    for path in paths {
        let bytes = std::fs::read(Path::new(REFERENCE).join(&path)).unwrap();
        let key = StorageKey::from_repository_path(&path).unwrap();
        store.put(&key, bytes.into(), Precondition::Create).unwrap();
    }
    store
}

/// Every repository file in `store`, by path.
fn files(store: &Store) -> BTreeMap<String, Bytes> {
    let mut keys = vec![
        StorageKey::Names,
        StorageKey::Versions,
        StorageKey::PublicKey,
    ];
    for folder in [Folder::Packages, Folder::Tarballs] {
        let listed = store.list(folder).unwrap().into_iter();
        keys.extend(listed.map(|m| StorageKey::from_repository_path(&m.path).unwrap()));
    }
    keys.into_iter()
        .filter_map(|key| Some((key.path(), store.get(&key).unwrap()?.bytes)))
        .collect()
}

fn exported(store: &Store) -> Vec<u8> {
    let mut archive = Vec::new();
    export(store, &mut archive).unwrap();
    archive
}

type Entry = (String, tar::EntryType, Vec<u8>);

fn entries(archive: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(archive);
    let entries = archive.entries().unwrap().map(|entry| {
        let mut entry = entry.unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        (path, entry.header().entry_type(), bytes)
    });
    entries.collect()
}

/// An archive of `entries` with their paths as given: no `tar` crate check on them.
fn archive_of(entries: &[Entry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, kind, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(*kind);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append(&header, bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap()
}

fn import_into(store: &Store, archive: &[u8]) -> ImportReport {
    import(store, &origin(), Cursor::new(archive))
}

fn failures(report: &ImportReport) -> Vec<String> {
    report.failures.iter().map(ToString::to_string).collect()
}

#[test]
fn an_exported_mirror_imports_byte_for_byte_and_a_second_import_writes_nothing() {
    let source = mirror();
    let archive = exported(&source);
    let paths: Vec<String> = entries(&archive).into_iter().map(|e| e.0).collect();
    assert_eq!(paths[..3], ["names", "versions", "public_key"]);
    assert!(
        paths[3..8].iter().all(|p| p.starts_with("packages/")),
        "{paths:?}"
    );
    assert!(
        paths[8..].iter().all(|p| p.starts_with("tarballs/")),
        "{paths:?}"
    );
    assert_eq!(paths.len(), 18);
    assert_eq!(
        exported(&source),
        archive,
        "the same mirror, the same archive"
    );

    let target = Store::memory();
    let report = import_into(&target, &archive);
    assert!(report.is_ok(), "{:?}", failures(&report));
    assert_eq!(
        (report.packages, report.tarballs_written),
        (5, 10),
        "{report:?}"
    );
    let mut expected = files(&source);
    // The mirror's key is written from the configured key, as a sync writes it.
    expected.insert("public_key".into(), origin().key.to_spki_pem().into());
    assert_eq!(files(&target), expected);

    let again = import_into(&target, &archive);
    assert!(again.is_ok(), "{:?}", failures(&again));
    assert_eq!(again.written(), 0, "{again:?}");
    assert_eq!(
        (again.tarballs_unchanged, again.registry_files_unchanged),
        (10, 8)
    );
    assert!(
        summary(&again)
            .iter()
            .any(|l| l.starts_with("nothing written"))
    );
}

#[test]
fn export_refuses_a_store_without_names_and_leaves_out_unreleased_tarballs() {
    let err = export(&Store::memory(), Vec::new()).unwrap_err();
    assert!(
        err.to_string().contains("no names file, so not a mirror"),
        "{err}"
    );

    let store = mirror();
    let orphan = StorageKey::tarball("acme_web", "9.0.0");
    store
        .put(&orphan, Bytes::from_static(b"x"), Precondition::Create)
        .unwrap();
    let mut archive = Vec::new();
    let report = export(&store, &mut archive).unwrap();
    assert_eq!((report.tarballs, report.unreleased_tarballs), (10, 1));
    assert!(entries(&archive).iter().all(|e| e.0 != orphan.path()));
}

#[test]
fn entries_that_are_not_mirror_files_in_order_are_refused_and_nothing_is_written() {
    let good = entries(&exported(&mirror()));
    let regular = tar::EntryType::Regular;
    let bad: [Entry; 8] = [
        ("../evil".into(), regular, b"x".to_vec()),
        ("/etc/passwd".into(), regular, b"x".to_vec()),
        ("./names".into(), regular, good[0].2.clone()),
        ("private_key.pem".into(), regular, b"x".to_vec()),
        ("docs/acme_web-0.1.0.tar.gz".into(), regular, b"x".to_vec()),
        (
            "tarballs/acme_web-0.1.0.tar".into(),
            tar::EntryType::Symlink,
            Vec::new(),
        ),
        (good[9].0.clone(), regular, good[9].2.clone()),
        ("packages/late".into(), regular, b"x".to_vec()),
    ];
    let expected = [
        "../evil: refused: not a mirror file",
        "/etc/passwd: refused: not a mirror file",
        "./names: refused: not a mirror file",
        "private_key.pem: refused: not a mirror file",
        "docs/acme_web-0.1.0.tar.gz: refused: not a mirror file",
        "tarballs/acme_web-0.1.0.tar: refused: a symlink entry, not a regular file",
        "refused: a second entry with this path",
        "refused: a registry file after a tarball",
    ];
    for (entry, message) in bad.into_iter().zip(expected) {
        // Among the tarballs, after every registry file verified.
        let mut archive = good.clone();
        archive.insert(10, entry);
        let target = Store::memory();
        let report = import_into(&target, &archive_of(&archive));
        let failures = failures(&report);
        assert!(
            failures.len() == 1 && failures[0].contains(message),
            "{message}: {failures:?}"
        );
        assert_eq!(files(&target), BTreeMap::new(), "{message}");
    }
}

#[test]
fn a_registry_file_that_fails_verification_writes_nothing() {
    let mut archive = entries(&exported(&mirror()));
    // packages/acme_core's bytes under the name acme_web.
    let core = archive
        .iter()
        .position(|e| e.0 == "packages/acme_core")
        .unwrap();
    let web = archive
        .iter()
        .position(|e| e.0 == "packages/acme_web")
        .unwrap();
    archive[web].2 = archive[core].2.clone();
    let target = Store::memory();
    let report = import_into(&target, &archive_of(&archive));
    assert_eq!(
        failures(&report),
        [
            "packages/acme_web: refused: package name mismatch: expected \"acme_web\", file says \"acme_core\""
        ]
    );
    assert_eq!(files(&target), BTreeMap::new());

    // Another upstream's key: every registry file is refused, the archive's key too.
    let hexpm = Origin {
        key: crate::mirror::hexpm_public_key(),
        ..origin()
    };
    let report = import(&target, &hexpm, Cursor::new(exported(&mirror())));
    let failures = failures(&report);
    assert!(
        failures[0].starts_with("names: refused: bad signature"),
        "{failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("public_key: refused: the archive's key")),
        "{failures:?}"
    );
    assert_eq!(files(&target), BTreeMap::new());
}

#[test]
fn a_tampered_tarball_keeps_its_package_and_the_indexes_out() {
    let mut archive = entries(&exported(&mirror()));
    let bad = archive
        .iter()
        .position(|e| e.0 == "tarballs/acme_web-0.1.0.tar")
        .unwrap();
    *archive[bad].2.last_mut().unwrap() ^= 1;
    let target = Store::memory();
    let report = import_into(&target, &archive_of(&archive));
    let failures = failures(&report);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].starts_with("tarballs/acme_web-0.1.0.tar: refused: SHA-256"),
        "{failures:?}"
    );
    let stored = files(&target);
    for path in [
        "tarballs/acme_web-0.1.0.tar",
        "packages/acme_web",
        "names",
        "versions",
    ] {
        assert!(!stored.contains_key(path), "{path} stored");
    }
    assert!(stored.contains_key("packages/acme_core"));
    assert!(stored.contains_key("tarballs/acme_core-1.0.0.tar"));
}

#[test]
fn a_truncated_archive_names_the_entry_it_ends_in_and_writes_no_registry_file() {
    let archive = exported(&mirror());
    let last = entries(&archive).pop().unwrap().0;
    // Two zero blocks end the archive; cut into the last entry's data before them.
    let target = Store::memory();
    let report = import_into(&target, &archive[..archive.len() - 1024 - 100]);
    assert_eq!(
        failures(&report),
        [format!(
            "{last}: reading the archive: the archive ends inside this entry"
        )]
    );
    let stored = files(&target);
    assert!(
        stored.keys().all(|p| p.starts_with("tarballs/")),
        "{stored:?}"
    );
}

#[test]
fn a_package_without_tarballs_in_the_archive_is_imported_and_listed() {
    let mut archive = entries(&exported(&mirror()));
    archive.retain(|e| !e.0.starts_with("tarballs/pkg_00001-"));
    let target = Store::memory();
    let report = import_into(&target, &archive_of(&archive));
    assert!(report.is_ok(), "{:?}", failures(&report));
    assert_eq!(
        report.without_tarball,
        [
            "tarballs/pkg_00001-0.1.0.tar",
            "tarballs/pkg_00001-0.2.0.tar"
        ]
    );
    assert!(files(&target).contains_key("packages/pkg_00001"));
    assert!(summary(&report)[1].starts_with("2 releases have no tarball in the archive"));
}

#[test]
fn import_forgets_the_upstream_etags_of_the_files_it_replaces() {
    let target = Store::memory();
    let web = std::fs::read(Path::new(REFERENCE).join("packages/acme_web")).unwrap();
    let put = |key: &StorageKey, bytes: Vec<u8>| {
        target
            .put(key, bytes.into(), Precondition::Overwrite)
            .unwrap();
    };
    put(&StorageKey::Names, b"older names".to_vec());
    put(&StorageKey::package("acme_web"), web);
    put(
        &StorageKey::MirrorEtags,
        br#"{"names":"\"1\"","packages/acme_web":"\"2\""}"#.to_vec(),
    );
    let report = import_into(&target, &exported(&mirror()));
    assert!(report.is_ok(), "{:?}", failures(&report));
    let etags = target.get(&StorageKey::MirrorEtags).unwrap().unwrap();
    assert_eq!(etags.bytes.as_ref(), br#"{"packages/acme_web":"\"2\""}"#);
}
