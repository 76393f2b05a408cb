//! A `hexrepo mirror sync` killed with SIGKILL in the middle of a download, then run again:
//! the killed run leaves only whole, verified tarballs and no registry file; the next run skips
//! them, fetches the rest, and ends with the upstream's files byte for byte. A relay in front of
//! nginx ([`StallingRelay`]) decides where the first run stops, so no timing is involved.

use std::fs::{self, File};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::mirror_support::{Upstream, files, requests_for, sync_command, sync_ok};
use crate::relay::StallingRelay;
use crate::support::{StaticServer, read_text, require_rebar3_and_nginx, sha256_upper, temp_dir};

/// Tarballs the first run stores whole before the relay cuts the next one off.
const WHOLE: usize = 8;

/// Packages added to the standard upstream, so the first run stops well before its end.
const EXTRA_PACKAGES: usize = 12;

/// How long anything the test waits for may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn a_sync_killed_mid_download_leaves_whole_tarballs_only_and_the_next_run_fetches_the_rest() {
    require_rebar3_and_nginx();
    let upstream = Upstream::new();
    let extra: Vec<(String, String)> = (1..=EXTRA_PACKAGES)
        .map(|i| (format!("pkg{i:02}"), "1.0.0".to_owned()))
        .collect();
    upstream.publish_many(&extra);
    let tarballs: Vec<String> = files(&upstream.public().join("tarballs"))
        .into_iter()
        .map(|name| format!("tarballs/{name}"))
        .collect();
    assert_eq!(tarballs.len(), 5 + EXTRA_PACKAGES);
    let nginx = StaticServer::start(&upstream.public());
    let relay = StallingRelay::start(nginx.port(), WHOLE);
    let (mirror, private, logs) = (temp_dir(), temp_dir(), temp_dir());

    // One fetch at a time, so the tarballs before the cut one are all written when it stalls.
    let mut cmd = sync_command(&upstream, &relay.url(), mirror.path(), private.path(), &[]);
    let (stdout, stderr) = (logs.path().join("stdout"), logs.path().join("stderr"));
    cmd.args(["--jobs", "1"])
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).unwrap())
        .stderr(File::create(&stderr).unwrap());
    let mut child = cmd.spawn().expect("start hexrepo mirror sync");
    let output = || format!("{}{}", read_text(&stdout), read_text(&stderr));
    let stalled = wait_for(&mut child, &output, || relay.stalled());
    let stalled = stalled.trim_start_matches('/').to_owned();
    // Tarballs in place: not the temporaries a group commit stages before renaming them.
    let stored = || {
        files(mirror.path())
            .into_iter()
            .filter(|f| f.starts_with("tarballs/") && !f.starts_with("tarballs/."))
            .count()
    };
    wait_for(&mut child, &output, || (stored() == WHOLE).then_some(()));
    child.kill().expect("SIGKILL the sync");
    child.wait().expect("reap the sync");

    // Only whole tarballs, each the upstream's bytes; no registry file, no temporary file.
    let left = files(mirror.path());
    assert_eq!(left.len(), WHOLE, "{left:?}\n{}", output());
    assert!(!left.contains(&stalled), "{stalled} stored: {left:?}");
    for file in &left {
        assert!(
            tarballs.contains(file),
            "not a repository file: {file} in {left:?}"
        );
        assert_eq!(
            sha256_upper(&mirror.path().join(file)),
            sha256_upper(&upstream.public().join(file)),
            "{file}"
        );
    }
    for index in ["names", "versions", "public_key", "packages"] {
        assert!(!mirror.path().join(index).exists(), "{index} written");
    }

    // A kill inside a commit, between writing a temporary and renaming it, leaves the
    // temporary (named after the dead process): the next run removes it.
    let orphan = mirror.path().join("tarballs").join(format!(
        ".{}.tmp-2147483647-0",
        stalled.trim_start_matches("tarballs/")
    ));
    fs::write(&orphan, b"half a tarball").unwrap();

    let out = sync_ok(&upstream, &nginx.url(), mirror.path(), private.path(), &[]);
    assert!(
        out.contains("removed 1 temporary files an interrupted run left behind"),
        "{out}"
    );
    assert!(!orphan.exists());
    assert!(
        out.contains(&format!(
            "tarballs: {} fetched, {WHOLE} skipped (already verified)",
            tarballs.len() - WHOLE
        )),
        "{out}"
    );
    // Across both runs, each tarball went over the wire once; the cut one, twice.
    let log = nginx.access_log();
    for tarball in &tarballs {
        let expected = if *tarball == stalled { 2 } else { 1 };
        assert_eq!(requests_for(&nginx, tarball), expected, "{tarball}:\n{log}");
    }
    let mirrored = files(mirror.path());
    assert_eq!(mirrored, files(&upstream.public()));
    // public_key is the upstream's key, written as SPKI PEM (upstream's may be PKCS#1).
    for file in mirrored.iter().filter(|f| *f != "public_key") {
        assert!(
            fs::read(mirror.path().join(file)).unwrap()
                == fs::read(upstream.public().join(file)).unwrap(),
            "{file} differs from upstream's"
        );
    }
}

/// Polls `ready` until it gives a value; fails with the sync's output if the sync exits first
/// or [`DEADLINE`] passes.
fn wait_for<T>(child: &mut Child, output: &dyn Fn() -> String, ready: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        if let Some(status) = child.try_wait().expect("poll the sync") {
            panic!(
                "the sync exited ({status}) before being killed:\n{}",
                output()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("waited {DEADLINE:?} in vain:\n{}", output());
        }
        thread::sleep(Duration::from_millis(10));
    }
}
