//! Tarball reader tests: real tarballs from mix and hex_core, every refusal, and properties.

use proptest::prelude::*;

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/mix-reference/public/tarballs"
    );
    std::fs::read(format!("{dir}/{name}")).unwrap()
}

fn metadata(name: &str, version: &str) -> Metadata {
    Metadata {
        name: name.into(),
        version: version.into(),
        app: Some(name.into()),
        description: Some("test package".into()),
        build_tools: vec!["mix".into()],
        ..Metadata::default()
    }
}

fn good() -> TarballBuilder {
    TarballBuilder::new(&metadata("foo", "1.0.0"))
        .file("mix.exs", "defmodule Foo.MixProject do end")
        .file("lib/foo.ex", "defmodule Foo do end")
}

#[test]
fn reads_tarballs_written_by_mix_and_hex_core() {
    for (file, name, version) in [
        ("acme_core-0.1.0.tar", "acme_core", "0.1.0"),
        ("acme_core-1.1.0-rc.1.tar", "acme_core", "1.1.0-rc.1"),
        ("acme_web-0.1.0.tar", "acme_web", "0.1.0"),
        ("pkg_00002-0.2.0.tar", "pkg_00002", "0.2.0"),
    ] {
        let bytes = fixture(file);
        let tarball = read_tarball(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(tarball.metadata.name, name);
        assert_eq!(tarball.metadata.version, version);
        assert_eq!(tarball.outer_checksum, Checksum::sha256(&bytes));
        assert!(!tarball.contents.is_empty());
    }
}

#[test]
fn checksums_match_what_hex_core_decoded() {
    // From testdata/mix-reference/decoded.txt, packages/acme_core, version 0.1.0.
    let tarball = read_tarball(&fixture("acme_core-0.1.0.tar")).unwrap();
    assert_eq!(&tarball.inner_checksum.as_bytes()[..4], &[243, 182, 9, 99]);
    assert_eq!(&tarball.outer_checksum.as_bytes()[..4], &[176, 228, 54, 72]);
}

#[test]
fn built_tarballs_read_back_and_are_reproducible() {
    let bytes = good().symlink("lib/link.ex", "foo.ex").build();
    assert_eq!(bytes, good().symlink("lib/link.ex", "foo.ex").build());
    let tarball = read_tarball(&bytes).unwrap();
    assert_eq!(tarball.metadata, metadata("foo", "1.0.0"));
    let paths: Vec<_> = tarball.contents.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["mix.exs", "lib/foo.ex", "lib/link.ex"]);
    assert_eq!(
        tarball.contents[2].kind,
        EntryKind::Symlink("foo.ex".into())
    );
}

#[test]
fn refuses_wrong_format_version_and_checksums() {
    let err = read_tarball(&good().version_file(b"3\n").build()).unwrap_err();
    assert!(matches!(err, TarballError::BadVersion(v) if v == "3\n"));
    let err = read_tarball(&good().checksum_text(&"AB".repeat(32)).build()).unwrap_err();
    assert!(
        matches!(err, TarballError::ChecksumMismatch { .. }),
        "{err}"
    );
    let err = read_tarball(&good().checksum_text("xyz").build()).unwrap_err();
    assert!(matches!(err, TarballError::BadChecksumFile));
}

#[test]
fn refuses_garbage_and_missing_members() {
    assert!(matches!(
        read_tarball(b"not a tar"),
        Err(TarballError::Corrupt(_) | TarballError::MissingFiles(_))
    ));
    let mut only_version = tar::Builder::new(Vec::new());
    append(&mut only_version, "VERSION", b"3");
    let err = read_tarball(&only_version.into_inner().unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing files: CHECKSUM, metadata.config, contents.tar.gz"
    );
}

