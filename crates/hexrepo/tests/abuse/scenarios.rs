//! The scenarios of the abuse suite, each against a fresh `hexrepo serve`.

use std::io::Read as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use hexfmt::metadata::Metadata;
use hexfmt::tarball::{MAX_TARBALL_SIZE, TarballBuilder};

use crate::clients::{
    Prober, allow_open_files, connect, connect_small_window, get, healthz, peak_rss, read_response,
    send,
};
use crate::serve_support::{HexrepoServer, hexrepo_in};
use crate::support::{all_output, run, stdout_text, temp_dir};
use crate::{HEALTHZ_WITHIN, MAX_RSS, alone};

/// A server on a fresh folder: `PUBLIC` = `TMP/public`, its key generated at start.
struct Served {
    tmp: tempfile::TempDir,
    public: PathBuf,
    server: HexrepoServer,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        let tmp = temp_dir();
        let public = tmp.path().join("public");
        let server = HexrepoServer::start(
            tmp.path(),
            &public,
            &tmp.path().join("private_key.pem"),
            &[&["--name", "abuse"], extra].concat(),
        );
        Served {
            tmp,
            public,
            server,
        }
    }

    fn port(&self) -> u16 {
        self.server.port()
    }

    fn assert_peak_memory(&self, during: &str) {
        let peak = peak_rss(self.server.pid());
        println!("peak memory during {during}: {} MiB", peak >> 20);
        assert!(
            peak <= MAX_RSS,
            "the server's peak memory was {} MiB (over {} MiB) during {during}",
            peak >> 20,
            MAX_RSS >> 20
        );
    }

    /// `hexrepo verify PUBLIC` exits 0.
    fn assert_verify_clean(&self) {
        let mut cmd = hexrepo_in(self.tmp.path(), &["verify"]);
        cmd.arg(&self.public)
            .args(["--name", "abuse", "--public-key"])
            .arg(self.public.join("public_key"));
        let output = run(&mut cmd);
        assert!(output.status.success(), "{}", all_output(&output));
    }
}

#[test]
fn two_thousand_keep_alive_connections_are_all_served() {
    let _alone = alone();
    allow_open_files(8192);
    let served = Served::start(&[]);
    let prober = Prober::start(served.port());
    let mut connections: Vec<TcpStream> = (0..2000).map(|_| connect(served.port())).collect();
    for round in 0..2 {
        for (i, stream) in connections.iter_mut().enumerate() {
            let response = get(stream, "/names", "")
                .unwrap_or_err(&format!("connection {i}, request {round}"));
            assert_eq!(response.status, 200, "{}", response.head);
        }
    }
    prober.assert_within(HEALTHZ_WITHIN, "2,000 keep-alive connections");
    served.assert_peak_memory("2,000 keep-alive connections");
    drop(connections);
}

#[test]
fn half_open_connections_are_closed_at_the_header_timeout() {
    let _alone = alone();
    allow_open_files(8192);
    let served = Served::start(&["--header-timeout", "2s"]);
    let prober = Prober::start(served.port());
    let opened = Instant::now();
    let mut connections: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut stream = connect(served.port());
            // A request head that never ends.
            send(
                &mut stream,
                b"GET /names HTTP/1.1\r\nHost: abuse\r\nX-Slow: 1\r\n",
            );
            stream
        })
        .collect();
    thread::sleep(Duration::from_secs(1));
    prober.assert_within(HEALTHZ_WITHIN, "1,000 half-open connections");
    for (i, stream) in connections.iter_mut().enumerate() {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        // Closed by the server: EOF (or a reset), perhaps after a 408, never a timeout here.
        let read = stream.read_to_end(&mut rest);
        assert!(
            !matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut),
            "half-open connection {i} still open {:?} after it began: {read:?}",
            opened.elapsed()
        );
    }
    assert!(
        opened.elapsed() < Duration::from_secs(8),
        "closing 1,000 half-open connections took {:?} with a 2 s header timeout",
        opened.elapsed()
    );
    served.assert_peak_memory("1,000 half-open connections");
    assert!(healthz(served.port()) <= HEALTHZ_WITHIN);
}

