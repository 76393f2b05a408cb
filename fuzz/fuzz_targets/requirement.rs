//! `Requirement::parse` on arbitrary UTF-8, and `matches`: never panics, and
//! - `Display` prints back the requirement exactly as written;
//! - a match without pre-releases allowed is also a match with them allowed;
//! - a bare version as requirement matches exactly the versions equal to it.
//!
//! Input: the requirement, optionally followed by `\n` and a version to match against it.
#![no_main]

use hexfmt::requirement::Requirement;
use hexfmt::version::Version;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (req_text, version_text) = text.split_once('\n').unwrap_or((text, "1.0.0"));
    let Ok(req) = Requirement::parse(req_text) else {
        return;
    };
    assert_eq!(req.to_string(), req_text);
    assert_eq!(req.as_str(), req_text);

    let mut versions = vec![
        Version::new(0, 0, 0),
        Version::new(u64::MAX, u64::MAX, u64::MAX),
    ];
    versions.extend(Version::parse(version_text));
    let exact = Version::parse(req_text.trim_matches(' ')).ok();
    for version in &versions {
        let strict = req.matches(version, false);
        let loose = req.matches(version, true);
        assert!(
            !strict || loose,
            "{version} matches {req_text:?} only without allow_pre"
        );
        if let Some(exact) = &exact {
            assert_eq!(strict, version == exact, "{version} vs bare {req_text:?}");
            assert_eq!(loose, version == exact, "{version} vs bare {req_text:?}");
        }
    }
});
