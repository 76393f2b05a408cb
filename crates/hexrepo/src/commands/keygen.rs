//! `hexrepo keygen`: writes a new RSA private key (PKCS#8 PEM, mode 0600) for signing a registry.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use hexfmt::keys::{KeyBits, PrivateKey};

/// Arguments of `hexrepo keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the private key.
    #[arg(long, default_value = "private_key.pem")]
    out: PathBuf,
    /// Key size in bits.
    #[arg(long, value_enum, default_value = "2048")]
    bits: Bits,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

/// The key sizes offered.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Bits {
    #[value(name = "2048")]
    Rsa2048,
    #[value(name = "4096")]
    Rsa4096,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.out.exists() {
        if !args.force {
            bail!(
                "{} already exists; pass --force to replace it",
                args.out.display()
            );
        }
        std::fs::remove_file(&args.out)
            .with_context(|| format!("removing {}", args.out.display()))?;
    }
    let key = PrivateKey::generate(match args.bits {
        Bits::Rsa2048 => KeyBits::Rsa2048,
        Bits::Rsa4096 => KeyBits::Rsa4096,
    })?;
    super::write_private_key(&args.out, &key)?;
    println!("* creating {}", args.out.display());
    println!("public key fingerprint: {}", key.public_key().fingerprint());
    Ok(ExitCode::SUCCESS)
}
