//! `hexrepo verify (DIR | URL)`: audits a repository folder or bucket, or a served repository over HTTP,
//! and exits non-zero when anything is wrong.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use hexrepo_registry::verify::{Conditional, Source, StoreSource, verify};

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

/// The largest response body read from a repository: hex.pm caps tarballs at 16 MiB and its
/// largest registry file is a few MiB, so this only bounds what a hostile server can make us
/// hold in memory.
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// A repository served over HTTP (also the upstream of `hexrepo mirror sync`).
pub(super) struct HttpSource {
    base: String,
    client: reqwest::blocking::Client,
    auth: Option<String>,
}

impl HttpSource {
    /// A client for the repository at `base`, sending `auth` as `Authorization` if given.
    pub(super) fn new(base: &str, auth: Option<String>) -> anyhow::Result<HttpSource> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_mins(1))
            // An unreachable upstream should fail fast: the lazy mirror then serves its copy.
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("hexrepo/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("starting the HTTP client")?;
        Ok(HttpSource {
            base: base.trim_end_matches('/').to_owned(),
            client,
            auth,
        })
    }
}

impl Source for HttpSource {
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        match self.fetch_if_none_match(path, None)? {
            Conditional::Found { bytes, .. } => Ok(Some(bytes)),
            Conditional::Missing => Ok(None),
            Conditional::NotModified => Err(format!("{path}: 304 to an unconditional request")),
        }
    }

    fn fetch_if_none_match(&self, path: &str, etag: Option<&str>) -> Result<Conditional, String> {
        let url = format!("{}/{path}", self.base);
        let mut request = self.client.get(&url);
        if let Some(auth) = &self.auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request.send().map_err(|e| format!("GET {url}: {e}"))?;
        match response.status() {
            reqwest::StatusCode::OK => {
                let etag = response
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let mut bytes = Vec::new();
                response
                    .take(MAX_BODY + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("GET {url}: {e}"))?;
                if bytes.len() as u64 > MAX_BODY {
                    return Err(format!("GET {url}: larger than {MAX_BODY} bytes"));
                }
                Ok(Conditional::Found { bytes, etag })
            }
            reqwest::StatusCode::NOT_MODIFIED => Ok(Conditional::NotModified),
            reqwest::StatusCode::NOT_FOUND => Ok(Conditional::Missing),
            status => Err(format!("GET {url}: HTTP {status}")),
        }
    }
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
