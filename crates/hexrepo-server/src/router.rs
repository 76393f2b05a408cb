//! The routes of the repository endpoint and the state they share. Handlers are thin: parse the
//! path into a [`Resource`], check access, hand the file to [`respond`](crate::respond).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hexrepo_registry::keys::Permission;
use hexrepo_store::Store;

use crate::api::ApiConfig;
use crate::auth::{Access, Authenticator};
use crate::objects::{ObjectCache, ReadError};
use crate::observe::{Metrics, record};
use crate::resource::Resource;
use crate::respond::file_response;

/// What the server needs to know, resolved and validated by the caller.
#[derive(Debug)]
pub struct ServerConfig {
    /// Where the repository is: every repository file served is read from it.
    pub store: Store,
    /// How long an object read from an object store is served before the store is asked
    /// whether it changed: the longest a change made elsewhere stays unseen here (plus one
    /// request). Local disk is checked on every request and ignores it.
    pub revalidate_after: Duration,
    /// Who may read.
    pub auth: Authenticator,
    /// Bytes of tarballs, docs and install files kept in memory.
    pub cache_bytes: u64,
    /// The Hex API, when this server holds the signing key.
    pub api: Option<ApiConfig>,
}

/// Shared server state.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    objects: ObjectCache,
    auth: Authenticator,
    metrics: Metrics,
    api: Option<ApiConfig>,
}

impl AppState {
    /// State for a configuration.
    pub fn new(config: ServerConfig) -> AppState {
        AppState(Arc::new(Inner {
            objects: ObjectCache::new(config.store, config.cache_bytes, config.revalidate_after),
            auth: config.auth,
            metrics: Metrics::default(),
            api: config.api,
        }))
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The authenticator.
    pub fn auth(&self) -> &Authenticator {
        &self.0.auth
    }

    /// The API configuration, when the API is on.
    pub fn api(&self) -> Option<&ApiConfig> {
        self.0.api.as_ref()
    }
}

/// The application: repository resources, `/healthz` and `/metrics`.
pub fn router(state: AppState) -> Router {
    let repository = Router::new()
        .route(
            "/names",
            get(|s, h, p| serve(s, h, p, Some(Resource::Names))),
        )
        .route(
            "/versions",
            get(|s, h, p| serve(s, h, p, Some(Resource::Versions))),
        )
        .route(
            "/public_key",
            get(|s, h, p| serve(s, h, p, Some(Resource::PublicKey))),
        )
        .route(
            "/packages/{name}",
            get(|s, h, p, Path(n): Path<String>| serve(s, h, p, Resource::package(&n))),
        )
        .route(
            "/tarballs/{file}",
            get(|s, h, p, Path(f): Path<String>| serve(s, h, p, Resource::tarball(&f))),
        )
        .route(
            "/docs/{file}",
            get(|s, h, p, Path(f): Path<String>| serve(s, h, p, Resource::docs(&f))),
        )
        .route(
            "/installs/{*path}",
            get(|s, h, p, Path(path): Path<String>| serve(s, h, p, Resource::installs(&path))),
        )
        .route(
            "/metrics",
            get(|State(s): State<AppState>| async move { metrics_response(&s) }),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_read_access,
        ));
    Router::new()
        .merge(repository)
        .merge(crate::api::routes())
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .with_state(state)
}

/// Set on a response served from memory because the store could not confirm it.
const STALE_HEADER: &str = "x-hexrepo-stale";

/// Whether this request's reads need credentials, decided once by the access middleware.
#[derive(Debug, Clone, Copy)]
struct PrivateReads(bool);

async fn serve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(PrivateReads(private)): Extension<PrivateReads>,
    resource: Option<Resource>,
) -> Response {
    let Some(resource) = resource else {
        return not_found();
    };
    match state.0.objects.get(&resource).await {
        Ok(Some(found)) => {
            let mut response = file_response(
                &headers,
                &found.entry,
                found.bytes,
                resource.kind(),
                private,
            );
            if found.stale {
                response
                    .headers_mut()
                    .insert(STALE_HEADER, HeaderValue::from_static("1"));
            }
            response
        }
        Ok(None) => not_found(),
        Err(ReadError::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from_static("5"))],
            "storage unavailable, retry later\n",
        )
            .into_response(),
        Err(ReadError::Failed) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response()
        }
    }
}

fn metrics_response(state: &AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().encode(),
    )
        .into_response()
}

async fn require_read_access(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let required = state.0.auth.read_requires_credentials();
    request.extensions_mut().insert(PrivateReads(required));
    match state
        .0
        .auth
        .check(request.headers(), Permission::Repository, required)
    {
        Access::Allowed(_) => next.run(request).await,
        Access::Missing => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"hexrepo\""),
            )],
            "authentication required\n",
        )
            .into_response(),
        Access::Denied => (StatusCode::FORBIDDEN, "forbidden\n").into_response(),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
