//! `serve --mirror --mirror-mode offline --mirror-sync-every`: syncs from a running server at startup and after each
//! interval, of the `--mirror-package` allow-list only, logged through `tracing`, with the
//! server serving whatever they do; and the two settings' layers and refusals.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::mirror_support::{
    UPSTREAM, Upstream, files, requests_for, served_upstream, sync_command,
};
use crate::serve_support::{HexrepoServer, assert_serve_refuses, hexrepo_in, http_get};
use crate::support::{require_rebar3_and_nginx, run, stdout_text, temp_dir};

/// How long a scheduled sync may take to show its effect on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// `hexrepo serve --mirror --mirror-mode offline --mirror-sync-every 1s` of `upstream_url` into
/// `mirror`, with `extra`.
fn serve_mirror(
    work: &Path,
    mirror: &Path,
    upstream_url: &str,
    key: &Path,
    extra: &[&str],
) -> HexrepoServer {
    let mut args = vec![
        "--mirror",
        // Offline: what the server serves comes from the scheduled syncs alone.
        "--mirror-mode",
        "offline",
        "--mirror-storage",
        mirror.to_str().unwrap(),
        "--mirror-sync-every",
        "1s",
        "--upstream-url",
        upstream_url,
        "--upstream-name",
        UPSTREAM,
        "--upstream-public-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    HexrepoServer::start(
        work,
        &work.join("public"),
        &work.join("private_key.pem"),
        &args,
    )
}

/// Polls `ready` until true; fails with `context()` after [`DEADLINE`].
fn wait_until(what: &str, ready: impl Fn() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + DEADLINE;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}\n{}",
            context()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_syncs_the_allow_list_at_startup_and_picks_up_a_new_upstream_release() {
    let (upstream, nginx) = served_upstream();
    let (work, mirror) = (temp_dir(), temp_dir());
    let server = serve_mirror(
        work.path(),
        mirror.path(),
        &nginx.url(),
        &upstream.public_key(),
        &["--mirror-package", "alpha"],
    );
    let mut closure = vec![
        "names",
        "packages/alpha",
        "packages/beta",
        "packages/gamma",
        "public_key",
        "tarballs/alpha-1.0.0.tar",
        "tarballs/beta-1.0.0.tar",
        "tarballs/gamma-1.0.0.tar",
        "tarballs/gamma-1.1.0.tar",
        "versions",
    ];
    wait_until(
        "the startup sync mirrors alpha's closure",
        || files(mirror.path()) == closure,
        || format!("{:?}\n{}", files(mirror.path()), server.log()),
    );

    // nginx's ETag is the file's mtime in whole seconds and its size: a `names` rebuilt within
    // the second it was first written, at the same size, would keep its ETag, and a sync
    // revalidating it would rightly be told 304. Publish in a later second.
    thread::sleep(Duration::from_millis(1100));
    upstream.publish("gamma", "1.2.0", &[]);
    let same_as_upstream = |file: &str| {
        fs::read(mirror.path().join(file)).ok() == fs::read(upstream.public().join(file)).ok()
    };
    wait_until(
        "a later sync mirrors the new gamma release",
        || same_as_upstream("packages/gamma") && same_as_upstream("tarballs/gamma-1.2.0.tar"),
        || server.log(),
    );
    closure.push("tarballs/gamma-1.2.0.tar");
    closure.sort_unstable();
    // The indexes come last in a sync: wait for them before comparing everything.
    wait_until(
        "the indexes follow",
        || ["names", "versions"].iter().all(|f| same_as_upstream(f)),
        || server.log(),
    );
    assert_eq!(files(mirror.path()), closure);
    let response = http_get(server.port(), "/mirrors/hexpm/packages/gamma", &[]).unwrap();
    assert_eq!(response.status, 200);
    assert!(response.body == fs::read(upstream.public().join("packages/gamma")).unwrap());
    assert_eq!(requests_for(&nginx, "packages/delta"), 0);
    assert_eq!(requests_for(&nginx, "tarballs/delta-1.0.0.tar"), 0);

    // Logged at info, and never two at once: each start is followed by its end.
    let log = server.log();
    let events: Vec<&str> = log
        .lines()
        .filter_map(|line| {
            if line.contains("mirror sync starting") {
                Some("start")
            } else if line.contains("mirror sync done: ") {
                assert!(line.contains("INFO"), "{line}");
                Some("done")
            } else {
                None
            }
        })
        .collect();
    assert!(events.len() >= 4, "{log}");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            *event,
            ["start", "done"][i % 2],
            "overlapping syncs:\n{log}"
        );
    }
}

