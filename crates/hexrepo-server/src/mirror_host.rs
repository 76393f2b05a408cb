//! The mirror under a host name of its own: a request for that host is routed as if its path
//! began with [`MIRROR_PREFIX`], so clients set `HEX_MIRROR`/`HEX_CDN` to `http://HOST` and
//! that host serves the mirror and nothing else (no private packages, no API, no metrics).

use std::fmt;
use std::str::FromStr;

use axum::extract::Request;
use axum::http::uri::{Authority, PathAndQuery};
use axum::http::{Uri, header};

use crate::router::MIRROR_PREFIX;

/// A host name the mirror is served at: lowercase, no port, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorHost(String);

impl MirrorHost {
    /// The host name as configured, e.g. `hexpm-mirror.example.com`.
    ///
    /// # Errors
    /// When `raw` is not a bare host name or IP address (a scheme, port, path or user).
    pub fn parse(raw: &str) -> Result<MirrorHost, String> {
        let bare = |why: &str| {
            format!(
                "invalid mirror host {raw:?}: {why}; give a bare host name such as mirror.example.com"
            )
        };
        let authority = Authority::from_str(raw).map_err(|_| bare("not a host name"))?;
        if authority.as_str() != authority.host() || authority.port().is_some() {
            return Err(bare("a port, user or path is not part of a host name"));
        }
        match normalized(authority.host()) {
            host if host.is_empty() => Err(bare("empty")),
            host => Ok(MirrorHost(host)),
        }
    }

    /// The host name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `host` (from a `Host` header or a URL, without its port) names this host:
    /// case-insensitively, a trailing dot ignored.
    pub fn is(&self, host: &str) -> bool {
        normalized(host) == self.0
    }

    /// Whether `request` was sent to this host: its URI's authority (HTTP/2, absolute-form
    /// requests) or else its `Host` header, the port ignored, case-insensitively.
    fn addressed_by(&self, request: &Request) -> bool {
        let authority = request.uri().authority().cloned().or_else(|| {
            let host = request.headers().get(header::HOST)?.to_str().ok()?;
            Authority::from_str(host).ok()
        });
        authority.is_some_and(|a| self.is(a.host()))
    }
}

impl fmt::Display for MirrorHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn normalized(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// `request`, its path under [`MIRROR_PREFIX`] when it was sent to `host` (except `/healthz`,
/// which load balancers ask every host for).
pub(crate) fn route_to_mirror(host: &MirrorHost, mut request: Request) -> Request {
    if !host.addressed_by(&request) || request.uri().path() == "/healthz" {
        return request;
    }
    let mut parts = request.uri().clone().into_parts();
    let rewritten = match &parts.path_and_query {
        Some(pq) => format!("{MIRROR_PREFIX}{}", pq.as_str()),
        None => format!("{MIRROR_PREFIX}/"),
    };
    // A valid path and query behind a valid prefix is still valid; should it not be, the
    // request keeps its path and finds no mirror resource there.
    if let Ok(pq) = PathAndQuery::from_str(&rewritten) {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(uri: &str, host: Option<&str>) -> Request {
        let mut builder = Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn routed(uri: &str, host: Option<&str>) -> String {
        let mirror = MirrorHost::parse("Mirror.Example.com").unwrap();
        route_to_mirror(&mirror, request(uri, host))
            .uri()
            .to_string()
    }

    #[test]
    fn requests_for_the_host_are_routed_under_the_prefix_whatever_the_port_or_case() {
        let cases = [
            ("/packages/alpha", Some("mirror.example.com")),
            ("/packages/alpha", Some("MIRROR.example.com:8080")),
            ("/packages/alpha", Some("mirror.example.com.")),
        ];
        for (uri, host) in cases {
            assert_eq!(
                routed(uri, host),
                "/mirrors/hexpm/packages/alpha",
                "{host:?}"
            );
        }
        assert_eq!(
            routed("http://mirror.example.com:4000/names?x=1", None),
            "http://mirror.example.com:4000/mirrors/hexpm/names?x=1"
        );
    }

    #[test]
    fn other_hosts_and_the_health_check_are_left_alone() {
        for (uri, host) in [
            ("/packages/alpha", Some("repo.example.com")),
            ("/packages/alpha", Some("mirror.example.com.evil")),
            ("/packages/alpha", None),
            ("/healthz", Some("mirror.example.com")),
        ] {
            assert_eq!(routed(uri, host), uri, "{host:?}");
        }
    }

    #[test]
    fn only_bare_host_names_are_accepted() {
        assert_eq!(
            MirrorHost::parse("Hex.Internal.").unwrap().as_str(),
            "hex.internal"
        );
        assert_eq!(MirrorHost::parse("[::1]").unwrap().as_str(), "[::1]");
        for bad in [
            "",
            "mirror:8080",
            "user@mirror",
            "http://mirror",
            "mirror/x",
            "a b",
        ] {
            let error = MirrorHost::parse(bad).unwrap_err();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }
}
