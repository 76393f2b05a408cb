//! `hexrepo serve` end to end: rebar3 fetching through it (open, behind basic auth, with a
//! repository key), a fresh repository created on first run, reads racing `hexrepo build`, and
//! the CLI's settings, config and key commands. The server is the real binary on an ephemeral
//! port; every test stops it with SIGTERM and requires a graceful exit 0.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use prost::Message as _;

use crate::clients::{self, Rebar3Project};
use crate::interop::{
    FIXTURE_DEPS, FIXTURE_LOCKED, REPO, assert_hex_core_accepts, assert_rebar3_fetches_from,
    fixture_locked,
};
use crate::serve_support::{
    HexrepoServer, HttpResponse, Names, Signed, gunzip_complete, hexrepo_in, http_get,
    output_within, spki_pem,
};
use crate::support::{
    all_output, copy_dir, describe, mix_reference, read_text, require_programs, run,
    run_expecting_failure, stdout_text, temp_dir,
};

/// Programs the rebar3 tests need (no nginx: hexrepo is the server).
fn require_rebar3() {
    require_programs(&["erl", "rebar3", "unzip", "sha256sum"]);
}

/// `TMP/public` with the fixture's tarballs and a registry written by `hexrepo build --name acme`
/// with the fixture's key.
fn built_fixture() -> tempfile::TempDir {
    let tmp = temp_dir();
    let public = tmp.path().join("public");
    copy_dir(
        &mix_reference().join("public/tarballs"),
        &public.join("tarballs"),
    );
    build(tmp.path(), &public);
    tmp
}

/// `hexrepo build PUBLIC --name acme --private-key FIXTURE_KEY`, run in `cwd`.
fn build(cwd: &Path, public: &Path) {
    let mut cmd = hexrepo_in(cwd, &["build"]);
    cmd.arg(public)
        .args(["--name", REPO, "--private-key"])
        .arg(mix_reference().join("test_private_key.pem"));
    run(&mut cmd);
}

/// Serves the repository in `TMP/public`; `--private-key` points to a file that must never be
/// needed (the registry exists).
fn serve_fixture(tmp: &tempfile::TempDir, extra: &[&str]) -> HexrepoServer {
    HexrepoServer::start(
        tmp.path(),
        &tmp.path().join("public"),
        &tmp.path().join("unused_private_key.pem"),
        extra,
    )
}

/// A rebar3 project for `pkg_00002` 0.2.0 (which pulls in `pkg_00001`) from `url`.
fn small_project(url: &str, public: &Path, repo_key: Option<&str>) -> Rebar3Project {
    Rebar3Project::with_repo_key(
        url,
        &read_text(&public.join("public_key")),
        &[("pkg_00002", "0.2.0")],
        repo_key,
    )
}

/// `rebar3 get-deps` succeeds and locks `pkg_00002` and `pkg_00001`.
fn assert_rebar3_gets_small(project: &Rebar3Project, server: &HexrepoServer) {
    let (cmd, output) = project.get_deps();
    assert!(
        output.status.success(),
        "rebar3 get-deps failed: {}--- hexrepo serve log ---\n{}",
        describe(&cmd, &output),
        server.log()
    );
    let lock = project.lock();
    assert_eq!(
        lock.versions.keys().collect::<Vec<_>>(),
        ["pkg_00001", "pkg_00002"]
    );
    assert!(
        project
            .lib_dir("pkg_00002")
            .join("hex_metadata.config")
            .is_file()
    );
}

/// `rebar3 get-deps` fails and unpacks nothing; returns the server log of the attempt.
fn assert_rebar3_refused(project: &Rebar3Project, server: &HexrepoServer, what: &str) -> String {
    let mark = server.log().len();
    let (cmd, output) = project.get_deps();
    let log = server.log_since(mark);
    assert!(
        !output.status.success(),
        "rebar3 fetched {what}: {}--- hexrepo serve log ---\n{log}",
        describe(&cmd, &output)
    );
    for dep in ["pkg_00001", "pkg_00002"] {
        assert!(
            !project.lib_dir(dep).exists(),
            "{dep} unpacked {what}: {}",
            describe(&cmd, &output)
        );
    }
    assert!(
        !log.contains("status=200"),
        "a request succeeded {what}:\n{log}"
    );
    log
}

