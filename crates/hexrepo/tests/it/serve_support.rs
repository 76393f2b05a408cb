//! Plumbing for the `hexrepo serve` tests: the `hexrepo` binary in an isolated environment, a
//! running server (port parsed from its banner, stderr access log kept in a file, stopped with
//! SIGTERM and required to exit 0), a tiny HTTP/1.1 client, and the `Signed` envelope.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{all_output, describe, hexrepo_bin, temp_dir};

/// How long the server may take to print its banner.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variables `hexrepo` reads, removed so the test environment cannot leak in.
const GUIDE_ENV: &[&str] = &[
    "PORT",
    "PUBLIC_DIR",
    "AUTH_USERNAME",
    "AUTH_PASSWORD",
    // The access log is written at `info`; a RUST_LOG in the test environment could hide it.
    "RUST_LOG",
];

/// `hexrepo ARGS` run in `cwd`, with every variable hexrepo reads (`PORT`, `PUBLIC_DIR`,
/// `AUTH_*`, `HEXREPO_*`, `RUST_LOG`) removed from its environment.
pub fn hexrepo_in(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(hexrepo_bin());
    cmd.args(args).current_dir(cwd);
    for name in GUIDE_ENV {
        cmd.env_remove(name);
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HEXREPO_") {
            cmd.env_remove(&name);
        }
    }
    cmd
}

/// `hexrepo serve --port 0 --bind 127.0.0.1 ARGS` in `cwd` with the extra `env`, required to
/// stop at once (within 10 s) with a failure whose output holds each of `expected`.
pub fn assert_serve_refuses(cwd: &Path, args: &[&str], env: &[(&str, &str)], expected: &[&str]) {
    let mut cmd = hexrepo_in(cwd, &["serve", "--port", "0", "--bind", "127.0.0.1"]);
    cmd.args(args).envs(env.iter().copied());
    let output = output_within(&mut cmd, Duration::from_secs(10));
    let text = all_output(&output);
    assert!(
        !output.status.success() && expected.iter().all(|e| text.contains(e)),
        "{}",
        describe(&cmd, &output)
    );
}

/// Runs `cmd` with stdin closed, killing it and failing the test if it has not exited after
/// `timeout` (a command that should fail at startup must not end up serving forever).
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id().to_string();
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        let _ = send.send(child.wait_with_output());
    });
    if let Ok(output) = receive.recv_timeout(timeout) {
        return output.expect("wait for command");
    }
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    panic!("{cmd:?} still running after {timeout:?}; killed it");
}

/// A running `hexrepo serve --port 0 --bind 127.0.0.1`, stopped with SIGTERM on drop; unless the
/// test is already failing, drop also asserts that it exited with status 0 (graceful shutdown).
pub struct HexrepoServer {
    child: Option<Child>,
    port: u16,
    stdout: Arc<Mutex<String>>,
    stderr_path: PathBuf,
    _logs: tempfile::TempDir,
}

impl HexrepoServer {
    /// Starts `hexrepo serve --port 0 --bind 127.0.0.1 --public-dir PUBLIC --private-key KEY
    /// EXTRA...` in `cwd`, and waits (at most 10 s) for the banner line that gives the port.
    pub fn start(cwd: &Path, public: &Path, private_key: &Path, extra: &[&str]) -> HexrepoServer {
        HexrepoServer::start_with_env(cwd, public, private_key, extra, &[])
    }

    /// [`HexrepoServer::start`] with extra environment variables (`AWS_*` for S3 storage).
    pub fn start_with_env(
        cwd: &Path,
        public: &Path,
        private_key: &Path,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> HexrepoServer {
        let mut args = vec![
            "--public-dir".to_owned(),
            public.display().to_string(),
            "--private-key".to_owned(),
            private_key.display().to_string(),
        ];
        args.extend(extra.iter().map(|&a| a.to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        HexrepoServer::start_in(cwd, &args, env)
    }

    /// `hexrepo serve --port 0 --bind 127.0.0.1 ARGS` in `cwd` with the extra `env`: with no
    /// `ARGS`, the embedded default (`hexrepo-data/` in `cwd`, a generated key).
    pub fn start_in(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> HexrepoServer {
        let logs = temp_dir();
        let stderr_path = logs.path().join("stderr");
        let stderr = fs::File::create(&stderr_path).expect("create stderr file");
        let mut cmd = hexrepo_in(cwd, &["serve", "--port", "0", "--bind", "127.0.0.1"]);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (send, receive) = mpsc::channel();
        let reader = BufReader::new(child.stdout.take().expect("piped stdout"));
        let collected = Arc::clone(&stdout);
        thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                {
                    let mut text = collected.lock().expect("stdout lock");
                    text.push_str(&line);
                    text.push('\n');
                }
                if let Some(port) = banner_port(&line) {
                    let _ = send.send(port);
                }
            }
        });
        let mut server = HexrepoServer {
            child: Some(child),
            port: 0,
            stdout,
            stderr_path,
            _logs: logs,
        };
        if let Ok(port) = receive.recv_timeout(START_TIMEOUT) {
            server.port = port;
            return server;
        }
        let status = server.kill();
        panic!(
            "{cmd:?} printed no `hexrepo serving ... at http://HOST:PORT` line within \
             {START_TIMEOUT:?} (exit: {status:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            server.stdout(),
            server.log()
        );
    }

    /// The server's process id (the abuse suite reads its memory).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://USER:PASS@127.0.0.1:PORT` (basic auth in the URL, as rebar3 and mix take it).
    pub fn url_with_userinfo(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// Everything printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout lock").clone()
    }

    /// Waits (at most 10 s) until stdout contains `needle`, and returns all of it.
    pub fn wait_for_stdout(&self, needle: &str) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = self.stdout();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "stdout never contained {needle:?}:\n{text}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything written on stderr so far: diagnostics and one access-log line per request.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The stderr written after the first `from` bytes (see [`HexrepoServer::log`]).
    pub fn log_since(&self, from: usize) -> String {
        self.log().get(from..).unwrap_or_default().to_owned()
    }

    /// Sends SIGTERM and waits for the exit status (`None` if it had to be killed).
    fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// Stops the server with SIGTERM and asserts a graceful exit (status 0 within 10 s).
    pub fn shutdown(&mut self) {
        let status = self.stop();
        assert!(
            status.is_some_and(|s| s.success()),
            "hexrepo serve did not exit 0 after SIGTERM (status {status:?})\n--- stderr ---\n{}",
            self.log()
        );
    }
}

impl Drop for HexrepoServer {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        if thread::panicking() {
            let _ = self.stop();
        } else {
            self.shutdown();
        }
    }
}

