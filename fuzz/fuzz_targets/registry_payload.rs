//! The payload decoders (`decode_payload::<Names | Versions | Package>`) on arbitrary bytes,
//! without the gzip layer in the way: never panic, and a decoded message re-encodes to bytes
//! that decode to the same message. "The same" is compared as encoded bytes, since
//! `SecurityAdvisory.cvss_score` is a float that can be NaN, and NaN != NaN.
#![no_main]

use hexfmt::proto::{names::Names, package::Package, versions::Versions};
use hexfmt::registry::decode_payload;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn check<M: Message + Default>(data: &[u8], name: &'static str) {
    if let Ok(message) = decode_payload::<M>(data, name) {
        let encoded = message.encode_to_vec();
        let again = decode_payload::<M>(&encoded, name)
            .unwrap_or_else(|e| panic!("re-encoded {name} does not decode: {e}"));
        assert_eq!(
            again.encode_to_vec(),
            encoded,
            "{name} changed on re-encoding"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Names>(data, "Names");
    check::<Versions>(data, "Versions");
    check::<Package>(data, "Package");
});