#[test]
fn rebar3_fetches_through_hexrepo_serve() {
    require_rebar3();
    let tmp = built_fixture();
    let public = tmp.path().join("public");
    let server = serve_fixture(&tmp, &[]);
    server.wait_for_stdout("reads: open to anyone");
    let lock = assert_rebar3_fetches_from(&server.url(), &public, FIXTURE_DEPS, || {
        format!("--- hexrepo serve log ---\n{}", server.log())
    });
    assert_eq!(lock.versions, fixture_locked());
    let log = server.log();
    for (name, version) in FIXTURE_LOCKED {
        let line = format!("path=/tarballs/{name}-{version}.tar status=200");
        assert!(log.contains(&line), "no `{line}` in the access log:\n{log}");
    }
    assert!(
        !tmp.path().join("unused_private_key.pem").exists(),
        "serve created a key for a repository that already has a registry"
    );
}

#[test]
fn rebar3_with_basic_auth_in_the_url() {
    require_rebar3();
    let tmp = built_fixture();
    let public = tmp.path().join("public");
    let server = serve_fixture(
        &tmp,
        &["--auth-username", "team", "--auth-password", "s3cret"],
    );
    server.wait_for_stdout("reads: basic auth or a repository key");

    let with_credentials =
        small_project(&server.url_with_userinfo("team", "s3cret"), &public, None);
    assert_rebar3_gets_small(&with_credentials, &server);

    let anonymous = small_project(&server.url(), &public, None);
    let log = assert_rebar3_refused(&anonymous, &server, "without credentials");
    assert!(
        log.contains("status=401"),
        "no 401 for the anonymous attempt:\n{log}"
    );

    let wrong = small_project(&server.url_with_userinfo("team", "wr0ng"), &public, None);
    let log = assert_rebar3_refused(&wrong, &server, "with a wrong password");
    assert!(
        log.contains("status=403") && !log.contains("status=401"),
        "a wrong password must get 403 (not 401):\n{log}"
    );

    let log = server.log();
    // base64("team:s3cret") and base64("team:wr0ng").
    for secret in ["s3cret", "dGVhbTpzM2NyZXQ=", "wr0ng", "dGVhbTp3cjBuZw=="] {
        assert!(
            !log.contains(secret),
            "the server log contains {secret:?}:\n{log}"
        );
    }
}

#[test]
fn rebar3_with_a_repository_key() {
    require_rebar3();
    let tmp = built_fixture();
    let public = tmp.path().join("public");
    let server = serve_fixture(&tmp, &[]);
    let open = get(&server, "/names", &[]);
    assert_eq!(open.status, 200, "no key yet: reads are open");

    let mut create = hexrepo_in(tmp.path(), &["key", "create", "ci", "--read-only"]);
    create.arg("--public-dir").arg(&public);
    let secret = stdout_text(&run(&mut create)).trim().to_owned();
    assert!(
        secret.len() >= 32 && secret.chars().all(|c| c.is_ascii_alphanumeric()),
        "unexpected secret {secret:?}"
    );

    let with_key = small_project(&server.url(), &public, Some(&secret));
    assert_rebar3_gets_small(&with_key, &server);

    let anonymous = small_project(&server.url(), &public, None);
    let log = assert_rebar3_refused(&anonymous, &server, "without the key once a key exists");
    assert!(log.contains("status=401"), "no 401 without a key:\n{log}");
    assert_eq!(
        get(
            &server,
            "/.hexrepo/keys.json",
            &[("Authorization", &secret)]
        )
        .status,
        404,
        "the key store must never be served"
    );

    let mut revoke = hexrepo_in(tmp.path(), &["key", "revoke", "ci"]);
    revoke.arg("--public-dir").arg(&public);
    run(&mut revoke);
    let revoked = small_project(&server.url(), &public, Some(&secret));
    let log = assert_rebar3_refused(&revoked, &server, "with a revoked key");
    assert!(
        log.contains("status=403"),
        "no 403 for the revoked key:\n{log}"
    );

    let log = server.log();
    assert!(
        !log.contains(&secret),
        "the server log contains the key:\n{log}"
    );
    let stored = read_text(&public.join(".hexrepo/keys.json"));
    assert!(!stored.contains(&secret), "keys.json stores the secret");
}

