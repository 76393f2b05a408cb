//! How `hexrepo mirror sync` shows a sync's [`Progress`]: on a terminal (stderr), an indicatif
//! spinner for the registry phases and a bar over the tarballs with rate and ETA; anywhere else
//! (CI, logs, tests, a dumb terminal) plain lines on stdout, as many as a log can bear.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Duration;

use hexrepo_registry::mirror::sync::{Phase, Progress};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// Plain mode prints a line every this many tarballs...
const TARBALL_LINE_EVERY: usize = 100;

/// ...and every this many package files (a full hex.pm sync verifies tens of thousands).
const PACKAGE_LINE_EVERY: usize = 1000;

/// How often the spinner turns while a phase makes no countable progress.
const TICK: Duration = Duration::from_millis(120);

/// Where a sync's progress goes.
pub(super) enum SyncDisplay {
    /// A live bar on the terminal.
    Bar(ProgressBar),
    /// Plain lines on stdout, counting events under a lock of its own: the fetch threads'
    /// own counts can reach the printer out of order.
    Lines(Mutex<Counts>),
}

/// Package files and tarballs seen so far.
#[derive(Default)]
pub(super) struct Counts {
    packages: usize,
    tarballs: usize,
}

impl SyncDisplay {
    /// A bar when stderr is a terminal that can draw one, plain lines otherwise.
    pub(super) fn new() -> SyncDisplay {
        // indicatif hides its bar on a dumb terminal (TERM unset or `dumb`): lines then too.
        let bar = ProgressBar::new_spinner().with_style(spinner_style());
        if !std::io::stderr().is_terminal() || bar.is_hidden() {
            return SyncDisplay::Lines(Mutex::default());
        }
        bar.enable_steady_tick(TICK);
        SyncDisplay::Bar(bar)
    }

    /// Shows one event; called from the sync's fetch threads.
    pub(super) fn show(&self, event: Progress) {
        match self {
            SyncDisplay::Bar(bar) => show_on_bar(bar, event),
            SyncDisplay::Lines(counts) => {
                show_as_line(&mut counts.lock().expect("no printer panics"), event);
            }
        }
    }

    /// Clears the bar, so the summary that follows starts on a clean line.
    pub(super) fn finish(&self) {
        if let SyncDisplay::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn show_on_bar(bar: &ProgressBar, event: Progress) {
    match event {
        Progress::Phase(Phase::Tarballs { packages, total }) => {
            bar.set_style(tarball_style());
            bar.set_message(format!("{packages} packages verified; tarballs"));
            bar.set_length(total as u64);
            bar.set_position(0);
            // The rate and ETA are the tarballs', not the registry phases' before them.
            bar.reset_eta();
        }
        Progress::Phase(phase) => {
            bar.set_style(spinner_style());
            bar.set_message(phase.to_string());
        }
        Progress::Packages { done } => bar.set_message(format!("verifying packages: {done}")),
        // Events from parallel fetches may arrive out of order: count them instead.
        Progress::Tarballs { .. } => bar.inc(1),
    }
}

fn show_as_line(counts: &mut Counts, event: Progress) {
    match event {
        Progress::Phase(phase) => println!("{phase}"),
        Progress::Packages { .. } => {
            counts.packages += 1;
            if counts.packages.is_multiple_of(PACKAGE_LINE_EVERY) {
                println!("packages: {} verified", counts.packages);
            }
        }
        Progress::Tarballs { total, .. } => {
            counts.tarballs += 1;
            if counts.tarballs.is_multiple_of(TARBALL_LINE_EVERY) {
                println!("tarballs: {}/{total}", counts.tarballs);
            }
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.green} [{elapsed}] {msg}")
        .expect("a valid indicatif template")
}

fn tarball_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner:.green} [{elapsed}] {msg} [{bar:30.cyan/blue}] {pos}/{len} ({rate}, ETA {eta})",
    )
    .expect("a valid indicatif template")
    .with_key(
        "rate",
        |state: &ProgressState, out: &mut dyn std::fmt::Write| {
            let _ = write!(out, "{:.1}/s", state.per_sec());
        },
    )
    .progress_chars("=> ")
}
