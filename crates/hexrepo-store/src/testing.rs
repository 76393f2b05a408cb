//! A real S3-compatible server for tests (feature `test-support`): moto's S3 server, started
//! by `tools/s3-server` on a free loopback port (the README's test command installs it). A
//! missing server fails the test; it never skips.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{S3Option, Store, StoreOptions};

/// The bucket every test uses; prefixes keep tests apart.
pub const BUCKET: &str = "hexrepo";

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl S3Server {
    /// Starts a server with the bucket [`BUCKET`].
    pub fn start() -> S3Server {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/s3-server");
        let mut child = Command::new(&script)
            .args(["--port", "0", "--bucket", BUCKET])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("tools/s3-server did not start: {line:?}"))
            .to_owned();
        // Keep reading its output, so a chatty server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        S3Server {
            child,
            endpoint: format!("http://{address}"),
        }
    }

    /// Options that reach it, ignoring the machine's `AWS_*` variables.
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            s3: vec![
                (S3Option::Endpoint, self.endpoint.clone()),
                (S3Option::Region, "us-east-1".into()),
                (S3Option::AccessKeyId, "test".into()),
                (S3Option::SecretAccessKey, "test".into()),
                (S3Option::AllowHttp, "true".into()),
                (S3Option::VirtualHostedStyle, "false".into()),
            ],
            ignore_env: true,
        }
    }

    /// The URL of the store under `PREFIX`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// The environment that points `hexrepo` (or any AWS tool) at it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.options()
            .s3
            .into_iter()
            .map(|(option, value)| (option.env_var(), value))
            .collect()
    }

    /// The store under `s3://hexrepo/PREFIX`.
    pub fn store(&self, prefix: &str) -> Store {
        Store::open(&format!("s3://{BUCKET}/{prefix}"), &self.options()).unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
