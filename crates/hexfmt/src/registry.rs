//! Registry resources as files (HEX-PROTOCOL.md §1.2 and §1.5): a payload is protobuf-encoded,
//! signed, wrapped in `Signed` and gzipped; reading reverses that with the client's checks
//! (signature, then the `repository` and `name` origin fields), as hex_core's
//! `hex_repo:get_protobuf/3` does.

use std::io::{Read as _, Write as _};

use flate2::Compression;
use flate2::read::GzDecoder;
use prost::Message as _;

use crate::keys::{KeyError, PrivateKey, PublicKey};
use crate::proto::{names::Names, package::Package, signed::Signed, versions::Versions};

/// The largest decompressed registry file we accept. hex.pm's `/versions` is about 2 MiB;
/// this leaves room for a repository thirty times its size while bounding what a hostile
/// upstream can make us allocate.
pub const MAX_DECODED_SIZE: u64 = 64 * 1024 * 1024;

/// A registry file that could not be read or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not a gzip stream, or larger than [`MAX_DECODED_SIZE`] once decompressed.
    #[error("not a gzipped registry file: {0}")]
    Gzip(#[source] std::io::Error),
    /// The decompressed bytes are not the expected protobuf message.
    #[error("invalid {message} protobuf: {source}")]
    Protobuf {
        /// Which message was being decoded.
        message: &'static str,
        /// The decoder's complaint.
        #[source]
        source: prost::DecodeError,
    },
    /// `Signed.signature` is absent; hex_core crashes on such files, so they are invalid.
    #[error("the file carries no signature")]
    MissingSignature,
    /// The signature does not verify with the configured public key.
    #[error("bad signature: {0}")]
    Signature(#[source] KeyError),
    /// The `repository` field names another repository.
    #[error("repository name mismatch: expected {expected:?}, file says {found:?}")]
    RepositoryMismatch {
        /// The repository name the reader was configured with.
        expected: String,
        /// What the file says.
        found: String,
    },
    /// A `Package` file names another package than the one requested.
    #[error("package name mismatch: expected {expected:?}, file says {found:?}")]
    NameMismatch {
        /// The requested package.
        expected: String,
        /// What the file says.
        found: String,
    },
}

/// Signs `payload` and returns the file bytes: `gzip(Signed{payload, signature})`.
pub fn encode_signed(payload: Vec<u8>, key: &PrivateKey) -> Vec<u8> {
    let signature = key.sign(&payload);
    encode_envelope(&Signed {
        payload,
        signature: Some(signature),
    })
}

/// Gzips an already signed envelope, as `zlib:gzip/1` does: level 6, mtime 0, OS "unix".
/// The fixed header makes the bytes, and so the ETag, a function of the content.
pub fn encode_envelope(signed: &Signed) -> Vec<u8> {
    let raw = signed.encode_to_vec();
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::with_capacity(raw.len() / 2 + 64), Compression::new(6));
    gz.write_all(&raw).expect("writing to a Vec cannot fail");
    gz.finish().expect("writing to a Vec cannot fail")
}

/// Gunzips and decodes the envelope without checking the signature.
pub fn decode_envelope(file: &[u8]) -> Result<Signed, RegistryError> {
    let mut raw = Vec::with_capacity(file.len() * 2);
    GzDecoder::new(file)
        .take(MAX_DECODED_SIZE + 1)
        .read_to_end(&mut raw)
        .map_err(RegistryError::Gzip)?;
    if raw.len() as u64 > MAX_DECODED_SIZE {
        return Err(RegistryError::Gzip(std::io::Error::other(format!(
            "larger than {MAX_DECODED_SIZE} bytes decompressed"
        ))));
    }
    Signed::decode(raw.as_slice()).map_err(|source| RegistryError::Protobuf {
        message: "Signed",
        source,
    })
}

/// Decodes the envelope and checks its signature; returns the verified payload.
pub fn verify_signed(file: &[u8], key: &PublicKey) -> Result<Vec<u8>, RegistryError> {
    let signed = decode_envelope(file)?;
    let signature = signed.signature.ok_or(RegistryError::MissingSignature)?;
    key.verify(&signed.payload, &signature)
        .map_err(RegistryError::Signature)?;
    Ok(signed.payload)
}

