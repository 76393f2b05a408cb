//! `Version::parse` on arbitrary UTF-8: never panics, prints back exactly its input, and
//! parsing the printed text gives an equal version; hex.pm's extra limits never panic.
#![no_main]

use std::cmp::Ordering;

use hexfmt::version::Version;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(version) = Version::parse(text) else {
        return;
    };
    let printed = version.to_string();
    assert_eq!(printed, text, "Display does not reproduce the input");
    let again = Version::parse(&printed).expect("printed version parses");
    assert_eq!(again, version);
    assert_eq!(again.cmp(&version), Ordering::Equal);
    assert_eq!(again.to_string(), printed);
    let _ = version.is_valid_for_hex();
});
