//! `hexrepo retire` and `hexrepo unretire`: change one release's retirement in a repository
//! folder and re-sign only what names it.

use std::path::PathBuf;
use std::process::ExitCode;

use hexrepo_registry::retire::{Reason, Retirement, set_retirement};

/// The release and signing inputs both commands share.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The repository: a folder or a storage URL (s3://bucket/prefix).
    #[arg(value_name = "PUBLIC_DIR")]
    location: String,
    /// The package.
    package: String,
    /// The release's version.
    version: String,
    /// PEM file with the registry's RSA private key.
    #[arg(long)]
    private_key: PathBuf,
    /// The repository name the registry was built with.
    #[arg(long)]
    name: String,
}

/// Arguments of `hexrepo retire`.
#[derive(Debug, clap::Args)]
pub struct RetireArgs {
    #[command(flatten)]
    target: Target,
    /// Why: other, invalid, security, deprecated or renamed.
    #[arg(long)]
    reason: Reason,
    /// What users are told (3 to 140 characters).
    #[arg(long)]
    message: String,
}

/// Arguments of `hexrepo unretire`.
#[derive(Debug, clap::Args)]
pub struct UnretireArgs {
    #[command(flatten)]
    target: Target,
}

pub fn run_retire(args: &RetireArgs) -> anyhow::Result<ExitCode> {
    let retirement = Retirement {
        reason: args.reason,
        message: args.message.clone(),
    };
    apply(&args.target, Some(&retirement))
}

pub fn run_unretire(args: &UnretireArgs) -> anyhow::Result<ExitCode> {
    apply(&args.target, None)
}

fn apply(target: &Target, retirement: Option<&Retirement>) -> anyhow::Result<ExitCode> {
    let key = super::read_private_key(&target.private_key)?;
    let changes = set_retirement(
        &super::open_location(&target.location)?,
        &target.name,
        &key,
        &target.package,
        &target.version,
        retirement,
    )?;
    if changes.is_empty() {
        eprintln!(
            "{} {} is already in that state; nothing changed",
            target.package, target.version
        );
    }
    for change in changes {
        println!("{change}");
    }
    Ok(ExitCode::SUCCESS)
}
