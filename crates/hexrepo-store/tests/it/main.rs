//! The storage conformance suite: one set of checks, run against every backend (memory, local
//! disk, and a real S3-compatible server started by the test; see `s3.rs`).

mod conformance;

use hexrepo_store::Store;
use hexrepo_store::testing as s3;

#[test]
fn memory_conforms() {
    conformance::run_all(&Store::memory());
}

#[test]
fn local_disk_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&Store::local(dir.path()));
}

#[test]
fn s3_server_conforms() {
    let server = s3::S3Server::start();
    conformance::run_all(&server.store("conformance"));
}

#[test]
fn s3_prefixes_keep_repositories_apart() {
    let server = s3::S3Server::start();
    let a = server.store("one");
    let b = server.store("two");
    conformance::prefixes_are_separate(&a, &b);
}

#[test]
fn local_disk_writes_are_durable_files_mix_would_write() {
    let dir = tempfile::tempdir().unwrap();
    conformance::local_layout(&Store::local(dir.path()), dir.path());
}
