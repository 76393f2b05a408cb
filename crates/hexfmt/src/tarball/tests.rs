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

/// An independent model of "stays inside the root and names a file": walk components with a
/// depth counter; a file cannot be the root itself.
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
    depth > 0
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

/// The outer tarball around a raw `contents.tar.gz`, with a correct inner checksum.
fn package_with_contents(contents: &[u8]) -> Vec<u8> {
    let metadata = metadata("foo", "1.0.0").to_config();
    let checksum = Checksum::sha256_parts(&[b"3", &metadata, contents]).to_hex_upper();
    let mut outer = tar::Builder::new(Vec::new());
    append(&mut outer, "VERSION", b"3");
    append(&mut outer, "CHECKSUM", checksum.as_bytes());
    append(&mut outer, "metadata.config", &metadata);
    append(&mut outer, "contents.tar.gz", contents);
    outer.into_inner().unwrap()
}

fn refusal(builder: &TarballBuilder) -> TarballError {
    read_tarball(&builder.build()).unwrap_err()
}

#[test]
fn refuses_a_symlink_chain_that_escapes_through_an_earlier_link() {
    // `d/up -> ..` stays inside (it is the root); `d/up/..` looks inside but goes through it.
    read_tarball(&good().symlink("d/up", "..").build()).unwrap();
    let err = refusal(&good().symlink("d/up", "..").symlink("s", "d/up/.."));
    assert!(
        matches!(&err, TarballError::LinkThroughLink { path, link, .. }
            if path == "s" && link == "d/up"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "unsafe symlink \"s\" -> \"d/up/..\": it passes through the symlink \"d/up\", point it \
         at the real path instead"
    );
    // The same with the links in the other order, and with the case changed (macOS, Windows).
    for (first, second) in [
        (("s", "d/up/.."), ("d/up", "..")),
        (("d/up", ".."), ("s", "D/Up/..")),
    ] {
        let err = refusal(&good().symlink(first.0, first.1).symlink(second.0, second.1));
        assert!(
            matches!(err, TarballError::LinkThroughLink { .. }),
            "{first:?} {second:?}: {err}"
        );
    }
    // A link may end at another link: each is checked on its own.
    read_tarball(&good().symlink("a", "lib/foo.ex").symlink("b", "a").build()).unwrap();
}

#[test]
fn refuses_absolute_and_escaping_symlinks_naming_them() {
    for target in [
        "/etc/passwd",
        "../../evil",
        "\\\\server\\share",
        "C:/Windows",
    ] {
        let err = refusal(&good().symlink("lib/x", target));
        assert_eq!(
            err.to_string(),
            format!(
                "unsafe symlink \"lib/x\" -> {target:?}: link targets must be relative and stay \
                 inside the root"
            ),
            "{target}"
        );
    }
}

#[test]
fn refuses_hard_links_devices_and_fifos() {
    for (kind, name) in [
        (tar::EntryType::Link, "a hard link"),
        (tar::EntryType::Char, "a character device"),
        (tar::EntryType::Block, "a block device"),
        (tar::EntryType::Fifo, "a fifo"),
        (tar::EntryType::GNUSparse, "a sparse file"),
    ] {
        let err = refusal(&good().entry("lib/odd", kind, "mix.exs"));
        assert_eq!(
            err.to_string(),
            format!(
                "entry \"lib/odd\" is {name}: only regular files, directories and symlinks are \
                 allowed"
            )
        );
    }
}

#[test]
fn refuses_a_file_written_through_a_symlink_in_either_order() {
    for builder in [
        good().symlink("d/up", "..").file("d/up/x", "x"),
        good().file("d/up/x", "x").symlink("d/up", ".."),
        good().symlink("d/up", "..").file("d/up/../x", "x"),
        good().symlink("lnk", "lib").file("LNK/x", "x"),
    ] {
        let err = refusal(&builder);
        assert!(
            matches!(&err, TarballError::PathThroughLink { link, .. }
                if link == "d/up" || link == "lnk"),
            "{err}"
        );
    }
    assert_eq!(
        refusal(&good().symlink("d/up", "..").file("d/up/x", "x")).to_string(),
        "entry \"d/up/x\" passes through the symlink \"d/up\": nothing may be written through a \
         symlink, use the real directory"
    );
}

#[test]
fn refuses_the_same_path_twice() {
    for (first, second) in [("lib/a.ex", "lib/a.ex"), ("lib/a.ex", "./lib/x/../a.ex")] {
        let err = refusal(&good().file(first, "a").file(second, "b"));
        assert!(
            matches!(&err, TarballError::DuplicateEntry(p) if p == second),
            "{err}"
        );
    }
    let err = refusal(&good().symlink("mix.exs", "lib/foo.ex"));
    assert_eq!(
        err.to_string(),
        "entry \"mix.exs\" appears twice: keep one copy"
    );
    // Different case is not a duplicate (only symlinks are matched without case).
    read_tarball(&good().file("README", "a").file("readme", "b").build()).unwrap();
}

#[test]
fn refuses_a_duplicate_outer_member() {
    let bytes = good().build();
    let mut outer = tar::Builder::new(Vec::new());
    append(&mut outer, "VERSION", b"3");
    outer
        .append_data(&mut fixed_header("x", 0), "x", io::empty())
        .unwrap();
    let mut doubled = outer.into_inner().unwrap();
    doubled.truncate(512 + 512); // VERSION's header and data, no end-of-archive yet.
    doubled.extend_from_slice(&bytes);
    let err = read_tarball(&doubled).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VERSION appears twice in the tarball: keep one copy"
    );
}

