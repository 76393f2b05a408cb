//! `hexrepo mirror sync` and `hexrepo serve --mirror` against a real upstream: a repository
//! built by `hexrepo build` with its own key and the name `hexpm`, holding a dependency chain
//! (alpha -> beta -> gamma) and an unrelated delta, served by nginx. rebar3 is the oracle for
//! what the mirror serves.

use std::fs;

use crate::clients::create_package;
use crate::mirror_support::{
    UPSTREAM, Upstream, build_repository, files, keygen, offline_mirror_server,
    rebar3_resolves_alpha_through, requests_for, served_upstream, sync_failing, sync_ok,
};
use crate::serve_support::hexrepo_in;
use crate::support::{StaticServer, all_output, output_of, require_rebar3_and_nginx, temp_dir};

#[test]
fn mirror_sync_of_an_allow_list_fetches_exactly_its_closure_byte_for_byte() {
    let (upstream, nginx) = served_upstream();
    // A private repository with a package named like a public one.
    let private = temp_dir();
    let private_public = private.path().join("public");
    fs::create_dir_all(private_public.join("tarballs")).unwrap();
    create_package(&private_public.join("tarballs"), "delta", "2.0.0", &[]);
    let private_key = keygen(private.path(), "private_key.pem");
    build_repository(&private_public, "acme", &private_key);

    let mirror = temp_dir();
    let out = sync_ok(
        &upstream,
        &nginx.url(),
        mirror.path(),
        &private_public,
        &["alpha"],
    );
    assert!(
        out.contains("3 packages mirrored; tarballs: 4 fetched, 0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("private package \"delta\" also exists in \"hexpm\""),
        "{out}"
    );

    let mut expected = vec![
        "names",
        "packages/alpha",
        "packages/beta",
        "packages/gamma",
        "public_key",
        "tarballs/alpha-1.0.0.tar",
        "tarballs/beta-1.0.0.tar",
        "tarballs/gamma-1.0.0.tar",
        "tarballs/gamma-1.1.0.tar",
        "versions",
    ];
    expected.sort_unstable();
    assert_eq!(files(mirror.path()), expected);
    for file in expected.iter().filter(|f| **f != "public_key") {
        assert!(
            fs::read(mirror.path().join(file)).unwrap()
                == fs::read(upstream.public().join(file)).unwrap(),
            "{file} differs from upstream's"
        );
    }
    assert_eq!(requests_for(&nginx, "packages/delta"), 0);
    assert_eq!(requests_for(&nginx, "tarballs/delta-1.0.0.tar"), 0);

    // `check` reads the mirror's verified names offline and fails on the shadowed name.
    let output = output_of(
        hexrepo_in(
            private.path(),
            &["mirror", "check", "--upstream-name", UPSTREAM],
        )
        .arg("--upstream-public-key")
        .arg(upstream.public_key())
        .arg("--mirror-storage")
        .arg(mirror.path())
        .arg("--public-dir")
        .arg(&private_public),
    );
    assert!(!output.status.success());
    assert!(
        all_output(&output).contains("\"delta\""),
        "{}",
        all_output(&output)
    );
}

#[test]
fn mirror_sync_resumes_without_refetching_verified_tarballs() {
    let (upstream, nginx) = served_upstream();
    let (mirror, private) = (temp_dir(), temp_dir());
    let sync_alpha = || {
        sync_ok(
            &upstream,
            &nginx.url(),
            mirror.path(),
            private.path(),
            &["alpha"],
        )
    };

    sync_alpha();
    let out = sync_alpha();
    // names, versions and the three packages: asked with If-None-Match, answered 304.
    assert!(
        out.contains("0 registry files written, 5 not modified upstream"),
        "{out}"
    );
    assert_eq!(
        nginx
            .access_log()
            .lines()
            .filter(|l| l.starts_with("304 GET /packages/"))
            .count(),
        3,
        "{}",
        nginx.access_log()
    );
    assert!(
        out.contains("tarballs: 0 fetched, 4 skipped (already verified); 0 registry files written"),
        "{out}"
    );

    // As if a sync had been interrupted before this tarball landed.
    fs::remove_file(mirror.path().join("tarballs/beta-1.0.0.tar")).unwrap();
    let out = sync_alpha();
    assert!(out.contains("tarballs: 1 fetched, 3 skipped"), "{out}");
    assert_eq!(requests_for(&nginx, "tarballs/beta-1.0.0.tar"), 2);
    assert_eq!(requests_for(&nginx, "tarballs/alpha-1.0.0.tar"), 1);
    assert_eq!(requests_for(&nginx, "tarballs/gamma-1.1.0.tar"), 1);
}

