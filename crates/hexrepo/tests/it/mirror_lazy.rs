//! `hexrepo serve --mirror` in lazy mode (the default) against a real upstream served by nginx:
//! rebar3 fetches mirrored and private packages from one server, the mirror stores only what
//! was asked for, a private name found upstream is reported, concurrent misses make one
//! upstream request, 404s are remembered, registry files are revalidated with ETags, tampered
//! upstream files are refused, and with the upstream stopped stored files are still served
//! (registry files flagged stale). The mirror is also served at a host name of its own.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::clients::{Rebar3Project, create_package};
use crate::mirror_support::{
    UPSTREAM, Upstream, build_repository, files, keygen, requests_for, served_upstream,
};
use crate::serve_support::{
    HexrepoServer, HttpResponse, assert_serve_refuses, hexrepo_in, http_get,
};
use crate::support::{
    StaticServer, describe, output_of, read_text, run, sha256_upper, stdout_text, temp_dir,
};

/// Registry files are revalidated after this long (the `--mirror-ttl` the tests use).
const TTL: Duration = Duration::from_secs(2);
/// Upstream 404s are remembered this long (`--mirror-negative-ttl`).
const NEGATIVE_TTL: Duration = Duration::from_secs(3);

/// The host name that serves the mirror at its root: the server listens on 127.0.0.1, so
/// `localhost` reaches it with another `Host`.
const MIRROR_HOST: &str = "localhost";

/// `hexrepo serve --mirror` (lazy) with `mirror` as its storage, pulling from `upstream_url`.
fn lazy_server(
    work: &Path,
    mirror: &Path,
    upstream: &Upstream,
    upstream_url: &str,
) -> HexrepoServer {
    let ttl = format!("{}s", TTL.as_secs());
    let negative_ttl = format!("{}s", NEGATIVE_TTL.as_secs());
    let key = upstream.public_key();
    let server = HexrepoServer::start(
        work,
        &work.join("public"),
        &work.join("private_key.pem"),
        &[
            "--mirror",
            "--mirror-storage",
            mirror.to_str().unwrap(),
            "--upstream-url",
            upstream_url,
            "--upstream-name",
            UPSTREAM,
            "--upstream-public-key",
            key.to_str().unwrap(),
            "--mirror-ttl",
            &ttl,
            "--mirror-negative-ttl",
            &negative_ttl,
            "--mirror-host",
            MIRROR_HOST,
        ],
    );
    server.wait_for_stdout("HEX_CDN=");
    server
}

/// GET `/mirrors/hexpm/PATH`.
fn get(server: &HexrepoServer, path: &str) -> HttpResponse {
    http_get(server.port(), &format!("/mirrors/hexpm/{path}"), &[])
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// nginx's access-log lines for `path` answered with `status`.
fn answered(nginx: &StaticServer, status: u16, path: &str) -> usize {
    let needle = format!("{status} GET /{path} ");
    nginx
        .access_log()
        .lines()
        .filter(|l| l.starts_with(&needle))
        .count()
}

/// Asserts that nginx logged `expected` GETs of `path`. nginx writes its log line after the
/// response, so a count short of `expected` is given a moment to catch up.
fn assert_logged(nginx: &StaticServer, path: &str, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while requests_for(nginx, path) < expected && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        settled(|| requests_for(nginx, path)),
        expected,
        "GET /{path} upstream:\n{}",
        nginx.access_log()
    );
}

