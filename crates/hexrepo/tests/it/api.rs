//! The Hex HTTP API of `hexrepo serve` (HEX-PROTOCOL.md §6), judged by a real client: the
//! `hex_core` that rebar3 bundles, one call per `tools/hex-core api` run (it sends ETF bodies,
//! `Accept: application/vnd.hex+erlang`, a bare `Authorization: KEY`, and decodes the ETF
//! reply), then `rebar3 get-deps` and `tools/hex-core verify-registry` on what was published.
//! The bundled hex_core (0.7.x) publishes with `POST /api/publish?replace=BOOL`; the newer
//! `/packages/NAME/releases` and `/repos/acme/...` routes and docs are exercised over raw HTTP.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::clients::{self, Rebar3Project};
use crate::serve_support::{HexrepoServer, HttpResponse, hexrepo_in, http_get};
use crate::support::{
    all_output, describe, output_of, read_text, require_programs, run, sha256_upper, stdout_text,
    temp_dir, tool,
};

/// The repository name the server is started with.
const REPO: &str = "acme";

/// The CLI key with `repository` and `api:write`: the actor of every write in the audit log.
const PUBLISHER: &str = "publisher";

/// A `hexrepo serve --name acme` on a fresh folder, with two keys made by `hexrepo key create`.
struct Api {
    tmp: tempfile::TempDir,
    public: PathBuf,
    server: HexrepoServer,
    /// Secret of `publisher` (repository + api write).
    full: String,
    /// Secret of `reader` (`--read-only`: repository only).
    read_only: String,
}

