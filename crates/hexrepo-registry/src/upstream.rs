//! The HTTP client for a repository served elsewhere: the lazy mirror's and `mirror sync`'s
//! upstream, and `hexrepo verify URL`. Whatever the server does, a request ends within
//! [`REQUEST_DEADLINE`] (a server dripping one byte a second included), holds at most
//! [`MAX_BODY`] bytes, and follows redirects only within the upstream's own origin.

use std::time::{Duration, Instant};

use hexfmt::tarball::MAX_TARBALL_SIZE;

use crate::verify::{Conditional, Source};

/// The largest response body read: tarballs are at most 16 MiB and hex.pm's largest registry
/// file, compressed, a few MiB; this bounds what a hostile server can make us hold.
pub const MAX_BODY: u64 = MAX_TARBALL_SIZE;

/// The longest one request may take, from connecting to its body's last byte: a 16 MiB
/// tarball at 150 KB/s.
pub const REQUEST_DEADLINE: Duration = Duration::from_mins(2);

/// How long connecting may take: an unreachable upstream should fail fast, so the lazy mirror
/// serves its copy.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one read may wait for a byte.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A repository served over HTTP.
pub struct HttpSource {
    base: String,
    client: reqwest::blocking::Client,
    auth: Option<String>,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why an [`HttpSource`] could not be made.
#[derive(Debug, thiserror::Error)]
#[error("starting the HTTP client for {base}: {source}")]
pub struct ClientError {
    base: String,
    source: reqwest::Error,
}

impl HttpSource {
    /// A client for the repository at `base`, sending `auth` as `Authorization` if given.
    pub fn new(base: &str, auth: Option<String>) -> Result<HttpSource, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        let origin = origin_of(&base);
        let client = reqwest::blocking::Client::builder()
            .timeout(READ_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                // A redirect to another origin could send the upstream's credentials, or our
                // clients' traffic, somewhere nobody configured.
                if attempt.previous().len() >= 5 {
                    attempt.error("more than 5 redirects")
                } else if origin.is_some() && origin_of(attempt.url().as_str()) == origin {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .user_agent(concat!("hexrepo/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError {
                base: base.clone(),
                source,
            })?;
        Ok(HttpSource { base, client, auth })
    }
}

/// `scheme://host:port` of a URL, lower-cased.
fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    Some(format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?
    ))
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
        let started = Instant::now();
        let url = format!("{}/{path}", self.base);
        let mut request = self.client.get(&url);
        if let Some(auth) = &self.auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let mut response = request.send().map_err(|e| format!("GET {url}: {e}"))?;
        match response.status() {
            reqwest::StatusCode::OK => {
                let etag = response
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if response.content_length().is_some_and(|len| len > MAX_BODY) {
                    return Err(format!("GET {url}: larger than {MAX_BODY} bytes"));
                }
                let bytes = read_by_deadline(&mut response, started + REQUEST_DEADLINE)
                    .map_err(|e| format!("GET {url}: {e}"))?;
                Ok(Conditional::Found { bytes, etag })
            }
            reqwest::StatusCode::NOT_MODIFIED => Ok(Conditional::NotModified),
            reqwest::StatusCode::NOT_FOUND => Ok(Conditional::Missing),
            status if status.is_redirection() => Err(format!(
                "GET {url}: HTTP {status} to another origin, not followed"
            )),
            status => Err(format!("GET {url}: HTTP {status}")),
        }
    }
}

/// The body, at most [`MAX_BODY`] bytes, read whole by `deadline`.
fn read_by_deadline(body: &mut impl std::io::Read, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        if Instant::now() >= deadline {
            return Err(format!(
                "not received within {}s",
                REQUEST_DEADLINE.as_secs()
            ));
        }
        let n = body.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(bytes);
        }
        if (bytes.len() + n) as u64 > MAX_BODY {
            return Err(format!("larger than {MAX_BODY} bytes"));
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that never ends.
    struct Endless;

    impl std::io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(b'x');
            Ok(buf.len())
        }
    }

    #[test]
    fn a_body_that_never_ends_is_cut_at_the_deadline_or_the_size_cap() {
        let past = Instant::now();
        let err = read_by_deadline(&mut Endless, past).unwrap_err();
        assert!(err.contains("not received within"), "{err}");
        let far = Instant::now() + Duration::from_hours(1);
        let err =
            read_by_deadline(&mut std::io::Read::take(Endless, MAX_BODY + 1), far).unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://Repo.Hex.pm/x"),
            Some("https://repo.hex.pm:443".to_owned())
        );
        assert_ne!(
            origin_of("https://repo.hex.pm"),
            origin_of("http://repo.hex.pm")
        );
        assert_ne!(origin_of("http://a:1"), origin_of("http://a:2"));
    }

    /// A server on loopback that answers every request with `response`.
    fn canned(response: &'static str) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut head);
                let _ = std::io::Write::write_all(&mut stream, response.as_bytes());
            }
        });
        port
    }

    #[test]
    fn a_redirect_to_another_origin_is_not_followed() {
        // The other origin: would answer 200 if it were asked.
        let elsewhere = canned("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        let redirect: &'static str = Box::leak(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{elsewhere}/names\r\n\
                 Content-Length: 0\r\n\r\n"
            )
            .into_boxed_str(),
        );
        let upstream = canned(redirect);
        let source = HttpSource::new(&format!("http://127.0.0.1:{upstream}"), None).unwrap();
        let err = source.fetch("names").unwrap_err();
        assert!(err.contains("another origin, not followed"), "{err}");
    }

    #[test]
    fn a_body_larger_than_declared_limits_is_refused_before_reading() {
        let upstream = canned("HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n");
        let source = HttpSource::new(&format!("http://127.0.0.1:{upstream}"), None).unwrap();
        let err = source.fetch("names").unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }
}