#[test]
fn made_up_methods_and_paths_grow_nothing() {
    let _alone = alone();
    let served = Served::start(&[]);
    let prober = Prober::start(served.port());
    let port = served.port();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            thread::spawn(move || {
                let mut stream = connect(port);
                for i in 0..2500 {
                    let n = w * 2500 + i;
                    send(
                        &mut stream,
                        format!("M{n}X /made/up/{n} HTTP/1.1\r\nHost: abuse\r\n\r\n").as_bytes(),
                    );
                    let response =
                        read_response(&mut stream).unwrap_or_err(&format!("request {n}"));
                    assert!(
                        (400..500).contains(&response.status),
                        "request {n}: {}",
                        response.head
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker failed");
    }
    prober.assert_within(
        HEALTHZ_WITHIN,
        "20,000 requests with made-up methods and paths",
    );
    served.assert_peak_memory("20,000 requests with made-up methods and paths");
    let mut stream = connect(port);
    let metrics = get(&mut stream, "/metrics", "").expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    let series = text
        .lines()
        .filter(|l| l.starts_with("hexrepo_http_requests_total{"))
        .count();
    assert!(
        series <= 20 && text.contains("method=\"OTHER\"") && !text.contains("/made/up/"),
        "the metrics grew with the requests ({series} request series):\n{text}"
    );
}

#[test]
fn stalled_readers_of_a_large_tarball_hold_a_buffer_each() {
    let _alone = alone();
    allow_open_files(8192);
    let served = Served::start(&["--stall-timeout", "3s"]);
    // 15 MiB: more than the in-memory cache's per-file limit, so it is streamed.
    let big: Vec<u8> = (0..15u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(served.public.join("tarballs/big-1.0.0.tar"), &big).unwrap();
    let prober = Prober::start(served.port());
    let mut stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = connect_small_window(served.port());
            send(
                &mut stream,
                b"GET /tarballs/big-1.0.0.tar HTTP/1.1\r\nHost: abuse\r\n\r\n",
            );
            stream
        })
        .collect();
    thread::sleep(Duration::from_secs(2));
    served.assert_peak_memory("50 stalled readers of a 15 MiB tarball");
    // A reader that reads gets every byte, and the same ETag each time.
    let mut reader = connect(served.port());
    let whole = get(&mut reader, "/tarballs/big-1.0.0.tar", "").expect("read the tarball");
    assert!(whole.status == 200 && whole.body == big, "{}", whole.head);
    let part = get(
        &mut reader,
        "/tarballs/big-1.0.0.tar",
        "Range: bytes=1000-1999\r\n",
    )
    .expect("read a range");
    assert!(
        part.status == 206 && part.body == big[1000..2000],
        "{}",
        part.head
    );
    prober.assert_within(HEALTHZ_WITHIN, "50 stalled readers of a 15 MiB tarball");
    // Past the stall timeout, the server has closed them: each got less than the file.
    thread::sleep(Duration::from_secs(4));
    for (i, stream) in stalled.iter_mut().enumerate() {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        let read = stream.read_to_end(&mut got);
        let timed_out = matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut);
        assert!(
            !timed_out && got.len() < big.len(),
            "stalled reader {i} was not closed at the stall timeout ({} bytes, {read:?})",
            got.len()
        );
    }
    served.assert_peak_memory("50 stalled readers of a 15 MiB tarball");
}

#[test]
fn forty_concurrent_publishes_of_the_largest_tarball_all_land() {
    let _alone = alone();
    let served = Served::start(&[]);
    let key = create_key(served.tmp.path(), &served.public);
    // Made before the clock starts: the test's own work must not slow the server down.
    let tarballs: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| {
            let name = format!("big_{i}");
            let tarball = largest_tarball(&name, i);
            (name, tarball)
        })
        .collect();
    let prober = Prober::start(served.port());
    let port = served.port();
    let publishers: Vec<_> = tarballs
        .into_iter()
        .map(|(name, tarball)| {
            let key = key.clone();
            thread::spawn(move || {
                let mut stream = connect(port);
                stream
                    .set_read_timeout(Some(Duration::from_mins(2)))
                    .unwrap();
                send(
                    &mut stream,
                    format!(
                        "POST /api/publish?replace=false HTTP/1.1\r\nHost: abuse\r\n\
                         Authorization: {key}\r\nContent-Type: application/octet-stream\r\n\
                         Accept: application/json\r\nContent-Length: {}\r\n\r\n",
                        tarball.len()
                    )
                    .as_bytes(),
                );
                send(&mut stream, &tarball);
                let response = read_response(&mut stream).unwrap_or_err(&name);
                (
                    name,
                    response.status,
                    String::from_utf8_lossy(&response.body).into_owned(),
                )
            })
        })
        .collect();
    let outcomes: Vec<_> = publishers
        .into_iter()
        .map(|p| p.join().expect("a publisher failed"))
        .collect();
    prober.assert_within(HEALTHZ_WITHIN, "40 concurrent publishes of 16 MiB");
    served.assert_peak_memory("40 concurrent publishes of 16 MiB");
    for (name, status, body) in &outcomes {
        assert_eq!(*status, 201, "publishing {name}: {body}");
        let mut stream = connect(port);
        let auth = format!("Authorization: {key}\r\n");
        let package = get(&mut stream, &format!("/packages/{name}"), &auth).expect("package");
        assert_eq!(package.status, 200, "{name} published but not served");
    }
    served.assert_verify_clean();
}

