//! What operators see: one access-log line per request (method, path, status, bytes, duration;
//! never a header, so never a credential) and Prometheus metrics (requests by route and status,
//! bytes sent, latency), both from one middleware so they always agree.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::router::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Labels of the lazy mirror's upstream answers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// `fetched`, `not_modified`, `missing`, `refused`, `failed` or `served_stale`.
    pub answer: &'static str,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    bytes: Family<RouteLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("hexrepo");
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
        });
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_response_bytes",
            "Response body bytes sent, by route",
            bytes.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to produce a response, by route",
            latency.clone(),
        );
        Metrics {
            registry,
            requests,
            bytes,
            latency,
        }
    }
}

impl Metrics {
    /// Adds the lazy mirror's upstream answers (see [`crate::pull_through::PullThrough::events`]).
    pub fn register_mirror(&mut self, events: &Family<UpstreamLabels, Counter>) {
        self.registry.register(
            "mirror_upstream_answers",
            "What the lazy mirror's upstream answered, and stale copies served",
            events.clone(),
        );
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The metrics label of a request's method: one of a fixed set, so a client inventing methods
/// (they are recorded before authentication) cannot grow the metrics without bound.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// Records and logs every request.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    let bytes: u64 = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        // Error bodies have no Content-Length yet: their exact size.
        .or_else(|| axum::body::HttpBody::size_hint(response.body()).exact())
        .unwrap_or(0);
    let metrics = state.metrics();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            method: method_label(&method).to_owned(),
            status,
        })
        .inc();
    let route_labels = RouteLabels { route };
    metrics.bytes.get_or_create(&route_labels).inc_by(bytes);
    metrics
        .latency
        .get_or_create(&route_labels)
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "hexrepo::access",
        method = %method,
        path = %path,
        status,
        bytes,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
    );
    response
}
