//! The real clients used as oracle: `tools/hex-core` (the `hex_core` that rebar3 bundles) and
//! throw-away rebar3 projects with their own HOME, cache and global config.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{output_of, read_text, run, stdout_text, temp_dir, tool, workspace_root};

/// `tools/hex-core verify-registry`: the decoded payloads, or the failed command's output.
pub fn verify_registry(public_dir: &Path, repo: &str, public_key: &Path) -> Output {
    output_of(
        Command::new(tool("hex-core"))
            .arg("verify-registry")
            .arg(public_dir)
            .arg(repo)
            .arg(public_key),
    )
}

/// `testdata/mix-reference/decoded.txt` without its `%%` header, trimmed.
pub fn mix_decoded_payloads() -> String {
    let path = workspace_root().join("testdata/mix-reference/decoded.txt");
    let text = read_text(&path);
    let body: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("%%"))
        .collect();
    body.join("\n").trim().to_owned()
}

/// What `tools/hex-core unpack` reports about a tarball (checksums in lower-case hex).
#[derive(Debug)]
pub struct Unpacked {
    pub name: String,
    pub version: String,
    pub inner_checksum: String,
    pub outer_checksum: String,
    /// The whole JSON line, for assertions on requirements and contents.
    pub json: String,
}

/// `tools/hex-core unpack TARBALL...` (one Erlang start for all); panics if `hex_core` rejects
/// any of them.
pub fn unpack_all(tarballs: &[PathBuf]) -> Vec<Unpacked> {
    let output = run(Command::new(tool("hex-core")).arg("unpack").args(tarballs));
    let text = stdout_text(&output);
    let unpacked: Vec<Unpacked> = text.lines().map(parse_unpacked).collect();
    assert_eq!(
        unpacked.len(),
        tarballs.len(),
        "one JSON line per tarball:\n{text}"
    );
    unpacked
}

fn parse_unpacked(json: &str) -> Unpacked {
    Unpacked {
        name: json_string(json, "name"),
        version: json_string(json, "version"),
        inner_checksum: json_string(json, "inner_checksum"),
        outer_checksum: json_string(json, "outer_checksum"),
        json: json.to_owned(),
    }
}

/// A top-level string field of hex-core's JSON (its values here never contain escapes).
fn json_string(json: &str, key: &str) -> String {
    let marker = format!("\"{key}\":\"");
    let start = json
        .find(&marker)
        .unwrap_or_else(|| panic!("no string field {key} in {json}"))
        + marker.len();
    let len = json[start..].find('"').expect("closing quote");
    json[start..start + len].to_owned()
}

/// `tools/hex-core create`: a compilable rebar3 package `NAME-VERSION.tar` in `dir`.
/// `deps` are `NAME:REQUIREMENT` strings.
pub fn create_package(dir: &Path, name: &str, version: &str, deps: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}-{version}.tar"));
    run(Command::new(tool("hex-core"))
        .arg("create")
        .arg(&out)
        .args([name, version])
        .args(deps));
    out
}

/// A rebar3 project that depends on packages from one repository named `acme`, with an isolated
/// HOME, `REBAR_CACHE_DIR` and `REBAR_GLOBAL_CONFIG_DIR` so runs never share state.
pub struct Rebar3Project {
    root: tempfile::TempDir,
}

impl Rebar3Project {
    /// Writes `rebar.config` (deps as `{NAME, "REQUIREMENT"}`, `{repos, replace, [acme]}`) and a
    /// minimal `src/it_app.app.src`.
    pub fn new(repo_url: &str, public_key_pem: &str, deps: &[(&str, &str)]) -> Rebar3Project {
        Rebar3Project::with_repo_key(repo_url, public_key_pem, deps, None)
    }

    /// Like [`Rebar3Project::new`], with `repo_key => <<"KEY">>` in the repository's map when
    /// `repo_key` is given (rebar3 then sends `Authorization: KEY`, HEX-PROTOCOL.md §1.7).
    pub fn with_repo_key(
        repo_url: &str,
        public_key_pem: &str,
        deps: &[(&str, &str)],
        repo_key: Option<&str>,
    ) -> Rebar3Project {
        let root = temp_dir();
        let project = root.path().join("project");
        fs::create_dir_all(project.join("src")).expect("mkdir project/src");
        let deps: Vec<String> = deps
            .iter()
            .map(|(name, req)| format!("{{{name}, \"{req}\"}}"))
            .collect();
        let config = format!(
            "{{deps, [{deps}]}}.\n\
             {{hex, [{{repos, replace, [#{{name => <<\"acme\">>,\n\
             \x20   repo_url => <<\"{repo_url}\">>,\n\
             \x20   repo_public_key => <<\"{key}\">>{repo_key}}}]}}]}}.\n",
            deps = deps.join(", "),
            key = erlang_string_escape(public_key_pem),
            repo_key = repo_key.map_or_else(String::new, |k| format!(
                ",\n    repo_key => <<\"{}\">>",
                erlang_string_escape(k)
            )),
        );
        fs::write(project.join("rebar.config"), config).expect("write rebar.config");
        fs::write(
            project.join("src/it_app.app.src"),
            "{application, it_app, [{description, \"it\"}, {vsn, \"0.1.0\"},\n\
             \x20 {applications, [kernel, stdlib]}]}.\n",
        )
        .expect("write app.src");
        Rebar3Project { root }
    }

