//! SHA-256 checksums as Hex uses them (HEX-PROTOCOL.md §3.3–3.4): the inner checksum over a
//! tarball's members and the outer checksum over the whole `.tar`. Stored raw (32 bytes) in the
//! registry, shown upper-case in `CHECKSUM` and `rebar.lock`, lower-case in the API and `mix.lock`.

use std::fmt;

use aws_lc_rs::digest;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum([u8; 32]);

/// A checksum that could not be read from text or bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChecksumError {
    /// Not 64 hex characters.
    #[error("invalid checksum {text:?}: expected 64 hex characters")]
    Hex {
        /// The offending text, truncated to 80 characters.
        text: String,
    },
    /// Raw bytes of the wrong length.
    #[error("invalid checksum: expected 32 bytes, got {0}")]
    Length(usize),
}

impl Checksum {
    /// SHA-256 of `data`.
    pub fn sha256(data: &[u8]) -> Checksum {
        Checksum::sha256_parts(&[data])
    }

    /// SHA-256 of the concatenation of `parts`, without copying them together.
    pub fn sha256_parts(parts: &[&[u8]]) -> Checksum {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in parts {
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Checksum(out)
    }

    /// SHA-256 of data that arrives in pieces.
    pub fn hasher() -> Hasher {
        Hasher(digest::Context::new(&digest::SHA256))
    }

    /// Reads hex text in either case.
    pub fn from_hex(text: &str) -> Result<Checksum, ChecksumError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| ChecksumError::Hex {
            text: text.chars().take(80).collect(),
        })?;
        Ok(Checksum(out))
    }

    /// Takes 32 raw bytes, as stored in the registry.
    pub fn from_slice(bytes: &[u8]) -> Result<Checksum, ChecksumError> {
        <[u8; 32]>::try_from(bytes)
            .map(Checksum)
            .map_err(|_| ChecksumError::Length(bytes.len()))
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, as the HTTP API and `mix.lock` show it.
    pub fn to_hex_lower(&self) -> String {
        hex::encode(self.0)
    }

    /// Upper-case hex, as a tarball's `CHECKSUM` file and `rebar.lock` hold it.
    pub fn to_hex_upper(&self) -> String {
        hex::encode_upper(self.0)
    }
}

/// An incremental SHA-256 ([`Checksum::hasher`]).
#[derive(Clone)]
pub struct Hasher(digest::Context);

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher(sha256)")
    }
}

impl Hasher {
    /// Adds the next piece.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The checksum of every piece added.
    pub fn finish(self) -> Checksum {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        Checksum(out)
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", self.to_hex_lower())
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex_lower())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_and_both_cases_round_trip() {
        let c = Checksum::sha256(b"abc");
        assert_eq!(
            c.to_hex_lower(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Checksum::from_hex(&c.to_hex_upper()), Ok(c));
        assert_eq!(Checksum::sha256_parts(&[b"a", b"bc"]), c);
        assert_eq!(Checksum::from_slice(c.as_bytes()), Ok(c));
    }

    #[test]
    fn rejects_bad_text_and_lengths() {
        assert!(Checksum::from_hex("abc").is_err());
        assert!(Checksum::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(
            Checksum::from_slice(&[0; 31]),
            Err(ChecksumError::Length(31))
        );
    }
}
