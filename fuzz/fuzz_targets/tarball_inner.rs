//! `read_tarball` past its checksum gate: the input is `metadata.config` and an *uncompressed*
//! `contents` tar; the target gzips the contents, writes the outer tarball with a correct
//! `CHECKSUM` and reads it back, so mutations reach `Metadata::parse` and the content-path
//! rules (traversal, symlinks, links through links, entry types, duplicates, limits).
//!
//! Input layout: 2 bytes little-endian `N`, then `N` bytes of `metadata.config`, then the
//! contents tar. `fuzz/gen-seeds` writes seeds in this layout from real tarballs.
#![no_main]

use std::io::Write as _;

use hexfmt::checksum::Checksum;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (metadata, contents_tar) = rest.split_at(len);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    gz.write_all(contents_tar).unwrap();
    let contents = gz.finish().unwrap();
    let checksum = Checksum::sha256_parts(&[b"3", metadata, &contents]).to_hex_upper();

    let mut outer = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        ("VERSION", &b"3"[..]),
        ("CHECKSUM", checksum.as_bytes()),
        ("metadata.config", metadata),
        ("contents.tar.gz", &contents),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).unwrap();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        outer.append(&header, bytes).unwrap();
    }
    let file = outer.into_inner().unwrap();

    if let Ok(tarball) = hexfmt::tarball::read_tarball(&file) {
        hexfmt_fuzz::check_accepted_tarball(&file, &tarball);
        assert_eq!(tarball.metadata_config, metadata);
    }
});
