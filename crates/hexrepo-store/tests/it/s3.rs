//! A real S3-compatible server for the tests: moto's S3 server, started by `tools/s3-server`
//! on a free loopback port (the README's test command installs it). A missing server fails
//! the test; it never skips.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use hexrepo_store::{S3Option, Store, StoreOptions};

/// The bucket every test uses; prefixes keep tests apart.
pub const BUCKET: &str = "hexrepo";

pub struct S3Server {
    child: Child,
    pub endpoint: String,
}

impl S3Server {
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
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("tools/s3-server did not start: {line:?}"))
            .to_owned();
        S3Server {
            child,
            endpoint: format!("http://{address}"),
        }
    }

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
