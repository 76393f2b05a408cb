//! The HTTP server: the repository endpoint of the Hex self-hosting guide, done properly
//! (HEX-PROTOCOL.md §1). It serves only repository resources, with the headers clients rely on
//! (ETag, conditional requests, ranges, no `Content-Encoding`), behind basic auth and repository
//! keys, with an access log, Prometheus metrics and a health check, behind an accept loop that
//! bounds connections and their timeouts ([`edge`]).
//!
//! Handlers map requests to typed resources ([`resource`]) and hand them to the object cache
//! ([`objects`]), which reads them from the store; nothing here knows how a registry is built.

pub mod api;
pub mod auth;
pub mod edge;
mod mirror_host;
pub mod objects;
pub mod observe;
pub mod pull_through;
pub mod resource;
pub mod respond;
mod router;
mod single_flight;

pub use mirror_host::MirrorHost;
pub use router::{AppState, MIRROR_PREFIX, Mirror, ServerConfig, router};