/// The port in `hexrepo serving repository "NAME" from DIR at http://HOST:PORT`.
fn banner_port(line: &str) -> Option<u16> {
    if !line.starts_with("hexrepo serving repository ") {
        return None;
    }
    let (_, url) = line.rsplit_once(" at http://")?;
    url.rsplit_once(':')?.1.parse().ok()
}

/// An HTTP response read by [`http_get`].
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET PATH HTTP/1.1` to 127.0.0.1:`port` with `Connection: close` and the extra `headers`
/// (`Host: x` unless they give one), read to the end. Fails on anything that is not a complete response: no header block, a
/// chunked body, or a body shorter or longer than its `Content-Length`.
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str("Host: x\r\n");
    }
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).map_err(|why| {
        std::io::Error::other(format!(
            "GET {path}: {why}; response starts {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        ))
    })
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let response = HttpResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    if response
        .header("transfer-encoding")
        .is_some_and(|te| te.contains("chunked"))
    {
        return Err("chunked bodies are not supported".into());
    }
    if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().map_err(|_| "bad Content-Length")?;
        if length != response.body.len() {
            return Err(format!(
                "Content-Length {length} but {} body bytes",
                response.body.len()
            ));
        }
    }
    Ok(response)
}

/// The `Signed` envelope of every registry file (HEX-PROTOCOL.md §2.1).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Signed {
    /// The encoded `Names`, `Versions` or `Package`.
    #[prost(bytes = "vec", required, tag = "1")]
    pub payload: Vec<u8>,
    /// RSA signature of the payload.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signature: Option<Vec<u8>>,
}

/// `Names` (HEX-PROTOCOL.md §2.2), only the fields the tests read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Names {
    /// One entry per package.
    #[prost(message, repeated, tag = "1")]
    pub packages: Vec<NamesPackage>,
    /// The repository name.
    #[prost(string, required, tag = "2")]
    pub repository: String,
}

/// A package in `Names`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamesPackage {
    /// The package name.
    #[prost(string, required, tag = "1")]
    pub name: String,
}

/// Gunzips a whole gzip stream (header, deflate data and CRC/length trailer) and nothing more.
pub fn gunzip_complete(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = flate2::read::GzDecoder::new(bytes);
    let mut out = Vec::new();
    decoder
        .read_to_end(&mut out)
        .map_err(|e| format!("incomplete or corrupt gzip ({} bytes): {e}", bytes.len()))?;
    Ok(out)
}

/// Converts a PKCS#1 `RSA PUBLIC KEY` PEM file to SubjectPublicKeyInfo PEM, with openssl.
pub fn spki_pem(pkcs1_pem: &Path) -> Vec<u8> {
    let mut cmd = Command::new("openssl");
    cmd.args(["rsa", "-RSAPublicKey_in", "-pubout", "-in"])
        .arg(pkcs1_pem);
    let output = crate::support::output_of(&mut cmd);
    assert!(
        output.status.success() && output.stdout.starts_with(b"-----BEGIN PUBLIC KEY-----"),
        "openssl cannot convert the public key: {}",
        describe(&cmd, &output)
    );
    output.stdout
}

#[test]
fn response_and_gzip_checks_reject_truncation() {
    assert_eq!(
        banner_port("hexrepo serving repository \"a\" from /x y at http://127.0.0.1:4321"),
        Some(4321)
    );
    assert_eq!(banner_port("reads: open to anyone"), None);
    let ok = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nETag: \"e\"\r\n\r\nabc")
        .expect("complete response");
    assert_eq!((ok.status, ok.header("etag")), (200, Some("\"e\"")));
    assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabc").is_err());
    assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Le").is_err());

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&[7; 1000]).expect("gzip");
    let gz = gz.finish().expect("gzip");
    assert_eq!(gunzip_complete(&gz).expect("complete gzip"), [7; 1000]);
    assert!(
        gunzip_complete(&gz[..gz.len() - 4]).is_err(),
        "missing trailer"
    );
}