/// A count from nginx's log once it stopped changing for a moment.
fn settled(count: impl Fn() -> usize) -> usize {
    let mut last = count();
    loop {
        thread::sleep(Duration::from_millis(150));
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// `hexrepo_mirror_upstream_answers_total{answer="ANSWER"}` from `/metrics` (0 if absent).
fn upstream_answers(server: &HexrepoServer, answer: &str) -> u64 {
    let metrics = http_get(server.port(), "/metrics", &[]).expect("GET /metrics");
    let needle = format!("hexrepo_mirror_upstream_answers_total{{answer=\"{answer}\"}} ");
    String::from_utf8(metrics.body)
        .expect("metrics are text")
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// A private repository `acme` in `work/public`, signed with `work/private_key.pem`, holding
/// version 0.1.0 of each of `packages`.
fn private_repository(work: &Path, packages: &[&str]) {
    let tarballs = work.join("public/tarballs");
    fs::create_dir_all(&tarballs).unwrap();
    for name in packages {
        create_package(&tarballs, name, "0.1.0", &[]);
    }
    let key = keygen(work, "private_key.pem");
    build_repository(&work.join("public"), "acme", &key);
}

/// rebar3 resolves alpha (and its dependencies) with `HEX_CDN=MIRROR_URL` and omega from the
/// private repository `acme` in `work`, one server: the lock holds each tarball's SHA-256.
fn rebar3_gets_alpha_and_omega(
    server: &HexrepoServer,
    mirror_url: &str,
    upstream: &Upstream,
    work: &Path,
) {
    let escape = |pem: String| pem.replace('\\', "\\\\").replace('"', "\\\"");
    let upstream_key = escape(read_text(&upstream.public_key()));
    let private_public_key = escape(read_text(&work.join("public/public_key")));
    let project = Rebar3Project::new("unused", "unused", &[]);
    fs::write(
        project.dir().join("rebar.config"),
        format!(
            "{{deps, [{{alpha, \"1.0.0\"}}, {{omega, \"0.1.0\"}}]}}.\n\
             {{hex, [{{repos, [#{{name => <<\"hexpm\">>,\n\
             \x20   repo_public_key => <<\"{upstream_key}\">>}},\n\
             \x20 #{{name => <<\"acme\">>, repo_url => <<\"{}\">>,\n\
             \x20   repo_public_key => <<\"{private_public_key}\">>}}]}}]}}.\n",
            server.url()
        ),
    )
    .unwrap();
    let mut cmd = project.rebar3(&["get-deps"]);
    cmd.env("HEX_CDN", mirror_url);
    let output = output_of(&mut cmd);
    assert!(
        output.status.success(),
        "rebar3 through the lazy mirror at its host name: {}\n--- hexrepo log ---\n{}",
        describe(&cmd, &output),
        server.log()
    );
    let lock = project.lock();
    assert_eq!(
        lock.versions.keys().map(String::as_str).collect::<Vec<_>>(),
        ["alpha", "beta", "gamma", "omega"]
    );
    for (name, version) in &lock.versions {
        let file = format!("tarballs/{name}-{version}.tar");
        let tarball = if name == "omega" {
            work.join("public").join(file)
        } else {
            upstream.public().join(file)
        };
        assert_eq!(lock.pkg_hash_ext[name], sha256_upper(&tarball), "{name}");
    }
}

/// Waits out a TTL, with a margin for a loaded machine.
fn wait_past(ttl: Duration) {
    thread::sleep(ttl + Duration::from_millis(300));
}

#[test]
fn rebar3_gets_private_and_mirrored_packages_from_one_server_and_the_mirror_keeps_only_those() {
    let (upstream, nginx) = served_upstream();
    let (mirror, work) = (temp_dir(), temp_dir());
    // A private package named like one upstream (delta): reported, never silently shadowed.
    private_repository(work.path(), &["delta", "omega"]);
    let server = lazy_server(work.path(), mirror.path(), &upstream, &nginx.url());
    // The mirror at its own host name: the private repository is 127.0.0.1, the mirror
    // localhost, on one port.
    let mirror_url = format!("http://{MIRROR_HOST}:{}", server.port());
    server.wait_for_stdout(&format!("also at {mirror_url} "));
    let log = wait_for_log(&server, "dependency confusion");
    assert!(
        log.contains(r#"private package "delta" also exists in "hexpm""#),
        "{log}"
    );

    // Side by side: alpha (and its dependencies) from the mirror, omega from the private
    // repository, one server.
    rebar3_gets_alpha_and_omega(&server, &mirror_url, &upstream, work.path());

    // Only what rebar3 asked for, byte for byte as upstream signed it: not delta, not gamma
    // 1.0.0 (a release nobody resolved).
    let stored = files(mirror.path());
    assert_eq!(
        stored,
        [
            "names",
            "packages/alpha",
            "packages/beta",
            "packages/gamma",
            "public_key",
            "tarballs/alpha-1.0.0.tar",
            "tarballs/beta-1.0.0.tar",
            "tarballs/gamma-1.1.0.tar",
        ],
        "{}",
        server.log()
    );
    for file in stored.iter().filter(|f| *f != "public_key") {
        assert_eq!(
            fs::read(mirror.path().join(file)).unwrap(),
            fs::read(upstream.public().join(file)).unwrap(),
            "{file}"
        );
    }
    // The mirror's host name serves the mirror and nothing else: not the private omega, not
    // the API. Other names still serve both.
    let host = format!("{MIRROR_HOST}:{}", server.port());
    for path in ["/packages/omega", "/api/packages/omega"] {
        let hidden = http_get(server.port(), path, &[("Host", host.as_str())]).expect(path);
        assert_eq!(hidden.status, 404, "{path}");
    }
    let private = http_get(server.port(), "/packages/omega", &[]).expect("omega");
    assert_eq!(private.status, 200);

    // Upstream stopped: stored files are still served, registry files flagged stale (once
    // their TTL is over, so the mirror had to ask); what was never stored is a 502.
    drop(nginx);
    wait_past(TTL);
    let package = get(&server, "packages/alpha");
    assert_eq!(package.status, 200);
    assert_eq!(package.header("x-hexrepo-stale"), Some("1"));
    assert_eq!(
        package.body,
        fs::read(upstream.public().join("packages/alpha")).unwrap()
    );
    let tarball = get(&server, "tarballs/gamma-1.1.0.tar");
    assert_eq!(tarball.status, 200);
    assert_eq!(tarball.header("x-hexrepo-stale"), None);
    assert_eq!(get(&server, "tarballs/gamma-1.0.0.tar").status, 502);
    assert_eq!(get(&server, "packages/delta").status, 502);
    assert!(upstream_answers(&server, "served_stale") >= 1);
    assert!(upstream_answers(&server, "failed") >= 3);
    let log = server.log();
    assert!(
        log.contains("upstream unavailable, serving the stored copy")
            && log.contains("packages/alpha"),
        "{log}"
    );
}

#[test]
fn lazy_mirror_makes_one_upstream_request_per_miss_remembers_404s_and_revalidates_with_etags() {
    let (upstream, nginx) = served_upstream();
    let (mirror, work) = (temp_dir(), temp_dir());
    let server = lazy_server(work.path(), mirror.path(), &upstream, &nginx.url());

    // Sixteen clients ask for the same tarball at once: one upstream request for it (and one
    // for the package file that signs its checksum), the same bytes for all.
    let expected = fs::read(upstream.public().join("tarballs/delta-1.0.0.tar")).unwrap();
    let start = Arc::new(Barrier::new(16));
    let port = server.port();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                http_get(port, "/mirrors/hexpm/tarballs/delta-1.0.0.tar", &[]).unwrap()
            })
        })
        .collect();
    for client in clients {
        let response = client.join().unwrap();
        assert_eq!(response.status, 200);
        assert!(
            response.body == expected,
            "every client gets upstream's bytes"
        );
    }
    assert_logged(&nginx, "tarballs/delta-1.0.0.tar", 1);
    assert_logged(&nginx, "packages/delta", 1);

    // A 404 is remembered for the negative TTL, then asked again.
    assert_eq!(get(&server, "packages/nosuch").status, 404);
    assert_eq!(get(&server, "packages/nosuch").status, 404);
    assert_logged(&nginx, "packages/nosuch", 1);
    wait_past(NEGATIVE_TTL);
    assert_eq!(get(&server, "packages/nosuch").status, 404);
    assert_logged(&nginx, "packages/nosuch", 2);

    // A release the package file does not list: the package file is asked for again (it may
    // be newer upstream), the tarball never.
    assert_eq!(
        get(&server, "packages/delta").status,
        200,
        "confirmed just now"
    );
    let before = settled(|| requests_for(&nginx, "packages/delta"));
    assert_eq!(get(&server, "tarballs/delta-9.9.9.tar").status, 404);
    assert_logged(&nginx, "packages/delta", before + 1);
    assert_logged(&nginx, "tarballs/delta-9.9.9.tar", 0);

    // Docs and install files are not mirrored: nothing signs them.
    assert_eq!(get(&server, "docs/delta-1.0.0.tar.gz").status, 404);
    assert_eq!(get(&server, "installs/hex-1.x.csv").status, 404);
    assert_logged(&nginx, "docs/delta-1.0.0.tar.gz", 0);

    // Registry files: served from the mirror within the TTL, then revalidated with the ETag
    // upstream gave (a 304). (`serve` fetched `names` at start, to compare private names.)
    let names = get(&server, "names");
    assert_eq!(names.status, 200);
    assert_eq!(
        names.body,
        fs::read(upstream.public().join("names")).unwrap()
    );
    let asked = settled(|| requests_for(&nginx, "names"));
    assert_eq!(get(&server, "names").status, 200);
    assert_logged(&nginx, "names", asked);
    wait_past(TTL);
    let not_modified = answered(&nginx, 304, "names");
    assert_eq!(get(&server, "names").status, 200);
    assert_logged(&nginx, "names", asked + 1);
    assert_eq!(
        answered(&nginx, 304, "names"),
        not_modified + 1,
        "{}",
        nginx.access_log()
    );
    let all_304s = nginx
        .access_log()
        .lines()
        .filter(|l| l.starts_with("304 "))
        .count();
    assert_eq!(upstream_answers(&server, "not_modified"), all_304s as u64);
    assert!(upstream_answers(&server, "missing") >= 2);
    assert!(upstream_answers(&server, "fetched") >= 3);

    // A release published upstream is served once the TTL is over.
    let tarballs = upstream.public().join("tarballs");
    create_package(&tarballs, "delta", "1.1.0", &[]);
    let key = upstream.tmp.path().join("upstream_key.pem");
    build_repository(&upstream.public(), UPSTREAM, &key);
    wait_past(TTL);
    let package = get(&server, "packages/delta");
    assert_eq!(
        package.body,
        fs::read(upstream.public().join("packages/delta")).unwrap()
    );
    let tarball = get(&server, "tarballs/delta-1.1.0.tar");
    assert_eq!(tarball.status, 200);
    assert!(tarball.body == fs::read(tarballs.join("delta-1.1.0.tar")).unwrap());

    // A release replaced upstream (new bytes, new signed checksum): once the mirror sees the
    // new package file, the stored tarball is dropped and the new one fetched and verified.
    let old_tarball = fs::read(tarballs.join("delta-1.0.0.tar")).unwrap();
    create_package(&tarballs, "delta", "1.0.0", &["gamma:~> 1.0"]);
    let new_tarball = fs::read(tarballs.join("delta-1.0.0.tar")).unwrap();
    assert_ne!(old_tarball, new_tarball, "the replacement differs");
    build_repository(&upstream.public(), UPSTREAM, &key);
    wait_past(TTL);
    assert_eq!(get(&server, "packages/delta").status, 200);
    let replaced = get(&server, "tarballs/delta-1.0.0.tar");
    assert_eq!(replaced.status, 200);
    assert!(
        replaced.body == new_tarball,
        "the replaced release's new tarball"
    );
    assert_logged(&nginx, "tarballs/delta-1.0.0.tar", 2);
}

