//! RSA keys for registry signing (HEX-PROTOCOL.md §1.3–1.4): private keys read from PKCS#1 or
//! PKCS#8 PEM and generated for `keygen`; public keys read from PKCS#1 or SPKI PEM and written as
//! PKCS#1 (what `mix hex.registry build` writes) or SPKI (what hex.pm publishes); signatures are
//! RSASSA-PKCS1-v1_5 with SHA-512; fingerprints are OpenSSH's `SHA256:…`, as `mix hex.repo add
//! --fetch-public-key` and `ssh-keygen -lf` print them.
//!
//! All cryptography is aws-lc-rs, the one crypto stack of the binary.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKey as LcPublicKey};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;

use crate::checksum::Checksum;

const PKCS1_PRIVATE: &str = "RSA PRIVATE KEY";
const PKCS8_PRIVATE: &str = "PRIVATE KEY";
const PKCS1_PUBLIC: &str = "RSA PUBLIC KEY";
const SPKI_PUBLIC: &str = "PUBLIC KEY";

/// A key that could not be read, generated or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not PEM.
    #[error("not a PEM file: {0}")]
    Pem(#[source] pem::PemError),
    /// Hex clients use exactly one PEM entry; so do we.
    #[error("expected exactly one PEM entry, found {0}")]
    EntryCount(usize),
    /// A PEM entry of a kind that is not an RSA key of the expected sort.
    #[error("unsupported PEM entry \"{found}\": expected {expected}")]
    UnsupportedEntry {
        /// The PEM label found.
        found: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The DER inside the PEM is not a usable RSA key.
    #[error("invalid RSA key: {0}")]
    Rejected(String),
    /// Key generation failed.
    #[error("RSA key generation failed")]
    Generate,
    /// A signature does not match the payload and key.
    #[error("signature does not match the public key")]
    BadSignature,
}

/// The sizes `keygen` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBits {
    /// RSA-2048, what Hex and hex.pm use.
    Rsa2048,
    /// RSA-4096.
    Rsa4096,
}

/// An RSA private key used to sign registry payloads. Never printed by `Debug`.
pub struct PrivateKey {
    pair: KeyPair,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey(RSA-{}, redacted)",
            self.pair.public_modulus_len() * 8
        )
    }
}

impl PrivateKey {
    /// Reads a single-entry PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`) PEM.
    pub fn from_pem(text: &[u8]) -> Result<PrivateKey, KeyError> {
        let entry = single_entry(text)?;
        let pair = match entry.tag() {
            PKCS1_PRIVATE => KeyPair::from_der(entry.contents()),
            PKCS8_PRIVATE => KeyPair::from_pkcs8(entry.contents()),
            other => {
                return Err(KeyError::UnsupportedEntry {
                    found: other.to_owned(),
                    expected: "\"RSA PRIVATE KEY\" or unencrypted \"PRIVATE KEY\"",
                });
            }
        }
        .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(PrivateKey { pair })
    }

    /// Generates a new key.
    pub fn generate(bits: KeyBits) -> Result<PrivateKey, KeyError> {
        let size = match bits {
            KeyBits::Rsa2048 => KeySize::Rsa2048,
            KeyBits::Rsa4096 => KeySize::Rsa4096,
        };
        let pair = KeyPair::generate(size).map_err(|_| KeyError::Generate)?;
        Ok(PrivateKey { pair })
    }

    /// The key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), what `openssl genrsa` writes and what
    /// `mix hex.registry build` reads.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        let der: Pkcs8V1Der<'_> = self.pair.as_der().map_err(|_| KeyError::Generate)?;
        Ok(encode_pem(PKCS8_PRIVATE, der.as_ref()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            pkcs1: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `payload` with RSASSA-PKCS1-v1_5 / SHA-512. Deterministic for a given key and payload.
    pub fn sign(&self, payload: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        // The only failure modes are a wrong buffer length and an RNG failure; PKCS#1 v1.5
        // signing uses no randomness and the buffer is sized from the key.
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA512,
                &SystemRandom::new(),
                payload,
                &mut signature,
            )
            .expect("RSA PKCS#1 v1.5 signing with a correctly sized buffer cannot fail");
        signature
    }
}

/// An RSA public key, held as PKCS#1 `RSAPublicKey` DER.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pkcs1: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PublicKey {
    /// Reads a single-entry PKCS#1 (`RSA PUBLIC KEY`) or SPKI (`PUBLIC KEY`) PEM.
    pub fn from_pem(text: &[u8]) -> Result<PublicKey, KeyError> {
        let entry = single_entry(text)?;
        if entry.tag() != PKCS1_PUBLIC && entry.tag() != SPKI_PUBLIC {
            return Err(KeyError::UnsupportedEntry {
                found: entry.tag().to_owned(),
                expected: "\"RSA PUBLIC KEY\" or \"PUBLIC KEY\"",
            });
        }
        // aws-lc reads both RFC 8017 (PKCS#1) and RFC 5280 (SPKI) encodings.
        let key = LcPublicKey::from_der(entry.contents())
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(PublicKey {
            pkcs1: key.as_ref().to_vec(),
        })
    }

    /// PKCS#1 PEM (`BEGIN RSA PUBLIC KEY`), byte for byte what `mix hex.registry build` writes,
    /// including the blank line OTP's `public_key:pem_encode/1` puts after each entry.
    pub fn to_pkcs1_pem(&self) -> String {
        encode_pem(PKCS1_PUBLIC, &self.pkcs1) + "\n"
    }

