//! Mirroring an upstream Hex repository (hex.pm by default) into a store of its own, byte for
//! byte: clients keep the upstream's public key and repository name (HEX-PROTOCOL.md §1.7
//! "Mirrors", §8.25), so nothing here ever re-signs. Every upstream file is verified before it
//! is stored ([`verify`]); [`sync`] is the eager `hexrepo mirror sync`, and [`archive`] carries
//! a mirror across an air gap (`hexrepo mirror export` / `import`).
//!
//! No HTTP here: the upstream is a [`Source`](crate::verify::Source) the binary implements.

pub mod archive;
mod progress;
pub mod sync;
mod upstream;
pub mod verify;

use hexfmt::keys::PublicKey;

/// hex.pm's repository key (SPKI, 2048-bit, in use since 2016-03, never rotated; fingerprint
/// `SHA256:O1LOYhHFW4kcrblKAxROaDEzLD8bn1seWbe5tq8TRsk`). Copied from hexpm/hexpm
/// `lib/hexpm_web/templates/docs/public_keys.html.md` ("Active keys"); the same key is built
/// into hex_core's `hex_core:default_config()` and Hex's `Hex.Repo`, and served at
/// <https://repo.hex.pm/public_key>.
pub const HEXPM_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEApqREcFDt5vV21JVe2QNB
Edvzk6w36aNFhVGWN5toNJRjRJ6m4hIuG4KaXtDWVLjnvct6MYMfqhC79HAGwyF+
IqR6Q6a5bbFSsImgBJwz1oadoVKD6ZNetAuCIK84cjMrEFRkELtEIPNHblCzUkkM
3rS9+DPlnfG8hBvGi6tvQIuZmXGCxF/73hU0/MyGhbmEjIKRtG6b0sJYKelRLTPW
XgK7s5pESgiwf2YC/2MGDXjAJfpfCd0RpLdvd4eRiXtVlE9qO9bND94E7PgQ/xqZ
J1i2xWFndWa6nfFnRxZmCStCOZWYYPlaxr+FZceFbpMwzTNs4g3d4tLNUcbKAIH4
0wIDAQAB
-----END PUBLIC KEY-----
";

/// hex.pm's repository URL.
pub const HEXPM_URL: &str = "https://repo.hex.pm";

/// hex.pm's repository name, which clients expect in every file it signs.
pub const HEXPM_NAME: &str = "hexpm";

/// hex.pm's public key, parsed.
pub fn hexpm_public_key() -> PublicKey {
    PublicKey::from_pem(HEXPM_PUBLIC_KEY.as_bytes()).expect("the built-in hex.pm key parses")
}

/// Private package names that also exist upstream, sorted: with both repositories configured,
/// a client could resolve either one (the dependency-confusion risk), so they are reported.
pub fn shadowed<'a>(
    private: impl IntoIterator<Item = &'a str>,
    upstream: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    let mut names: Vec<String> = private
        .into_iter()
        .filter(|name| upstream.contains(*name))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_hexpm_key_is_hexpms() {
        assert_eq!(
            hexpm_public_key().fingerprint(),
            "SHA256:O1LOYhHFW4kcrblKAxROaDEzLD8bn1seWbe5tq8TRsk"
        );
    }

    #[test]
    fn shadowed_lists_private_names_found_upstream() {
        let upstream = ["jason", "plug"].map(str::to_owned).into();
        assert_eq!(shadowed(["acme", "plug"], &upstream), ["plug"]);
    }
}