#[test]
fn fresh_serve_creates_a_working_repository() {
    require_programs(&["erl", "rebar3", "unzip", "openssl", "ssh-keygen"]);
    let tmp = temp_dir();
    let public = tmp.path().join("data/public");
    let key = tmp.path().join("secrets/private_key.pem");
    let server = HexrepoServer::start(tmp.path(), &public, &key, &["--name", "acme2"]);

    let mode = fs::metadata(&key)
        .expect("private key created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "private key mode {mode:o}");
    assert!(
        read_text(&key).starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8 PEM"
    );

    // Download the served registry and let hex_core judge what went over the wire.
    let fetched = tmp.path().join("fetched");
    fs::create_dir_all(&fetched).expect("mkdir fetched");
    for file in ["names", "versions", "public_key"] {
        let response = get(&server, &format!("/{file}"), &[]);
        assert_eq!(response.status, 200, "GET /{file}");
        assert_eq!(
            response.body,
            fs::read(public.join(file)).expect("read registry file"),
            "/{file} is served as stored"
        );
        fs::write(fetched.join(file), &response.body).expect("write fetched file");
    }
    let output = clients::verify_registry(&fetched, "acme2", &fetched.join("public_key"));
    assert!(
        output.status.success(),
        "hex_core rejects the served registry: {}",
        all_output(&output)
    );
    let decoded = stdout_text(&output);
    assert!(
        decoded.contains("names =\n[].") && decoded.contains("versions =\n[]."),
        "not an empty registry:\n{decoded}"
    );

    let banner = server.wait_for_stdout("}]}]}.");
    let url = server.url();
    let fingerprint = ssh_fingerprint(&public.join("public_key"), tmp.path());
    let mix = format!("mix hex.repo add acme2 {url} --fetch-public-key {fingerprint}\n");
    assert!(banner.contains(&mix), "no `{mix}` in the banner:\n{banner}");
    let rebar3 = format!(
        "{{hex, [{{repos, [#{{name => <<\"acme2\">>,\n                  \
         repo_url => <<\"{url}\">>,\n                  \
         repo_public_key => <<\"{}\">>}}]}}]}}.",
        read_text(&public.join("public_key")).trim_end()
    );
    assert!(
        banner.contains(&rebar3),
        "no rebar3 block\n{rebar3}\nin the banner:\n{banner}"
    );
}

/// `SHA256:...` of a PKCS#1 PEM public key, as `ssh-keygen -lf` prints it.
fn ssh_fingerprint(pkcs1: &Path, scratch: &Path) -> String {
    let spki = scratch.join("spki.pem");
    fs::write(&spki, spki_pem(pkcs1)).expect("write spki.pem");
    let ssh = run(Command::new("ssh-keygen")
        .args(["-i", "-m", "PKCS8", "-f"])
        .arg(&spki));
    let ssh_pub = scratch.join("ssh.pub");
    fs::write(&ssh_pub, &ssh.stdout).expect("write ssh.pub");
    let listed = stdout_text(&run(Command::new("ssh-keygen").arg("-lf").arg(&ssh_pub)));
    let fingerprint = listed
        .split_whitespace()
        .find(|word| word.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in {listed:?}"));
    fingerprint.to_owned()
}

/// `GET path` on the server, failing the test on a transport error.
fn get(server: &HexrepoServer, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_get(server.port(), path, headers).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The package that disappears and comes back while the reader runs.
const TOGGLED_PACKAGE: &str = "acme_web";

/// Tarballs moved out of and back into `tarballs/` on alternate builds: the only release of
/// `acme_web` (its package file is removed) and one release of `pkg_00003` (rewritten).
const TOGGLED_TARBALLS: &[&str] = &["acme_web-0.1.0.tar", "pkg_00003-0.2.0.tar"];

/// What the reader thread saw.
#[derive(Debug, Default)]
struct ReadStats {
    fetches: usize,
    verified_by_hexpm: usize,
    rounds_with_toggled: usize,
    rounds_without_toggled: usize,
    failures: Vec<String>,
}

/// Fetches `/names`, `/versions` and every listed `/packages/NAME` in rounds until `stop`.
fn read_registry_until(port: u16, stop: &AtomicBool, spki: &[u8]) -> ReadStats {
    let mut stats = ReadStats::default();
    while !stop.load(Ordering::Relaxed) {
        let Some((_, names)) = fetch_signed(port, "/names", &mut stats) else {
            continue;
        };
        let names = match Names::decode(names.as_slice()) {
            Ok(names) => names,
            Err(e) => {
                stats
                    .failures
                    .push(format!("/names: bad Names payload: {e}"));
                continue;
            }
        };
        if names.packages.iter().any(|p| p.name == TOGGLED_PACKAGE) {
            stats.rounds_with_toggled += 1;
        } else {
            stats.rounds_without_toggled += 1;
        }
        if let Some((raw, _)) = fetch_signed(port, "/versions", &mut stats) {
            check_with_hexpm("/versions", &raw, spki, &mut stats);
        }
        for package in &names.packages {
            let path = format!("/packages/{}", package.name);
            if let Some((raw, _)) = fetch_signed(port, &path, &mut stats)
                && stats.fetches % 4 == 0
            {
                check_with_hexpm(&path, &raw, spki, &mut stats);
            }
        }
    }
    stats
}

/// GETs a registry file: it must be a 200 whose body is a complete gzip stream of a `Signed`
/// message with a signature (or a 404 for the toggled package). Returns the decompressed
/// `Signed` message and its payload, or records the failure.
fn fetch_signed(port: u16, path: &str, stats: &mut ReadStats) -> Option<(Vec<u8>, Vec<u8>)> {
    stats.fetches += 1;
    let result = http_get(port, path, &[])
        .map_err(|e| e.to_string())
        .and_then(|response| match response.status {
            200 => {
                let raw = gunzip_complete(&response.body)?;
                let signed =
                    Signed::decode(raw.as_slice()).map_err(|e| format!("not Signed: {e}"))?;
                match signed.signature {
                    Some(signature) if !signature.is_empty() => Ok(Some((raw, signed.payload))),
                    _ => Err("Signed message without a signature".to_owned()),
                }
            }
            404 if path == format!("/packages/{TOGGLED_PACKAGE}") => Ok(None),
            code => Err(format!("status {code}")),
        });
    match result {
        Ok(raw) => raw,
        Err(why) => {
            stats.failures.push(format!("{path}: {why}"));
            None
        }
    }
}

/// Verifies a decompressed `Signed` body with the `hexpm` crate (the Gleam compiler's client).
fn check_with_hexpm(path: &str, raw: &Vec<u8>, spki: &[u8], stats: &mut ReadStats) {
    let verified = if path == "/versions" {
        hexpm::repository_v2_get_versions_body(raw, spki).map(|_| ())
    } else {
        hexpm::repository_v2_package_parse_body(raw, spki).map(|_| ())
    };
    match verified {
        Ok(()) => stats.verified_by_hexpm += 1,
        Err(e) => stats
            .failures
            .push(format!("{path}: hexpm rejects it: {e}")),
    }
}

/// Moves `TOGGLED_TARBALLS` between `tarballs/` and `aside/`.
fn toggle_tarballs(public: &Path, aside: &Path, remove: bool) {
    for name in TOGGLED_TARBALLS {
        let (from, to) = if remove {
            (public.join("tarballs").join(name), aside.join(name))
        } else {
            (aside.join(name), public.join("tarballs").join(name))
        };
        fs::rename(&from, &to).unwrap_or_else(|e| panic!("move {}: {e}", from.display()));
    }
}

#[test]
fn serving_while_build_rewrites_the_folder() {
    require_programs(&["erl", "rebar3", "unzip", "openssl"]);
    let tmp = built_fixture();
    let public = tmp.path().join("public");
    let aside = tmp.path().join("aside");
    fs::create_dir_all(&aside).expect("mkdir aside");
    let spki = spki_pem(&public.join("public_key"));
    let server = serve_fixture(&tmp, &[]);

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, port) = (Arc::clone(&stop), server.port());
        thread::spawn(move || read_registry_until(port, &stop, &spki))
    };
    for i in 0..30 {
        toggle_tarballs(&public, &aside, i % 2 == 0);
        build(tmp.path(), &public);
    }
    // The last build (odd index) put the tarballs back; let the reader see the final state.
    thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let stats = reader.join().expect("reader thread");

    assert!(
        stats.failures.is_empty(),
        "{} failed reads during rebuilds (of {}), first ones:\n{}",
        stats.failures.len(),
        stats.fetches,
        stats.failures[..stats.failures.len().min(10)].join("\n")
    );
    assert!(
        stats.fetches >= 200 && stats.verified_by_hexpm >= 20,
        "too few reads to mean anything: {stats:?}"
    );
    assert!(
        stats.rounds_with_toggled > 0 && stats.rounds_without_toggled > 0,
        "the reader never saw both registry states, so it did not overlap the rebuilds: {stats:?}"
    );
    assert_hex_core_accepts(&public);
    let names = get(&server, "/names", &[]);
    assert_eq!(
        names.body,
        fs::read(public.join("names")).expect("read names"),
        "the final names is served"
    );
}

#[test]
fn cli_reports_bad_configuration_clearly() {
    let tmp = temp_dir();
    let public = tmp.path().join("public");
    let key = tmp.path().join("private_key.pem");
    let timeout = Duration::from_secs(10);
    let serve = |extra: &[&str]| {
        let mut cmd = hexrepo_in(tmp.path(), &["serve", "--bind", "127.0.0.1"]);
        cmd.arg("--public-dir")
            .arg(&public)
            .arg("--private-key")
            .arg(&key)
            .args(extra);
        cmd
    };

    let mut no_password = serve(&["--port", "0", "--auth-username", "x"]);
    let output = output_within(&mut no_password, timeout);
    assert!(
        !output.status.success() && all_output(&output).contains("AUTH_PASSWORD"),
        "a user name without a password must be refused naming AUTH_PASSWORD: {}",
        describe(&no_password, &output)
    );

    let mut bad_port = serve(&[]);
    bad_port.env("PORT", "notaport");
    let output = output_within(&mut bad_port, timeout);
    let text = all_output(&output);
    assert!(
        !output.status.success() && text.contains("PORT") && text.contains("notaport"),
        "PORT=notaport must be refused naming PORT: {}",
        describe(&bad_port, &output)
    );
    assert!(
        !key.exists() && !public.exists(),
        "a refused configuration created files"
    );

    fs::write(
        tmp.path().join("hexrepo.toml"),
        "port = 9002\npublic_dir = \"/srv/x\"\nauth_username = \"team\"\n\
         auth_password = \"file-secret\"\n",
    )
    .expect("write hexrepo.toml");
    let mut show = hexrepo_in(tmp.path(), &["config", "show", "--public-dir", "/y"]);
    show.env("PORT", "9001").env("AUTH_PASSWORD", "env-secret");
    let output = run(&mut show);
    let text = stdout_text(&output);
    for line in [
        "# config file: hexrepo.toml",
        "port = 9001  # environment PORT",
        "public_dir = \"/y\"  # command line",
        "auth_username = Some(\"team\")  # config file hexrepo.toml",
        "auth_password = Some(\"<redacted>\")  # environment AUTH_PASSWORD",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line `{line}` in config show:\n{text}"
        );
    }
    let everything = all_output(&output);
    assert!(
        !everything.contains("env-secret") && !everything.contains("file-secret"),
        "config show prints a password:\n{everything}"
    );

    // Storage and the `[s3]` table; an `AWS_*` variable wins over the table.
    fs::write(
        tmp.path().join("hexrepo.toml"),
        "storage = \"s3://bucket/acme\"\n[s3]\nendpoint = \"http://127.0.0.1:9\"\n\
         region = \"file-region\"\nsecret_access_key = \"s3-file-secret\"\n",
    )
    .expect("write hexrepo.toml");
    let mut show = hexrepo_in(tmp.path(), &["config", "show"]);
    show.env("AWS_REGION", "env-region");
    let output = run(&mut show);
    let text = stdout_text(&output);
    for line in [
        "storage = \"s3://bucket/acme\"  # config file hexrepo.toml",
        "s3.Endpoint = \"http://127.0.0.1:9\"  # config file",
        "s3.SecretAccessKey = \"<redacted>\"  # config file",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line `{line}` in config show:\n{text}"
        );
    }
    assert!(!text.contains("file-region"), "AWS_REGION wins:\n{text}");
    assert!(!all_output(&output).contains("s3-file-secret"), "{text}");
}

