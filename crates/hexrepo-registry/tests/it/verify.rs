//! `verify` finds what is wrong with a repository and says where.

use std::fs;

use hexfmt::keys::{KeyBits, PrivateKey};
use hexrepo_registry::Layout;
use hexrepo_registry::verify::{StoreSource, VerifyReport, verify};

use crate::support::*;

fn audit(layout: &Layout, repository: &str) -> VerifyReport {
    verify(
        &StoreSource(layout.store()),
        repository,
        &key().public_key(),
    )
}

#[test]
fn a_fresh_build_in_either_mode_and_the_mix_reference_all_verify() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    let report = audit(&layout, REPO);
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!((report.packages, report.releases), (5, 10));
    let (_mix_dir, mix_layout) = repo_with_fixture_tarballs(&[]);
    run_mix_build(&mix_layout);
    let report = audit(&mix_layout, REPO);
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    let reference = audit(&Layout::new(fixture().join("public")), REPO);
    assert!(reference.is_ok(), "{:?}", reference.problems);
}

#[test]
fn reports_a_tarball_that_does_not_match_its_checksum() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    let path = layout.tarballs_dir().join("pkg_00002-0.1.0.tar");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, bytes).unwrap();
    let report = audit(&layout, REPO);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].starts_with("tarballs/pkg_00002-0.1.0.tar: SHA-256"),
        "{:?}",
        report.problems
    );
}

#[test]
fn reports_wrong_name_wrong_key_and_missing_files() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    let report = audit(&layout, "other");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with("names: repository name mismatch")),
        "{:?}",
        report.problems
    );

    let stranger = PrivateKey::generate(KeyBits::Rsa2048).unwrap().public_key();
    let report = verify(&StoreSource(layout.store()), REPO, &stranger);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with("public_key: the repository publishes"))
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with("names: bad signature"))
    );

    fs::remove_file(layout.package("acme_core")).unwrap();
    fs::remove_file(layout.tarballs_dir().join("pkg_00001-0.1.0.tar")).unwrap();
    fs::write(layout.package("ghost"), b"junk").unwrap();
    let report = audit(&layout, REPO);
    let problems = report.problems.join("\n");
    assert!(
        problems.contains("packages/acme_core: missing, but listed in versions"),
        "{problems}"
    );
    assert!(
        problems.contains("tarballs/pkg_00001-0.1.0.tar: missing"),
        "{problems}"
    );
    assert!(
        problems.contains("packages/ghost: not listed in versions"),
        "{problems}"
    );
    assert_eq!(report.problems.len(), 3, "{problems}");
}
