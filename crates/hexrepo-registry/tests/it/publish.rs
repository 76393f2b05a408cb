//! Publishing and reverting: the rules, replace and retry, and concurrent publishers.

use std::fs;

use hexfmt::metadata::{Metadata, MetadataRequirement};
use hexfmt::registry::{read_names, read_package, read_versions};
use hexfmt::tarball::TarballBuilder;
use hexrepo_registry::Layout;
use hexrepo_registry::publish::{PublishError, Publisher};
use hexrepo_registry::verify::{StoreSource, verify};
use hexrepo_store::testing::S3Server;
use hexrepo_store::{Folder, StorageKey, Store};

use crate::support::{REPO, key};

fn tarball(name: &str, version: &str, deps: &[(&str, &str, Option<&str>)], salt: &str) -> Vec<u8> {
    let metadata = Metadata {
        name: name.into(),
        version: version.into(),
        app: Some(name.into()),
        description: Some("test".into()),
        build_tools: vec!["rebar3".into()],
        requirements: deps
            .iter()
            .map(|(dep, req, repo)| MetadataRequirement {
                name: (*dep).into(),
                app: Some((*dep).into()),
                requirement: Some((*req).into()),
                optional: false,
                repository: repo.map(Into::into),
            })
            .collect(),
        ..Metadata::default()
    };
    TarballBuilder::new(&metadata)
        .file("src/x.erl", format!("-module(x). % {salt}"))
        .build()
}

fn empty_repo() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path().join("public"));
    fs::create_dir_all(layout.root()).unwrap();
    (dir, layout)
}

fn publisher<'a>(
    layout: &'a Layout,
    key: &'a hexfmt::keys::PrivateKey,
    reserved: &'a [String],
) -> Publisher<'a> {
    Publisher {
        store: layout.store(),
        repository: REPO,
        key,
        reserved,
    }
}

