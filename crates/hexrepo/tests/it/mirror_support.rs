//! The local upstream the mirror tests run against: a repository built by `hexrepo build` with
//! its own key and the name `hexpm`, holding a dependency chain (alpha -> beta -> gamma) and an
//! unrelated delta; and the `hexrepo mirror sync` invocations the tests share.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::clients::{Rebar3Project, create_package};
use crate::serve_support::{HexrepoServer, hexrepo_in};
use crate::support::{
    StaticServer, all_output, describe, output_of, read_text, require_rebar3_and_nginx, run,
    sha256_upper, stdout_text, temp_dir, tool,
};

/// The mirrored repository's name, as hex.pm's.
pub const UPSTREAM: &str = "hexpm";

/// A local upstream repository folder and its key.
pub struct Upstream {
    pub tmp: tempfile::TempDir,
}

impl Upstream {
    /// alpha 1.0.0 -> beta ~> 1.0 -> gamma ~> 1.0 (two gamma releases), and delta alone.
    pub fn new() -> Upstream {
        let tmp = temp_dir();
        let upstream = Upstream { tmp };
        let tarballs = upstream.public().join("tarballs");
        fs::create_dir_all(&tarballs).expect("mkdir tarballs");
        create_package(&tarballs, "gamma", "1.0.0", &[]);
        create_package(&tarballs, "gamma", "1.1.0", &[]);
        create_package(&tarballs, "beta", "1.0.0", &["gamma:~> 1.0"]);
        create_package(&tarballs, "alpha", "1.0.0", &["beta:~> 1.0"]);
        create_package(&tarballs, "delta", "1.0.0", &[]);
        let key = keygen(upstream.tmp.path(), "upstream_key.pem");
        build_repository(&upstream.public(), UPSTREAM, &key);
        upstream
    }

    pub fn public(&self) -> PathBuf {
        self.tmp.path().join("public")
    }

    pub fn public_key(&self) -> PathBuf {
        self.public().join("public_key")
    }

    /// Adds `name` `version` (requiring `deps`, as `NAME:REQUIREMENT`) and rebuilds.
    pub fn publish(&self, name: &str, version: &str, deps: &[&str]) {
        create_package(&self.public().join("tarballs"), name, version, deps);
        self.rebuild();
    }

    /// Adds packages without dependencies, made in one Erlang start (`hex-core create-many`),
    /// and rebuilds.
    pub fn publish_many(&self, releases: &[(String, String)]) {
        let mut create = Command::new(tool("hex-core"));
        create
            .arg("create-many")
            .arg(self.public().join("tarballs"));
        for (name, version) in releases {
            create.args([name, version]);
        }
        run(&mut create);
        self.rebuild();
    }

    fn rebuild(&self) {
        build_repository(
            &self.public(),
            UPSTREAM,
            &self.tmp.path().join("upstream_key.pem"),
        );
    }
}

/// The local upstream, served by nginx (rebar3 builds its packages; both are required).
pub fn served_upstream() -> (Upstream, StaticServer) {
    require_rebar3_and_nginx();
    let upstream = Upstream::new();
    let nginx = StaticServer::start(&upstream.public());
    (upstream, nginx)
}

/// `hexrepo serve --mirror --mirror-mode offline` of `mirror`, its private repository in
/// `work`: what the mirror holds is all it serves.
pub fn offline_mirror_server(work: &Path, mirror: &Path) -> HexrepoServer {
    HexrepoServer::start(
        work,
        &work.join("public"),
        &work.join("private_key.pem"),
        &[
            "--mirror",
            "--mirror-mode",
            "offline",
            "--mirror-storage",
            mirror.to_str().unwrap(),
        ],
    )
}

/// `hexrepo keygen --out DIR/FILE`.
pub fn keygen(dir: &Path, file: &str) -> PathBuf {
    let key = dir.join(file);
    run(hexrepo_in(dir, &["keygen", "--out"]).arg(&key));
    key
}

/// `hexrepo build PUBLIC --name NAME --private-key KEY`.
pub fn build_repository(public: &Path, name: &str, key: &Path) {
    run(hexrepo_in(public, &["build"])
        .arg(public)
        .args(["--name", name, "--private-key"])
        .arg(key));
}