/// `hexrepo keygen ARGS` in `dir`.
fn keygen(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = hexrepo_in(dir, &["keygen", "--out", "k.pem"]);
    cmd.args(args);
    cmd
}

/// Asserts that `path` is a mode-0600 PKCS#8 PEM RSA key of `bits` bits that openssl accepts.
fn assert_private_key(path: &PathBuf, bits: u32) {
    let mode = fs::metadata(path)
        .expect("key written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");
    assert!(
        read_text(path).starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "not PKCS#8 PEM:\n{}",
        read_text(path)
    );
    run(Command::new("openssl")
        .args(["rsa", "-check", "-noout", "-in"])
        .arg(path));
    let text = stdout_text(&run(Command::new("openssl")
        .args(["rsa", "-text", "-noout", "-in"])
        .arg(path)));
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!("({bits} bit")),
        "expected a {bits}-bit key, openssl says {first:?}"
    );
}

#[test]
fn keygen_writes_a_private_key_and_refuses_to_overwrite() {
    require_programs(&["openssl"]);
    let tmp = temp_dir();
    let key = tmp.path().join("k.pem");

    let output = run(&mut keygen(tmp.path(), &[]));
    assert!(
        stdout_text(&output).contains("SHA256:"),
        "keygen prints the fingerprint"
    );
    assert_private_key(&key, 2048);
    let first = fs::read(&key).expect("read key");

    let mut again = keygen(tmp.path(), &[]);
    let output = run_expecting_failure(&mut again);
    assert!(
        all_output(&output).contains("already exists"),
        "{}",
        describe(&again, &output)
    );
    assert_eq!(fs::read(&key).expect("read key"), first, "key overwritten");

    run(&mut keygen(tmp.path(), &["--force"]));
    assert_private_key(&key, 2048);
    assert_ne!(
        fs::read(&key).expect("read key"),
        first,
        "--force kept the old key"
    );

    run(&mut keygen(tmp.path(), &["--force", "--bits", "4096"]));
    assert_private_key(&key, 4096);
}

