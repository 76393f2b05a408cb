//! The abusive clients' plumbing: raw HTTP/1.1 over std sockets (a hostile client speaks
//! whatever it likes), a `/healthz` prober that runs beside a scenario, and the server's peak
//! memory read from `/proc`.

use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A connection to the server with read and write timeouts, so no test hangs.
pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("set write timeout");
    stream
}

/// A connection whose receive buffer is as small as the kernel allows: when this client stops
/// reading, the server is held up after a few megabytes of kernel buffers, not after the file.
pub fn connect_small_window(port: u16) -> TcpStream {
    use rustix::net::{AddressFamily, SocketType, connect, socket, sockopt};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("a socket");
    sockopt::set_socket_recv_buffer_size(&fd, 4096).expect("set SO_RCVBUF");
    connect(
        &fd,
        &std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port),
    )
    .expect("connect to the server");
    let stream = TcpStream::from(fd);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set read timeout");
    stream
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The head, as text.
    pub head: String,
    /// The body (by `Content-Length`).
    pub body: Vec<u8>,
}

/// Sends `request` (raw bytes) on `stream`.
pub fn send(stream: &mut TcpStream, request: &[u8]) {
    stream.write_all(request).expect("send a request");
}

/// `GET PATH` on a keep-alive connection, with extra header lines (each ending in `\r\n`).
pub fn get(stream: &mut TcpStream, path: &str, extra: &str) -> io::Result<Response> {
    send(
        stream,
        format!("GET {path} HTTP/1.1\r\nHost: abuse\r\n{extra}\r\n").as_bytes(),
    );
    read_response(stream)
}

/// Reads one response (its body by `Content-Length`).
pub fn read_response(stream: &mut TcpStream) -> io::Result<Response> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a response head",
            ));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(Response { status, head, body })
}

/// How long a fresh connection takes to get `/healthz`'s 200.
pub fn healthz(port: u16) -> Duration {
    let started = Instant::now();
    let mut stream = connect(port);
    let response = get(&mut stream, "/healthz", "Connection: close\r\n").expect("healthz");
    assert_eq!(response.status, 200, "{}", response.head);
    started.elapsed()
}

/// Probes `/healthz` every 50 ms on fresh connections until stopped.
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Duration>>,
}

impl Prober {
    /// Starts probing the server on `port`.
    pub fn start(port: u16) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut latencies = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                latencies.push(healthz(port));
                thread::sleep(Duration::from_millis(50));
            }
            latencies
        });
        Prober { stop, thread }
    }

    /// Stops probing and asserts every probe answered within `bound`.
    pub fn assert_within(self, bound: Duration, during: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let latencies = self.thread.join().expect("the prober does not panic");
        assert!(
            !latencies.is_empty(),
            "no /healthz probe ran during {during}"
        );
        let slowest = latencies.iter().max().copied().unwrap_or_default();
        assert!(
            slowest <= bound,
            "/healthz took {slowest:?} (over {bound:?}) during {during}; all: {latencies:?}"
        );
    }
}

/// The most memory the process has used so far (`VmHWM`), in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .expect("VmHWM in /proc/PID/status")
}

/// Makes sure this process may open `needed` files (the scenarios hold thousands of sockets).
pub fn allow_open_files(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if limit.current.is_some_and(|soft| soft >= needed) {
        return;
    }
    assert!(
        hard >= needed,
        "this scenario needs {needed} open files and the hard limit is {hard}: raise it \
         (ulimit -Hn / LimitNOFILE)"
    );
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum: limit.maximum,
        },
    )
    .expect("raise the open-files limit");
}