    /// The project directory.
    pub fn dir(&self) -> PathBuf {
        self.root.path().join("project")
    }

    /// A `rebar3 ARGS` command in the project, with a clean, isolated environment.
    pub fn rebar3(&self, args: &[&str]) -> Command {
        let home = self.root.path().join("home");
        let mut cmd = Command::new("rebar3");
        cmd.args(args)
            .current_dir(self.dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("REBAR_CACHE_DIR", home.join("cache"))
            .env("REBAR_GLOBAL_CONFIG_DIR", home.join("config"))
            .env("REBAR_COLOR", "none")
            .env("LANG", "C.UTF-8");
        cmd
    }

    /// `rebar3 get-deps`, whatever its exit status.
    pub fn get_deps(&self) -> (Command, Output) {
        let mut cmd = self.rebar3(&["get-deps"]);
        let output = output_of(&mut cmd);
        (cmd, output)
    }

    /// The parsed `rebar.lock`.
    pub fn lock(&self) -> Lock {
        Lock::parse(&read_text(&self.dir().join("rebar.lock")))
    }

    /// Where rebar3 unpacks (and builds) dependency `name`.
    pub fn lib_dir(&self, name: &str) -> PathBuf {
        self.dir().join("_build/default/lib").join(name)
    }
}

fn erlang_string_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The parts of a rebar3 `rebar.lock` the tests check.
#[derive(Debug, Default)]
pub struct Lock {
    /// Locked package name → version.
    pub versions: BTreeMap<String, String>,
    /// `pkg_hash`: package name → upper-case hex inner checksum.
    pub pkg_hash: BTreeMap<String, String>,
    /// `pkg_hash_ext`: package name → upper-case hex outer checksum (SHA-256 of the tarball).
    pub pkg_hash_ext: BTreeMap<String, String>,
}

impl Lock {
    /// Parses the `{"1.2.0", [...]}. [{pkg_hash, [...]}, {pkg_hash_ext, [...]}].` format.
    pub fn parse(text: &str) -> Lock {
        let mut lock = Lock::default();
        for entry in text.split("{pkg,").skip(1) {
            if let [name, version, ..] = binaries(entry).as_slice() {
                lock.versions.insert(name.clone(), version.clone());
            }
        }
        lock.pkg_hash = hash_section(text, "{pkg_hash,[");
        lock.pkg_hash_ext = hash_section(text, "{pkg_hash_ext,[");
        lock
    }
}

fn hash_section(text: &str, marker: &str) -> BTreeMap<String, String> {
    let Some(start) = text.find(marker) else {
        return BTreeMap::new();
    };
    let section = &text[start + marker.len()..];
    let section = &section[..section.find("]}").unwrap_or(section.len())];
    binaries(section)
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

/// The contents of every `<<"...">>` in `text`, in order.
fn binaries(text: &str) -> Vec<String> {
    text.split("<<\"")
        .skip(1)
        .filter_map(|rest| rest.split_once("\">>").map(|(value, _)| value.to_owned()))
        .collect()
}

#[test]
fn lock_parser_reads_rebar3_format() {
    let lock = Lock::parse(
        "{\"1.2.0\",\n[{<<\"foo\">>,{pkg,<<\"foo\">>,<<\"0.1.0\">>},0}]}.\n[\n\
         {pkg_hash,[\n {<<\"foo\">>, <<\"EFCE\">>}]},\n\
         {pkg_hash_ext,[\n {<<\"foo\">>, <<\"1CE7\">>}]}\n].\n",
    );
    assert_eq!(lock.versions["foo"], "0.1.0");
    assert_eq!(lock.pkg_hash["foo"], "EFCE");
    assert_eq!(lock.pkg_hash_ext["foo"], "1CE7");
}
