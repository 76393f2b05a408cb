//! `Metadata::parse` on arbitrary bytes: never panics, and accepted metadata survives
//! `to_config` → `parse` unchanged (extra keys come back sorted, as `to_config` writes them).
#![no_main]

use hexfmt::metadata::Metadata;
use hexfmt::term::MAX_INPUT_BYTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut meta) = Metadata::parse(data) else {
        return;
    };
    let config = meta.to_config();
    if config.len() > MAX_INPUT_BYTES {
        return;
    }
    let back = Metadata::parse(&config).unwrap_or_else(|e| {
        panic!(
            "to_config output does not parse: {e}\n{}",
            String::from_utf8_lossy(&config)
        )
    });
    // Parsed extras have unique text keys (the last duplicate wins), so this is the order
    // `to_config`'s stable sort writes them in.
    meta.extra
        .sort_by_key(|(key, _)| key.to_text().unwrap_or_default().into_owned());
    assert_eq!(
        back,
        meta,
        "written as:\n{}",
        String::from_utf8_lossy(&config)
    );
});
