//! `parse_terms` on arbitrary bytes: never panics (nesting is capped, so no stack overflow),
//! and every accepted term is written by `write_term` in a form that reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(terms) = hexfmt::term::parse_terms(data) {
        hexfmt_fuzz::check_terms_round_trip(&terms);
    }
});