#[test]
fn serve_keeps_serving_when_scheduled_syncs_fail_and_logs_each_failure_naming_the_file() {
    require_rebar3_and_nginx();
    let upstream = Upstream::new();
    // Nothing listens there: every sync fails at its first file.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (work, mirror) = (temp_dir(), temp_dir());
    let server = serve_mirror(
        work.path(),
        mirror.path(),
        &url,
        &upstream.public_key(),
        &[],
    );
    let failures = || {
        server
            .log()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("mirror sync failed: names: fetching"))
            .count()
    };
    wait_until("two failed syncs", || failures() >= 2, || server.log());
    assert_eq!(http_get(server.port(), "/names", &[]).unwrap().status, 200);
    assert_eq!(files(mirror.path()), Vec::<String>::new());
}

#[test]
fn the_schedule_settings_resolve_in_layers_and_a_schedule_without_the_mirror_is_refused() {
    let tmp = temp_dir();
    fs::write(
        tmp.path().join("hexrepo.toml"),
        "mirror = true\nmirror_sync_every = \"1h 30m\"\nmirror_packages = [\"a\", \"b\"]\n",
    )
    .unwrap();
    let text = stdout_text(&run(&mut hexrepo_in(tmp.path(), &["config", "show"])));
    for line in [
        "mirror_sync_every = \"1h 30m\"  # config file hexrepo.toml",
        "mirror_packages = [\"a\", \"b\"]  # config file hexrepo.toml",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    let mut show = hexrepo_in(
        tmp.path(),
        &["config", "show", "--mirror-sync-every", "30m"],
    );
    show.env("HEXREPO_MIRROR_PACKAGES", "c, d");
    let text = stdout_text(&run(&mut show));
    for line in [
        "mirror_sync_every = \"30m\"  # command line",
        "mirror_packages = [\"c\", \"d\"]  # environment HEXREPO_MIRROR_PACKAGES",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }

    fs::remove_file(tmp.path().join("hexrepo.toml")).unwrap();
    assert_serve_refuses(
        tmp.path(),
        &["--mirror-sync-every", "1h"],
        &[],
        &["mirror_sync_every", "--mirror,"],
    );
    assert_serve_refuses(
        tmp.path(),
        &["--mirror"],
        &[("HEXREPO_MIRROR_SYNC_EVERY", "soon")],
        &["\"soon\"", "HEXREPO_MIRROR_SYNC_EVERY"],
    );
    assert!(
        !tmp.path().join("hexrepo-data").exists(),
        "a refused configuration created files"
    );
}

#[test]
fn mirror_sync_without_package_flags_mirrors_the_mirror_packages_setting() {
    let (upstream, nginx) = served_upstream();
    let (mirror, private) = (temp_dir(), temp_dir());
    let mut cmd = sync_command(&upstream, &nginx.url(), mirror.path(), private.path(), &[]);
    cmd.env("HEXREPO_MIRROR_PACKAGES", "beta");
    let out = stdout_text(&run(&mut cmd));
    assert!(out.contains("2 packages mirrored"), "{out}");
    let packages: Vec<String> = files(mirror.path())
        .into_iter()
        .filter(|f| f.starts_with("packages/"))
        .collect();
    assert_eq!(packages, ["packages/beta", "packages/gamma"]);
}
