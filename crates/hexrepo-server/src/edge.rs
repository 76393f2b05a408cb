//! The server's edge: accepts TCP connections and speaks HTTP/1.1 on them within limits no
//! client can lift, and stops gracefully.
//!
//! - At most [`Limits::max_connections`] connections are open at once. At the cap the server
//!   stops accepting (new connections wait in the kernel's backlog) and logs a warning at most
//!   once per [`CAP_WARNING_INTERVAL`].
//! - A connection has [`Limits::header_timeout`] to send a complete request head once its
//!   first byte arrived (slow-header clients), [`Limits::idle_timeout`] between requests
//!   (idle keep-alive), and while a request is in flight no more than
//!   [`Limits::stall_timeout`] without a byte moving either way (a reader that stopped
//!   reading, an upload that stopped sending). Breaking one closes the connection.
//! - A request body must arrive whole within [`Limits::body_timeout`] of its head: a body
//!   read after that fails with [`BodyTimeout`] (the API answers 408).
//! - A request head is at most [`MAX_HEAD_BYTES`] (hyper answers 431 beyond it).
//! - HTTP/2 is not spoken: TLS and HTTP/2 belong to the reverse proxy in front, so there are
//!   no HTTP/2 limits to set.
//!
//! The timers cost a wake-up per connection per shortest timeout, not per request: each
//! connection keeps its last activity in atomics that its reads, writes and requests update,
//! and a watchdog sleeps until its current deadline or the shortest timeout, whichever is
//! sooner, then looks again.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::Request;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 64;
/// How often, at most, reaching the connection cap is logged.
pub const CAP_WARNING_INTERVAL: Duration = Duration::from_mins(1);
/// How long in-flight responses may take to finish once a stop was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The connection limits. [`Limits::default`] is safe facing the internet directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// From a request head's first byte to its last.
    pub header_timeout: Duration,
    /// Between the end of a response and the first byte of the next request.
    pub idle_timeout: Duration,
    /// Without a byte moving while a request is in flight.
    pub stall_timeout: Duration,
    /// From a request's head to the last byte of its body.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_mins(1),
            stall_timeout: Duration::from_mins(1),
            body_timeout: Duration::from_mins(5),
        }
    }
}

/// How many connections the kernel completes for us before we accept them (capped by
/// `net.core.somaxconn`, 4096 on current kernels). A burst of new connections beyond it has its
/// SYNs dropped, and each client waits a second to retry.
pub const BACKLOG: u32 = 4096;

/// A listening socket on `address` with a backlog of [`BACKLOG`].
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets in-flight
/// responses finish (for at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let epoch = Instant::now();
    let mut last_cap_warning: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = if let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
            permit
        } else {
            if last_cap_warning.is_none_or(|at| at.elapsed() >= CAP_WARNING_INTERVAL) {
                last_cap_warning = Some(Instant::now());
                tracing::warn!(
                    "{} connections open, the cap (max_connections): new connections wait \
                     until one closes",
                    limits.max_connections
                );
            }
            tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => {
                    permit.expect("the semaphore is never closed")
                }
                () = &mut shutdown => break,
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted: not
                // the listener's fault. Pause a little so a full fd table is not a busy loop.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection(stream, remote, app, limits, epoch, stop).await;
            drop(permit);
        });
    }
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    // Every connection holds a permit until its task ends: all back means all done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!(
            "{} connections still open after {SHUTDOWN_GRACE:?}; closing them",
            limits.max_connections - permits.available_permits()
        );
    }
}

/// What a connection's reads, writes and requests tell its watchdog. Times are milliseconds
/// since the server started.
#[derive(Debug, Default)]
struct Activity {
    /// The last byte read or written, or response finished.
    last: AtomicU64,
    /// The first byte of a request head not yet complete; 0 when none is under way.
    head_started: AtomicU64,
    /// Requests whose response is not yet fully sent.
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self, now: u64) {
        self.last.store(now, Ordering::Relaxed);
    }
}

/// Milliseconds since `epoch`, never 0 (0 means "unset").
fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    limits: Limits,
    epoch: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::default());
    activity.touch(millis_since(epoch));
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
        epoch,
    });
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            activity.head_started.store(0, Ordering::Relaxed);
            activity.in_flight.fetch_add(1, Ordering::Relaxed);
            let guard = InFlight {
                activity: Arc::clone(&activity),
                epoch,
            };
            let mut request =
                request.map(|body| Body::new(Deadline::new(body, limits.body_timeout)));
            request.extensions_mut().insert(ConnectInfo(remote));
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    Body::new(Tracked {
                        body,
                        _guard: guard,
                    })
                }))
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES.max(8192))
        .max_headers(MAX_HEADERS)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let watchdog = watchdog(&activity, limits, epoch);
    tokio::pin!(watchdog);
    tokio::select! {
        result = conn.as_mut() => log_connection_end(result),
        reason = &mut watchdog => {
            tracing::debug!(%remote, "closing the connection: {reason}");
        }
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                result = conn.as_mut() => log_connection_end(result),
                reason = &mut watchdog => {
                    tracing::debug!(%remote, "closing the connection: {reason}");
                }
            }
        }
    }
}