#[test]
fn slow_clients_are_cut_at_their_timeouts() {
    let _alone = alone();
    let served = Served::start(&["--idle-timeout", "2s", "--body-timeout", "2s"]);
    let key = create_key(served.tmp.path(), &served.public);
    // Idle keep-alive: closed after the idle timeout.
    let mut idle = connect(served.port());
    let auth = format!("Authorization: {key}\r\n");
    assert_eq!(get(&mut idle, "/names", &auth).expect("names").status, 200);
    let started = Instant::now();
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).expect("closed by the server");
    let waited = started.elapsed();
    assert!(
        rest.is_empty() && waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "an idle connection was closed after {waited:?} (idle timeout 2 s)"
    );
    // An upload that drips: 408 at the body timeout, and nothing stored.
    let mut upload = connect(served.port());
    send(
        &mut upload,
        format!(
            "POST /api/publish HTTP/1.1\r\nHost: abuse\r\n{auth}Accept: application/json\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
        )
        .as_bytes(),
    );
    let started = Instant::now();
    send(&mut upload, &[0; 100]);
    let response = read_response(&mut upload).expect("a response to the dripping upload");
    assert_eq!(response.status, 408, "{}", response.head);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "408 after {:?}",
        started.elapsed()
    );
    served.assert_verify_clean();
}

/// A valid tarball just under the 16 MiB limit, its contents random so nothing compresses.
fn largest_tarball(name: &str, seed: usize) -> Vec<u8> {
    let metadata = Metadata {
        name: name.into(),
        version: "1.0.0".into(),
        app: Some(name.into()),
        description: Some("as large as a tarball may be".into()),
        ..Metadata::default()
    };
    let size = usize::try_from(MAX_TARBALL_SIZE).unwrap() - 64 * 1024;
    let mut state = u32::try_from(seed)
        .unwrap()
        .wrapping_add(1)
        .wrapping_mul(2_654_435_761);
    let data: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    let tarball = TarballBuilder::new(&metadata)
        .file("priv/blob.bin", data)
        .stored()
        .build();
    assert!(tarball.len() as u64 <= MAX_TARBALL_SIZE);
    tarball
}

/// `hexrepo key create abuser --public-dir PUBLIC`: the secret.
fn create_key(cwd: &Path, public: &Path) -> String {
    let mut cmd = hexrepo_in(cwd, &["key", "create", "abuser"]);
    cmd.arg("--public-dir").arg(public);
    stdout_text(&run(&mut cmd)).trim().to_owned()
}

/// `Result::expect` with a message built at the call.
trait UnwrapOrErr<T> {
    fn unwrap_or_err(self, what: &str) -> T;
}

impl<T> UnwrapOrErr<T> for std::io::Result<T> {
    fn unwrap_or_err(self, what: &str) -> T {
        self.unwrap_or_else(|e| panic!("{what}: {e}"))
    }
}