#[test]
fn refuses_too_many_entries_and_too_many_path_bytes() {
    let mut many = good();
    for i in 0..MAX_ENTRIES {
        many = many.file(&format!("f{i}"), "");
    }
    let err = refusal(&many);
    assert!(
        matches!(&err, TarballError::TooManyEntries(p) if p == "f65534"),
        "{err}"
    );

    // 1,100 paths of 4,005 bytes: 4.4 MB of paths, each under the length limit.
    let dir = "d".repeat(4000);
    let paths: Vec<_> = (0..1100).map(|i| (format!("{dir}/{i:04}"), None)).collect();
    let err = read_tarball(&package_with_contents(&gnu_contents(&paths))).unwrap_err();
    assert!(
        matches!(&err, TarballError::TooManyPathBytes(p) if p.ends_with("/1047")),
        "{err}"
    );
}

/// A `contents.tar.gz` written with GNU headers, so paths and link targets of any length
/// (each `(path, None)` an empty file, `(path, Some(target))` a symlink).
fn gnu_contents(entries: &[(String, Option<String>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
    let mut tar = tar::Builder::new(gz);
    for (path, target) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        match target {
            None => tar.append_data(&mut header, path, io::empty()).unwrap(),
            Some(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                tar.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// A `contents.tar.gz` of `count` GNU long names of `size` bytes each.
fn long_names(count: usize, size: usize) -> Vec<u8> {
    let paths: Vec<_> = (0..count)
        .map(|i| (format!("{i:05}{}", "a".repeat(size - 5)), None))
        .collect();
    gnu_contents(&paths)
}

#[test]
fn refuses_a_path_or_target_over_the_length_limit() {
    let path = format!("lib/{}", "a".repeat(MAX_PATH_LEN));
    let read = |entries: &[(String, Option<String>)]| {
        read_tarball(&package_with_contents(&gnu_contents(entries)))
    };
    let err = read(&[(path.clone(), None)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "entry path or link target starting \"lib/{}\" is 4100 bytes, more than the \
             4096-byte limit: shorten it",
            "a".repeat(56)
        )
    );
    read(&[(path[..MAX_PATH_LEN].to_owned(), None)]).unwrap();
    let err = read(&[("lib/x".into(), Some("a/".repeat(3000)))]).unwrap_err();
    assert!(
        matches!(err, TarballError::PathTooLong { size: 6000, .. }),
        "{err}"
    );
}

#[test]
fn refuses_a_tar_bomb_of_long_names_before_reading_one() {
    let contents = long_names(1200, 100 * 1024);
    assert!(contents.len() < 256 * 1024, "{}", contents.len());
    let bytes = package_with_contents(&contents);
    let started = std::time::Instant::now();
    let err = read_tarball(&bytes).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Refused from the header's size, having read 60 bytes of it: memory stays bounded.
    assert!(
        matches!(&err, TarballError::HeaderTooLarge { what: "a long name", start, size: 102_401 }
            if start.starts_with("00000aaa") && start.len() == 60),
        "{err}"
    );
    // The same when the contents are small enough to be inflated whole.
    let err = read_tarball(&package_with_contents(&long_names(1, 20_000))).unwrap_err();
    assert!(
        matches!(err, TarballError::HeaderTooLarge { size: 20_001, .. }),
        "{err}"
    );
    // A long name under the header limit but over the path limit is refused by the rules.
    let err = read_tarball(&package_with_contents(&long_names(2, 5000))).unwrap_err();
    assert!(
        matches!(err, TarballError::PathTooLong { size: 5000, .. }),
        "{err}"
    );
    // Long names within the limits are fine.
    read_tarball(&package_with_contents(&long_names(3, 300))).unwrap();
}

#[test]
fn refuses_a_pax_size_that_would_desynchronise_readers() {
    let gz = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_pax_extensions([("size", b"0".as_slice())])
        .unwrap();
    append(&mut tar, "lib/x.ex", b"x");
    let contents = tar.into_inner().unwrap().finish().unwrap();
    let err = read_tarball(&package_with_contents(&contents)).unwrap_err();
    assert!(matches!(err, TarballError::PaxSize), "{err}");
}
