//! `hexrepo audit`: prints the repository's audit log, one write per line, oldest first.

use std::process::ExitCode;

use hexrepo_registry::audit::read;

use crate::settings::{Flags, Settings};

/// Arguments of `hexrepo audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    flags: Flags,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&args.flags)?;
    for entry in read(&settings.open_store()?)? {
        if args.json {
            println!("{}", serde_json::to_string(&entry)?);
        } else {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.time);
            println!(
                "{}  {:<12} {:<14} {}{}  from {}",
                humantime::format_rfc3339_seconds(time),
                entry.actor,
                entry.action,
                entry.package.as_deref().unwrap_or("-"),
                entry
                    .version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default(),
                entry.remote.as_deref().unwrap_or("local"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
