//! What `hexrepo mirror sync` shows while it runs: on a terminal (a pty made by script(1)), a
//! bar over the tarballs with their count, rate and ETA; anywhere else (a dumb terminal too),
//! plain lines; and in both a summary with the wall time. The relay holds a download so the bar is caught mid-way.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::mirror_support::{Upstream, sync_command, sync_ok};
use crate::relay::StallingRelay;
use crate::support::{StaticServer, require_programs, require_rebar3_and_nginx, temp_dir};

/// How long anything the test waits for may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn mirror_sync_draws_a_bar_on_a_terminal_and_plain_lines_elsewhere() {
    require_rebar3_and_nginx();
    require_programs(&["script"]);
    let upstream = Upstream::new();
    let nginx = StaticServer::start(&upstream.public());
    let relay = StallingRelay::start(nginx.port(), 3);
    let (mirror, private, logs) = (temp_dir(), temp_dir(), temp_dir());
    let mut sync = sync_command(&upstream, &relay.url(), mirror.path(), private.path(), &[]);
    sync.args(["--jobs", "1"]);
    let typescript = logs.path().join("typescript");
    let mut child = on_a_terminal(&sync, &typescript)
        .spawn()
        .expect("start script(1)");
    let screen =
        || String::from_utf8_lossy(&fs::read(&typescript).unwrap_or_default()).into_owned();

    // Three tarballs of five in, the fourth held by the relay: the bar stands at 3/5.
    let deadline = Instant::now() + DEADLINE;
    while !screen().contains("3/5 (") {
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            panic!("no bar at 3/5 on the terminal:\n{}", screen());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let shown = screen();
    for part in ["tarballs [", "/s, ETA "] {
        assert!(shown.contains(part), "no {part:?} in:\n{shown}");
    }
    // Released, the download fails and so does the sync, which still ends with its summary.
    drop(relay);
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the sync did not end:\n{}", screen());
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "{}", screen());
    let shown = screen();
    assert!(
        shown.contains("packages mirrored; tarballs: 3 fetched") && shown.contains("; took "),
        "{shown}"
    );

    // Not a terminal: plain lines, and no escape codes.
    let out = sync_ok(&upstream, &nginx.url(), mirror.path(), private.path(), &[]);
    for line in [
        "fetching names and versions",
        "upstream lists 4 packages; fetching 4 packages",
        "4 packages verified; checking 5 tarballs",
        "writing registry files",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "no line {line:?} in:\n{out}"
        );
    }
    assert!(out.contains("tarballs: 2 fetched, 3 skipped"), "{out}");
    assert!(out.contains("; took "), "{out}");
    assert!(!out.contains('\x1b'), "escape codes in:\n{out}");

    // A terminal that cannot draw a bar (TERM=dumb) gets the plain lines too.
    let sync = sync_command(&upstream, &nginx.url(), mirror.path(), private.path(), &[]);
    let dumb = logs.path().join("dumb");
    let mut script = on_a_terminal(&sync, &dumb);
    script.env("TERM", "dumb");
    let status = script.status().expect("run script(1)");
    let shown = String::from_utf8_lossy(&fs::read(&dumb).unwrap()).into_owned();
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("4 packages verified; checking 5 tarballs\r\n") && !shown.contains("ETA"),
        "{shown}"
    );
}

/// `cmd` run by script(1) on a pseudo-terminal of its own (with a TERM that draws), its screen
/// written to `typescript` as it goes.
fn on_a_terminal(cmd: &Command, typescript: &Path) -> Command {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| quote(&arg.to_string_lossy()))
        .collect();
    let mut script = Command::new("script");
    script
        .args(["--quiet", "--flush", "--return", "--command"])
        .arg(line.join(" "))
        .arg(typescript)
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(dir) = cmd.get_current_dir() {
        script.current_dir(dir);
    }
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => script.env(name, value),
            None => script.env_remove(name),
        };
    }
    script
}
