//! Oracles shared by the fuzz targets: properties that must hold whenever a parser accepts
//! its input. Each one panics (and so makes libFuzzer report a crash) when it does not hold.

use hexfmt::checksum::Checksum;
use hexfmt::metadata::Metadata;
use hexfmt::tarball::{EntryKind, Tarball};
use hexfmt::term::{parse_terms, write_term, Term, MAX_INPUT_BYTES};

/// What `read_tarball` promises about a tarball it accepted, checked independently of the
/// code that enforced it: the outer checksum, the metadata, that no content entry or symlink
/// can land outside the package directory when unpacked, and that no path comes twice.
pub fn check_accepted_tarball(bytes: &[u8], tarball: &Tarball) {
    assert_eq!(tarball.outer_checksum, Checksum::sha256(bytes));
    let reparsed = Metadata::parse(&tarball.metadata_config).expect("accepted metadata reparses");
    assert_eq!(reparsed, tarball.metadata);
    let mut seen = std::collections::HashSet::new();
    for entry in &tarball.contents {
        let dir = resolve(&[], &entry.path)
            .unwrap_or_else(|| panic!("accepted an entry outside the package: {entry:?}"));
        match &entry.kind {
            EntryKind::Symlink(target) => {
                let parent = &dir[..dir.len().saturating_sub(1)];
                assert!(
                    resolve(parent, target).is_some(),
                    "accepted a symlink out of the package: {entry:?}"
                );
            }
            EntryKind::File | EntryKind::Directory => {}
        }
        if !dir.is_empty() {
            assert!(seen.insert(dir), "accepted the same path twice: {entry:?}");
        }
    }
}

/// Resolves a relative `/`-separated path below `base`, the way a Unix unpacker would;
/// `None` if it is empty, absolute, holds a NUL, starts with a drive (`C:`), or climbs above
/// the root with `..`.
fn resolve(base: &[String], path: &str) -> Option<Vec<String>> {
    if path.is_empty() || path.starts_with('/') || path.contains('\0') {
        return None;
    }
    let first = path.split('/').next().unwrap_or_default();
    if first.len() == 2 && first.ends_with(':') && first.as_bytes()[0].is_ascii_alphabetic() {
        return None;
    }
    let mut parts = base.to_vec();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c.to_owned()),
        }
    }
    Some(parts)
}

/// `write_term` + `"."` reads back as the same term, for each term alone and for all of them
/// written as one file (one term per line, as `Metadata::to_config` writes them).
pub fn check_terms_round_trip(terms: &[Term]) {
    let mut file = String::new();
    for term in terms {
        let mut text = String::new();
        write_term(term, &mut text);
        text.push('.');
        if text.len() > MAX_INPUT_BYTES {
            // Escapes can make the text longer than the input; over the limit is an error.
            return;
        }
        match parse_terms(text.as_bytes()) {
            Ok(back) => assert_eq!(back, std::slice::from_ref(term), "written as {text:?}"),
            Err(e) => panic!("written term does not parse: {e}\nterm: {term:?}\ntext: {text:?}"),
        }
        file.push_str(&text);
        file.push('\n');
    }
    if file.len() <= MAX_INPUT_BYTES {
        let back = parse_terms(file.as_bytes())
            .unwrap_or_else(|e| panic!("written terms do not parse: {e}\ntext: {file:?}"));
        assert_eq!(back, terms, "written as {file:?}");
    }
}
