//! The `hexpm` crate (the Gleam compiler's Hex client, with its own protobuf code, x509 key
//! parsing and ring signature checks) decodes and verifies what we build.

use std::fs;

use hexfmt::checksum::Checksum;

use crate::support::*;

#[test]
fn hexpm_crate_verifies_and_decodes_our_registry() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    // hexpm only reads SPKI public keys; our public_key file is PKCS#1 like mix's.
    let spki = key().public_key().to_spki_pem();

    let versions =
        hexpm::repository_v2_get_versions_body(&gunzip(&layout.versions()), spki.as_bytes())
            .expect("hexpm verifies versions");
    assert_eq!(versions.len(), 5);
    let acme_core: Vec<String> = versions["acme_core"]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(acme_core, ["0.1.0", "1.0.0", "1.1.0-rc.1"]);

    let package = hexpm::repository_v2_package_parse_body(
        &gunzip(&layout.package("acme_web")),
        spki.as_bytes(),
    )
    .expect("hexpm verifies packages/acme_web");
    assert_eq!(
        (package.name.as_str(), package.repository.as_str()),
        ("acme_web", REPO)
    );
    let release = &package.releases[0];
    let tarball = fs::read(layout.tarballs_dir().join("acme_web-0.1.0.tar")).unwrap();
    assert_eq!(
        release.outer_checksum,
        Checksum::sha256(&tarball).as_bytes()
    );
    let core = &release.requirements["acme_core"];
    assert_eq!(core.requirement.to_string(), "~> 1.0");
    assert_eq!(core.app.as_deref(), Some("acme_core"));
    // hexpm 5.1.1 reads `optional` as "field present" (`dep.optional.is_some()`), and mix
    // always writes `optional: false`, so hexpm sees every dependency of a mix-built registry
    // as optional. We stay byte-identical to mix; this pins the quirk so a fix upstream shows.
    assert!(
        core.optional,
        "hexpm fixed its optional-flag reading: revisit this test"
    );
    let decimal = &release.requirements["decimal"];
    assert!(decimal.optional);
    assert_eq!(decimal.repository.as_deref(), Some("hexpm"));
}

#[test]
fn hexpm_crate_rejects_our_files_under_another_key() {
    let (_dir, layout) = repo_with_fixture_tarballs(&[]);
    run_build(&layout);
    let other = hexfmt::keys::PrivateKey::generate(hexfmt::keys::KeyBits::Rsa2048).unwrap();
    let result = hexpm::repository_v2_package_parse_body(
        &gunzip(&layout.package("acme_web")),
        other.public_key().to_spki_pem().as_bytes(),
    );
    assert!(result.is_err());
}