    /// SPKI PEM (`BEGIN PUBLIC KEY`), the form hex.pm publishes and some non-Erlang clients need.
    pub fn to_spki_pem(&self) -> String {
        let key = self.parsed();
        let der: PublicKeyX509Der<'_> = key
            .as_der()
            .expect("a parsed RSA public key always encodes as SPKI");
        encode_pem(SPKI_PUBLIC, der.as_ref())
    }

    /// Checks an RSASSA-PKCS1-v1_5 / SHA-512 signature over `payload`.
    pub fn verify(&self, payload: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA512, &self.pkcs1)
            .verify(payload, signature)
            .map_err(|_| KeyError::BadSignature)
    }

    /// The OpenSSH-style fingerprint `SHA256:<unpadded base64>` of the `ssh-rsa` wire blob.
    pub fn fingerprint(&self) -> String {
        let key = self.parsed();
        let mut blob = Vec::with_capacity(self.pkcs1.len() + 32);
        put_ssh_string(&mut blob, b"ssh-rsa");
        put_ssh_mpint(&mut blob, key.exponent().big_endian_without_leading_zero());
        put_ssh_mpint(&mut blob, key.modulus().big_endian_without_leading_zero());
        let digest = Checksum::sha256(&blob);
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_bytes())
        )
    }

    fn parsed(&self) -> LcPublicKey {
        LcPublicKey::from_der(&self.pkcs1).expect("held DER was validated on construction")
    }
}

fn single_entry(text: &[u8]) -> Result<pem::Pem, KeyError> {
    let mut entries = pem::parse_many(text).map_err(KeyError::Pem)?;
    match entries.len() {
        1 => Ok(entries.remove(0)),
        n => Err(KeyError::EntryCount(n)),
    }
}

fn encode_pem(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn put_ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("ssh field under 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_ssh_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    // RFC 4251 mpint: positive numbers whose top bit is set get a leading zero byte.
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        let mut padded = Vec::with_capacity(magnitude.len() + 1);
        padded.push(0);
        padded.extend_from_slice(magnitude);
        put_ssh_string(out, &padded);
    } else {
        put_ssh_string(out, magnitude);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE_PRIVATE: &[u8] =
        include_bytes!("../../../testdata/mix-reference/test_private_key.pem");
    const FIXTURE_PUBLIC: &[u8] =
        include_bytes!("../../../testdata/mix-reference/public/public_key");

    #[test]
    fn derived_public_key_is_byte_identical_to_what_mix_wrote() {
        let key = PrivateKey::from_pem(FIXTURE_PRIVATE).unwrap();
        assert_eq!(key.public_key().to_pkcs1_pem().as_bytes(), FIXTURE_PUBLIC);
    }

    #[test]
    fn spki_and_pkcs1_read_back_to_the_same_key() {
        let public = PublicKey::from_pem(FIXTURE_PUBLIC).unwrap();
        let spki = public.to_spki_pem();
        assert!(spki.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::from_pem(spki.as_bytes()).unwrap(), public);
    }

    #[test]
    fn pkcs8_private_keys_read_back_and_sign_the_same() {
        let key = PrivateKey::from_pem(FIXTURE_PRIVATE).unwrap();
        let again = PrivateKey::from_pem(key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
        assert_eq!(key.sign(b"payload"), again.sign(b"payload"));
    }

    #[test]
    fn signatures_verify_and_tampering_is_caught() {
        let key = PrivateKey::from_pem(FIXTURE_PRIVATE).unwrap();
        let public = key.public_key();
        let mut sig = key.sign(b"payload");
        assert_eq!(sig.len(), 256);
        public.verify(b"payload", &sig).unwrap();
        assert!(public.verify(b"payloaD", &sig).is_err());
        sig[10] ^= 1;
        assert!(public.verify(b"payload", &sig).is_err());
    }

    #[test]
    fn rejects_multiple_entries_and_wrong_kinds() {
        let two = [FIXTURE_PUBLIC, FIXTURE_PUBLIC].concat();
        assert!(matches!(
            PublicKey::from_pem(&two),
            Err(KeyError::EntryCount(2))
        ));
        assert!(matches!(
            PublicKey::from_pem(FIXTURE_PRIVATE),
            Err(KeyError::UnsupportedEntry { .. })
        ));
        assert!(matches!(
            PrivateKey::from_pem(FIXTURE_PUBLIC),
            Err(KeyError::UnsupportedEntry { .. })
        ));
        assert!(PrivateKey::from_pem(b"garbage").is_err());
    }

    #[test]
    fn debug_never_shows_private_material() {
        let key = PrivateKey::from_pem(FIXTURE_PRIVATE).unwrap();
        assert_eq!(format!("{key:?}"), "PrivateKey(RSA-2048, redacted)");
    }

    #[test]
    fn fingerprint_matches_ssh_keygen() {
        // `ssh-keygen -lf` on this key (converted to OpenSSH form) printed this value.
        assert_eq!(
            PublicKey::from_pem(FIXTURE_PUBLIC).unwrap().fingerprint(),
            "SHA256:AI2k4nZhT5NAVbHkRfRea3A8OLHjubJhL88UMGzO4gM"
        );
    }
}
