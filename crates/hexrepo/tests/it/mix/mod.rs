//! The mix suite: every `mix` task a user runs, with the real Hex client (the archives of
//! `HEXREPO_HEX_ARCHIVE`, default `../shared/clients/`) against `hexrepo serve`. Packages are
//! made by mix itself (`mix new`, `mix hex.build`). `tools/test` runs these tests when the
//! archives are there and says in one line that it skipped them when they are not; `.ci/run`
//! requires them. A missing `elixir` or archive fails a test, never skips it.

mod access;
mod client;
mod mirror;
mod owners;
mod project;
mod publish;
mod registry_build;
mod workflow;

use std::path::Path;

use crate::serve_support::{HexrepoServer, hexrepo_in};
use crate::support::{run, stdout_text};

pub use client::Mix;
pub use project::{Dep, Project};

/// `hexrepo key create NAME FLAGS` in `cwd` (the server's folder and settings): the secret.
pub fn create_key(cwd: &Path, name: &str, flags: &[&str]) -> String {
    let mut cmd = hexrepo_in(cwd, &["key", "create", name]);
    cmd.args(flags);
    stdout_text(&run(&mut cmd)).trim().to_owned()
}

/// The fingerprint in the banner's `mix hex.repo add ... --fetch-public-key SHA256:...` line.
pub fn banner_fingerprint(server: &HexrepoServer) -> String {
    let banner = server.wait_for_stdout("--fetch-public-key ");
    banner
        .split_whitespace()
        .skip_while(|word| *word != "--fetch-public-key")
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in the banner:\n{banner}"))
        .to_owned()
}

/// Points `mix`'s API at `server` with `key`, as `HEX_API_URL` and `HEX_API_KEY`.
pub fn use_api(mix: &mut Mix, server: &HexrepoServer, key: &str) {
    mix.set("HEX_API_URL", &format!("{}/api", server.url()));
    mix.set("HEX_API_KEY", key);
}

/// `mix hex.publish package --yes ARGS` in the project (after `mix deps.get` when it has
/// dependencies, which `hex.publish` checks): the output, asserting success and mix's "Package
/// published to" line.
pub fn publish_package(mix: &Mix, project: &Project, args: &[&str]) -> String {
    if project.has_deps() {
        mix.ok(project.dir(), &["deps.get"]);
    }
    let mut all = vec!["hex.publish", "package", "--yes"];
    all.extend_from_slice(args);
    let output = mix.ok(project.dir(), &all);
    assert!(output.contains("Package published to"), "{output}");
    output
}
