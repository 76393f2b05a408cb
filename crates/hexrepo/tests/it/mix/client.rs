//! The real Hex client for mix: Debian's `elixir` with a Hex archive from
//! `HEXREPO_HEX_ARCHIVE` (default `../shared/clients/`), installed with `mix archive.install`
//! into a `MIX_HOME` inside the test's own temporary folder. Every run gets that folder's
//! `HOME`, `MIX_HOME` and `HEX_HOME`, stdin from `/dev/null` and a timeout, and nothing of the
//! caller's `HEX_*`/`MIX_*` environment. `HEX_MIRROR` and `HEX_API_URL` point at a closed
//! loopback port unless a test points them at hexrepo, so no run can reach hex.pm.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::serve_support::output_within;
use crate::support::{describe, require_programs, temp_dir, workspace_root};

/// The Hex archive most users run (built from hexpm/hex's main branch).
pub const CURRENT: &str = "hex-2.5.2-dev.ez";
/// Sends the user's hex.pm OAuth token to every repository added with `mix hex.repo add`.
pub const HEX_2_5_1: &str = "hex-2.5.1.ez";
/// Publishes through the pre-2.3 route `POST /api/publish`.
pub const HEX_2_2_2: &str = "hex-2.2.2.ez";

/// A closed port on loopback: what `HEX_MIRROR` and `HEX_API_URL` name unless a test sets them.
const NOWHERE: &str = "http://127.0.0.1:9";

/// How long one mix run may take (a cold `deps.get` + `compile` takes a few seconds).
const MIX_TIMEOUT: Duration = Duration::from_mins(3);

/// The folder holding the Hex archives: `HEXREPO_HEX_ARCHIVE` (a folder, or one of the archives
/// in it), else `../shared/clients` beside the workspace.
pub fn archive_dir() -> PathBuf {
    let path = std::env::var_os("HEXREPO_HEX_ARCHIVE")
        .map_or_else(|| workspace_root().join("../shared/clients"), PathBuf::from);
    if path.is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path
    }
}

/// One archive of [`archive_dir`]; fails the test (never skips it) when it is missing.
fn archive(file: &str) -> PathBuf {
    let path = archive_dir().join(file);
    assert!(
        path.is_file(),
        "the mix suite needs the Hex archive {} (set HEXREPO_HEX_ARCHIVE to the folder holding \
         hex-2.5.2-dev.ez, hex-2.5.1.ez and hex-2.2.2.ez); tools/test skips the suite with a \
         message when the folder is missing",
        path.display()
    );
    path
}

/// mix with one Hex archive installed in a home of its own.
pub struct Mix {
    home: tempfile::TempDir,
    /// Variables set for every run; `None` removes one of the defaults (`HEX_MIRROR`).
    env: Vec<(String, Option<String>)>,
}

impl Mix {
    /// mix with the current Hex archive.
    pub fn new() -> Mix {
        Mix::with_archive(CURRENT)
    }

    /// mix with the archive `file` of [`archive_dir`].
    pub fn with_archive(file: &str) -> Mix {
        require_programs(&["elixir", "mix", "erl"]);
        let archive = archive(file);
        let mix = Mix {
            home: temp_dir(),
            env: Vec::new(),
        };
        let home = mix.home.path().to_path_buf();
        let mut install = mix.command(&home, &["archive.install"]);
        install.arg(&archive).arg("--force");
        let output = output_within(&mut install, MIX_TIMEOUT);
        assert!(
            output.status.success(),
            "cannot install the Hex archive: {}",
            describe(&install, &output)
        );
        mix
    }

    /// The home of this mix (also `HOME`): where tests make their projects.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `HEX_HOME`, which holds `hex.config` (repositories, the OAuth token) and the cache.
    pub fn hex_home(&self) -> PathBuf {
        self.home.path().join("hex")
    }

    /// Sets `name=value` for every later run (`HEX_API_URL`, `HEX_API_KEY`, `HEX_MIRROR`, ...).
    pub fn set(&mut self, name: &str, value: &str) -> &mut Mix {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), Some(value.to_owned())));
        self
    }

    /// Leaves `name` out of every later run, a default such as `HEX_MIRROR` included (so that
    /// the URL `mix hex.repo set hexpm --url` stored is the one used).
    pub fn unset(&mut self, name: &str) -> &mut Mix {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), None));
        self
    }

    /// `mix ARGS` in `dir`, with this mix's environment and nothing of the caller's `HEX_*`.
    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("mix");
        cmd.args(args).current_dir(dir);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("HEX_") || name.starts_with("MIX_") || name == "NETRC" {
                cmd.env_remove(name);
            }
        }
        let home = self.home.path();
        cmd.env("HOME", home)
            .env("MIX_HOME", home.join("mix"))
            .env("HEX_HOME", self.hex_home())
            .env("HEX_MIRROR", NOWHERE)
            .env("HEX_API_URL", format!("{NOWHERE}/api"))
            .env("MIX_ENV", "dev")
            .env("ELIXIR_ERL_OPTIONS", "+fnu");
        for (name, value) in &self.env {
            match value {
                Some(value) => cmd.env(name, value),
                None => cmd.env_remove(name),
            };
        }
        cmd
    }

    /// Runs `mix ARGS` in `dir` (stdin from /dev/null, killed after 180 s), whatever its status.
    pub fn output(&self, dir: &Path, args: &[&str]) -> (Command, Output) {
        let mut cmd = self.command(dir, args);
        let output = output_within(&mut cmd, MIX_TIMEOUT);
        (cmd, output)
    }

    /// Runs `mix ARGS` in `dir`, asserts it exits 0, and returns stdout and stderr together.
    pub fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let (cmd, output) = self.output(dir, args);
        assert!(
            output.status.success(),
            "mix failed: {}",
            describe(&cmd, &output)
        );
        text(&output)
    }

    /// `mix hex.repo add NAME URL OPTIONS` (in this mix's home), asserting it succeeds.
    pub fn repo_add(&self, name: &str, url: &str, options: &[&str]) -> String {
        let mut args = vec!["hex.repo", "add", name, url];
        args.extend_from_slice(options);
        self.ok(self.home(), &args)
    }

    /// Runs `mix ARGS` in `dir`, asserts it exits non-zero, and returns both outputs.
    pub fn fails(&self, dir: &Path, args: &[&str]) -> String {
        let (cmd, output) = self.output(dir, args);
        assert!(
            !output.status.success(),
            "mix should have failed: {}",
            describe(&cmd, &output)
        );
        text(&output)
    }
}

/// stdout then stderr, as text.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
