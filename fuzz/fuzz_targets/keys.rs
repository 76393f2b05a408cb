//! `PublicKey::from_pem` and `PrivateKey::from_pem`: never panic, and an accepted key
//! re-exports to PEM that reads back as the same key; an accepted private key signs, and its
//! public key verifies the signature.
//!
//! Input: one mode byte, then the rest. Mode 0 (and 5..=255 modulo 5): the rest is the PEM
//! text as is. Modes 1..=4: the rest is DER, wrapped by this target as PEM labelled
//! `RSA PRIVATE KEY`, `PRIVATE KEY`, `RSA PUBLIC KEY` or `PUBLIC KEY`, so mutations reach the
//! DER parser instead of breaking the base64.
#![no_main]

use hexfmt::keys::{PrivateKey, PublicKey};
use libfuzzer_sys::fuzz_target;

const LABELS: [&str; 4] = [
    "RSA PRIVATE KEY",
    "PRIVATE KEY",
    "RSA PUBLIC KEY",
    "PUBLIC KEY",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let wrapped;
    let text = match usize::from(mode % 5) {
        0 => rest,
        n => {
            wrapped = pem::encode(&pem::Pem::new(LABELS[n - 1], rest.to_vec()));
            wrapped.as_bytes()
        }
    };

    if let Ok(public) = PublicKey::from_pem(text) {
        let _ = public.fingerprint();
        let pkcs1 = PublicKey::from_pem(public.to_pkcs1_pem().as_bytes()).expect("PKCS#1 reads");
        assert_eq!(pkcs1, public);
        let spki = PublicKey::from_pem(public.to_spki_pem().as_bytes()).expect("SPKI reads");
        assert_eq!(spki, public);
    }
    if let Ok(private) = PrivateKey::from_pem(text) {
        let public = private.public_key();
        let pem = private.to_pkcs8_pem().expect("PKCS#8 export");
        let again = PrivateKey::from_pem(pem.as_bytes()).expect("PKCS#8 reads");
        assert_eq!(again.public_key(), public);
        let signature = private.sign(b"fuzz");
        public
            .verify(b"fuzz", &signature)
            .expect("own signature verifies");
    }
});