/// Resolves once a stop is asked for (or the server is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result
        && !e.is_incomplete_message()
    {
        tracing::debug!("connection ended: {e}");
    }
}

/// Resolves, with the reason, when the connection broke one of its timeouts.
async fn watchdog(activity: &Activity, limits: Limits, epoch: Instant) -> &'static str {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    loop {
        let last = activity.last.load(Ordering::Relaxed);
        let head = activity.head_started.load(Ordering::Relaxed);
        let (deadline, reason) = if activity.in_flight.load(Ordering::Relaxed) > 0 {
            (
                last.saturating_add(ms(limits.stall_timeout)),
                "nothing moved while a request was in flight (stall_timeout)",
            )
        } else if head != 0 {
            (
                head.saturating_add(ms(limits.header_timeout)),
                "the request head did not arrive in time (header_timeout)",
            )
        } else {
            (
                last.saturating_add(ms(limits.idle_timeout)),
                "idle between requests (idle_timeout)",
            )
        };
        let now = millis_since(epoch);
        if now >= deadline {
            return reason;
        }
        // The connection may change state while we sleep (a head begins, a response ends):
        // no deadline of a new state comes sooner than the shortest timeout from now.
        let shortest = limits
            .header_timeout
            .min(limits.idle_timeout)
            .min(limits.stall_timeout);
        let wake = (deadline - now).min(ms(shortest));
        tokio::time::sleep(Duration::from_millis(wake)).await;
    }
}

/// The connection's socket, telling [`Activity`] when bytes move.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    epoch: Instant,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = millis_since(self.epoch);
            let activity = &self.activity;
            activity.touch(now);
            if activity.in_flight.load(Ordering::Relaxed) == 0 {
                // Bytes with no request in flight: a new request head has begun.
                let _ = activity.head_started.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
        polled
    }
}

impl Watched {
    /// Records that a write moved bytes, and passes its outcome on.
    fn note_written(&self, polled: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.touch(millis_since(self.epoch));
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note_written(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note_written(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Counts a request as in flight until its response body is sent or dropped.
struct InFlight {
    activity: Arc<Activity>,
    epoch: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.activity.touch(millis_since(self.epoch));
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that holds its request's [`InFlight`] guard.
struct Tracked {
    body: Body,
    /// Held for its `Drop`.
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that had to arrive by [`Limits::body_timeout`].
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} (body_timeout)")]
pub struct BodyTimeout(pub Duration);

/// A request body that fails with [`BodyTimeout`] once its deadline passes. Its timer is made
/// the first time the body has to wait, so a request without a body never makes one.
struct Deadline<B> {
    body: B,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
    ends: tokio::time::Instant,
}

impl<B> Deadline<B> {
    fn new(body: B, timeout: Duration) -> Deadline<B> {
        Deadline {
            body,
            sleep: None,
            timeout,
            ends: tokio::time::Instant::now() + timeout,
        }
    }
}

impl<B> http_body::Body for Deadline<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.ends;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.timeout).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Raises this process's open-file limit to its hard limit and returns the connection cap that
/// fits in it (`wanted`, or less with a reserve for files and the store), warning when it had to
/// lower it.
pub fn fit_connection_cap(wanted: usize) -> usize {
    const RESERVE: u64 = 256;
    let limit = raise_open_files_limit();
    let fits = usize::try_from(limit.saturating_sub(RESERVE)).unwrap_or(usize::MAX);
    if wanted > fits {
        tracing::warn!(
            "max_connections {wanted} lowered to {fits}: this process may open only {limit} \
             files (raise LimitNOFILE / ulimit -n)"
        );
        return fits.max(1);
    }
    wanted
}

fn raise_open_files_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let (Some(soft), hard) = (current.current, current.maximum) else {
        return u64::MAX;
    };
    let target = hard.unwrap_or(u64::MAX).min(1 << 20);
    if target > soft {
        let raised = rustix::process::Rlimit {
            current: Some(target),
            maximum: hard,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return target;
        }
    }
    soft
}