#[test]
fn mirror_sync_refuses_tampered_upstream_files_and_stores_none_of_them() {
    let (upstream, nginx) = served_upstream();
    let public = upstream.public();

    // A tarball whose bytes are not what packages/gamma signs.
    let tarball = public.join("tarballs/gamma-1.1.0.tar");
    let original = fs::read(&tarball).unwrap();
    let mut tampered = original.clone();
    *tampered.last_mut().unwrap() ^= 1;
    fs::write(&tarball, &tampered).unwrap();
    let mirror = temp_dir();
    let out = sync_failing(&upstream, &nginx.url(), mirror.path(), &["alpha"]);
    assert!(
        out.contains("failed: tarballs/gamma-1.1.0.tar: refused: SHA-256"),
        "{out}"
    );
    let stored = files(mirror.path());
    assert!(
        !stored.contains(&"tarballs/gamma-1.1.0.tar".to_owned()),
        "{stored:?}"
    );
    // Registry files never name what is missing: no packages/gamma, no indexes.
    for file in ["packages/gamma", "names", "versions"] {
        assert!(
            !stored.contains(&file.to_owned()),
            "{file} stored: {stored:?}"
        );
    }
    fs::write(&tarball, &original).unwrap();

    // packages/beta signed by another key.
    let other = temp_dir();
    let other_public = other.path().join("public");
    fs::create_dir_all(other_public.join("tarballs")).unwrap();
    fs::copy(
        public.join("tarballs/beta-1.0.0.tar"),
        other_public.join("tarballs/beta-1.0.0.tar"),
    )
    .unwrap();
    build_repository(
        &other_public,
        UPSTREAM,
        &keygen(other.path(), "other_key.pem"),
    );
    let genuine = fs::read(public.join("packages/beta")).unwrap();
    fs::copy(
        other_public.join("packages/beta"),
        public.join("packages/beta"),
    )
    .unwrap();
    let mirror = temp_dir();
    let out = sync_failing(&upstream, &nginx.url(), mirror.path(), &["alpha"]);
    assert!(
        out.contains("failed: packages/beta: refused: bad signature"),
        "{out}"
    );
    assert!(!mirror.path().join("packages/beta").exists());
    fs::write(public.join("packages/beta"), genuine).unwrap();

    // names signed with the upstream's key but for another repository.
    let renamed = temp_dir();
    let renamed_public = renamed.path().join("public");
    fs::create_dir_all(renamed_public.join("tarballs")).unwrap();
    fs::copy(
        public.join("tarballs/delta-1.0.0.tar"),
        renamed_public.join("tarballs/delta-1.0.0.tar"),
    )
    .unwrap();
    let upstream_key = upstream.tmp.path().join("upstream_key.pem");
    build_repository(&renamed_public, "other", &upstream_key);
    fs::copy(renamed_public.join("names"), public.join("names")).unwrap();
    let mirror = temp_dir();
    let out = sync_failing(&upstream, &nginx.url(), mirror.path(), &[]);
    assert!(
        out.contains("failed: names: refused: repository name mismatch"),
        "{out}"
    );
    assert_eq!(files(mirror.path()), Vec::<String>::new());
}

#[test]
fn rebar3_fetches_through_the_mirror_with_the_upstream_stopped() {
    require_rebar3_and_nginx();
    let upstream = Upstream::new();
    let mirror = temp_dir();
    let work = temp_dir();
    {
        let nginx = StaticServer::start(&upstream.public());
        sync_ok(
            &upstream,
            &nginx.url(),
            mirror.path(),
            work.path(),
            &["alpha"],
        );
    } // nginx stopped: the mirror is all there is.

    let server = offline_mirror_server(work.path(), mirror.path());
    rebar3_resolves_alpha_through(&server, &upstream);
    assert!(
        server
            .log()
            .contains("/mirrors/hexpm/tarballs/gamma-1.1.0.tar"),
        "{}",
        server.log()
    );
}
