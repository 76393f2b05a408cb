//! Mirror sync from the repository `mix hex.registry build` wrote (the fixture), as upstream
//! `acme`, into memory: the allow-list closure, dependencies on another repository skipped,
//! resume, a corrupted upstream tarball refused, and the progress events.

use std::sync::Mutex;

use hexfmt::keys::PublicKey;
use hexrepo_registry::mirror::sync::{Phase, Progress, SyncOptions, SyncReport, sync};
use hexrepo_registry::mirror::verify::Origin;
use hexrepo_registry::verify::{Source, StoreSource};
use hexrepo_store::{Folder, StorageKey, Store};

use crate::support::{REPO, fixture};

/// The fixture folder as an upstream, with one path's bytes optionally corrupted, counting
/// tarball fetches.
struct Upstream {
    folder: StoreSource,
    corrupt: Option<&'static str>,
    tarballs_fetched: Mutex<Vec<String>>,
}

impl Source for Upstream {
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        if path.starts_with("tarballs/") {
            self.tarballs_fetched.lock().unwrap().push(path.to_owned());
        }
        let mut bytes = self.folder.fetch(path)?;
        if self.corrupt == Some(path)
            && let Some(bytes) = &mut bytes
        {
            bytes.push(0);
        }
        Ok(bytes)
    }
}

fn upstream(corrupt: Option<&'static str>) -> Upstream {
    Upstream {
        folder: StoreSource(Store::local(fixture().join("public"))),
        corrupt,
        tarballs_fetched: Mutex::new(Vec::new()),
    }
}

fn origin() -> Origin {
    let pem = std::fs::read(fixture().join("public/public_key")).unwrap();
    Origin {
        repository: REPO.to_owned(),
        key: PublicKey::from_pem(&pem).unwrap(),
    }
}

/// A sync of `packages` and their dependencies; of everything when `packages` is empty.
fn run(upstream: &Upstream, store: &Store, packages: &[&str]) -> SyncReport {
    sync(&SyncOptions {
        upstream,
        origin: &origin(),
        store,
        packages: (!packages.is_empty())
            .then(|| packages.iter().map(|p| (*p).to_owned()).collect()),
        jobs: 4,
        progress: &|_| {},
    })
}

fn paths(store: &Store, folder: Folder) -> Vec<String> {
    store
        .list(folder)
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect()
}

#[test]
fn an_allow_list_mirrors_its_same_repository_closure_byte_for_byte() {
    let store = Store::memory();
    let upstream = upstream(None);
    let report = run(&upstream, &store, &["acme_web"]);
    assert!(report.is_ok(), "{:?}", report.failures);
    assert_eq!(report.packages, 2);
    assert_eq!(report.tarballs_fetched, 4);
    // acme_web's `decimal` dependency is on hexpm: named, not fetched.
    assert_eq!(
        report.other_repositories.iter().collect::<Vec<_>>(),
        ["acme_web -> hexpm/decimal"]
    );
    assert_eq!(
        paths(&store, Folder::Packages),
        ["packages/acme_core", "packages/acme_web"]
    );
    assert_eq!(paths(&store, Folder::Tarballs).len(), 4);
    let folder = Store::local(fixture().join("public"));
    for key in [
        StorageKey::Names,
        StorageKey::Versions,
        StorageKey::package("acme_web"),
        StorageKey::tarball("acme_core", "1.1.0-rc.1"),
    ] {
        assert_eq!(
            store.get(&key).unwrap().unwrap().bytes,
            folder.get(&key).unwrap().unwrap().bytes,
            "{key}"
        );
    }

    let again = upstream.tarballs_fetched.lock().unwrap().len();
    let report = run(&upstream, &store, &["acme_web"]);
    assert_eq!((report.tarballs_fetched, report.tarballs_skipped), (0, 4));
    assert_eq!(upstream.tarballs_fetched.lock().unwrap().len(), again);
    assert_eq!(report.registry_files_written, 0);
}

#[test]
fn a_corrupted_tarball_is_refused_and_its_package_not_written() {
    let store = Store::memory();
    let path = "tarballs/acme_core-1.0.0.tar";
    let report = run(&upstream(Some(path)), &store, &["acme_web"]);
    assert_eq!(report.failures.len(), 1);
    let failure = report.failures[0].to_string();
    assert!(
        failure.starts_with(&format!("{path}: refused: SHA-256")),
        "{failure}"
    );
    let stored = paths(&store, Folder::Tarballs);
    assert!(!stored.contains(&path.to_owned()), "{stored:?}");
    // acme_web's tarball is in, so is its package file; acme_core's and the indexes are not.
    assert_eq!(paths(&store, Folder::Packages), ["packages/acme_web"]);
    assert!(store.get(&StorageKey::Names).unwrap().is_none());
    assert!(store.get(&StorageKey::Versions).unwrap().is_none());
}

#[test]
fn a_package_missing_upstream_is_a_failure_naming_it() {
    let report = run(&upstream(None), &Store::memory(), &["nope"]);
    let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    assert_eq!(failures, ["packages/nope: not found upstream"]);
}

#[test]
fn without_an_allow_list_everything_is_mirrored_and_verifies() {
    let store = Store::memory();
    let report = run(&upstream(None), &store, &[]);
    assert!(report.is_ok(), "{:?}", report.failures);
    assert_eq!((report.packages, report.tarballs_fetched), (5, 10));
    // The mirror is the upstream again: `hexrepo verify`'s audit passes on it.
    let audit = hexrepo_registry::verify::verify(&StoreSource(store), REPO, &origin().key);
    assert!(audit.is_ok(), "{:?}", audit.problems);
    assert_eq!(audit.releases, 10);
}

#[test]
fn progress_reports_the_phases_in_order_and_every_package_and_tarball() {
    let events = Mutex::new(Vec::new());
    let report = sync(&SyncOptions {
        upstream: &upstream(None),
        origin: &origin(),
        store: &Store::memory(),
        packages: Some(vec!["acme_web".to_owned()]),
        jobs: 4,
        progress: &|event| events.lock().unwrap().push(event),
    });
    assert!(report.is_ok(), "{:?}", report.failures);
    let events = events.into_inner().unwrap();
    let phases: Vec<Phase> = events
        .iter()
        .filter_map(|e| match e {
            Progress::Phase(phase) => Some(*phase),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        [
            Phase::Indexes,
            Phase::Packages {
                upstream: 5,
                roots: 1,
                allow_list: true
            },
            Phase::Tarballs {
                packages: 2,
                total: 4
            },
            Phase::RegistryFiles,
        ]
    );
    let count = |pick: fn(&Progress) -> Option<usize>| {
        let mut seen: Vec<usize> = events.iter().filter_map(pick).collect();
        seen.sort_unstable();
        seen
    };
    assert_eq!(
        count(|e| match e {
            Progress::Packages { done } => Some(*done),
            _ => None,
        }),
        [1, 2]
    );
    assert_eq!(
        count(|e| match e {
            Progress::Tarballs { done, total: 4 } => Some(*done),
            _ => None,
        }),
        [1, 2, 3, 4]
    );
    assert!(report.elapsed > std::time::Duration::ZERO);
}
