//! The abuse suite: `hexrepo serve` (the binary, on loopback) under the loads the edge must bound
//! (issue 14). Throughout each scenario the server's peak memory stays under [`MAX_RSS`] and a
//! fresh `/healthz` answers within [`HEALTHZ_WITHIN`]; afterwards the server still serves and,
//! where it wrote, `hexrepo verify` is clean.
//!
//! A test binary of its own, so cargo runs it after the other suites rather than beside them
//! (the latency bound is about the server, not about a machine busy with other tests), and its
//! scenarios run one at a time ([`SERIAL`]).

#[allow(dead_code)]
#[path = "../it/serve_support.rs"]
mod serve_support;
#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

mod clients;
mod scenarios;

use std::sync::Mutex;
use std::time::Duration;

/// The most memory the server may have used at any point of a scenario (`VmHWM`).
pub const MAX_RSS: u64 = 128 * 1024 * 1024;

/// How fast a fresh `/healthz` must answer while a scenario runs.
pub const HEALTHZ_WITHIN: Duration = Duration::from_millis(100);

/// One scenario at a time: each measures one server alone.
static SERIAL: Mutex<()> = Mutex::new(());

/// Held for a whole scenario, so no other runs beside it (a failed one does not poison it).
pub fn alone() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
