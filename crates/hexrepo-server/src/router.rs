//! The routes of the repository endpoint and the state they share. Handlers are thin: parse the
//! path into a [`Resource`], check access, hand the file to [`respond`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hexrepo_registry::keys::Permission;
use tower::Layer;

use crate::api::ApiConfig;
use crate::api::UploadBudget;
use crate::auth::{Access, Authenticator};
use crate::mirror_host::{MirrorHost, route_to_mirror};
use crate::objects::{Content, Found, ObjectCache, ReadError, Streamed};
use crate::observe::{Metrics, record};
use crate::pull_through::{PullThrough, Ready};
use crate::resource::{Kind, Resource};
use crate::respond::{self, file_response};

/// What the server needs to know, resolved and validated by the caller.
#[derive(Debug)]
pub struct ServerConfig {
    /// Where the repository is: every repository file served is read from it.
    pub store: hexrepo_store::Store,
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
    /// A mirror of hex.pm (or another upstream) served under [`MIRROR_PREFIX`], byte for byte
    /// as upstream signed it.
    pub mirror: Option<Mirror>,
    /// A host name that serves the mirror at its root, and nothing else.
    pub mirror_host: Option<MirrorHost>,
}

impl ServerConfig {
    /// A server of `store` with `auth`: objects revalidated after a second on object stores,
    /// 16 MiB of tarballs kept in memory, no API, no mirror.
    pub fn new(store: hexrepo_store::Store, auth: Authenticator) -> ServerConfig {
        ServerConfig {
            store,
            revalidate_after: Duration::from_secs(1),
            auth,
            cache_bytes: 16 << 20,
            api: None,
            mirror: None,
            mirror_host: None,
        }
    }
}

/// How the mirror is served.
#[derive(Debug)]
pub enum Mirror {
    /// Only what its store holds (`hexrepo mirror sync`, `mirror import`): for air gaps.
    Offline(hexrepo_store::Store),
    /// A pull-through cache of the upstream over its store.
    Lazy(Box<PullThrough>),
}

/// Where the mirror is served: clients set `HEX_MIRROR` (mix) or `HEX_CDN` (rebar3) to the
/// server's URL followed by this.
pub const MIRROR_PREFIX: &str = "/mirrors/hexpm";

/// Shared server state.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    objects: ObjectCache,
    mirror: Option<ObjectCache>,
    pull_through: Option<Box<PullThrough>>,
    auth: Authenticator,
    metrics: Metrics,
    api: Option<ApiConfig>,
    mirror_host: Option<MirrorHost>,
    uploads: UploadBudget,
}

