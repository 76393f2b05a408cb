//! A real S3-compatible server for tests (feature `test-support`): moto's S3 server, started
//! by `tools/s3-server` on a free loopback port (the README's test command installs it). A
//! missing server fails the test; it never skips.

use std::io::{BufRead as _, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
        self.env_via(&self.endpoint)
    }

    /// The environment that points `hexrepo` at it through `endpoint` (a [`Switch`]).
    pub fn env_via(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        self.options()
            .s3
            .into_iter()
            .map(|(option, value)| match option {
                S3Option::Endpoint => (option.env_var(), endpoint.to_owned()),
                _ => (option.env_var(), value),
            })
            .collect()
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .expect("endpoint ends with the port")
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

/// A TCP relay to a server that a test can switch off and on, to play an outage without
/// losing the server's state: off refuses new connections and cuts open ones.
#[derive(Debug)]
pub struct Switch {
    port: u16,
    target: u16,
    state: Arc<SwitchState>,
}

#[derive(Debug, Default)]
struct SwitchState {
    generation: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

impl Switch {
    /// A relay on a free loopback port to `127.0.0.1:target`, switched on.
    pub fn start(target: u16) -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let switch = Switch {
            port,
            target,
            state: Arc::new(SwitchState::default()),
        };
        switch.serve(listener);
        switch
    }

    /// The relay's port: point clients here.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` of the relay.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Refuses new connections and cuts the open ones.
    pub fn off(&self) {
        self.state.generation.fetch_add(1, Ordering::SeqCst);
        // Wake the accept loop so it drops the listener: connections are then refused.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for stream in self.state.open.lock().expect("open lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again, on the same port.
    pub fn on(&self) {
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(listener) => break listener,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let generation = self.state.generation.load(Ordering::SeqCst);
        let (state, target) = (Arc::clone(&self.state), self.target);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if state.generation.load(Ordering::SeqCst) != generation {
                    return; // switched off: the listener closes here
                }
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                relay(&state, client, upstream);
            }
        });
    }
}

fn relay(state: &SwitchState, client: TcpStream, upstream: TcpStream) {
    let mut open = state.open.lock().expect("open lock");
    for stream in [&client, &upstream] {
        if let Ok(clone) = stream.try_clone() {
            open.push(clone);
        }
    }
    for (mut from, mut to) in [
        (client.try_clone(), upstream.try_clone()),
        (Ok(upstream), Ok(client)),
    ]
    .into_iter()
    .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
    {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}