/// What `tools/hex-core api` printed: the status and the body as hex_core decoded it (`~0tp`).
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Api {
    fn start() -> Api {
        require_programs(&["erl", "rebar3", "unzip", "sha256sum", "tar"]);
        let tmp = temp_dir();
        let public = tmp.path().join("public");
        let server = HexrepoServer::start(
            tmp.path(),
            &public,
            &tmp.path().join("private_key.pem"),
            &["--name", REPO],
        );
        let full = create_key(tmp.path(), &public, PUBLISHER, false);
        let read_only = create_key(tmp.path(), &public, "reader", true);
        Api {
            tmp,
            public,
            server,
            full,
            read_only,
        }
    }

    fn api_url(&self) -> String {
        format!("{}/api", self.server.url())
    }

    /// `tools/hex-core api [--repository REPO] URL KEY CALL ARGS...`.
    fn hex_core(
        &self,
        repository: Option<&str>,
        key: Option<&str>,
        call: &str,
        args: &[&str],
    ) -> Reply {
        let mut cmd = Command::new(tool("hex-core"));
        cmd.arg("api");
        if let Some(repository) = repository {
            cmd.args(["--repository", repository]);
        }
        cmd.arg(self.api_url())
            .arg(key.unwrap_or("-"))
            .arg(call)
            .args(args);
        let output = output_of(&mut cmd);
        assert!(
            output.status.success(),
            "hex_core call failed: {}--- hexrepo serve log ---\n{}",
            describe(&cmd, &output),
            self.server.log()
        );
        let text = stdout_text(&output);
        let (status, body) = text
            .trim_end()
            .split_once(' ')
            .unwrap_or_else(|| panic!("no `STATUS BODY` line from hex-core api: {text:?}"));
        Reply {
            status: status.parse().expect("status code"),
            body: body.to_owned(),
        }
    }

    /// One hex_core call with the `publisher` key.
    fn call(&self, call: &str, args: &[&str]) -> Reply {
        self.hex_core(None, Some(&self.full), call, args)
    }

    /// Asserts the status and that the decoded body contains every needle.
    fn expect(&self, what: &str, reply: &Reply, status: u16, needles: &[&str]) {
        let missing: Vec<&&str> = needles
            .iter()
            .filter(|n| !reply.body.contains(**n))
            .collect();
        assert!(
            reply.status == status && missing.is_empty(),
            "{what}: expected {status} with {missing:?} in the body, got {reply:?}\n\
             --- hexrepo serve log ---\n{}",
            self.server.log()
        );
    }

    /// `r3_hex_api_release:publish/3` of `tarball` with `[{replace, REPLACE}]`, with `key`.
    fn publish_with(&self, key: Option<&str>, tarball: &Path, replace: bool) -> Reply {
        let file = format!("@{}", tarball.display());
        let params = format!("[{{replace,{replace}}}]");
        self.hex_core(None, key, "r3_hex_api_release:publish", &[&file, &params])
    }

    /// Publishes a new release with the `publisher` key; asserts 201 and the Release object.
    fn publish_new(&self, tarball: &Path, version: &str) {
        let reply = self.publish_with(Some(&self.full), tarball, false);
        let checksum = sha256_upper(tarball).to_ascii_lowercase();
        self.expect(
            &format!("publish {}", tarball.display()),
            &reply,
            201,
            &[
                &field("version", &bin(version)),
                &field("checksum", &bin(&checksum)),
            ],
        );
    }

    /// `tools/hex-core create` into `TMP/tarballs/VARIANT/NAME-VERSION.tar`.
    fn tarball(&self, variant: &str, name: &str, version: &str, deps: &[&str]) -> PathBuf {
        let dir = self.tmp.path().join("tarballs").join(variant);
        fs::create_dir_all(&dir).expect("mkdir tarballs");
        clients::create_package(&dir, name, version, deps)
    }

    /// `GET path` on the server with the read-only key (reads need a key once one exists).
    fn get(&self, path: &str) -> HttpResponse {
        http_get(
            self.server.port(),
            path,
            &[("Authorization", &self.read_only)],
        )
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `METHOD path` with `key` and `body`, over raw HTTP.
    fn send(&self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> HttpResponse {
        let mut headers = vec![("Content-Type", "application/octet-stream")];
        if let Some(key) = key {
            headers.push(("Authorization", key));
        }
        http_request(self.server.port(), method, path, &headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// hex_core's decoding of the registry (verify-registry), all whitespace removed.
    fn registry(&self) -> String {
        let output = clients::verify_registry(&self.public, REPO, &self.public.join("public_key"));
        assert!(
            output.status.success(),
            "hex_core rejects the registry: {}",
            all_output(&output)
        );
        squash(&stdout_text(&output))
    }

    /// `hexrepo verify PUBLIC --name acme --public-key PUBLIC/public_key` exits 0; its output.
    fn hexrepo_verify(&self) -> String {
        let mut cmd = hexrepo_in(self.tmp.path(), &["verify"]);
        cmd.arg(&self.public)
            .args(["--name", REPO, "--public-key"])
            .arg(self.public.join("public_key"));
        all_output(&run(&mut cmd))
    }

    /// `rebar3 get-deps` for `deps` in a fresh project (own HOME and cache) with the read-only
    /// key; asserts success and returns the project and rebar3's output.
    fn rebar3_get_deps(&self, deps: &[(&str, &str)]) -> (Rebar3Project, String) {
        let project = Rebar3Project::with_repo_key(
            &self.server.url(),
            &read_text(&self.public.join("public_key")),
            deps,
            Some(&self.read_only),
        );
        let (cmd, output) = project.get_deps();
        assert!(
            output.status.success(),
            "rebar3 get-deps failed: {}--- hexrepo serve log ---\n{}",
            describe(&cmd, &output),
            self.server.log()
        );
        (project, all_output(&output))
    }

    /// The audit log as `(actor, action, package, version)`, one per line; every line must
    /// name the client's address (all requests here come from 127.0.0.1).
    fn audit(&self) -> Vec<(String, String, String, String)> {
        let text = read_text(&self.public.join(".hexrepo/audit.log"));
        text.lines()
            .map(|line| {
                let get = |key| json_string(line, key).unwrap_or_default();
                assert_eq!(get("remote"), "127.0.0.1", "no remote address in {line}");
                (get("actor"), get("action"), get("package"), get("version"))
            })
            .collect()
    }

    /// The audit log holds exactly these `(action, package, version)` lines, by `publisher`,
    /// besides the `owner.add` record that follows each package's first publish by a key (its
    /// first owner; the owner rules have tests of their own), which must be there too.
    fn assert_audit(&self, expected: &[(&str, &str, &str)]) {
        let all = self.audit();
        let mut first_published = std::collections::BTreeSet::new();
        for (i, (_, action, package, _)) in all.iter().enumerate() {
            if action == "publish" && first_published.insert(package.clone()) {
                assert!(
                    all.get(i + 1)
                        .is_some_and(|(_, a, p, _)| a == "owner.add" && p == package),
                    "no owner.add after the first publish of {package}: {all:?}"
                );
            }
        }
        let expected: Vec<(String, String, String, String)> = expected
            .iter()
            .map(|(action, package, version)| {
                let owned = |s: &str| s.to_owned();
                (
                    owned(PUBLISHER),
                    owned(action),
                    owned(package),
                    owned(version),
                )
            })
            .collect();
        let without_owners: Vec<_> = all
            .into_iter()
            .filter(|(_, a, _, _)| a != "owner.add")
            .collect();
        assert_eq!(
            without_owners,
            expected,
            "audit log:\n{}",
            read_text(&self.public.join(".hexrepo/audit.log"))
        );
    }
}

/// `hexrepo key create NAME [--read-only] --public-dir PUBLIC`: the secret it prints.
fn create_key(cwd: &Path, public: &Path, name: &str, read_only: bool) -> String {
    let mut cmd = hexrepo_in(cwd, &["key", "create", name]);
    if read_only {
        cmd.arg("--read-only");
    }
    cmd.arg("--public-dir").arg(public);
    let secret = stdout_text(&run(&mut cmd)).trim().to_owned();
    assert!(
        secret.len() >= 32 && secret.chars().all(|c| c.is_ascii_alphanumeric()),
        "unexpected secret {secret:?}"
    );
    secret
}

/// An Erlang binary literal: `<<"text">>`.
fn bin(text: &str) -> String {
    format!("<<\"{text}\">>")
}

/// `<<"key">> => VALUE`, as `~0tp` prints a map entry.
fn field(key: &str, value: &str) -> String {
    format!("{} => {value}", bin(key))
}

/// The text of the binary after `<<"key">> => ` in a printed term.
fn binary_field(term: &str, key: &str) -> Option<String> {
    let marker = format!("{} => <<\"", bin(key));
    let start = term.find(&marker)? + marker.len();
    let len = term[start..].find("\">>")?;
    Some(term[start..start + len].to_owned())
}

/// A top-level string field of a flat JSON object whose values contain no escapes.
fn json_string(json: &str, key: &str) -> Option<String> {
    let marker = format!("\"{key}\":\"");
    let start = json.find(&marker)? + marker.len();
    let len = json[start..].find('"')?;
    Some(json[start..start + len].to_owned())
}

/// `text` without any whitespace, so pretty-printed terms compare by content.
fn squash(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// `METHOD path HTTP/1.1` to 127.0.0.1:`port` with `Connection: close`, the `headers` and
/// `body` (with its `Content-Length`); the response is read to the end.
fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUser-Agent: hexrepo-it\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).map_err(|why| {
        std::io::Error::other(format!(
            "{why}; response starts {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        ))
    })
}

/// Parses one complete `Connection: close` response (no chunked bodies).
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
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let response = HttpResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
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

/// A docs tarball (`tar -czf`) with `index.html` and `dist/app.js`; returns its bytes.
fn docs_tarball(dir: &Path, title: &str) -> Vec<u8> {
    let src = dir.join("docs-src");
    fs::create_dir_all(src.join("dist")).expect("mkdir docs");
    fs::write(src.join("index.html"), format!("<h1>{title}</h1>\n")).expect("write index");
    fs::write(src.join("dist/app.js"), "console.log(1);\n").expect("write app.js");
    let out = dir.join("docs.tar.gz");
    run(Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&src)
        .args(["index.html", "dist"]));
    fs::read(&out).expect("read docs tarball")
}

/// Release `name` `version` as hex_core decodes `GET /api/packages/NAME/releases/VERSION`.
fn release(api: &Api, name: &str, version: &str) -> Reply {
    api.call("r3_hex_api_release:get", &[&bin(name), &bin(version)])
}

#[test]
fn hex_core_publishes_and_rebar3_fetches() {
    let api = Api::start();
    let tarball = api.tarball("a", "widget", "1.0.0", &[]);
    let reply = api.publish_with(Some(&api.full), &tarball, false);
    api.expect(
        "publish",
        &reply,
        201,
        &[
            &field("version", &bin("1.0.0")),
            &field(
                "checksum",
                &bin(&sha256_upper(&tarball).to_ascii_lowercase()),
            ),
            &field("has_docs", "false"),
            &field("retirement", "nil"),
            &field(
                "url",
                &bin(&format!(
                    "{}/repos/acme/packages/widget/releases/1.0.0",
                    api.api_url()
                )),
            ),
        ],
    );

    let (project, _) = api.rebar3_get_deps(&[("widget", "1.0.0")]);
    let lock = project.lock();
    assert_eq!(lock.versions["widget"], "1.0.0");
    assert_eq!(lock.pkg_hash_ext["widget"], sha256_upper(&tarball));
    assert!(project.lib_dir("widget").join("src/widget.erl").is_file());

    assert!(api.hexrepo_verify().contains("1 releases"));
    api.assert_audit(&[("publish", "widget", "1.0.0")]);
}

#[test]
fn republishing_needs_replace() {
    let api = Api::start();
    let base = api.tarball("a", "base", "1.0.0", &[]);
    api.publish_new(&base, "1.0.0");
    let first = api.tarball("a", "widget", "1.0.0", &[]);
    api.publish_new(&first, "1.0.0");
    // The same version, now depending on `base`: other bytes.
    let second = api.tarball("b", "widget", "1.0.0", &["base:~> 1.0"]);
    assert_ne!(sha256_upper(&first), sha256_upper(&second));

    let refused = api.publish_with(Some(&api.full), &second, false);
    api.expect(
        "publish without replace",
        &refused,
        422,
        &["inserted_at", "--replace"],
    );
    assert_eq!(
        api.get("/tarballs/widget-1.0.0.tar").body,
        fs::read(&first).expect("read first"),
        "a refused publish left the tarball alone"
    );

    let replaced = api.publish_with(Some(&api.full), &second, true);
    api.expect(
        "publish with replace",
        &replaced,
        200,
        &[
            &field(
                "checksum",
                &bin(&sha256_upper(&second).to_ascii_lowercase()),
            ),
            &field("requirements", "#{<<\"base\">> => #{"),
        ],
    );

    let (project, _) = api.rebar3_get_deps(&[("widget", "1.0.0")]);
    let lock = project.lock();
    assert_eq!(lock.pkg_hash_ext["widget"], sha256_upper(&second));
    assert_eq!(lock.pkg_hash_ext["base"], sha256_upper(&base));

    api.hexrepo_verify();
    api.assert_audit(&[
        ("publish", "base", "1.0.0"),
        ("publish", "widget", "1.0.0"),
        ("replace", "widget", "1.0.0"),
    ]);
}

#[test]
fn retire_and_unretire() {
    let api = Api::start();
    for version in ["1.0.0", "1.1.0"] {
        api.publish_new(&api.tarball("a", "widget", version, &[]), version);
    }
    let reason = "#{<<\"reason\">> => <<\"security\">>, <<\"message\">> => <<\"CVE-1\">>}";
    let args = [bin("widget"), bin("1.1.0")];
    let retire = |body: &str| api.call("r3_hex_api_release:retire", &[&args[0], &args[1], body]);

    let bad = retire("#{<<\"reason\">> => <<\"bored\">>, <<\"message\">> => <<\"CVE-1\">>}");
    api.expect("retire with a bad reason", &bad, 422, &["reason"]);
    let short = retire("#{<<\"reason\">> => <<\"security\">>, <<\"message\">> => <<\"C\">>}");
    api.expect("retire with a 1-char message", &short, 422, &["message"]);

    api.expect("retire", &retire(reason), 204, &["nil"]);
    let registry = api.registry();
    assert!(
        registry.contains(
            "retired=>#{message=><<\"CVE-1\">>,reason=>'RETIRED_SECURITY'},version=><<\"1.1.0\">>"
        ),
        "packages/widget does not show 1.1.0 retired:\n{registry}"
    );
    assert!(
        registry.contains("#{name=><<\"widget\">>,retired=>[1],"),
        "versions does not list index 1 as retired:\n{registry}"
    );
    api.expect(
        "release after retire",
        &release(&api, "widget", "1.1.0"),
        200,
        &[&field(
            "retirement",
            "#{<<\"message\">> => <<\"CVE-1\">>,<<\"reason\">> => <<\"security\">>}",
        )],
    );
    api.expect(
        "package after retire",
        &api.call("r3_hex_api_package:get", &[&bin("widget")]),
        200,
        &[&field("retirements", "#{<<\"1.1.0\">> => #{")],
    );

    let (project, output) = api.rebar3_get_deps(&[("widget", "1.1.0")]);
    assert_eq!(project.lock().versions["widget"], "1.1.0");
    assert!(
        output.contains("package widget-1.1.0 is retired: (security) CVE-1"),
        "rebar3 printed no retirement warning:\n{output}"
    );

    let unretire = api.call("r3_hex_api_release:unretire", &[&args[0], &args[1]]);
    api.expect("unretire", &unretire, 204, &["nil"]);
    let registry = api.registry();
    assert!(
        !registry.contains("RETIRED") && registry.contains("#{name=><<\"widget\">>,retired=>[],"),
        "the retirement is still in the registry:\n{registry}"
    );
    api.expect(
        "release after unretire",
        &release(&api, "widget", "1.1.0"),
        200,
        &[&field("retirement", "nil")],
    );
    let (_, output) = api.rebar3_get_deps(&[("widget", "1.1.0")]);
    assert!(!output.contains("retired"), "rebar3 still warns:\n{output}");

    api.hexrepo_verify();
    api.assert_audit(&[
        ("publish", "widget", "1.0.0"),
        ("publish", "widget", "1.1.0"),
        ("retire", "widget", "1.1.0"),
        ("unretire", "widget", "1.1.0"),
    ]);
}

#[test]
fn revert_removes_releases_then_the_package() {
    let api = Api::start();
    for version in ["1.0.0", "2.0.0"] {
        api.publish_new(&api.tarball("a", "widget", version, &[]), version);
    }
    assert_eq!(api.get("/tarballs/widget-2.0.0.tar").status, 200);
    let delete = |version: &str| {
        api.call(
            "r3_hex_api_release:delete",
            &[&bin("widget"), &bin(version)],
        )
    };

    api.expect("revert 2.0.0", &delete("2.0.0"), 204, &[]);
    assert_eq!(api.get("/tarballs/widget-2.0.0.tar").status, 404);
    assert_eq!(api.get("/tarballs/widget-1.0.0.tar").status, 200);
    assert!(api.hexrepo_verify().contains("1 releases"));
    let registry = api.registry();
    assert!(
        registry.contains("#{name=><<\"widget\">>,retired=>[],versions=>[<<\"1.0.0\">>]}"),
        "versions still lists 2.0.0:\n{registry}"
    );
    api.expect("revert 2.0.0 again", &delete("2.0.0"), 404, &[]);

    api.expect("revert the last release", &delete("1.0.0"), 204, &[]);
    api.expect(
        "package after its last revert",
        &api.call("r3_hex_api_package:get", &[&bin("widget")]),
        404,
        &[],
    );
    assert!(!api.public.join("packages/widget").exists());
    assert_eq!(api.get("/packages/widget").status, 404);
    let registry = api.registry();
    assert!(
        registry.contains("names=[].") && registry.contains("versions=[]."),
        "the package is still listed:\n{registry}"
    );
    api.hexrepo_verify();
    api.assert_audit(&[
        ("publish", "widget", "1.0.0"),
        ("publish", "widget", "2.0.0"),
        ("revert", "widget", "2.0.0"),
        ("revert", "widget", "1.0.0"),
    ]);
}

/// `[#{domain => api, resource => write}]`, as an Erlang term.
const API_WRITE: &str = "[#{<<\"domain\">> => <<\"api\">>, <<\"resource\">> => <<\"write\">>}]";

#[test]
fn keys_created_through_the_api_work_until_revoked() {
    let api = Api::start();
    let listed = api.call("r3_hex_api_key:list", &[]);
    api.expect(
        "key list",
        &listed,
        200,
        &[
            &field("name", &bin(PUBLISHER)),
            &field("name", &bin("reader")),
        ],
    );

    let added = api.call("r3_hex_api_key:add", &[&bin("ci"), API_WRITE]);
    api.expect(
        "key add",
        &added,
        201,
        &[&field("name", &bin("ci")), "<<\"secret\">>"],
    );
    let secret = binary_field(&added.body, "secret").expect("secret in the reply");
    api.expect(
        "key add again",
        &api.call("r3_hex_api_key:add", &[&bin("ci"), API_WRITE]),
        422,
        &["name"],
    );

    let widget = api.tarball("a", "widget", "1.0.0", &[]);
    api.expect(
        "publish with the new key",
        &api.publish_with(Some(&secret), &widget, false),
        201,
        &[&field("version", &bin("1.0.0"))],
    );

    let revoked = api.call("r3_hex_api_key:delete", &[&bin("ci")]);
    assert!(
        revoked.status == 200 || revoked.status == 204,
        "key delete: {revoked:?}"
    );
    let gadget = api.tarball("a", "gadget", "1.0.0", &[]);
    api.expect(
        "publish with the revoked key",
        &api.publish_with(Some(&secret), &gadget, false),
        401,
        &[],
    );
    assert!(!api.public.join("packages/gadget").exists());
    let listed = api.call("r3_hex_api_key:list", &[]);
    api.expect(
        "key list after revoke",
        &listed,
        200,
        &[&field("name", &bin(PUBLISHER))],
    );
    assert!(
        !listed.body.contains(&field("name", &bin("ci"))),
        "revoked key still listed: {listed:?}"
    );
    api.expect(
        "key get after revoke",
        &api.call("r3_hex_api_key:get", &[&bin("ci")]),
        404,
        &[],
    );

    let audit = api.audit();
    let lines: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|(actor, action, package, _)| (actor.as_str(), action.as_str(), package.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (PUBLISHER, "key.create", ""),
            ("ci", "publish", "widget"),
            ("ci", "owner.add", "widget"),
            (PUBLISHER, "key.revoke", ""),
        ]
    );
}

#[test]
fn read_only_missing_and_invalid_keys() {
    let api = Api::start();
    api.publish_new(&api.tarball("a", "widget", "1.0.0", &[]), "1.0.0");
    let gadget = api.tarball("a", "gadget", "1.0.0", &[]);
    api.expect(
        "publish with the read-only key",
        &api.publish_with(Some(&api.read_only), &gadget, false),
        403,
        &[],
    );
    api.expect(
        "publish without a key",
        &api.publish_with(None, &gadget, false),
        401,
        &["missing authentication information"],
    );
    api.expect(
        "publish with a made-up key",
        &api.publish_with(Some("0123456789abcdef0123456789abcdef"), &gadget, false),
        401,
        &["invalid API key"],
    );
    api.expect(
        "key add with the read-only key",
        &api.hex_core(
            None,
            Some(&api.read_only),
            "r3_hex_api_key:add",
            &[&bin("x"), API_WRITE],
        ),
        403,
        &[],
    );
    assert!(!api.public.join("packages/gadget").exists());

    let get = |repository: Option<&str>, key: Option<&str>| {
        api.hex_core(repository, key, "r3_hex_api_package:get", &[&bin("widget")])
    };
    let reader = Some(api.read_only.as_str());
    let releases = "<<\"releases\">> => [#{";
    api.expect(
        "package get, read-only key",
        &get(None, reader),
        200,
        &[releases],
    );
    api.expect(
        "package get under /repos/acme",
        &get(Some(REPO), reader),
        200,
        &[releases],
    );
    api.expect(
        "package get under /repos/elsewhere",
        &get(Some("elsewhere"), reader),
        404,
        &[],
    );
    api.expect("package get without a key", &get(None, None), 401, &[]);
    api.assert_audit(&[("publish", "widget", "1.0.0")]);
}

#[test]
fn publish_with_expect_continue_authorizes_before_the_body() {
    let api = Api::start();
    let tarball = fs::read(api.tarball("a", "widget", "1.0.0", &[])).expect("read tarball");
    // A refused key gets its answer without sending the body: no `100 Continue` first.
    let (head, _) = expect_continue(&api, &api.read_only, &tarball);
    assert!(head.starts_with("HTTP/1.1 403"), "read-only key: {head}");
    let (head, response) = expect_continue(&api, &api.full, &tarball);
    assert!(head.starts_with("HTTP/1.1 100"), "publisher key: {head}");
    let response = response.expect("a final response after the body");
    assert_eq!(
        response.status,
        201,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        response.header("location"),
        Some(
            format!(
                "{}/repos/acme/packages/widget/releases/1.0.0",
                api.api_url()
            )
            .as_str()
        )
    );
}

/// `POST /api/packages/widget/releases` with `Expect: 100-continue`: the first response head,
/// and (when it was `100 Continue`) the final response after sending the body.
fn expect_continue(api: &Api, key: &str, body: &[u8]) -> (String, Option<HttpResponse>) {
    let mut stream = TcpStream::connect(("127.0.0.1", api.server.port())).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /api/packages/widget/releases?replace=false HTTP/1.1\r\nHost: x\r\n\
         Connection: close\r\nAuthorization: {key}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while !first.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read response head");
        assert!(
            n > 0,
            "connection closed after {:?}",
            String::from_utf8_lossy(&first)
        );
        first.push(byte[0]);
    }
    let first = String::from_utf8_lossy(&first).into_owned();
    if !first.starts_with("HTTP/1.1 100") {
        return (first, None);
    }
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    (first, Some(parse_response(&raw).expect("final response")))
}

#[test]
fn docs_publish_and_remove() {
    let api = Api::start();
    api.publish_new(&api.tarball("a", "widget", "1.0.0", &[]), "1.0.0");
    let docs = docs_tarball(api.tmp.path(), "widget");
    let route = "/api/packages/widget/releases/1.0.0/docs";

    let refused = api.send("POST", route, Some(&api.read_only), &docs);
    assert_eq!(refused.status, 403, "read-only key may not publish docs");
    let no_index = {
        let dir = api.tmp.path().join("no-index");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("readme.txt"), "x").expect("write");
        let out = api.tmp.path().join("no-index.tar.gz");
        run(Command::new("tar")
            .arg("-czf")
            .arg(&out)
            .arg("-C")
            .arg(&dir)
            .arg("readme.txt"));
        fs::read(out).expect("read")
    };
    let invalid = api.send("POST", route, Some(&api.full), &no_index);
    assert_eq!(invalid.status, 422, "docs without index.html");

    let created = api.send("POST", route, Some(&api.full), &docs);
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let docs_url = format!("{}/docs/widget-1.0.0.tar.gz", api.server.url());
    assert_eq!(created.header("location"), Some(docs_url.as_str()));
    let served = api.get("/docs/widget-1.0.0.tar.gz");
    assert_eq!(served.status, 200);
    assert!(served.body == docs, "served docs differ from the upload");
    api.expect(
        "release with docs",
        &release(&api, "widget", "1.0.0"),
        200,
        &[&field("has_docs", "true")],
    );
    api.expect(
        "package with docs",
        &api.call("r3_hex_api_package:get", &[&bin("widget")]),
        200,
        &[&field("has_docs", "true")],
    );

    let removed = api.send("DELETE", route, Some(&api.full), &[]);
    assert_eq!(removed.status, 204);
    assert_eq!(api.get("/docs/widget-1.0.0.tar.gz").status, 404);
    api.expect(
        "release after docs removal",
        &release(&api, "widget", "1.0.0"),
        200,
        &[&field("has_docs", "false")],
    );
    assert_eq!(api.send("DELETE", route, Some(&api.full), &[]).status, 404);

    api.hexrepo_verify();
    api.assert_audit(&[
        ("publish", "widget", "1.0.0"),
        ("docs.publish", "widget", "1.0.0"),
        ("docs.remove", "widget", "1.0.0"),
    ]);
}

#[test]
fn docs_for_a_missing_release_are_404() {
    let api = Api::start();
    api.publish_new(&api.tarball("a", "widget", "1.0.0", &[]), "1.0.0");
    let docs = docs_tarball(api.tmp.path(), "widget");
    for route in [
        "/api/packages/widget/releases/9.9.9/docs",
        "/api/packages/nothing/releases/1.0.0/docs",
    ] {
        let reply = api.send("POST", route, Some(&api.full), &docs);
        assert_eq!(reply.status, 404, "POST {route}");
    }
    assert!(!api.public.join("docs/widget-9.9.9.tar.gz").exists());
    assert!(!api.public.join("docs/nothing-1.0.0.tar.gz").exists());
}

#[test]
fn docs_paths_cannot_leave_the_public_folder() {
    let api = Api::start();
    let docs = docs_tarball(api.tmp.path(), "x");
    // TMP/public/docs/../../escaped-1.0.0.tar.gz is TMP/escaped-1.0.0.tar.gz.
    let route = "/api/packages/..%2F..%2Fescaped/releases/1.0.0/docs";
    let written = api.send("POST", route, Some(&api.full), &docs);
    let outside = api.tmp.path().join("escaped-1.0.0.tar.gz");
    assert!(
        !outside.exists(),
        "POST wrote docs outside the public folder (status {})",
        written.status
    );
    assert!(
        (400..500).contains(&written.status),
        "POST status {}",
        written.status
    );

    fs::write(&outside, "precious").expect("write a file outside the public folder");
    let removed = api.send("DELETE", route, Some(&api.full), &[]);
    assert!(
        outside.exists(),
        "DELETE removed a file outside the public folder (status {})",
        removed.status
    );
}

#[test]
fn users_me_lists_this_repository_as_the_organization() {
    let api = Api::start();
    let me = api.hex_core(None, Some(&api.full), "r3_hex_api_user:me", &[]);
    api.expect(
        "users/me",
        &me,
        200,
        &[
            &field(
                "organizations",
                "[#{<<\"name\">> => <<\"acme\">>,<<\"role\">> => <<\"write\">>}]",
            ),
            &field("username", &bin(PUBLISHER)),
        ],
    );
    api.expect(
        "users/me without a key",
        &api.hex_core(None, None, "r3_hex_api_user:me", &[]),
        401,
        &[],
    );
}

/// The scenario, scaled down: 16 publishers × 20 releases of 8 packages at once, over
/// the three publish routes; every publish succeeds and the registry lists exactly all 320.
#[test]
fn concurrent_publishers_lose_nothing() {
    const PUBLISHERS: usize = 16;
    const RELEASES: usize = 20;
    const PACKAGES: usize = 8;
    let api = Api::start();
    let dir = api.tmp.path().join("concurrent");
    fs::create_dir_all(&dir).expect("mkdir");
    // Publisher i publishes conc_(i % 8) 1.J.(i / 8) for J in 0..20.
    let jobs: Vec<Vec<(String, String)>> = (0..PUBLISHERS)
        .map(|i| {
            (0..RELEASES)
                .map(|j| {
                    (
                        format!("conc_{}", i % PACKAGES),
                        format!("1.{j}.{}", i / PACKAGES),
                    )
                })
                .collect()
        })
        .collect();
    let mut create = Command::new(tool("hex-core"));
    create.arg("create-many").arg(&dir);
    for (name, version) in jobs.iter().flatten() {
        create.args([name, version]);
    }
    run(&mut create);

    let started = Instant::now();
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let (api, dir) = (&api, &dir);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (name, version) in job {
                        let tarball = fs::read(dir.join(format!("{name}-{version}.tar")))
                            .expect("read tarball");
                        let path = match i % 3 {
                            0 => format!("/api/packages/{name}/releases?replace=false"),
                            1 => {
                                format!("/api/repos/{REPO}/packages/{name}/releases?replace=false")
                            }
                            _ => "/api/publish?replace=false".to_owned(),
                        };
                        let response = api.send("POST", &path, Some(&api.full), &tarball);
                        if response.status != 201 {
                            failures.push(format!(
                                "{name} {version} via {path}: {} {}",
                                response.status,
                                String::from_utf8_lossy(&response.body)
                            ));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("publisher thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} of 320 publishes failed in {elapsed:?}:\n{}",
        failures.len(),
        failures.join("\n")
    );

    let verified = api.hexrepo_verify();
    assert!(verified.contains("320 releases"), "{verified}");
    let registry = api.registry();
    for package in 0..PACKAGES {
        let versions: Vec<String> = (0..RELEASES)
            .flat_map(|j| (0..PUBLISHERS / PACKAGES).map(move |k| bin(&format!("1.{j}.{k}"))))
            .collect();
        let entry = format!(
            "#{{name=><<\"conc_{package}\">>,retired=>[],versions=>[{}]}}",
            versions.join(",")
        );
        assert!(
            registry.contains(&entry),
            "versions lacks {entry}:\n{registry}"
        );
    }
    let names: Vec<String> = (0..PACKAGES)
        .map(|p| format!("#{{name=><<\"conc_{p}\">>}}"))
        .collect();
    assert!(
        registry.contains(&format!("names=[{}].", names.join(","))),
        "names:\n{registry}"
    );
    let published = api
        .audit()
        .iter()
        .filter(|(_, action, _, _)| action == "publish")
        .count();
    assert_eq!(published, 320, "publish lines in the audit log");
    eprintln!("320 concurrent publishes took {elapsed:?}");
}

/// `--reserved-names` replaces hex.pm's list: the configured names are refused, others publish.
#[test]
fn configured_reserved_names_are_refused() {
    use hexfmt::metadata::Metadata;
    use hexfmt::tarball::TarballBuilder;
    let tmp = temp_dir();
    let public = tmp.path().join("public");
    let server = HexrepoServer::start(
        tmp.path(),
        &public,
        &tmp.path().join("private_key.pem"),
        &["--name", REPO, "--reserved-names", "secret_pkg,internal"],
    );
    let key = create_key(tmp.path(), &public, PUBLISHER, false);
    let tarball = |name: &str| {
        let metadata = Metadata {
            name: name.into(),
            version: "1.0.0".into(),
            app: Some(name.into()),
            ..Metadata::default()
        };
        TarballBuilder::new(&metadata)
            .file("src/x.erl", "-module(x).")
            .build()
    };
    let publish = |name: &str| {
        let headers = [
            ("authorization", key.as_str()),
            ("content-type", "application/octet-stream"),
        ];
        http_request(
            server.port(),
            "POST",
            "/api/publish?replace=false",
            &headers,
            &tarball(name),
        )
        .unwrap()
    };
    let refused = publish("secret_pkg");
    assert_eq!(refused.status, 422);
    assert!(String::from_utf8_lossy(&refused.body).contains("reserved"));
    // The configured list replaces the default: "elixir" is allowed here.
    assert_eq!(publish("elixir").status, 201);
}
