//! `hexrepo build PUBLIC_DIR --name NAME --private-key KEY`: the drop-in for
//! `mix hex.registry build`, printing the same `* creating` / `* updating` / `* removing` lines
//! (and, with `--mix-compatible`, writing the same files byte for byte).
//! PUBLIC_DIR may also be a storage URL (`s3://bucket/prefix`).

use std::path::PathBuf;
use std::process::ExitCode;

use hexrepo_registry::build::{BuildOptions, build};

/// Arguments of `hexrepo build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The repository: a folder (tarballs are read from PUBLIC_DIR/tarballs), or a storage
    /// URL such as s3://bucket/prefix (S3 settings from the AWS_* variables).
    #[arg(value_name = "PUBLIC_DIR")]
    location: String,
    /// Repository name written into every registry file; clients must use the same name.
    #[arg(long)]
    name: String,
    /// PEM file with the RSA private key that signs the registry.
    #[arg(long)]
    private_key: PathBuf,
    /// Build from the valid tarballs and list the invalid ones, instead of writing nothing.
    #[arg(long)]
    skip_invalid: bool,
    /// Write exactly what `mix hex.registry build` writes, byte for byte. By default a release
    /// without a publication time gets its tarball's modification time as `published_at` (kept
    /// on later builds), which Hex's release-age cooldowns and `mix hex.outdated` need: mix
    /// writes none, and Hex lets a release without one through any cooldown. Publication times
    /// already in the registry (from API publishes or earlier builds) are kept in both modes.
    #[arg(long)]
    mix_compatible: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let key = super::read_private_key(&args.private_key)?;
    let store = super::open_location(&args.location)?;
    let report = build(&BuildOptions {
        store: &store,
        repository: &args.name,
        key: &key,
        skip_invalid: args.skip_invalid,
        mix_compatible: args.mix_compatible,
    })?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for change in &report.changes {
        println!("{change}");
    }
    for skipped in &report.skipped {
        eprintln!("skipped {skipped}");
    }
    eprintln!(
        "{} packages, {} releases; {} tarballs read, {} files changed{}",
        report.packages,
        report.releases,
        report.tarballs_read,
        report.changes.len(),
        if report.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} invalid tarballs skipped", report.skipped.len())
        }
    );
    Ok(ExitCode::SUCCESS)
}
