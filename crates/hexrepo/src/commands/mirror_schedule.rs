//! The scheduled mirror sync of `serve --mirror --mirror-sync-every DURATION`: one background
//! thread runs `hexrepo mirror sync`'s sync at startup and then DURATION after each run ends, so
//! two never overlap, and logs each summary through `tracing` (failures at warn, naming the
//! file). Serving never waits for it: the server only reads what the sync has stored, and a sync
//! never exposes an index naming a missing file.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use hexrepo_registry::mirror::sync::{DEFAULT_JOBS, Progress, SyncReport, summary};

use super::mirror::MirrorSync;
use crate::settings::Settings;

/// The running schedule. Dropping it stops the schedule: between syncs the thread is joined; a
/// sync under way is left to end with the process (the next sync resumes it, as after a kill).
pub(super) struct Schedule {
    state: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    stop: bool,
    syncing: bool,
}

/// Starts the schedule when `mirror_sync_every` is set. The upstream key and the mirror's
/// store are checked here, so a bad setting stops `serve` at startup rather than in a log line.
pub(super) fn start(settings: &Settings) -> anyhow::Result<Option<Schedule>> {
    let Some(every) = settings.mirror_sync_every.value else {
        return Ok(None);
    };
    let mirror = MirrorSync::open(settings)?;
    let packages = settings.mirror_packages.value.clone();
    let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
    let shared = Arc::clone(&state);
    let thread = std::thread::Builder::new()
        .name("mirror-sync".into())
        .spawn(move || run(&mirror, &packages, every, &shared))
        .context("starting the mirror sync thread")?;
    Ok(Some(Schedule {
        state,
        thread: Some(thread),
    }))
}

fn run(mirror: &MirrorSync, packages: &[String], every: Duration, state: &(Mutex<State>, Condvar)) {
    let (lock, wake) = state;
    tracing::info!(
        every = %humantime::format_duration(every),
        packages = %if packages.is_empty() { "all".to_owned() } else { packages.join(",") },
        "mirror sync scheduled: {}",
        mirror.describe()
    );
    loop {
        {
            let mut state = lock.lock().expect("no panic holds the schedule lock");
            if state.stop {
                return;
            }
            state.syncing = true;
        }
        sync_once(mirror, packages);
        let mut state = lock.lock().expect("no panic holds the schedule lock");
        state.syncing = false;
        let (state, _) = wake
            .wait_timeout_while(state, every, |state| !state.stop)
            .expect("no panic holds the schedule lock");
        if state.stop {
            return;
        }
    }
}

/// One sync, logged; a panic in it is logged too and leaves the schedule running.
fn sync_once(mirror: &MirrorSync, packages: &[String]) {
    tracing::info!("mirror sync starting");
    let progress = |event| {
        if let Progress::Phase(phase) = event {
            tracing::debug!("mirror sync: {phase}");
        }
    };
    let synced = std::panic::catch_unwind(AssertUnwindSafe(|| {
        mirror.sync(packages, DEFAULT_JOBS, &progress)
    }));
    if let Ok(report) = synced {
        log(&report);
    } else {
        tracing::warn!("mirror sync failed: it panicked; the next one starts on time");
    }
}

fn log(report: &SyncReport) {
    // The first line is the counts; the others repeat what is logged below, one by one.
    let counts = summary(report).swap_remove(0);
    tracing::info!("mirror sync done: {counts}");
    for dep in &report.other_repositories {
        tracing::info!("mirror sync skipped a dependency on another repository: {dep}");
    }
    for failure in &report.failures {
        tracing::warn!(file = %failure.path, "mirror sync failed: {failure}");
    }
}

impl Drop for Schedule {
    fn drop(&mut self) {
        let (lock, wake) = &*self.state;
        let syncing = {
            let Ok(mut state) = lock.lock() else { return };
            state.stop = true;
            state.syncing
        };
        wake.notify_all();
        if syncing {
            tracing::info!(
                "a mirror sync is under way: it stops with the server, and the next one resumes it"
            );
        } else if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
