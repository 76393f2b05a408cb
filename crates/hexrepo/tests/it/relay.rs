//! A TCP relay in front of the test upstream (nginx) that stops a download half-way at a point
//! the test chooses: it passes the first N tarball requests, forwards the next tarball's
//! response only up to the middle of its body and then holds it, and holds every later request.
//! A sync behind it is so caught mid-download, however loaded the machine, without any timing.
//! It reads just enough HTTP/1.1 to do that: request heads (GET, no bodies) and one response's
//! `Content-Length`.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

/// A relay on a free loopback port; closes every connection it holds when dropped.
pub struct StallingRelay {
    port: u16,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    /// Tarball requests passed whole.
    pass: usize,
    progress: Mutex<Progress>,
    /// Woken when the relay closes.
    closed_cv: Condvar,
    closed: AtomicBool,
    /// Every socket, to shut them all down on drop.
    open: Mutex<Vec<TcpStream>>,
}

#[derive(Default)]
struct Progress {
    tarball_requests: usize,
    /// The tarball whose response is cut off, once it is.
    stalled: Option<String>,
}

impl StallingRelay {
    /// A relay to `127.0.0.1:target` that passes `pass` tarball requests whole.
    pub fn start(target: u16, pass: usize) -> StallingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(State {
            pass,
            ..State::default()
        });
        let accepting = Arc::clone(&state);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.closed.load(Ordering::SeqCst) {
                    return;
                }
                let (Ok(client), Ok(upstream)) =
                    (client, TcpStream::connect(("127.0.0.1", target)))
                else {
                    continue;
                };
                relay(&accepting, client, upstream);
            }
        });
        StallingRelay { port, state }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The path of the tarball whose response was cut off half-way, once it was.
    pub fn stalled(&self) -> Option<String> {
        self.state.progress.lock().expect("lock").stalled.clone()
    }
}

impl Drop for StallingRelay {
    fn drop(&mut self) {
        {
            // Under the lock, so no holder misses the wake-up between its check and its wait.
            let _progress = self.state.progress.lock().expect("lock");
            self.state.closed.store(true, Ordering::SeqCst);
        }
        self.state.closed_cv.notify_all();
        // Wake the accept loop so it returns.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for stream in self.state.open.lock().expect("lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl State {
    /// Blocks until the relay closes.
    fn hold(&self) {
        let mut progress = self.progress.lock().expect("lock");
        while !self.closed.load(Ordering::SeqCst) {
            progress = self.closed_cv.wait(progress).expect("lock");
        }
    }
}

/// What the requests side tells the response side of one connection: cut the next response.
type Cut = Arc<Mutex<Option<String>>>;

fn relay(state: &Arc<State>, client: TcpStream, upstream: TcpStream) {
    let clones = [client.try_clone(), upstream.try_clone()];
    state
        .open
        .lock()
        .expect("lock")
        .extend(clones.into_iter().flatten());
    let cut: Cut = Arc::default();
    let (Ok(client_in), Ok(upstream_in)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let (requests_state, requests_cut) = (Arc::clone(state), Arc::clone(&cut));
    thread::spawn(move || forward_requests(&requests_state, &requests_cut, client_in, upstream));
    let responses_state = Arc::clone(state);
    thread::spawn(move || forward_responses(&responses_state, &cut, upstream_in, client));
}

/// Client to upstream, one request head at a time, deciding each tarball request's fate.
fn forward_requests(state: &State, cut: &Cut, mut client: TcpStream, mut upstream: TcpStream) {
    let mut pending = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        while let Some(end) = find(&pending, b"\r\n\r\n") {
            let head: Vec<u8> = pending.drain(..end + 4).collect();
            let path = request_path(&head);
            if let Some(tarball) = path.filter(|p| p.starts_with("/tarballs/")) {
                let mut progress = state.progress.lock().expect("lock");
                progress.tarball_requests += 1;
                if progress.tarball_requests > state.pass + 1 {
                    drop(progress);
                    state.hold();
                    return;
                }
                if progress.tarball_requests == state.pass + 1 {
                    *cut.lock().expect("lock") = Some(tarball.to_owned());
                }
            }
            if upstream.write_all(&head).is_err() {
                return;
            }
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = upstream.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Upstream to client; the response to a cut request stops half-way through its body.
fn forward_responses(state: &State, cut: &Cut, mut upstream: TcpStream, mut client: TcpStream) {
    let mut chunk = [0; 16 * 1024];
    let mut response = Vec::new();
    loop {
        let n = match upstream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let Some(tarball) = cut.lock().expect("lock").clone() else {
            if client.write_all(&chunk[..n]).is_err() {
                break;
            }
            continue;
        };
        response.extend_from_slice(&chunk[..n]);
        let Some(half) = half_way(&response).filter(|half| *half <= response.len()) else {
            continue;
        };
        let _ = client.write_all(&response[..half]);
        let _ = client.flush();
        state.progress.lock().expect("lock").stalled = Some(tarball);
        state.hold();
        return;
    }
    let _ = client.shutdown(Shutdown::Write);
}

/// The path of a request head's `GET PATH HTTP/1.1` line.
fn request_path(head: &[u8]) -> Option<&str> {
    let line = std::str::from_utf8(head).ok()?.lines().next()?;
    let mut words = line.split(' ');
    words.next()?;
    words.next()
}

/// Once a response's head is in, the offset of the middle of its body.
fn half_way(response: &[u8]) -> Option<usize> {
    let head_end = find(response, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&response[..head_end]).ok()?;
    let length: usize = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })?;
    Some(head_end + length / 2)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
