//! `mix hex.registry build` and `hexrepo build --mix-compatible` over the same tarballs, made
//! by `mix hex.build` in the test: the same registry, payload and signature, file by file; and
//! the release dates a default `hexrepo build` writes, as mix's cooldowns read them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{Dep, Mix, Project};
use crate::mirror_support::keygen;
use crate::serve_support::{HexrepoServer, gunzip_complete, hexrepo_in};
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

/// `hexrepo build` of `tarballs` into `public` (with `--mix-compatible` when `mix_compatible`).
fn build_into(
    work: &Path,
    public: &Path,
    tarballs: &[(&Path, SystemTime)],
    key: &str,
    mix_compatible: bool,
) {
    fs::create_dir_all(public.join("tarballs")).expect("mkdir tarballs");
    for (tarball, modified) in tarballs {
        let target = public
            .join("tarballs")
            .join(tarball.file_name().expect("file name"));
        fs::copy(tarball, &target).expect("copy tarball");
        fs::File::options()
            .write(true)
            .open(&target)
            .and_then(|f| f.set_modified(*modified))
            .expect("set the tarball's mtime");
    }
    let public = public.to_str().expect("UTF-8 path");
    let mut build = hexrepo_in(
        work,
        &["build", public, "--name", REPO, "--private-key", key],
    );
    if mix_compatible {
        build.arg("--mix-compatible");
    }
    run(&mut build);
}

#[test]
fn mix_cooldowns_hold_back_releases_that_hexrepo_build_dated() {
    let mix = Mix::new();
    let home = mix.home().to_path_buf();
    let mut dated = Project::new(&mix, &home, "dated", "1.0.0", &[]);
    let old = dated.build(&mix);
    dated.set_version("1.1.0");
    let new = dated.build(&mix);
    let month_ago = SystemTime::now() - Duration::from_hours(30 * 24);
    let releases = [
        (old.as_path(), month_ago),
        (new.as_path(), SystemTime::now()),
    ];
    let work = temp_dir();
    let key = keygen(work.path(), "private_key.pem");
    let key_path = key.to_str().expect("UTF-8 path");
    let (dated_public, undated_public) = (work.path().join("dated"), work.path().join("undated"));
    build_into(work.path(), &dated_public, &releases, key_path, false);
    build_into(work.path(), &undated_public, &releases, key_path, true);

    let mut mix = mix;
    mix.set("HEX_COOLDOWN", "7d");
    for (public, expected) in [
        (&dated_public, "dated 1.0.0"),
        (&undated_public, "dated 1.1.0"),
    ] {
        let server = HexrepoServer::start(work.path(), public, &key, &["--name", REPO]);
        let public_key = public.join("public_key");
        let public_key = public_key.to_str().expect("UTF-8 path");
        mix.repo_add(REPO, &server.url(), &["--public-key", public_key]);
        let parent = home.join(public.file_name().expect("folder name"));
        let app = Project::new(
            &mix,
            &parent,
            "app",
            "0.1.0",
            &[Dep::new("dated", "~> 1.0", REPO)],
        );
        let got = mix.ok(app.dir(), &["deps.get"]);
        // Dated releases: 1.1.0 is brand new, inside the 7-day cooldown, so mix takes 1.0.0.
        // Undated ones (mix-compatible): mix cannot tell, and takes the newest.
        assert!(got.contains(expected), "{expected} expected:\n{got}");
    }
}
