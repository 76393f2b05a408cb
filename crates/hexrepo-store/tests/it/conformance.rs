//! What every backend must do. Each check names the behaviour the registry relies on.

use std::collections::BTreeSet;
use std::sync::Arc;

use hexrepo_store::{Bytes, Fetched, Folder, Precondition, StorageKey, Store, StoreError, Write};

pub fn run_all(store: &Store) {
    missing_objects_read_as_none(store);
    put_then_get_round_trips(store);
    create_refuses_to_overwrite(store);
    match_is_compare_and_swap(store);
    conditional_reads_answer_not_modified(store);
    list_shows_one_folder(store);
    delete_is_idempotent(store);
    commit_writes_in_order_and_checks_preconditions(store);
    log_keeps_every_record_in_order(store);
    concurrent_compare_and_swap_loses_no_update(store);
    concurrent_creates_have_one_winner(store);
}

fn missing_objects_read_as_none(store: &Store) {
    let key = StorageKey::package("nothing_here");
    assert!(store.get(&key).unwrap().is_none());
    assert!(store.head(&key).unwrap().is_none());
    assert!(matches!(
        store.get_if_changed(&key, Some("v")).unwrap(),
        Fetched::Missing
    ));
}

fn put_then_get_round_trips(store: &Store) {
    let key = StorageKey::Names;
    let version = store
        .put(&key, Bytes::from_static(b"first"), Precondition::Overwrite)
        .unwrap();
    let object = store.get(&key).unwrap().expect("just written");
    assert_eq!(&object.bytes[..], b"first");
    assert_eq!(object.meta.version, version);
    assert_eq!(object.meta.size, 5);
    assert_eq!(object.meta.path, "names");
    assert_eq!(store.head(&key).unwrap().unwrap().version, version);
    let second = store
        .put(&key, Bytes::from_static(b"second"), Precondition::Overwrite)
        .unwrap();
    assert_ne!(second, version, "every write gets a new version token");
    assert_eq!(&store.get(&key).unwrap().unwrap().bytes[..], b"second");
}

fn create_refuses_to_overwrite(store: &Store) {
    let key = StorageKey::tarball("create_only", "1.0.0");
    store
        .put(&key, Bytes::from_static(b"one"), Precondition::Create)
        .unwrap();
    let err = store
        .put(&key, Bytes::from_static(b"two"), Precondition::Create)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(
        err.to_string().contains("tarballs/create_only-1.0.0.tar"),
        "{err}"
    );
    assert_eq!(&store.get(&key).unwrap().unwrap().bytes[..], b"one");
}

fn match_is_compare_and_swap(store: &Store) {
    let key = StorageKey::Versions;
    let v1 = store
        .put(&key, Bytes::from_static(b"v1"), Precondition::Overwrite)
        .unwrap();
    let v2 = store
        .put(
            &key,
            Bytes::from_static(b"v2"),
            Precondition::Match(v1.clone()),
        )
        .unwrap();
    let err = store
        .put(&key, Bytes::from_static(b"stale"), Precondition::Match(v1))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(&store.get(&key).unwrap().unwrap().bytes[..], b"v2");
    let gone = StorageKey::package("never_written");
    let err = store
        .put(&gone, Bytes::from_static(b"x"), Precondition::Match(v2))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(store.get(&gone).unwrap().is_none());
}

fn conditional_reads_answer_not_modified(store: &Store) {
    let key = StorageKey::PublicKey;
    let version = store
        .put(&key, Bytes::from_static(b"key"), Precondition::Overwrite)
        .unwrap();
    assert!(matches!(
        store.get_if_changed(&key, Some(&version)).unwrap(),
        Fetched::NotModified
    ));
    store
        .put(
            &key,
            Bytes::from_static(b"new key"),
            Precondition::Overwrite,
        )
        .unwrap();
    match store.get_if_changed(&key, Some(&version)).unwrap() {
        Fetched::Found(object) => assert_eq!(&object.bytes[..], b"new key"),
        other => panic!("expected the new object, got {other:?}"),
    }
}

fn list_shows_one_folder(store: &Store) {
    for name in ["list_b", "list_a"] {
        store
            .put(
                &StorageKey::package(name),
                Bytes::from_static(b"p"),
                Precondition::Overwrite,
            )
            .unwrap();
    }
    store
        .put(
            &StorageKey::docs("list_a", "1.0.0"),
            Bytes::from_static(b"d"),
            Precondition::Overwrite,
        )
        .unwrap();
    let packages: Vec<String> = store
        .list(Folder::Packages)
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .filter(|p| p.starts_with("packages/list_"))
        .collect();
    assert_eq!(packages, ["packages/list_a", "packages/list_b"]);
    let docs = store.list(Folder::Docs).unwrap();
    assert!(
        docs.iter()
            .any(|m| m.path == "docs/list_a-1.0.0.tar.gz" && m.size == 1)
    );
    assert!(docs.iter().all(|m| m.path.starts_with("docs/")));
}

