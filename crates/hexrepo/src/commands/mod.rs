//! The command line: one variant per subcommand, each implemented in its own file.

mod audit;
mod build;
mod config;
mod key;
mod keygen;
mod mirror;
mod mirror_schedule;
mod progress;
mod push;
mod retire;
mod serve;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// A self-hosted Hex package repository.
#[derive(Debug, Parser)]
#[command(name = "hexrepo", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a repository over HTTP (creates one on first run).
    Serve(serve::Args),
    /// Build or update the registry of PUBLIC_DIR from PUBLIC_DIR/tarballs (like `mix hex.registry build`).
    Build(build::Args),
    /// Generate an RSA private key for signing a registry.
    Keygen(keygen::Args),
    /// Mark a release as retired and re-sign its package.
    Retire(retire::RetireArgs),
    /// Clear a release's retirement and re-sign its package.
    Unretire(retire::UnretireArgs),
    /// Upload a repository folder's files to S3 or another folder, indexes last (safe `aws s3 sync`).
    Push(push::Args),
    /// Audit a repository folder or URL: signatures, origin fields, checksums.
    Verify(verify::Args),
    /// Manage repository keys.
    Key(key::Args),
    /// Inspect configuration.
    Config(config::Args),
    /// Print the audit log of writes (publish, revert, retire, docs, keys).
    Audit(audit::Args),
    /// Mirror an upstream repository (hex.pm by default), verifying every file.
    Mirror(mirror::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Build(args) => build::run(&args),
        Command::Keygen(args) => keygen::run(&args),
        Command::Retire(args) => retire::run_retire(&args),
        Command::Unretire(args) => retire::run_unretire(&args),
        Command::Push(args) => push::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Key(args) => key::run(&args),
        Command::Config(args) => config::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Mirror(args) => mirror::run(&args),
    }
}

/// Reads a private key file, naming it in any error.
fn read_private_key(path: &Path) -> anyhow::Result<hexfmt::keys::PrivateKey> {
    let pem =
        std::fs::read(path).with_context(|| format!("reading private key {}", path.display()))?;
    hexfmt::keys::PrivateKey::from_pem(&pem)
        .with_context(|| format!("reading private key {}", path.display()))
}

/// Reads a public key file, naming it in any error.
fn read_public_key(path: &PathBuf) -> anyhow::Result<hexfmt::keys::PublicKey> {
    let pem =
        std::fs::read(path).with_context(|| format!("reading public key {}", path.display()))?;
    hexfmt::keys::PublicKey::from_pem(&pem)
        .with_context(|| format!("reading public key {}", path.display()))
}

/// Writes a private key as PKCS#8 PEM with mode 0600, refusing to replace an existing file
/// unless `force`.
fn write_private_key(path: &Path, key: &hexfmt::keys::PrivateKey) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pem = key.to_pkcs8_pem()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The store a command-line location names: a folder, `file:///path`, or `s3://bucket/prefix`
/// (configured by the `AWS_*` variables).
fn open_location(location: &str) -> anyhow::Result<hexrepo_store::Store> {
    hexrepo_store::Store::open(location, &hexrepo_store::StoreOptions::default())
        .with_context(|| format!("opening {location}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
