//! `hexrepo verify (DIR | URL)`: audits a repository folder or bucket, or a served repository over HTTP,
//! and exits non-zero when anything is wrong.

use std::path::PathBuf;
use std::process::ExitCode;

use hexrepo_registry::upstream::HttpSource;
use hexrepo_registry::verify::{Source, StoreSource, verify};

/// Arguments of `hexrepo verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A repository folder, a storage URL (s3://bucket/prefix), or the repository's base
    /// URL (http:// or https://).
    location: String,
    /// The repository name clients expect in every file.
    #[arg(long)]
    name: String,
    /// PEM file with the repository's public key (PKCS#1 or SPKI).
    #[arg(long)]
    public_key: PathBuf,
    /// Basic-auth credentials for a URL, as USER:PASSWORD.
    #[arg(long, conflicts_with = "auth_key")]
    auth: Option<String>,
    /// A repository key for a URL, sent as `Authorization: KEY` like mix and rebar3 do.
    #[arg(long)]
    auth_key: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let key = super::read_public_key(&args.public_key)?;
    let location = &args.location;
    let source: Box<dyn Source> = if location.starts_with("http://")
        || location.starts_with("https://")
    {
        let auth = match (&args.auth, &args.auth_key) {
            (Some(userpass), _) => Some(format!("Basic {}", base64_encode(userpass.as_bytes()))),
            (None, Some(key)) => Some(key.clone()),
            (None, None) => None,
        };
        Box::new(HttpSource::new(location, auth)?)
    } else {
        anyhow::ensure!(
            location.contains("://") || std::path::Path::new(location).is_dir(),
            "{location} is neither a folder, a storage URL nor an http(s) URL"
        );
        Box::new(StoreSource(super::open_location(location)?))
    };
    let report = verify(source.as_ref(), &args.name, &key);
    for note in &report.notes {
        println!("note: {note}");
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    println!(
        "{}: {} packages, {} releases checked, {} problems",
        if report.is_ok() { "ok" } else { "FAILED" },
        report.packages,
        report.releases,
        report.problems.len()
    );
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
