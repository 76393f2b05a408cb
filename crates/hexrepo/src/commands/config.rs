//! `hexrepo config show`: the resolved settings, where each came from, secrets redacted.

use std::process::ExitCode;

use crate::settings::{Flags, Settings};

/// Arguments of `hexrepo config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print the resolved settings and the layer each came from.
    Show {
        #[command(flatten)]
        flags: Flags,
    },
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Action::Show { flags } = &args.action;
    for line in Settings::resolve(flags)?.describe() {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