fn delete_is_idempotent(store: &Store) {
    let key = StorageKey::docs("doomed", "1.0.0");
    store
        .put(&key, Bytes::from_static(b"x"), Precondition::Overwrite)
        .unwrap();
    store.delete(&key).unwrap();
    assert!(store.get(&key).unwrap().is_none());
    store.delete(&key).unwrap();
}

fn commit_writes_in_order_and_checks_preconditions(store: &Store) {
    let names = store
        .put(
            &StorageKey::Names,
            Bytes::from_static(b"n0"),
            Precondition::Overwrite,
        )
        .unwrap();
    let write = |key: StorageKey, bytes: &'static [u8], precondition| Write {
        key,
        bytes: Bytes::from_static(bytes),
        precondition,
    };
    let versions = store
        .commit(vec![
            write(StorageKey::package("commit_a"), b"a", Precondition::Create),
            write(StorageKey::package("commit_b"), b"b", Precondition::Create),
            write(StorageKey::Names, b"n1", Precondition::Match(names.clone())),
        ])
        .unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(
        &store.get(&StorageKey::Names).unwrap().unwrap().bytes[..],
        b"n1"
    );
    assert_eq!(
        store
            .head(&StorageKey::package("commit_b"))
            .unwrap()
            .unwrap()
            .version,
        versions[1]
    );
    // A stale precondition: the index is not written.
    let err = store
        .commit(vec![
            write(StorageKey::package("commit_c"), b"c", Precondition::Create),
            write(StorageKey::Names, b"n2", Precondition::Match(names)),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        &store.get(&StorageKey::Names).unwrap().unwrap().bytes[..],
        b"n1"
    );
}

fn log_keeps_every_record_in_order(store: &Store) {
    let key = StorageKey::AuditLog;
    for i in 0..5 {
        store
            .append(&key, format!("record {i}").as_bytes())
            .unwrap();
    }
    let records = store.read_log(&key).unwrap();
    let text: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.to_vec()).unwrap())
        .collect();
    assert_eq!(
        text,
        (0..5).map(|i| format!("record {i}")).collect::<Vec<_>>()
    );
}

/// 8 writers each add 25 increments to one counter by read, modify and conditional write,
/// retrying when they lose: the counter ends at exactly 200. A store whose conditional write
/// is not atomic loses updates here.
fn concurrent_compare_and_swap_loses_no_update(store: &Store) {
    let key = StorageKey::package("counter");
    store
        .put(&key, Bytes::from_static(b"0"), Precondition::Overwrite)
        .unwrap();
    let store = Arc::new(store.clone());
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let key = key.clone();
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for _ in 0..25 {
                    loop {
                        let object = store.get(&key).unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&object.bytes).unwrap().parse().unwrap();
                        let next = Bytes::from((n + 1).to_string());
                        match store.put(&key, next, Precondition::Match(object.meta.version)) {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let object = store.get(&key).unwrap().unwrap();
    assert_eq!(&object.bytes[..], b"200", "after {conflicts} conflicts");
}

fn concurrent_creates_have_one_winner(store: &Store) {
    let store = Arc::new(store.clone());
    let winners: BTreeSet<usize> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let key = StorageKey::tarball("race", "1.0.0");
                store
                    .put(
                        &key,
                        Bytes::from(format!("writer {i}")),
                        Precondition::Create,
                    )
                    .ok()
                    .map(|_| i)
            })
        })
        .filter_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(winners.len(), 1, "exactly one create wins: {winners:?}");
    let winner = winners.into_iter().next().unwrap();
    let bytes = store
        .get(&StorageKey::tarball("race", "1.0.0"))
        .unwrap()
        .unwrap()
        .bytes;
    assert_eq!(bytes, format!("writer {winner}").as_bytes());
}

pub fn prefixes_are_separate(a: &Store, b: &Store) {
    a.put(
        &StorageKey::Names,
        Bytes::from_static(b"a"),
        Precondition::Create,
    )
    .unwrap();
    b.put(
        &StorageKey::Names,
        Bytes::from_static(b"b"),
        Precondition::Create,
    )
    .unwrap();
    assert_eq!(&a.get(&StorageKey::Names).unwrap().unwrap().bytes[..], b"a");
    assert_eq!(&b.get(&StorageKey::Names).unwrap().unwrap().bytes[..], b"b");
}

pub fn local_layout(store: &Store, root: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    store
        .put(
            &StorageKey::tarball("acme", "1.0.0"),
            Bytes::from_static(b"tar"),
            Precondition::Create,
        )
        .unwrap();
    let file = root.join("tarballs/acme-1.0.0.tar");
    assert_eq!(std::fs::read(&file).unwrap(), b"tar");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let leftovers: Vec<_> = std::fs::read_dir(root.join("tarballs"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporaries left: {leftovers:?}");
    // Files dropped in by hand (as with `mix hex.registry build`) are listed like ours.
    std::fs::write(root.join("tarballs/byhand-1.0.0.tar"), b"x").unwrap();
    std::fs::write(root.join("tarballs/.hidden.tmp"), b"x").unwrap();
    let listed: Vec<String> = store
        .list(Folder::Tarballs)
        .unwrap()
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(
        listed,
        ["tarballs/acme-1.0.0.tar", "tarballs/byhand-1.0.0.tar"]
    );
}