#[test]
fn lazy_mirror_refuses_tampered_upstream_files_and_keeps_serving_its_verified_copy() {
    let (upstream, nginx) = served_upstream();
    let (mirror, work) = (temp_dir(), temp_dir());
    let server = lazy_server(work.path(), mirror.path(), &upstream, &nginx.url());
    let public = upstream.public();

    // Mirrored while upstream was sound.
    let good_delta = fs::read(public.join("packages/delta")).unwrap();
    let good_names = fs::read(public.join("names")).unwrap();
    assert_eq!(get(&server, "packages/delta").status, 200);
    assert_eq!(get(&server, "names").status, 200);

    // The same repository name signed with another key, and our key under another name.
    let impostor = temp_dir();
    let impostor_public = impostor.path().join("public");
    fs::create_dir_all(impostor_public.join("tarballs")).unwrap();
    for file in ["alpha-1.0.0.tar", "delta-1.0.0.tar"] {
        fs::copy(
            public.join("tarballs").join(file),
            impostor_public.join("tarballs").join(file),
        )
        .unwrap();
    }
    let other_key = keygen(impostor.path(), "other_key.pem");
    build_repository(&impostor_public, UPSTREAM, &other_key);
    let renamed = temp_dir();
    let renamed_public = renamed.path().join("public");
    fs::create_dir_all(renamed_public.join("tarballs")).unwrap();
    let upstream_key = upstream.tmp.path().join("upstream_key.pem");
    build_repository(&renamed_public, "notpm", &upstream_key);

    let read = |path: &Path| fs::read(path).unwrap();
    replace_upstream_file(
        &public,
        "packages/alpha",
        &read(&impostor_public.join("packages/alpha")),
    );
    replace_upstream_file(
        &public,
        "packages/delta",
        &read(&impostor_public.join("packages/delta")),
    );
    replace_upstream_file(&public, "names", &read(&renamed_public.join("names")));
    replace_upstream_file(&public, "tarballs/gamma-1.0.0.tar", b"not what was signed");

    // Nothing stored to fall back on: a 502, and nothing of it stored.
    assert_eq!(get(&server, "packages/alpha").status, 502);
    assert_eq!(get(&server, "tarballs/gamma-1.0.0.tar").status, 502);
    let stored = files(mirror.path());
    for refused in ["packages/alpha", "tarballs/gamma-1.0.0.tar"] {
        assert!(
            !stored.contains(&refused.to_owned()),
            "{refused} stored: {stored:?}"
        );
    }

    // A verified copy stored: served, flagged stale, still the verified bytes.
    wait_past(TTL);
    let delta = get(&server, "packages/delta");
    assert_eq!(delta.status, 200);
    assert_eq!(delta.header("x-hexrepo-stale"), Some("1"));
    assert_eq!(delta.body, good_delta);
    assert_eq!(
        fs::read(mirror.path().join("packages/delta")).unwrap(),
        good_delta
    );
    let names = get(&server, "names");
    assert_eq!(names.header("x-hexrepo-stale"), Some("1"));
    assert_eq!(names.body, good_names);

    // Upstream sound again: after the retry interval, confirmed and no longer stale.
    replace_upstream_file(&public, "packages/delta", &good_delta);
    wait_past(TTL);
    let delta = get(&server, "packages/delta");
    assert_eq!(delta.header("x-hexrepo-stale"), None);
    assert_eq!(delta.body, good_delta);
    assert!(
        wait_for_log(&server, "upstream answers again").contains("upstream answers again"),
        "{}",
        server.log()
    );

    let log = wait_for_log(&server, "refused upstream file names");
    for expected in [
        "refused upstream file packages/alpha",
        "bad signature",
        "refused upstream file names",
        "repository name mismatch",
        "does not match the signed outer_checksum",
    ] {
        assert!(
            log.contains(expected),
            "{expected:?} not in the log:\n{log}"
        );
    }
}

