//! `mix hex.registry build` and `hexrepo build --mix-compatible` over the same tarballs, made
//! by `mix hex.build` in the test: the same registry, payload and signature, file by file.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Dep, Mix, Project};
use crate::mirror_support::keygen;
use crate::serve_support::{gunzip_complete, hexrepo_in};
use crate::support::{run, temp_dir};

const REPO: &str = "acme";

/// Every file of a registry folder but the tarballs, with registry files gunzipped (gzip
/// headers carry a time; what clients read is the payload and its signature).
fn registry_files(public: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut paths: Vec<PathBuf> = ["names", "versions", "public_key"]
        .iter()
        .map(|f| public.join(f))
        .collect();
    let mut packages: Vec<PathBuf> = fs::read_dir(public.join("packages"))
        .expect("read packages")
        .map(|e| e.expect("entry").path())
        .collect();
    packages.sort();
    paths.extend(packages);
    for path in paths {
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let name = path
            .strip_prefix(public)
            .expect("inside public")
            .display()
            .to_string();
        let bytes = if name == "public_key" {
            bytes
        } else {
            gunzip_complete(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        files.push((name, bytes));
    }
    files
}

#[test]
fn hexrepo_build_mix_compatible_matches_mix_hex_registry_build() {
    let mix = Mix::new();
    let home = mix.home().to_path_buf();
    let projects = [
        Project::new(&mix, &home, "base_lib", "1.0.0", &[]),
        Project::new(&mix, &home, "base_lib_next", "2.0.0-rc.1", &[]),
        Project::new(
            &mix,
            &home,
            "uses_base",
            "0.3.1",
            &[
                Dep::new("base_lib", "~> 1.0", REPO),
                Dep::new("base_lib_next", "~> 2.0.0-rc.1", REPO).optional(),
            ],
        ),
    ];
    let work = temp_dir();
    let (by_mix, by_hexrepo) = (work.path().join("mix"), work.path().join("hexrepo"));
    for public in [&by_mix, &by_hexrepo] {
        fs::create_dir_all(public.join("tarballs")).expect("mkdir tarballs");
    }
    for project in &projects {
        let tarball = project.build(&mix);
        let name = tarball.file_name().expect("file name");
        for public in [&by_mix, &by_hexrepo] {
            fs::copy(&tarball, public.join("tarballs").join(name)).expect("copy tarball");
        }
    }
    let key = keygen(work.path(), "private_key.pem");
    let key = key.to_str().expect("UTF-8 path");
    let built = mix.ok(
        work.path(),
        &[
            "hex.registry",
            "build",
            "mix",
            "--name",
            REPO,
            "--private-key",
            key,
        ],
    );
    assert!(built.contains("packages/uses_base"), "{built}");
    run(&mut hexrepo_in(
        work.path(),
        &[
            "build",
            "hexrepo",
            "--name",
            REPO,
            "--private-key",
            key,
            "--mix-compatible",
        ],
    ));
    let (expected, actual) = (registry_files(&by_mix), registry_files(&by_hexrepo));
    assert_eq!(
        expected.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        actual.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for ((name, mine), (_, theirs)) in actual.iter().zip(&expected) {
        assert!(
            mine == theirs,
            "{name} differs from mix hex.registry build's"
        );
    }
}