/// README: with `read_auth = auto`, reads need credentials "as soon as ... a repository key
/// exists". Revoking the only key (say, because it leaked) currently makes the repository
/// readable by anyone again, which is the opposite of what the operator wants.
#[test]
fn revoking_the_last_key_keeps_the_repository_closed() {
    let tmp = built_fixture();
    let public = tmp.path().join("public");
    let server = serve_fixture(&tmp, &[]);
    let mut create = hexrepo_in(tmp.path(), &["key", "create", "ci", "--read-only"]);
    create.arg("--public-dir").arg(&public);
    run(&mut create);
    assert_eq!(get(&server, "/names", &[]).status, 401, "a key exists");
    let mut revoke = hexrepo_in(tmp.path(), &["key", "revoke", "ci"]);
    revoke.arg("--public-dir").arg(&public);
    run(&mut revoke);
    assert_eq!(
        get(&server, "/names", &[]).status,
        401,
        "anonymous read after revoking the only key"
    );
}

/// `--log-format json` writes one JSON object per request, and SIGTERM flushes the buffered log.
#[test]
fn access_log_lines_are_json_when_asked() {
    let tmp = crate::support::temp_dir();
    let public = tmp.path().join("public");
    let mut server = crate::serve_support::HexrepoServer::start(
        tmp.path(),
        &public,
        &tmp.path().join("key.pem"),
        &["--name", "acme", "--log-format", "json"],
    );
    let response = crate::serve_support::http_get(server.port(), "/names", &[]).unwrap();
    assert_eq!(response.status, 200);
    server.shutdown();
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains(r#""path":"/names""#))
        .unwrap_or_else(|| panic!("no JSON access line for /names in:\n{log}"));
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["bytes"].as_u64(), Some(response.body.len() as u64));
    assert!(entry["duration_ms"].as_f64().is_some(), "{line}");
}