fn assert_verifies(layout: &Layout) {
    let report = verify(&StoreSource(layout.store()), REPO, &key().public_key());
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn publishes_new_packages_and_releases() {
    let (_dir, layout) = empty_repo();
    let key = key();
    let publisher = publisher(&layout, &key, &[]);
    let first = publisher
        .publish(&tarball("foo", "1.0.0", &[], "a"), Some("foo"), false)
        .unwrap();
    assert!(first.created);
    publisher
        .publish(&tarball("foo", "0.9.0", &[], "b"), None, false)
        .unwrap();
    publisher
        .publish(
            &tarball(
                "bar",
                "0.1.0",
                &[
                    ("foo", "~> 1.0", None),
                    ("decimal", "~> 2.0", Some("hexpm")),
                ],
                "c",
            ),
            None,
            false,
        )
        .unwrap();

    let public = key.public_key();
    let foo = read_package(
        &fs::read(layout.package("foo")).unwrap(),
        &public,
        REPO,
        "foo",
    )
    .unwrap();
    let versions: Vec<_> = foo.releases.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(versions, ["0.9.0", "1.0.0"], "sorted by version");
    assert!(foo.releases.iter().all(|r| r.published_at.is_some()));
    let names = read_names(&fs::read(layout.names()).unwrap(), &public, REPO).unwrap();
    assert_eq!(
        names
            .packages
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["bar", "foo"]
    );
    assert_eq!(
        fs::read(layout.tarball("foo", "1.0.0")).unwrap(),
        tarball("foo", "1.0.0", &[], "a")
    );
    assert_verifies(&layout);
}

#[test]
fn refuses_what_hex_pm_refuses() {
    let (_dir, layout) = empty_repo();
    let key = key();
    let reserved = vec!["forbidden".to_owned()];
    let publisher = publisher(&layout, &key, &reserved);
    publisher
        .publish(&tarball("foo", "1.0.0", &[], "a"), None, false)
        .unwrap();
    let refused =
        |bytes: Vec<u8>, path: Option<&str>| publisher.publish(&bytes, path, false).unwrap_err();

    assert!(matches!(
        refused(tarball("foo", "2.0.0", &[], "x"), Some("bar")),
        PublishError::NameMismatch { .. }
    ));
    assert!(matches!(
        refused(tarball("Foo", "1.0.0", &[], "x"), None),
        PublishError::InvalidName(_)
    ));
    assert!(matches!(
        refused(tarball("forbidden", "1.0.0", &[], "x"), None),
        PublishError::ReservedName(_)
    ));
    assert!(matches!(
        refused(tarball("foo", "1.0.0+build.1", &[], "x"), None),
        PublishError::InvalidVersion(_)
    ));
    assert!(matches!(
        refused(tarball("foo", "1.0", &[], "x"), None),
        PublishError::InvalidVersion(_)
    ));
    assert!(matches!(
        refused(b"not a tarball".to_vec(), None),
        PublishError::Tarball(_)
    ));
    for (deps, message) in [
        (
            vec![("missing", "~> 1.0", None)],
            "package does not exist in repository \"acme\"",
        ),
        (
            vec![("missing", "~> 1.0", Some(REPO))],
            "package does not exist",
        ),
        (
            vec![("foo", "~> 2.0", None)],
            "no release of foo matches ~> 2.0",
        ),
        (vec![("foo", "!= 1.0.0", None)], "!= is not allowed"),
        (vec![("bar", ">= 0.0.0", None)], "cannot depend on itself"),
    ] {
        let err = refused(tarball("bar", "1.0.0", &deps, "x"), None);
        assert!(
            matches!(&err, PublishError::Requirement { .. }) && err.to_string().contains(message),
            "{err}"
        );
    }
    assert!(
        !layout.package("bar").exists(),
        "nothing written by refused publishes"
    );
    assert!(!layout.tarball("bar", "1.0.0").exists());
    assert_verifies(&layout);
}

#[test]
fn republishing_needs_replace() {
    let (_dir, layout) = empty_repo();
    let key = key();
    let publisher = publisher(&layout, &key, &[]);
    let first = tarball("foo", "1.0.0", &[], "first");
    publisher.publish(&first, None, false).unwrap();
    let err = publisher.publish(&first, None, false).unwrap_err();
    assert!(
        matches!(err, PublishError::AlreadyPublished { .. }),
        "a complete release is not re-published: {err}"
    );

    let second = tarball("foo", "1.0.0", &[], "second");
    let err = publisher.publish(&second, None, false).unwrap_err();
    assert!(
        matches!(err, PublishError::AlreadyPublished { .. }),
        "{err}"
    );
    assert_eq!(
        fs::read(layout.tarball("foo", "1.0.0")).unwrap(),
        first,
        "never a silent overwrite"
    );

    let replaced = publisher.publish(&second, None, true).unwrap();
    assert!(!replaced.created);
    assert_eq!(fs::read(layout.tarball("foo", "1.0.0")).unwrap(), second);
    let package = read_package(
        &fs::read(layout.package("foo")).unwrap(),
        &key.public_key(),
        REPO,
        "foo",
    )
    .unwrap();
    assert_eq!(package.releases.len(), 1, "replaced, not duplicated");
    assert_eq!(
        package.releases[0].outer_checksum.as_deref(),
        Some(replaced.outer_checksum.as_bytes().as_slice())
    );
    assert_verifies(&layout);
}

#[test]
fn a_retry_completes_an_interrupted_publish() {
    let (_dir, layout) = empty_repo();
    let key = key();
    let publisher = publisher(&layout, &key, &[]);
    publisher
        .publish(&tarball("foo", "1.0.0", &[], "a"), None, false)
        .unwrap();
    let old_versions = fs::read(layout.versions()).unwrap();
    let old_names = fs::read(layout.names()).unwrap();
    let bar = tarball("bar", "1.0.0", &[], "b");
    publisher.publish(&bar, None, false).unwrap();
    // As if the process died after renaming packages/bar but before versions and names:
    // clients already see bar through packages/bar, and verify accepts the repository.
    fs::write(layout.versions(), old_versions).unwrap();
    fs::write(layout.names(), old_names).unwrap();
    let report = verify(&StoreSource(layout.store()), REPO, &key.public_key());
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("packages/bar: not yet listed")),
        "{:?}",
        report.notes
    );
    let retry = publisher.publish(&bar, None, false).unwrap();
    assert!(!retry.created, "the retry completed the first attempt");
    let versions = read_versions(
        &fs::read(layout.versions()).unwrap(),
        &key.public_key(),
        REPO,
    )
    .unwrap();
    assert!(versions.packages.iter().any(|p| p.name == "bar"));
    assert_verifies(&layout);
}