/// `hexrepo mirror sync` from `url` into `mirror` with the upstream's key, `--package` for each
/// of `packages`; the private repository is `private` (for the dependency-confusion check).
pub fn sync(
    upstream: &Upstream,
    url: &str,
    mirror: &Path,
    private: &Path,
    packages: &[&str],
) -> (Command, Output) {
    let mut cmd = sync_command(upstream, url, mirror, private, packages);
    let output = output_of(&mut cmd);
    (cmd, output)
}

/// The command [`sync`] runs, for running it otherwise.
pub fn sync_command(
    upstream: &Upstream,
    url: &str,
    mirror: &Path,
    private: &Path,
    packages: &[&str],
) -> Command {
    let mut cmd = hexrepo_in(
        upstream.tmp.path(),
        &["mirror", "sync", "--upstream-url", url],
    );
    cmd.args(["--upstream-name", UPSTREAM, "--upstream-public-key"])
        .arg(upstream.public_key())
        .arg("--mirror-storage")
        .arg(mirror)
        .arg("--public-dir")
        .arg(private);
    for package in packages {
        cmd.args(["--package", package]);
    }
    cmd
}

/// [`sync`], required to succeed; returns its stdout.
pub fn sync_ok(
    upstream: &Upstream,
    url: &str,
    mirror: &Path,
    private: &Path,
    packages: &[&str],
) -> String {
    let (cmd, output) = sync(upstream, url, mirror, private, packages);
    assert!(
        output.status.success(),
        "sync failed: {}",
        describe(&cmd, &output)
    );
    stdout_text(&output)
}

/// [`sync`], required to fail; returns both output streams.
pub fn sync_failing(upstream: &Upstream, url: &str, mirror: &Path, packages: &[&str]) -> String {
    let private = temp_dir();
    let (cmd, output) = sync(upstream, url, mirror, private.path(), packages);
    assert!(
        !output.status.success(),
        "sync should have failed: {}",
        describe(&cmd, &output)
    );
    all_output(&output)
}

/// Repository files under `dir`, relative to it, sorted (our `.hexrepo/` state left out).
pub fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.file_name().is_some_and(|n| n == ".hexrepo") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// GET requests nginx logged for `path`.
pub fn requests_for(server: &StaticServer, path: &str) -> usize {
    let needle = format!(" GET /{path} ");
    server
        .access_log()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// rebar3 resolves `{alpha, "1.0.0"}` with `HEX_CDN` at `server`'s mirror, keeping the
/// repository name `hexpm` and trusting only the upstream's key: the lock holds alpha's
/// closure (gamma at 1.1.0) with the upstream tarballs' SHA-256.
pub fn rebar3_resolves_alpha_through(server: &HexrepoServer, upstream: &Upstream) {
    let mirror_url = format!("{}/mirrors/hexpm", server.url());
    server.wait_for_stdout(&format!("HEX_CDN={mirror_url}"));
    let key = read_text(&upstream.public_key());
    let project = Rebar3Project::new("unused", &key, &[]);
    fs::write(
        project.dir().join("rebar.config"),
        format!(
            "{{deps, [{{alpha, \"1.0.0\"}}]}}.\n\
             {{hex, [{{repos, [#{{name => <<\"hexpm\">>,\n\
             \x20   repo_public_key => <<\"{}\">>}}]}}]}}.\n",
            key.replace('\\', "\\\\").replace('"', "\\\"")
        ),
    )
    .unwrap();
    let mut cmd = project.rebar3(&["get-deps"]);
    cmd.env("HEX_CDN", &mirror_url);
    let output = output_of(&mut cmd);
    assert!(
        output.status.success(),
        "rebar3 through the mirror: {}\n--- hexrepo log ---\n{}",
        describe(&cmd, &output),
        server.log()
    );
    let lock = project.lock();
    assert_eq!(
        lock.versions.keys().map(String::as_str).collect::<Vec<_>>(),
        ["alpha", "beta", "gamma"]
    );
    assert_eq!(lock.versions["gamma"], "1.1.0");
    for (name, version) in &lock.versions {
        let tarball = upstream
            .public()
            .join(format!("tarballs/{name}-{version}.tar"));
        assert_eq!(lock.pkg_hash_ext[name], sha256_upper(&tarball), "{name}");
    }
}