/// `hexrepo verify URL` audits a served repository over HTTP, with credentials when needed.
#[test]
fn verify_audits_a_served_repository_over_http() {
    let tmp = built_fixture();
    let public = tmp.path().join("public");
    let server = serve_fixture(
        &tmp,
        &["--auth-username", "team", "--auth-password", "s3cret"],
    );
    let verify = |extra: &[&str]| {
        let mut cmd = hexrepo_in(tmp.path(), &["verify"]);
        cmd.arg(server.url())
            .args(["--name", "acme", "--public-key"])
            .arg(public.join("public_key"))
            .args(extra);
        cmd
    };
    let output = all_output(&run(&mut verify(&["--auth", "team:s3cret"])));
    assert!(
        output.contains("ok: 5 packages, 10 releases checked, 0 problems"),
        "{output}"
    );
    let refused = all_output(&run_expecting_failure(&mut verify(&[])));
    assert!(refused.contains("HTTP 401"), "{refused}");
}

/// A private key that is not the repository's would sign files clients reject: `serve`
/// refuses to start with it, naming the key and the storage, and writes nothing.
#[test]
fn serve_refuses_a_private_key_that_does_not_match_the_public_key() {
    let tmp = temp_dir();
    let public = tmp.path().join("public");
    let first = tmp.path().join("first.pem");
    // The first start creates the key and the registry.
    drop(HexrepoServer::start(tmp.path(), &public, &first, &[]));
    let before = fs::read(public.join("public_key")).expect("public_key written");
    let other = tmp.path().join("other.pem");
    run(&mut hexrepo_in(
        tmp.path(),
        &["keygen", "--out", "other.pem"],
    ));
    let mut serve = hexrepo_in(tmp.path(), &["serve", "--bind", "127.0.0.1", "--port", "0"]);
    serve
        .arg("--public-dir")
        .arg(&public)
        .arg("--private-key")
        .arg(&other);
    let output = output_within(&mut serve, Duration::from_secs(10));
    let text = all_output(&output);
    assert!(
        !output.status.success() && text.contains("does not match") && text.contains("other.pem"),
        "{}",
        describe(&serve, &output)
    );
    assert_eq!(fs::read(public.join("public_key")).unwrap(), before);
}

#[test]
fn serve_removes_temporaries_a_killed_writer_left_and_keeps_live_ones() {
    let tmp = temp_dir();
    let public = tmp.path().join("public");
    let key = tmp.path().join("private_key.pem");
    drop(HexrepoServer::start(tmp.path(), &public, &key, &[]));
    fs::create_dir_all(public.join("tarballs")).unwrap();
    // Named after a process that cannot exist (above any pid_max), and after this one.
    let orphan = public.join("tarballs/.foo-1.0.0.tar.tmp-2147483647-0");
    let live = public.join(format!(".names.tmp-{}-0", std::process::id()));
    fs::write(&orphan, b"half a tarball").unwrap();
    fs::write(&live, b"a write under way").unwrap();
    let server = HexrepoServer::start(tmp.path(), &public, &key, &[]);
    assert!(!orphan.exists(), "{}", server.log());
    assert!(live.exists());
    // The log is written in the background: give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !server.log().contains("removed 1 temporary files")
        && std::time::Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        server.log().contains("removed 1 temporary files"),
        "{}",
        server.log()
    );
}