#[test]
fn revert_removes_a_release_and_the_last_one_removes_the_package() {
    let (_dir, layout) = empty_repo();
    let key = key();
    let publisher = publisher(&layout, &key, &[]);
    publisher
        .publish(&tarball("foo", "1.0.0", &[], "a"), None, false)
        .unwrap();
    publisher
        .publish(&tarball("foo", "1.1.0", &[], "b"), None, false)
        .unwrap();
    fs::create_dir_all(layout.root().join("docs")).unwrap();
    fs::write(layout.docs("foo", "1.1.0"), b"docs").unwrap();

    publisher.revert("foo", "1.1.0").unwrap();
    assert!(!layout.tarball("foo", "1.1.0").exists());
    assert!(!layout.docs("foo", "1.1.0").exists());
    assert_verifies(&layout);
    assert!(publisher.revert("foo", "9.9.9").is_err());

    publisher.revert("foo", "1.0.0").unwrap();
    assert!(!layout.package("foo").exists());
    let names = read_names(&fs::read(layout.names()).unwrap(), &key.public_key(), REPO).unwrap();
    assert!(names.packages.is_empty());
    assert_verifies(&layout);
}

#[test]
fn concurrent_publishers_lose_nothing_and_duplicate_nothing() {
    let (_dir, layout) = empty_repo();
    publish_concurrently(&layout.store(), 16, 20, 8);
}

/// No lock at all here: only conditional writes keep the writers apart, as between replicas.
#[test]
fn concurrent_publishers_on_an_object_store_lose_nothing() {
    publish_concurrently(&Store::memory(), 8, 25, 6);
}

/// Eight writers racing through a real S3-compatible server's conditional writes.
#[test]
fn concurrent_publishers_on_s3_lose_nothing() {
    let server = S3Server::start();
    publish_concurrently(&server.store("publish"), 8, 25, 6);
}

/// `publishers` threads each publish `releases_each` releases spread over `packages`
/// packages; afterwards every release is listed exactly once and the repository verifies.
fn publish_concurrently(store: &Store, publishers: usize, releases_each: usize, packages: usize) {
    let key = key();
    std::thread::scope(|scope| {
        for p in 0..publishers {
            let key = &key;
            scope.spawn(move || {
                let publisher = Publisher {
                    store: store.clone(),
                    repository: REPO,
                    key,
                    reserved: &[],
                };
                for r in 0..releases_each {
                    let name = format!("pkg_{}", (p + r) % packages);
                    let version = format!("{p}.{r}.0");
                    let outcome = publisher
                        .publish(&tarball(&name, &version, &[], "x"), None, false)
                        .unwrap();
                    assert!(outcome.created, "{name} {version} is new");
                }
            });
        }
    });
    let versions = read_versions(
        &store.get(&StorageKey::Versions).unwrap().unwrap().bytes,
        &key.public_key(),
        REPO,
    )
    .unwrap();
    let total: usize = versions.packages.iter().map(|p| p.versions.len()).sum();
    assert_eq!(total, publishers * releases_each);
    assert_eq!(versions.packages.len(), packages);
    assert_eq!(
        store.list(Folder::Tarballs).unwrap().len(),
        publishers * releases_each
    );
    let report = verify(&StoreSource(store.clone()), REPO, &key.public_key());
    assert!(report.is_ok(), "{:?}", report.problems);
    // Publishing never writes `public_key` (`build` and `serve` do); nothing else to note.
    assert!(
        report.notes.iter().all(|n| n.starts_with("public_key")),
        "{:?}",
        report.notes
    );
}
