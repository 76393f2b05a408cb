//! Shared test plumbing: locating tools and fixtures, running commands with readable failures,
//! copying directories, hashing files, and a static nginx server (`tools/serve-static`) guard.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How to get the real clients these tests use as their oracle.
const INSTALL_HINT: &str = "apt-get install -y erlang rebar3 nginx-light";

/// The workspace root (`crates/hexrepo/../..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A script in the workspace's `tools/` directory.
pub fn tool(name: &str) -> PathBuf {
    workspace_root().join("tools").join(name)
}

/// `testdata/mix-reference`: a repository written by `mix hex.registry build`.
pub fn mix_reference() -> PathBuf {
    workspace_root().join("testdata/mix-reference")
}

/// The `hexrepo` binary built for this test run.
pub fn hexrepo_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hexrepo"))
}

/// Fails the test (never skips it) when one of `programs` is not installed.
pub fn require_programs(programs: &[&str]) {
    for program in programs {
        assert!(
            find_program(program).is_some(),
            "`{program}` not found on PATH (or /usr/sbin): these tests use real Hex clients as \
             their oracle; install them with: {INSTALL_HINT}"
        );
    }
}

/// Programs needed by tests that only call `tools/hex-core`.
pub fn require_hex_core() {
    require_programs(&["erl", "rebar3", "unzip"]);
}

/// Programs needed by tests that serve a repository to rebar3.
pub fn require_rebar3_and_nginx() {
    require_programs(&["erl", "rebar3", "unzip", "nginx", "gzip", "sha256sum"]);
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hexrepo-it-")
        .tempdir()
        .expect("create temp dir")
}

/// Runs `cmd` and returns its output; panics with the command line, status, stdout and stderr
/// unless it exits 0.
pub fn run(cmd: &mut Command) -> Output {
    let output = output_of(cmd);
    assert!(
        output.status.success(),
        "command failed: {}",
        describe(cmd, &output)
    );
    output
}

/// Runs `cmd` and returns its output; panics with the full output if it exits 0.
pub fn run_expecting_failure(cmd: &mut Command) -> Output {
    let output = output_of(cmd);
    assert!(
        !output.status.success(),
        "command succeeded but should have failed: {}",
        describe(cmd, &output)
    );
    output
}

/// Runs `cmd`, whatever its exit status.
pub fn output_of(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// The command line, exit status and both output streams, for failure messages.
pub fn describe(cmd: &Command, output: &Output) -> String {
    let mut text = format!("{cmd:?}\nstatus: {}\n", output.status);
    for (label, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let _ = write!(
            text,
            "--- {label} ---\n{}\n",
            String::from_utf8_lossy(bytes)
        );
    }
    text
}

/// Standard output as UTF-8 text.
pub fn stdout_text(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// Both output streams, concatenated, for matching error messages.
pub fn all_output(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Recursively copies the directory `from` into `to` (created if missing).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// Sorted paths of the files in `dir` whose names end with `suffix`.
pub fn files_ending_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|name| name.ends_with(suffix))
        })
        .collect();
    files.sort();
    files
}

/// The file name of `path` as a `&str`.
pub fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(OsStr::to_str)
        .expect("UTF-8 file name")
}

/// Upper-case hex SHA-256 of a file, computed by coreutils' `sha256sum` (independent of our code).
pub fn sha256_upper(path: &Path) -> String {
    let output = run(Command::new("sha256sum").arg(path));
    let text = stdout_text(&output);
    let digest = text.split_whitespace().next().expect("sha256sum output");
    assert_eq!(digest.len(), 64, "unexpected sha256sum output: {text}");
    digest.to_ascii_uppercase()
}

/// Reads a file to a string, with the path in the panic message.
pub fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A running `tools/serve-static` (nginx) serving one directory; stopped with SIGTERM on drop.
pub struct StaticServer {
    child: Child,
    port: u16,
    access_log: PathBuf,
    state: tempfile::TempDir,
}

impl StaticServer {
    /// Serves `dir` on 127.0.0.1 and waits until nginx listens.
    pub fn start(dir: &Path) -> StaticServer {
        require_programs(&["nginx"]);
        let state = temp_dir();
        let port_file = state.path().join("port");
        let access_log = state.path().join("access.log");
        let stderr = fs::File::create(state.path().join("stderr")).expect("stderr file");
        let child = Command::new(tool("serve-static"))
            .arg(dir)
            .arg(&port_file)
            .arg(&access_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start tools/serve-static");
        let mut server = StaticServer {
            child,
            port: 0,
            access_log,
            state,
        };
        server.port = server.wait_for_port(&port_file);
        server
    }

    fn wait_for_port(&mut self, port_file: &Path) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(text) = fs::read_to_string(port_file) {
                return text.trim().parse().expect("port number in port file");
            }
            if let Some(status) = self.child.try_wait().expect("poll serve-static") {
                panic!("serve-static exited with {status}: {}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "serve-static did not start in 15 s: {}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.state.path().join("stderr")).unwrap_or_default()
    }

    /// The listening port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base URL, without a trailing slash (`hex_core` joins paths with `/`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// nginx's access log so far: one `STATUS METHOD URI etag=... if_none_match=...` per line.
    pub fn access_log(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