/// Reads a `/names` file: signature, then `repository`.
pub fn read_names(file: &[u8], key: &PublicKey, repository: &str) -> Result<Names, RegistryError> {
    let names: Names = decode_payload(&verify_signed(file, key)?, "Names")?;
    check_repository(repository, &names.repository)?;
    Ok(names)
}

/// Reads a `/versions` file: signature, then `repository`.
pub fn read_versions(
    file: &[u8],
    key: &PublicKey,
    repository: &str,
) -> Result<Versions, RegistryError> {
    let versions: Versions = decode_payload(&verify_signed(file, key)?, "Versions")?;
    check_repository(repository, &versions.repository)?;
    Ok(versions)
}

/// Reads a `/packages/NAME` file: signature, then `repository` and `name`.
pub fn read_package(
    file: &[u8],
    key: &PublicKey,
    repository: &str,
    name: &str,
) -> Result<Package, RegistryError> {
    let package: Package = decode_payload(&verify_signed(file, key)?, "Package")?;
    check_repository(repository, &package.repository)?;
    if package.name != name {
        return Err(RegistryError::NameMismatch {
            expected: name.to_owned(),
            found: package.name,
        });
    }
    Ok(package)
}

/// Decodes a payload of a known message type.
pub fn decode_payload<M: prost::Message + Default>(
    payload: &[u8],
    message: &'static str,
) -> Result<M, RegistryError> {
    M::decode(payload).map_err(|source| RegistryError::Protobuf { message, source })
}

fn check_repository(expected: &str, found: &str) -> Result<(), RegistryError> {
    if expected == found {
        Ok(())
    } else {
        Err(RegistryError::RepositoryMismatch {
            expected: expected.to_owned(),
            found: found.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &[u8] = include_bytes!("../../../testdata/mix-reference/public/public_key");
    const PRIVATE: &[u8] = include_bytes!("../../../testdata/mix-reference/test_private_key.pem");
    const NAMES: &[u8] = include_bytes!("../../../testdata/mix-reference/public/names");
    const ACME_WEB: &[u8] =
        include_bytes!("../../../testdata/mix-reference/public/packages/acme_web");

    fn public() -> PublicKey {
        PublicKey::from_pem(PUBLIC).unwrap()
    }

    #[test]
    fn reads_what_mix_wrote() {
        let names = read_names(NAMES, &public(), "acme").unwrap();
        assert_eq!(names.packages.len(), 5);
        let web = read_package(ACME_WEB, &public(), "acme", "acme_web").unwrap();
        assert_eq!(web.releases[0].dependencies[0].package, "acme_core");
    }

    #[test]
    fn origin_checks_name_the_mismatch() {
        let err = read_names(NAMES, &public(), "other").unwrap_err();
        assert!(err.to_string().contains("expected \"other\""), "{err}");
        let err = read_package(ACME_WEB, &public(), "acme", "acme_core").unwrap_err();
        assert!(matches!(err, RegistryError::NameMismatch { .. }));
    }

    #[test]
    fn re_signing_reproduces_mix_signature_exactly() {
        let original = decode_envelope(ACME_WEB).unwrap();
        let key = PrivateKey::from_pem(PRIVATE).unwrap();
        let ours = decode_envelope(&encode_signed(original.payload.clone(), &key)).unwrap();
        assert_eq!(ours, original);
    }

    #[test]
    fn tampered_payload_and_garbage_are_rejected() {
        let mut signed = decode_envelope(NAMES).unwrap();
        signed.payload.push(0);
        let file = encode_envelope(&signed);
        assert!(matches!(
            read_names(&file, &public(), "acme"),
            Err(RegistryError::Signature(_))
        ));
        signed.signature = None;
        assert!(matches!(
            verify_signed(&encode_envelope(&signed), &public()),
            Err(RegistryError::MissingSignature)
        ));
        assert!(matches!(
            decode_envelope(b"nope"),
            Err(RegistryError::Gzip(_))
        ));
    }
}