#[test]
fn refuses_paths_and_links_that_leave_the_package() {
    for path in [
        "../evil",
        "/etc/passwd",
        "lib/../../evil",
        "C:/evil",
        "a/b/../../../c",
    ] {
        let err = read_tarball(&good().file(path, "x").build()).unwrap_err();
        assert!(
            matches!(err, TarballError::UnsafePath(ref p) if p == path),
            "{path}: {err}"
        );
    }
    for target in ["../../etc/passwd", "/etc/passwd", "../.."] {
        let err = read_tarball(&good().symlink("lib/x", target).build()).unwrap_err();
        assert!(
            matches!(err, TarballError::UnsafeLink { .. }),
            "{target}: {err}"
        );
    }
    for target in ["../mix.exs", "foo.ex", "./foo.ex"] {
        read_tarball(&good().symlink("lib/x", target).build()).unwrap();
    }
}

#[test]
fn refuses_oversized_tarballs_members_and_contents() {
    let size = usize::try_from(MAX_TARBALL_SIZE).unwrap() + 1;
    assert!(matches!(
        read_tarball(&vec![0; size]),
        Err(TarballError::TooLarge { .. })
    ));

    let huge_metadata = vec![b' '; 1024 * 1024 + 1];
    let bytes = TarballBuilder::with_metadata_config(huge_metadata).build();
    assert!(matches!(
        read_tarball(&bytes),
        Err(TarballError::MemberTooLarge {
            member: "metadata.config",
            ..
        })
    ));

    // 129 MiB of zeros compress to well under the 16 MiB tarball limit.
    let zeros = vec![0u8; 129 * 1024 * 1024];
    let bomb = good().file("lib/zeros", zeros).build();
    assert!(bomb.len() < 16 * 1024 * 1024);
    assert!(matches!(
        read_tarball(&bomb),
        Err(TarballError::UncompressedTooLarge)
    ));
}

/// An independent model of "stays inside the root": walk components with a depth counter.
fn model_is_safe(path: &str) -> bool {
    if path.is_empty() || path.starts_with('/') {
        return false;
    }
    let mut depth = 0i32;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

proptest! {
    #[test]
    fn no_accepted_entry_escapes_the_root(parts in prop::collection::vec(
        prop::sample::select(vec!["a", "b", "..", ".", ""]), 1..6), absolute: bool) {
        let path = format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"));
        prop_assume!(!path.is_empty() && path.len() < 100);
        let accepted = read_tarball(&good().file(&path, "x").build()).is_ok();
        prop_assert_eq!(accepted, model_is_safe(&path), "path {:?}", path);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = read_tarball(&bytes);
    }

    #[test]
    fn truncated_or_flipped_tarballs_never_panic(cut in 0usize..4096, flip in 0usize..4096) {
        let mut bytes = good().build();
        let flip = flip % bytes.len();
        bytes[flip] ^= 0x5a;
        bytes.truncate(cut.min(bytes.len()));
        let _ = read_tarball(&bytes);
    }
}

#[test]
fn refuses_a_second_gzip_member_that_could_hide_entries() {
    // contents.tar.gz = a benign member followed by one holding an unsafe path.
    let benign = good().build();
    let member = |path: &str| {
        let mut tar = tar::Builder::new(Vec::new());
        append(&mut tar, path, b"x");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    };
    let contents = [member("lib/ok.ex"), member("../evil")].concat();
    let metadata = metadata("foo", "1.0.0").to_config();
    let checksum = Checksum::sha256_parts(&[b"3", &metadata, &contents]).to_hex_upper();
    let mut outer = tar::Builder::new(Vec::new());
    append(&mut outer, "VERSION", b"3");
    append(&mut outer, "CHECKSUM", checksum.as_bytes());
    append(&mut outer, "metadata.config", &metadata);
    append(&mut outer, "contents.tar.gz", &contents);
    let err = read_tarball(&outer.into_inner().unwrap()).unwrap_err();
    assert!(matches!(err, TarballError::Contents(_)), "{err}");
    read_tarball(&benign).unwrap();
}
