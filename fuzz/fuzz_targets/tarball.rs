//! `read_tarball` on arbitrary bytes: never panics, and what it accepts is safe to unpack.
//! Mutations rarely keep the inner checksum valid, so this mostly exercises the outer tar,
//! member limits, VERSION and CHECKSUM; `tarball_inner` goes past the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tarball) = hexfmt::tarball::read_tarball(data) {
        hexfmt_fuzz::check_accepted_tarball(data, &tarball);
    }
});