/// Replaces an upstream file with `bytes`, dated an hour ahead: nginx's ETag is the size and
/// the mtime in seconds, so a same-size file written within the second would keep the old
/// ETag and earn a 304.
fn replace_upstream_file(public: &Path, path: &str, bytes: &[u8]) {
    let file = public.join(path);
    fs::write(&file, bytes).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_hours(1);
    fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(later))
        .unwrap();
}

/// The server's log once it mentions `needle` (log lines are written in the background).
fn wait_for_log(server: &HexrepoServer, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.log();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_mirror_host_setting_is_shown_with_its_origin_and_a_bad_one_stops_serve_at_once() {
    let tmp = temp_dir();
    fs::write(
        tmp.path().join("hexrepo.toml"),
        "mirror = true\nmirror_host = \"HexPM.Internal\"\n",
    )
    .unwrap();
    let text = stdout_text(&run(&mut hexrepo_in(tmp.path(), &["config", "show"])));
    let line = "mirror_host = Some(\"hexpm.internal\")  # config file hexrepo.toml";
    assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");

    fs::remove_file(tmp.path().join("hexrepo.toml")).unwrap();
    let refused = |args: &[&str], expected: &[&str]| {
        assert_serve_refuses(tmp.path(), args, &[], expected);
    };
    refused(
        &["--mirror", "--mirror-host", "hexpm.internal:4000"],
        &["\"hexpm.internal:4000\"", "port", "command line"],
    );
    refused(
        &["--mirror-host", "hexpm.internal"],
        &["mirror_host", "mirror is off"],
    );
    refused(
        &[
            "--mirror",
            "--mirror-host",
            "Repo.Example.com",
            "--public-url",
            "https://repo.example.com/hex",
        ],
        &["\"repo.example.com\"", "public_url", "command line"],
    );
    assert!(
        !tmp.path().join("hexrepo-data").exists(),
        "a refused configuration created files"
    );
}
