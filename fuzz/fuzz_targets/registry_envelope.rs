//! `decode_envelope` (gunzip + `Signed`) on arbitrary bytes: never panics, and an accepted
//! envelope re-encodes to one that decodes the same. Its payload then goes through every
//! payload decoder, and the file through the signature-checking readers with the test key.
#![no_main]

use std::sync::OnceLock;

use hexfmt::keys::PublicKey;
use hexfmt::proto::{names::Names, package::Package, versions::Versions};
use hexfmt::registry::{self, decode_payload};
use libfuzzer_sys::fuzz_target;

static KEY: OnceLock<PublicKey> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let key = KEY.get_or_init(|| {
        PublicKey::from_pem(include_bytes!(
            "../../testdata/mix-reference/public/public_key"
        ))
        .unwrap()
    });
    let Ok(signed) = registry::decode_envelope(data) else {
        return;
    };
    let again = registry::decode_envelope(&registry::encode_envelope(&signed))
        .expect("re-encoded envelope decodes");
    assert_eq!(again, signed);

    let _ = decode_payload::<Names>(&signed.payload, "Names");
    let _ = decode_payload::<Versions>(&signed.payload, "Versions");
    let _ = decode_payload::<Package>(&signed.payload, "Package");
    let _ = registry::read_names(data, key, "acme");
    let _ = registry::read_versions(data, key, "acme");
    let _ = registry::read_package(data, key, "acme", "acme_web");
});
