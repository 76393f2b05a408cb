//! The `hexrepo` binary: parses the command line and hands each subcommand to its own module in
//! `commands/`. Library crates do the work; this crate only resolves inputs, prints and exits.

mod commands;
mod settings;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