impl AppState {
    /// State for a configuration.
    pub fn new(config: ServerConfig) -> AppState {
        let (mirror_store, pull_through) = match config.mirror {
            None => (None, None),
            Some(Mirror::Offline(store)) => (Some(store), None),
            Some(Mirror::Lazy(pull)) => (Some(pull.store().clone()), Some(pull)),
        };
        let mut metrics = Metrics::default();
        if let Some(pull) = &pull_through {
            metrics.register_mirror(pull.events());
        }
        AppState(Arc::new(Inner {
            objects: ObjectCache::new(config.store, config.cache_bytes, config.revalidate_after),
            // Its own budget, so mirrored tarballs never evict the private repository's.
            mirror: mirror_store
                .map(|store| ObjectCache::new(store, config.cache_bytes, config.revalidate_after)),
            pull_through,
            auth: config.auth,
            metrics,
            api: config.api,
            mirror_host: config.mirror_host,
            uploads: UploadBudget::default(),
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

    /// The lazy mirror, when the mirror is served in lazy mode.
    pub fn pull_through(&self) -> Option<&PullThrough> {
        self.0.pull_through.as_deref()
    }

    /// The memory budget of tarball uploads.
    pub(crate) fn uploads(&self) -> &UploadBudget {
        &self.0.uploads
    }

    /// The API configuration, when the API is on.
    pub fn api(&self) -> Option<&ApiConfig> {
        self.0.api.as_ref()
    }
}

/// The application: repository resources, the mirror (when configured, also under its own
/// host name), `/healthz` and `/metrics`.
pub fn router(state: AppState) -> Router {
    let mirror_host = state.0.mirror.as_ref().and(state.0.mirror_host.clone());
    let app = routes(state);
    let Some(host) = mirror_host else {
        return app;
    };
    // Around the whole router: a rewrite inside it would come after routing.
    let to_mirror = middleware::map_request(move |request: Request| {
        let routed = route_to_mirror(&host, request);
        async move { routed }
    });
    Router::new().fallback_service(to_mirror.layer(app))
}

/// [`router`] less the mirror's host name.
fn routes(state: AppState) -> Router {
    let mut repository = resource_routes(Served::Repository).route(
        "/metrics",
        get(|State(s): State<AppState>| async move { metrics_response(&s) }),
    );
    if state.0.mirror.is_some() {
        // Same read access as the repository: a server that protects its packages does not
        // hand out its mirror (and its bandwidth) to anyone.
        repository = repository.nest(MIRROR_PREFIX, resource_routes(Served::Mirror));
    }
    let repository = repository.route_layer(middleware::from_fn_with_state(
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

/// Which store a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Repository,
    Mirror,
}

/// The allow-listed repository resources of one store.
fn resource_routes(from: Served) -> Router<AppState> {
    Router::new()
        .route(
            "/names",
            get(move |s, h, p| serve(s, h, p, from, Some(Resource::Names))),
        )
        .route(
            "/versions",
            get(move |s, h, p| serve(s, h, p, from, Some(Resource::Versions))),
        )
        .route(
            "/public_key",
            get(move |s, h, p| serve(s, h, p, from, Some(Resource::PublicKey))),
        )
        .route(
            "/packages/{name}",
            get(move |s, h, p, Path(n): Path<String>| serve(s, h, p, from, Resource::package(&n))),
        )
        .route(
            "/tarballs/{file}",
            get(move |s, h, p, Path(f): Path<String>| serve(s, h, p, from, Resource::tarball(&f))),
        )
        .route(
            "/docs/{file}",
            get(move |s, h, p, Path(f): Path<String>| serve(s, h, p, from, Resource::docs(&f))),
        )
        .route(
            "/installs/{*path}",
            get(move |s, h, p, Path(path): Path<String>| {
                serve(s, h, p, from, Resource::installs(&path))
            }),
        )
}

/// Set on a response the store (or, for the lazy mirror, the upstream) could not confirm.
const STALE_HEADER: &str = "x-hexrepo-stale";

/// Whether this request's reads need credentials, decided once by the access middleware.
#[derive(Debug, Clone, Copy)]
struct PrivateReads(bool);

async fn serve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(PrivateReads(private)): Extension<PrivateReads>,
    from: Served,
    resource: Option<Resource>,
) -> Response {
    let Some(resource) = resource else {
        return not_found();
    };
    let cache = match from {
        Served::Repository => &state.0.objects,
        Served::Mirror => match &state.0.mirror {
            Some(mirror) => mirror,
            None => return not_found(),
        },
    };
    // A streamed file that changed between the lookup and the open: look it up again, once.
    for _ in 0..2 {
        let read = match (from, &state.0.pull_through) {
            (Served::Mirror, Some(pull)) => match pull_through(pull, cache, &resource).await {
                Ok(read) => read,
                Err(response) => return response,
            },
            _ => cache.get(&resource).await,
        };
        let found = match read {
            Ok(Some(found)) => found,
            Ok(None) => return not_found(),
            Err(e) => return read_error(e),
        };
        let plan = respond::plan(&headers, &found.entry);
        let body = match found.content {
            Content::Bytes(bytes) => respond::memory_body(plan, &bytes),
            Content::Stream => match plan.byte_range(found.entry.size) {
                None => Body::empty(),
                Some(range) => {
                    let key = resource.storage_key();
                    match cache.open(&key, &found.entry, Some(range)).await {
                        Ok(Streamed::Body(stream)) => Body::from_stream(stream),
                        Ok(Streamed::Changed) => continue,
                        Ok(Streamed::Missing) => return not_found(),
                        Err(e) => return read_error(e),
                    }
                }
            },
        };
        let mut response = file_response(plan, &found.entry, resource.kind(), private, body);
        if found.stale {
            response
                .headers_mut()
                .insert(STALE_HEADER, HeaderValue::from_static("1"));
        }
        return response;
    }
    read_error(ReadError::Unavailable)
}

fn read_error(error: ReadError) -> Response {
    match error {
        ReadError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, HeaderValue::from_static("5"))],
            "storage unavailable, retry later\n",
        )
            .into_response(),
        ReadError::Failed => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response()
        }
    }
}

/// Reads the resource from the lazy mirror's store once the pull-through made sure it holds
/// it (a stored tarball is served without asking); the response when there is nothing to
/// serve.
async fn pull_through(
    pull: &PullThrough,
    mirror: &ObjectCache,
    resource: &Resource,
) -> Result<Result<Option<Found>, ReadError>, Response> {
    if resource.kind() == Kind::Tarball
        && let Ok(Some(found)) = mirror.get(resource).await
    {
        return Ok(Ok(Some(found)));
    }
    let stale = match pull.prepare(resource).await {
        Ready::Current { changed } => {
            if changed {
                mirror.forget(&resource.storage_key());
            }
            false
        }
        Ready::Stale => true,
        Ready::Missing => return Err(not_found()),
        Ready::Unavailable => {
            return Err((
                StatusCode::BAD_GATEWAY,
                [(header::RETRY_AFTER, HeaderValue::from_static("5"))],
                "upstream unavailable and not in the mirror, retry later\n",
            )
                .into_response());
        }
        Ready::Refused => {
            return Err((
                StatusCode::BAD_GATEWAY,
                "the upstream's file failed verification; not served\n",
            )
                .into_response());
        }
    };
    let mut read = mirror.get(resource).await;
    if let Ok(Some(found)) = &mut read {
        found.stale |= stale;
    }
    Ok(read)
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
